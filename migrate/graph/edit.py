"""In-place GraphDef edits: remove nodes, splice nodes out while reconnecting their readers, write constants.

Why in place: weights live inside Const NodeDefs, and large models are the norm. Building a new GraphDef
with `node.add().CopyFrom(n)` copies every byte of every kept weight (time and a second copy in memory per
GB); sorting the repeated field moves pointers only, and deleting its tail frees only what is removed
(benchmarks/README.md, "Measured once, cited in the code"). So removal is: sort doomed nodes to the end, cut the tail.
NodeDef references stay valid across a removal or a sort (the elements are moved, not copied): the NodeIndex of
migrate/graph/index.py holds them. Every helper here takes that index (index=None: no index to keep up to
date) and tells it what changed; a pass that edits a node's op or inputs by hand leaves the index stale.
"""
import functools
from collections import namedtuple

from migrate import tfcompat
from migrate.errors import BadInput
from migrate.graph import names
from migrate.graph.view import needed_nodes, producer_of


def node_map(graph_def):
    """{name: NodeDef}. The references are valid until nodes are removed."""
    return dict((node.name, node) for node in graph_def.node)


def remove_nodes(graph_def, doomed, index=None):
    """Delete the named nodes in place; the others keep their relative order. Returns how many went."""
    doomed = doomed if isinstance(doomed, (set, frozenset)) else set(doomed)
    if not doomed:
        return 0
    if index is not None:  # the index knows which exist and their order: no sweep of the NodeDefs
        doomed = set(filter(index.nodes.__contains__, doomed))
        count = len(doomed)
        if count:
            _sort_to_end(graph_def, index, doomed)
            del graph_def.node[len(graph_def.node) - count:]
            index.removed(doomed)
        return count
    flags = [node.name in doomed for node in graph_def.node]
    count = sum(flags)
    if count:
        first = flags.index(True)
        if not any(flags[first + count:]) and all(flags[first:first + count]) and first + count == len(flags):
            del graph_def.node[first:]  # already at the end
        else:
            # list.sort is stable: doomed nodes go to the end, everyone keeps their relative order.
            graph_def.node.sort(key=lambda node: node.name in doomed)
            del graph_def.node[len(graph_def.node) - count:]
    return count


def _sort_to_end(graph_def, index, doomed):
    """Move the doomed nodes to the end of graph_def.node, the others keeping their order (a stable sort).
    The sort keys come from the index's graph order, not from each NodeDef's name: list.sort computes the
    keys of the elements in order, once each, so the key function hands out precomputed flags (C calls only,
    no protobuf field read per node)."""
    flags = [name in doomed for name in index.order]  # its keys are in graph order (NodeIndex.check)
    if len(flags) != len(graph_def.node):
        raise AssertionError("the node index is stale: {} nodes indexed, {} in the graph".format(
            len(flags), len(graph_def.node)))
    graph_def.node.sort(key=functools.partial(next, iter(flags)))


def keep_only(graph_def, keep, index=None):
    """Remove every node not named in keep. Returns the removed names."""
    keep = keep if isinstance(keep, (set, frozenset)) else set(keep)
    existing = index.nodes if index is not None else (node.name for node in graph_def.node)
    doomed = set(name for name in existing if name not in keep)
    remove_nodes(graph_def, doomed, index)
    return doomed


def drop_unreachable(graph_def, roots, index=None):
    """Remove nodes that no root (node or tensor name) needs. Returns the removed names."""
    return keep_only(graph_def, needed_nodes(index if index is not None else graph_def, roots), index)


# How readers of a removed node are reconnected.
#   outputs        {output index: tensor name} that output forwards to (Identity: {0: its input})
#   controls       node names a control input '^removed' becomes ([] drops it)
#   data_controls  node names that readers of its outputs must now depend on (an Identity's control inputs)
Splice = namedtuple("Splice", ["outputs", "controls", "data_controls"])


