"""What an op type means for graph rewriting: control flow, state, function calls."""
from migrate import opsets, tfcompat
from migrate.graph.view import as_digraph, loop_back_edges, topological_sort


_stateful = {}


def is_stateful(op):
    """True when TF marks the op stateful, or when this TF does not know the op (we cannot tell)."""
    if op not in _stateful:
        definition = tfcompat.op_def(op)
        _stateful[op] = definition is None or bool(definition.is_stateful)
    return _stateful[op]


def pure_nodes(graph, among=None):
    """Names of nodes whose execution, with everything it waits for, changes no state.

    A control dependency on such a node only orders work; dropping it cannot change any result.
    While-loop ops count as impure: the loop body is behind a back edge that this walk does not follow.
    among: only these nodes are asked about (graph is then a NodeIndex; only their ancestors are visited).
    """
    if among is not None:
        return _pure_among(graph, among)
    graph = as_digraph(graph)
    back = set(loop_back_edges(graph))
    pure = set()
    for name in topological_sort(graph, back):  # BadInput on a cycle that is not a while loop
        op = graph.nodes[name]["op"]
        if op in opsets.WHILE_LOOP_OPS or is_stateful(op):
            continue
        if all(producer in pure for producer in graph.predecessors(name) if (producer, name) not in back):
            pure.add(name)
    return pure


_VISITING = object()


def _pure_among(index, among):
    """pure_nodes for the nodes in among, by a depth-first walk over their ancestors in a NodeIndex."""
    ops, state = index.ops, {}  # name -> True / False (pure or not), _VISITING while on the stack

    def producers(name):
        return [p for p in index.predecessors(name)
                if not (ops[name] in opsets.MERGE_OPS and ops[p] in opsets.NEXT_ITERATION_OPS)]  # back edge

    def enter(name):
        """Pushes name when its producers must be looked at first; decides it at once when impure."""
        if ops[name] in opsets.WHILE_LOOP_OPS or is_stateful(ops[name]):
            state[name] = False
            return
        state[name] = _VISITING
        stack.append((name, iter(producers(name))))

    stack = []
    for start in among:
        if start not in state:
            enter(start)
        while stack:
            name, todo = stack[-1]
            for producer in todo:
                if state.get(producer) is _VISITING:  # a cycle that is not a while loop: the full walk names it
                    return pure_nodes(index.graph_def) & set(among)
                if producer not in state:
                    enter(producer)
                    break
            else:
                stack.pop()
                state[name] = all(state[p] for p in producers(name))
    return set(name for name in among if state.get(name) is True)


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


def called_functions(node, functions):
    """Names of library functions `node` calls: by op name (Defun) or through func attrs."""
    called = [node.op] if node.op in functions else []
    for value in node.attr.values():
        if value.HasField("func"):
            called.append(value.func.name)
        called.extend(func.name for func in value.list.func)
    return [name for name in called if name in functions]


def function_nodes(name, functions):
    """NodeDefs of library function `name` and of every function it calls, transitively."""
    found, seen, todo = [], set(), [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in functions:
            continue
        seen.add(current)
        for node in functions[current].node_def:
            found.append(node)
            todo.extend(called_functions(node, functions))
    return found


def table_handles(graph_def):
    """{handle tensor: (key dtype enum, value dtype enum, graph node)} of the static lookup tables a graph
    uses: HashTable(V2) nodes, and the resource outputs of calls to functions that create one (TF 2.x
    `__creator` functions, maybe behind `restored_function_body` wrappers: a TF2 SavedModel loaded into a
    TF1 graph, as TF Transform does)."""
    functions = dict((f.signature.name, f) for f in graph_def.library.function)
    handles = {}
    for node in graph_def.node:
        if node.op in opsets.HASH_TABLE_OPS:
            handles[node.name + ":0"] = (node.attr["key_dtype"].type, node.attr["value_dtype"].type, node.name)
            continue
        for name in called_functions(node, functions) if functions else []:
            resources = [i for i, arg in enumerate(functions[name].signature.output_arg) if arg.type == 20]
            if not resources or len(functions[name].signature.input_arg):
                continue  # a creator takes no inputs and returns the handle
            tables = [n for n in function_nodes(name, functions) if n.op in opsets.HASH_TABLE_OPS]
            if len(tables) == 1:
                for index in resources:
                    handles["{}:{}".format(node.name, index)] = (tables[0].attr["key_dtype"].type,
                                                                 tables[0].attr["value_dtype"].type, node.name)
    return handles
