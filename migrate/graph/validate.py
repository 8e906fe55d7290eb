"""Checks a GraphDef gets when it is loaded, before anything runs: every input names a node (apart from while
loops' back edges, in an order TF can import), each node has the inputs its op wants, dtypes and Consts are
valid. BadInput naming the first node at fault."""
from migrate import opsets, tfcompat
from migrate.errors import BadInput


def _fixed(args):
    """How many tensors a list of OpDef args stands for, or None when one is variadic (N, list(type))."""
    if any(arg.number_attr or arg.type_list_attr for arg in args):
        return None
    return len(args)


def output_count(node):
    """How many outputs `node` has by its op's OpDef (variadic ones counted from the node's attrs), or None
    when this TF does not know the op."""
    op_def = tfcompat.op_def(node.op)
    if op_def is None:
        return None
    count = 0
    for arg in op_def.output_arg:
        if arg.number_attr:
            count += node.attr[arg.number_attr].i if arg.number_attr in node.attr else 0
        elif arg.type_list_attr:
            count += len(node.attr[arg.type_list_attr].list.type) if arg.type_list_attr in node.attr else 0
        else:
            count += 1
    return count


def _arity_problem(graph_def):
    """The first node whose data inputs do not fit its op (count, or an output index its producer lacks), as
    text, or None. Ops this TF does not know, and variadic inputs/outputs, are not judged."""
    return _structure_problems(graph_def)[2]


def _op_specs():
    """op -> (inputs it takes or None, [(attr, has default, AttrValue field, attr type)], outputs or None),
    or None for an op this TF does not know; looked up once per op type."""
    specs = {}

    def spec(op):
        if op not in specs:
            op_def = tfcompat.op_def(op)
            specs[op] = None if op_def is None else (
                _fixed(op_def.input_arg),
                [(a.name, a.HasField("default_value"), "list" if a.type.startswith("list(") else
                  _ATTR_FIELDS.get(a.type), a.type) for a in op_def.attr],
                _fixed(op_def.output_arg))
        return specs[op]
    return spec


# DataType -> bytes per element, for the dtypes tensor_content is written for.
_ITEM_BYTES = {1: 4, 2: 8, 3: 4, 4: 1, 5: 2, 6: 1, 8: 8, 9: 8, 10: 1, 14: 2, 17: 2, 18: 16, 19: 2, 22: 4, 23: 8}


def _const_problem(node):
    """A Const whose tensor_content does not hold what its shape and dtype need (TF refuses it at run time,
    logging `E... tensor.cc] Input size was ...`), as text, or None."""
    tensor = node.attr["value"].tensor
    content = tensor.tensor_content
    item = _ITEM_BYTES.get(tensor.dtype)
    if not content or item is None or tensor.tensor_shape.unknown_rank:
        return None
    count = 1
    for dim in tensor.tensor_shape.dim:
        count *= dim.size
    if len(content) == count * item:
        return None
    return "node '{}' (Const) holds {} bytes of tensor_content, its shape {} {} needs {}".format(
        node.name, len(content), [dim.size for dim in tensor.tensor_shape.dim],
        tfcompat.tf().as_dtype(tensor.dtype).name, count * item)


def _node_problem(node, data, spec, producers, valid_types):
    """What is wrong with one node's inputs and attrs for its op (see _arity_problem), or None.
    (Runs once per node on graphs of a million nodes: plain loops, no generators.)"""
    if node.op == "Const" and "value" in node.attr:
        problem = _const_problem(node)
        if problem:
            return problem
    info = spec(node.op)
    if info is not None:
        wanted, attr_specs, _ = info
        if wanted is not None and len(data) != wanted:
            return "node '{}' ({}) has {} data input(s), {} takes {}".format(node.name, node.op, len(data), node.op,
                                                                           wanted)
        attrs = node.attr if attr_specs else None
        for name, has_default, kind, attr_type in attr_specs:
            if name not in attrs:
                if not has_default:
                    return "node '{}' ({}) lacks attr '{}'".format(node.name, node.op, name)
                continue
            value = attrs[name]
            if kind and value.WhichOneof("value") not in (kind, "placeholder"):
                return "node '{}' ({}) has attr '{}' of the wrong kind (want {})".format(
                    node.name, node.op, name, attr_type)
            if attr_type == "type":
                bad = value.type not in valid_types
            elif attr_type == "list(type)":
                bad = not valid_types.issuperset(value.list.type)
            elif attr_type == "tensor":
                bad = value.tensor.dtype not in valid_types
            else:
                continue
            if bad:
                return "node '{}' ({}) has an invalid dtype in attr '{}'".format(node.name, node.op, name)
    for name in data:
        if ":" in name:
            producer, _, index = name.partition(":")
            if index and not index.isdigit():
                return "node '{}' has a malformed input name '{}'".format(node.name, name)
        else:
            producer, index = name, ""
        producer_info = spec(producers.get(producer, ""))
        count = producer_info[2] if producer_info is not None else None
        if count is not None and int(index or 0) >= count:
            return "node '{}' reads '{}', but {} ({}) has {} output(s)".format(
                node.name, name, producer, producers[producer], count)
    return None