def forwarding_splice(node, inputs=None):
    """Splice for a node that forwards its data inputs unchanged (Identity, IdentityN, NoOp):
    output k forwards to data input k, and its control inputs move to whoever depended on it.
    inputs: list(node.input), when the caller has it."""
    inputs = list(node.input) if inputs is None else inputs
    if len(inputs) == 1 and inputs[0][:1] != "^":  # the common case, without the general sweep
        name = inputs[0]
        return Splice({0: names.tensor_name(name)}, [names.node_name(name)], [])
    data = [name for name in inputs if not names.is_control(name)]
    controls = [names.node_name(name) for name in inputs if names.is_control(name)]
    outputs = dict((index, names.tensor_name(name)) for index, name in enumerate(data))
    return Splice(outputs, [names.node_name(name) for name in data] + controls, controls)


class _Resolver(object):
    """Follows chains of spliced nodes (Identity of Identity ...) to what survives. Iterative, memoized:
    chains of thousands of nodes must neither recurse deeply nor be walked once per reader."""

    def __init__(self, splices):
        self.splices = splices
        self.memo = {}

    def data(self, tensor):
        """(surviving tensor, control deps the reader inherits on the way)."""
        inherited, seen = [], set()
        while names.node_name(tensor) in self.splices:
            _refuse_cycle(tensor, seen)
            splice = self.splices[names.node_name(tensor)]
            index = names.output_index(tensor)
            if index not in splice.outputs:
                raise ValueError("'{}' is read but its node is removed without a replacement".format(tensor))
            inherited += self.controls(splice.data_controls)
            tensor = splice.outputs[index]
        return tensor, inherited

    def controls(self, nodes):
        result = []
        for name in nodes:
            result += self._control(name)
        return result

    def _control(self, name):
        """What a control input on name becomes: name itself, or what the removed name waited on
        (depth-first over removed nodes, each resolved once)."""
        if name not in self.splices:
            return [name]
        path, stack = set([name]), [(name, iter(self.splices[name].controls))]
        while stack and name not in self.memo:
            current, waited_on = stack[-1]
            for waited in waited_on:
                if waited in self.splices and waited not in self.memo:
                    _refuse_cycle(waited, path)
                    stack.append((waited, iter(self.splices[waited].controls)))
                    break
            else:
                stack.pop()
                path.discard(current)
                resolved = []
                for waited in self.splices[current].controls:
                    resolved += self.memo[waited] if waited in self.splices else [waited]
                self.memo[current] = _unique(resolved)
        return self.memo[name]


def _refuse_cycle(name, seen):
    if name in seen:
        raise BadInput("the nodes to remove form a cycle through '{}'".format(name),
                       fix="the GraphDef is malformed; re-export it from TensorFlow")
    seen.add(name)


def _unique(items):
    seen = set()
    return [item for item in items if not (item in seen or seen.add(item))]


def splice_out(graph_def, splices, readers=None, index=None):
    """Remove the nodes in splices ({name: Splice}) and reconnect every reader as the splices say.

    Readers keep data inputs first, then control inputs (GraphDef's rule), without duplicates.
    readers: the nodes reading a spliced node, when the caller knows them from a view of the graph as it is
    (then no other node's inputs are looked at): names, or {name: NodeDef} (then the graph is not swept
    for them either). With an index, the readers come from it. Returns the number of readers rewritten.
    """
    if index is not None:
        return _splice_out_indexed(graph_def, splices, index)
    resolver = _Resolver(splices)
    rewritten = 0
    producer = producer_of
    if isinstance(readers, dict):
        candidates = list(readers.values())
    else:
        candidates = graph_def.node
    for node in candidates:
        if readers is not None:
            if node.name not in readers:
                continue
        else:
            for input_name in node.input:
                if producer(input_name) in splices:
                    break
            else:
                continue
        if node.name in splices:
            continue
        data, controls = [], []
        inputs = list(node.input)
        for input_name in inputs:
            if input_name[:1] == "^":
                controls += resolver.controls([input_name[1:]])
            elif producer(input_name) in splices:
                tensor, inherited = resolver.data(input_name)
                data.append(names.data_input(tensor))
                controls += inherited
            else:
                data.append(input_name)
        set_inputs(node, data, controls, index, inputs)
        rewritten += 1
    remove_nodes(graph_def, splices, index)
    return rewritten


