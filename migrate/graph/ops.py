"""What an op type means for graph rewriting: control flow, state, function calls."""
from migrate import opsets, tfcompat
from migrate.graph.view import as_digraph, loop_back_edges, topological_sort

V1_CONTROL_FLOW = opsets.V1_CONTROL_FLOW
SWITCH_OPS = frozenset(["Switch", "RefSwitch"])
# Ops that only exist inside (or at the border of) a v1 while loop.
WHILE_LOOP_OPS = frozenset(["Enter", "RefEnter", "Exit", "RefExit", "NextIteration", "RefNextIteration",
                            "LoopCond"])
# Ops whose meaning lives in graph_def.library functions: we do not look inside them.
FUNCTION_CALL_OPS = frozenset(["PartitionedCall", "StatefulPartitionedCall", "If", "StatelessIf", "While",
                               "StatelessWhile", "Case", "StatelessCase", "SymbolicGradient", "RemoteCall"])
PLACEHOLDER_OPS = frozenset(["Placeholder", "PlaceholderV2", "PlaceholderWithDefault"])
# Ops that produce ref tensors: an Identity after them turns a ref into a value.
REF_PRODUCING_OPS = frozenset(["Variable", "VariableV2", "TemporaryVariable", "RefSwitch", "RefEnter",
                               "RefMerge", "RefIdentity", "RefNextIteration", "RefExit"])

_stateful = {}


def is_stateful(op):
    """True when TF marks the op stateful, or when this TF does not know the op (we cannot tell)."""
    if op not in _stateful:
        definition = tfcompat.op_def(op)
        _stateful[op] = definition is None or bool(definition.is_stateful)
    return _stateful[op]


def pure_nodes(graph):
    """Names of nodes whose execution, with everything it waits for, changes no state.

    A control dependency on such a node only orders work; dropping it cannot change any result.
    While-loop ops count as impure: the loop body is behind a back edge that this walk does not follow.
    """
    graph = as_digraph(graph)
    back = set(loop_back_edges(graph))
    pure = set()
    for name in topological_sort(graph, back):  # BadInput on a cycle that is not a while loop
        op = graph.nodes[name]["op"]
        if op in WHILE_LOOP_OPS or is_stateful(op):
            continue
        if all(producer in pure for producer in graph.predecessors(name) if (producer, name) not in back):
            pure.add(name)
    return pure


def attr(node, name):
    """The node's AttrValue `name`, else the op's registered default, else None.

    Never index node.attr for a name that may be missing: a protobuf map inserts an empty AttrValue on
    lookup, which TF rejects on import. GraphDefs written with strip_default_attrs omit defaults, e.g.
    FusedBatchNorm's is_training (True) and epsilon (1e-4).
    """
    if name in node.attr:
        return node.attr[name]
    definition = tfcompat.op_def(node.op)
    for attr_def in (definition.attr if definition is not None else []):
        if attr_def.name == name and attr_def.HasField("default_value"):
            return attr_def.default_value
    return None