def _structure_problems(graph_def, names=None):
    """One sweep after the name index: (first dangling (node, input) or None, how many dangle, first arity
    problem or None, whether every input names an earlier node apart from while-loop back edges).
    Graphs of a million nodes are checked in seconds: what each op wants is looked up once per op type, and a
    node whose inputs are all plain names (no ':k') and whose attrs pass the checks of its op is judged without
    _node_problem; any other node goes to _node_problem, which says the same of a sound node and words a fault.
    names: [node.name] in graph order when the caller has it."""
    from tensorflow.core.framework import types_pb2
    valid_types = set(types_pb2.DataType.values()) - set([types_pb2.DT_INVALID])
    spec = _op_specs()
    nodes = graph_def.node
    if names is None:
        names = [node.name for node in nodes]
    ops = [node.op for node in nodes]
    position = dict(zip(names, range(len(names))))
    producers = None  # {name: op}, made for _node_problem when a node needs it
    checks = dict((op, _fast_checks(op, spec(op))) for op in set(ops))
    outputs = dict((op, None if spec(op) is None else spec(op)[2]) for op in checks)
    counts = [outputs[op] for op in ops]
    merges, back_edges = opsets.MERGE_OPS, opsets.NEXT_ITERATION_OPS
    first_dangling, dangling, problem, in_order = None, 0, None, True
    index = -1
    for node in nodes:
        index += 1
        data, plain = 0, True
        for input_name in node.input:
            if input_name[:1] == "^":
                name = input_name[1:]
            else:
                data += 1
                name = input_name
            if ":" in name:  # 'node:k' (or a name that only looks like one): _node_problem judges it
                plain = False
                colon = name.rfind(":")
                at = position.get(name[:colon] if name[colon + 1:].isdigit() else name)
            else:
                at = position.get(name)
                if at is not None and name is input_name and counts[at] == 0:
                    plain = False  # output 0 of an op with no outputs: _node_problem words it
            if at is None:
                dangling += 1
                if first_dangling is None:
                    first_dangling = (node.name, input_name)
                continue
            if at >= index and in_order and not (ops[index] in merges and ops[at] in back_edges):
                in_order = False
        if problem is None:
            op = ops[index]
            wanted, attr_specs = checks[op]
            sound = plain and (wanted is None or data == wanted)
            if sound and attr_specs:
                attrs = node.attr
                for name, has_default, kind, attr_type in attr_specs:
                    if name not in attrs:
                        if has_default:
                            continue
                        sound = False
                        break
                    value = attrs[name]
                    if kind and value.WhichOneof("value") not in (kind, "placeholder") or \
                            attr_type == "type" and value.type not in valid_types or \
                            attr_type == "tensor" and value.tensor.dtype not in valid_types or \
                            attr_type == "list(type)" and not valid_types.issuperset(value.list.type):
                        sound = False
                        break
                if sound and op == "Const" and "value" in attrs and _const_problem(node):
                    sound = False
            if not sound:
                if producers is None:
                    producers = dict(zip(names, ops))
                problem = _node_problem(node, [name for name in node.input if name[:1] != "^"], spec, producers,
                                        valid_types)
    return first_dangling, dangling, problem, in_order


def _fast_checks(op, info):
    """(data inputs the op takes or None, [(attr, has default, AttrValue field, attr type)]) for the quick
    look at a node of `op` in _structure_problems; an op this TF does not know: (None, []), and a Const
    unknown (no OpDef to judge it by) -1 inputs, so that _node_problem always looks at it."""
    if info is None:
        return (-1 if op == "Const" else None), ()
    return info[0], tuple(info[1])


# AttrValue field holding each OpDef attr type (list(...) types: `list`).
_ATTR_FIELDS = {"tensor": "tensor", "type": "type", "shape": "shape", "int": "i", "float": "f", "bool": "b",
                "string": "s", "func": "func"}


def check_graph_structure(graph_def, where):
    """BadInput naming `where` for a GraphDef nothing can run (TF itself would fail later, with a less clear
    message): two nodes of one name, an input naming a node that is not there, an input count or output
    index its op does not have, a cycle that is not a v1 while loop."""
    from migrate.graph.view import acyclic
    names = [node.name for node in graph_def.node]
    if len(set(names)) != len(names):
        seen = set()
        for name in names:
            if name in seen:
                raise BadInput("two nodes are named '{}'".format(name), where,
                               "the GraphDef is malformed; re-export it")
            seen.add(name)
    first_dangling, dangling, problem, in_order = _structure_problems(graph_def, names)
    if first_dangling is not None:
        node, input_name = first_dangling
        raise BadInput("node '{}' reads '{}', which is not in the graph ({} such input(s))".format(
            node, input_name, dangling), where, "the GraphDef is incomplete; re-export it")
    if problem:
        raise BadInput(problem, where, "the GraphDef is malformed; re-export it")
    if in_order:
        return  # producers come first (loop back edges aside): no cycle, without building the full view
    try:
        acyclic(graph_def)
    except BadInput as exc:
        raise BadInput(exc.what, where, exc.fix)