def _splice_out_indexed(graph_def, splices, index):
    """splice_out with the index: only the readers of spliced nodes are visited, each tensor a spliced node
    forwards is resolved once, and the index hears of the inputs that changed only."""
    nodes, readers_of = index.nodes, index.readers
    waiting = []  # readers to rewrite, collected first: rewriting changes index.readers
    seen = set()
    direct = {}  # spliced node -> the node whose output 0 its output 0 forwards, when nothing else is involved
    for name, splice in splices.items():
        target = splice.outputs.get(0)
        if target is not None and not splice.data_controls and target[-2:] == ":0" and target[:-2] not in splices:
            direct[name] = target[:-2]
        for reader in readers_of.get(name, ()):
            if reader not in seen and reader not in splices and reader in nodes:
                seen.add(reader)
                waiting.append(reader)
    resolver = _Resolver(splices)
    resolved = {}  # input as spelled -> (data input it becomes, control deps its reader inherits)
    for reader in waiting:
        node = nodes[reader]
        data, controls = [], []
        inputs = list(node.input)
        for input_name in inputs:
            if input_name[:1] == "^":
                producer = input_name[1:]
                if producer in splices:
                    controls += resolver.controls([producer])
                else:
                    controls.append(producer)
                continue
            if ":" not in input_name:  # output 0
                forwarded = direct.get(input_name)
                if forwarded is not None:
                    data.append(forwarded)
                    continue
                if input_name not in splices:
                    data.append(input_name)
                    continue
            elif producer_of(input_name) not in splices:
                data.append(input_name)
                continue
            found = resolved.get(input_name)
            if found is None:
                tensor, inherited = resolver.data(input_name)
                found = resolved[input_name] = (names.data_input(tensor), inherited)
            data.append(found[0])
            controls += found[1]
        if controls or len(data) != len(inputs):
            set_inputs(node, data, controls, index, inputs)
        else:  # data inputs only, as many as before: rewrite_inputs writes and relinks the changed positions
            rewrite_inputs(node, data, index, inputs)
    remove_nodes(graph_def, splices, index)
    return len(waiting)


def set_inputs(node, data, controls, index=None, old=None):
    """Rewrite node.input: data inputs, then unique control inputs, leaving out the node itself and nodes
    it already reads data from (that wait is implied). old: node.input as a list, when the caller has it."""
    unique = []
    if controls:
        implied = set(names.node_name(name) for name in data) | set([node.name])
        for name in controls:
            if name not in implied and name not in unique:
                unique.append(name)
    rewrite_inputs(node, list(data) + ["^" + name for name in unique], index, old)


def rewrite_inputs(node, inputs, index=None, old=None):
    """node.input = inputs (a list), the index told. old: node.input as a list, when the caller has it."""
    field = node.input
    inputs = inputs if isinstance(inputs, list) else list(inputs)
    if index is not None and old is None:
        old = list(field)
    if old is not None and len(old) == len(inputs):  # same length: write only the inputs that changed
        for position, (before, after) in enumerate(zip(old, inputs)):
            if before != after:
                field[position] = after
    else:
        del field[:]
        field.extend(inputs)
    if index is not None:
        index.inputs_changed(node, old, inputs)


def set_op(node, op, index=None):
    old = node.op
    node.op = op
    if index is not None and op != old:
        index.op_changed(node, old)


def const_value(node):
    """The numpy value of a Const NodeDef."""
    return tfcompat.v1().make_ndarray(node.attr["value"].tensor)


def make_const(node, value, dtype, index=None):
    """Turn node into a Const holding value (numpy array) in place; name and device stay.

    `_output_shapes` is rewritten when the node had it (graphs exported with add_shapes=True).
    """
    attrs = node.attr
    had_shapes = "_output_shapes" in attrs
    set_op(node, "Const", index)
    rewrite_inputs(node, [], index)
    attrs.clear()
    enum = _datatype_enum(dtype)
    attrs["dtype"].type = enum
    tensor = attrs["value"].tensor
    if not _fill_tensor(tensor, value, enum):
        tensor.CopyFrom(tfcompat.v1().make_tensor_proto(value, dtype=dtype))
    if had_shapes:
        shape = attrs["_output_shapes"].list.shape.add()
        for size in getattr(value, "shape", ()):
            shape.dim.add().size = size
    return node


_ENUMS = {}  # dtype as the caller gives it -> DataType enum (as_dtype per folded node adds up)


def _datatype_enum(dtype):
    try:
        return _ENUMS[dtype]
    except KeyError:
        enum = _ENUMS[dtype] = tfcompat.v1().as_dtype(dtype).as_datatype_enum
        return enum
    except TypeError:  # unhashable: ask TF every time
        return tfcompat.v1().as_dtype(dtype).as_datatype_enum


# DataType enum -> (numpy dtype name, TensorProto field make_tensor_proto uses for one value)
_FAST_TENSORS = {1: ("float32", "float_val"), 2: ("float64", "double_val"), 3: ("int32", "int_val"),
                 9: ("int64", "int64_val"), 10: ("bool", "bool_val")}
_FAST_DTYPES = {}  # enum -> numpy dtype, filled on first use (numpy is imported lazily here)


def _fill_tensor(tensor, value, enum):
    """Write a numeric numpy value into an empty TensorProto as make_tensor_proto would (tensor_content for
    more than one element, the typed value field for one); False when the slow path must do it."""
    import numpy as np
    spec = _FAST_TENSORS.get(enum)
    if spec is None or not isinstance(value, np.ndarray):
        return False
    wanted = _FAST_DTYPES.get(enum)
    if wanted is None:
        wanted = _FAST_DTYPES[enum] = np.dtype(spec[0])
    if value.dtype != wanted:
        return False
    tensor.dtype = enum
    shape = tensor.tensor_shape
    shape.SetInParent()
    if value.ndim:
        dims = shape.dim
        for size in value.shape:
            dims.add().size = size
    count = value.size
    if count > 1:
        tensor.tensor_content = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<"),
                                                                   copy=False).tobytes()
    elif count == 1:
        getattr(tensor, spec[1]).append(value.item())
    return True


def add_const(graph_def, name, value, dtype, device="", index=None):
    node = graph_def.node.add()
    node.name = name
    node.device = device
    make_const(node, value, dtype)
    if index is not None:
        index.added(node)
    return node


def unique_name(graph_def, wanted, taken=None):
    """wanted, or wanted_1, wanted_2 ... whichever no node has yet."""
    taken = taken if taken is not None else set(node.name for node in graph_def.node)
    candidate, suffix = wanted, 0
    while candidate in taken:
        suffix += 1
        candidate = "{}_{}".format(wanted, suffix)
    return candidate


def strip_default_attrs(graph_def):
    """Remove attrs whose value equals the op's registered default, in place; returns how many went.

    TF adds new attrs with defaults as it evolves (FusedBatchNormV3.exponential_avg_factor in 2.x): a graph
    written without them still imports into older TF (the SavedModel builder's strip_default_attrs idea)."""
    removed = 0
    defaults = {}
    for node in graph_def.node:
        if node.op not in defaults:
            op_def = tfcompat.op_def(node.op)
            defaults[node.op] = dict((a.name, a.default_value) for a in op_def.attr if a.HasField("default_value")) \
                if op_def is not None else {}
        for name, default in defaults[node.op].items():
            if name in node.attr and node.attr[name] == default:
                del node.attr[name]
                removed += 1
    return removed
