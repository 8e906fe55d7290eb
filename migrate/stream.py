"""Streaming freeze: the frozen GraphDef goes to its file node by node, each weight read from the checkpoint
on its own, so peak memory is about the largest single tensor plus the graph structure (not all weights in a
session, plus the frozen GraphDef, plus the serialized copy).

No session runs. The graph structure is edited as freeze.py edits it (the outputs, the train/infer switches,
Assign*/Ref* rewrites, devices and pruning all come from freeze.py's own functions), and the variables become
Consts the way TF's convert_variables_to_constants makes them:
  VariableV2 / Variable / VarHandleOp     -> Const holding the checkpoint value (dtype from the variable)
  ReadVariableOp of a converted handle     -> Identity (T = dtype), data input only, as TF does
  Identity chain between handle and read   -> T = the value dtype
  ResourceGather / ResourceGatherNd        -> GatherV2 (+ '<name>/axis' Const) / GatherNd, as TF does
The checkpoint key of a variable is what the graph's own restore op (the saver_def's, else `*restore_all`)
assigns to it; variables that op does not restore, or restores from a slice, are not streamed.

A serialized GraphDef is a sequence of length-prefixed fields: each NodeDef is field 1 (wire type 2), then
library (2) and versions (4); protobuf parsers accept them in any order. A weight node is written as its
NodeDef without the value, followed by the hand-encoded `value` attr whose tensor_content is the numpy
buffer itself (never copied into a protobuf).

What is not handled raises Unsupported (the caller falls back to freeze.freeze, the session path):
--allow/--deny, lookup tables, partitioned (sliced) variables, variables the restore op does not restore
or the checkpoint lacks (or stores with another shape/dtype), resource handles read by anything but
ReadVariableOp / ResourceGather(Nd) / Assign*VariableOp (function calls, v2 control flow, VarIsInitializedOp),
ops other than Assign*/RefSwitch/RefIdentity that take ref inputs (ScatterUpdate, Apply*, CountUpTo,
ref tensors through while loops: RefEnter/RefExit/RefNextIteration/RefMerge), variables an init op
(main_op / legacy_init_op / table initializers) assigns after the restore, restore ops inside functions.
"""
import os
import time

from migrate import artifacts, freeze as freeze_mod, io, tfcompat
from migrate import model as m
from migrate.errors import BadInput
from migrate.graph import edit, names
from migrate.graph.names import node_name, tensor_name

VARIABLE_OPS = frozenset(["VariableV2", "Variable", "VarHandleOp"])
RESTORE_OPS = frozenset(["RestoreV2", "Restore", "RestoreSlice"])
ASSIGN_OPS = frozenset(["Assign", "AssignVariableOp"])
RESOURCE_WRITES = frozenset(["AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp"])
# What may read a converted resource handle (directly or through Identity): TF's converter handles these.
RESOURCE_READERS = frozenset(["ReadVariableOp", "ResourceGather", "ResourceGatherNd"]) | RESOURCE_WRITES
# Ref-taking ops freeze._rewrite_stateful turns into value ops, minus those that carry refs through loops.
REF_OK = (frozenset(freeze_mod._REF_TWINS) | frozenset(freeze_mod._ASSIGN_TWINS)) - frozenset(
    ["RefEnter", "RefExit", "RefNextIteration", "RefMerge"])
# What the session path's loaders run after the restore (session.py): table initializers for checkpoints,
# a SavedModel's main op (tf.saved_model.loader.load).
INIT_COLLECTIONS = {m.CHECKPOINT: ("table_initializer",), m.SESSION_BUNDLE: ("table_initializer",),
                    m.GRAPH_WITH_CHECKPOINT: ("table_initializer",),
                    m.SAVED_MODEL: ("saved_model_main_op", "legacy_init_op")}
TEXT_SUFFIXES = (".pbtxt", ".txt", ".prototxt")


class Unsupported(Exception):
    """This model needs the session path; str() says why (one line)."""


# ------------------------------------------------------------------------------------------ the entry point

def freeze_to_file(model, target, outputs=None, signature=None, set_values=None, allow=None, deny=None,
                   clear_devices=True):
    """Freeze `model` straight into `target` (a path, written in place, or a Target): (StreamedModel,
    freeze.FreezeRecord). Raises Unsupported, having written nothing, when the session path is needed;
    BadInput for what is wrong with the input whichever path runs (outputs, --set, unknown ops, size)."""
    started = time.time()
    path = target.path if isinstance(target, Target) else target
    text = target.text if isinstance(target, Target) else path.endswith(TEXT_SUFFIXES)
    plan = plan_freeze(model, outputs, signature, set_values, allow, deny, clear_devices)
    _check_size(plan, model.path)
    written = write_frozen(plan, path, text)
    inputs = sorted(tensor_name(n.name) for n in plan.graph_def.node if n.op == "Placeholder")
    notes = list(model.provenance) + ["streamed: {} variable(s), {:.1f} MB, read from the checkpoint one at a "
                                      "time".format(len(plan.weights), written / 1e6)]
    result = StreamedModel(path, text, m.FROZEN_GRAPH, model.path, None, checkpoint=None, meta_graph=None,
                           inputs=inputs, outputs=plan.outputs, signatures=model.signatures,
                           producer=model.producer, tags=model.tags, assets=model.assets,
                           provenance=list(model.provenance) + ["froze {} variables from {}".format(
                               plan.variables, model.path)])
    record = freeze_mod.FreezeRecord(plan.outputs, plan.how, plan.variables, plan.switches, [], plan.rewritten,
                                     plan.nodes_before, len(plan.graph_def.node), time.time() - started, notes)
    return result, record


# ------------------------------------------------------------------------------------------ planning

class Plan(object):
    """The frozen graph's structure (weight nodes hold no value yet) and where each weight comes from.

    weights  {node name: (checkpoint key, dtype enum, dims)}
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)


def plan_freeze(model, outputs=None, signature=None, set_values=None, allow=None, deny=None, clear_devices=True):
    """The Plan, or Unsupported. Reads the checkpoint's index only (shapes and dtypes), never its data."""
    from migrate import session
    if model.kind == m.FROZEN_GRAPH:
        raise Unsupported("already a frozen graph")
    if allow or deny:
        raise Unsupported("--allow/--deny keep some variables")
    if not model.checkpoint:
        raise Unsupported("no checkpoint holds the weights")
    output_tensors, how = freeze_mod.resolve_outputs(model, outputs, signature)
    switches = freeze_mod.switch_values(model.graph_def, freeze_mod.parse_set_values(set_values))
    source = model.graph_def
    session.check_ops_known(source, model.path)
    by_name = edit.node_map(source)
    consumers = _consumers(source)
    needed = edit.needed_nodes(source, output_tensors)
    _refuse_unhandled(source, needed, consumers, by_name)
    variables = sorted(name for name in needed if by_name[name].op in VARIABLE_OPS)
    keys = _checkpoint_keys(model, by_name, consumers, needed)
    _refuse_reassigned(model, by_name, consumers, set(variables))
    stored = _stored(model.checkpoint)
    weights = {}
    for name in variables:
        if name not in keys:
            raise Unsupported("variable '{}' is not restored by the graph's restore op".format(name))
        key, sliced = keys[name]
        if sliced:
            raise Unsupported("variable '{}' is restored from a slice (partitioned variable)".format(name))
        dtype, dims = _variable_spec(by_name[name])
        if key not in stored:
            raise Unsupported("checkpoint has no key '{}' for variable '{}'".format(key, name))
        stored_dims, stored_dtype = stored[key]
        if (stored_dtype is not None and stored_dtype != dtype) or (dims and list(stored_dims) != dims):
            raise Unsupported("checkpoint key '{}' does not match variable '{}'".format(key, name))
        weights[name] = (key, dtype, list(stored_dims))
    graph_def = _structure(model, source, needed, by_name, weights)
    present = set(node.name for node in graph_def.node)
    freeze_mod._apply_switches(graph_def, dict((k, v) for k, v in switches.items() if k in present))
    rewritten = freeze_mod._rewrite_stateful(graph_def)
    if clear_devices:
        freeze_mod._clear_devices(graph_def)
    edit.drop_unreachable(graph_def, [node_name(t) for t in output_tensors])
    if model.meta_graph is not None:  # attrs this TF lacks, at the writer's default (Cast.Truncate from 1.15 in 1.7):
        session.strip_unknown_defaults(graph_def, model.meta_graph.meta_info_def.stripped_op_list)  # as on import
    edit.strip_default_attrs(graph_def)  # what io.write_graph does to the session path's graph
    freeze_mod.record_io(graph_def, model, output_tensors, how)
    present = set(node.name for node in graph_def.node)
    return Plan(graph_def=graph_def, weights=dict((k, v) for k, v in weights.items() if k in present),
                outputs=output_tensors, how=how, switches=switches, rewritten=dict(rewritten),
                variables=len(variables), nodes_before=len(source.node), checkpoint=model.checkpoint)


def _consumers(graph_def):
    """{node: [(reader NodeDef, input spelling)]}."""
    found = {}
    for node in graph_def.node:
        for spelled in node.input:
            found.setdefault(node_name(spelled), []).append((node, spelled))
    return found


def _refuse_unhandled(graph_def, needed, consumers, by_name):
    from migrate import opsets
    from migrate.graph.ops import table_handles
    for tensor, (_, _, node) in sorted(table_handles(graph_def).items()):
        if node in needed:
            raise Unsupported("lookup table '{}' ({}) is needed".format(tensor, by_name[node].op))
    for node in graph_def.node:
        if node.name not in needed:
            continue
        if node.op in opsets.TABLE_OPS or "Table" in node.op:
            raise Unsupported("lookup table op '{}' ({}) is needed".format(node.name, node.op))
        if node.op not in REF_OK and _takes_ref(node.op):
            raise Unsupported("'{}' ({}) takes a ref input".format(node.name, node.op))
        if node.op == "VarHandleOp":
            for reader in _resource_readers(node.name, consumers):
                if reader.name in needed and reader.op not in RESOURCE_READERS:
                    raise Unsupported("resource variable '{}' is read by '{}' ({})".format(
                        node.name, reader.name, reader.op))
                if reader.op == "ResourceGather" and _attr_int(reader, "batch_dims"):
                    raise Unsupported("'{}' gathers with batch_dims != 0".format(reader.name))


def _takes_ref(op):
    definition = tfcompat.op_def(op)
    return definition is not None and any(arg.is_ref for arg in definition.input_arg)


def _attr_int(node, name):
    return node.attr[name].i if name in node.attr else 0


def _resource_readers(handle, consumers):
    """Nodes reading the handle's data output, through Identity chains (the Identity nodes not included)."""
    found, todo, seen = [], [handle], set()
    while todo:
        name = todo.pop()
        for reader, spelled in consumers.get(name, []):
            if names.is_control(spelled) or reader.name in seen:
                continue
            seen.add(reader.name)
            if reader.op == "Identity":
                todo.append(reader.name)
            else:
                found.append(reader)
    return found


def _restore_root(model, by_name):
    meta = model.meta_graph
    if meta is not None and meta.HasField("saver_def") and meta.saver_def.restore_op_name:
        root = node_name(meta.saver_def.restore_op_name)
        return root if root in by_name else None
    roots = [name for name, node in by_name.items() if name.endswith("restore_all") and node.op == "NoOp"]
    # session._run_graph_restore takes the first in graph order
    order = dict((node.name, index) for index, node in enumerate(model.graph_def.node))
    return min(roots, key=lambda name: order[name]) if roots else None


def _checkpoint_keys(model, by_name, consumers, needed):
    """{variable node: (checkpoint key, restored from a slice)} from the restore op the loader runs."""
    root = _restore_root(model, by_name)
    if root is None:
        raise Unsupported("no restore op (saver_def / save/restore_all) to map variables to checkpoint keys")
    restore_nodes = edit.needed_nodes(model.graph_def, [root])
    keys = {}
    for name in restore_nodes:
        reader = by_name[name]
        if reader.op not in RESTORE_OPS:
            continue
        tensor_names, slices = _restore_specs(reader, by_name)
        for index, key in enumerate(tensor_names):
            sliced = bool(slices[index]) if index < len(slices) else False
            for variable in _assigned_variables("{}:{}".format(name, index) if index else name, consumers,
                                                restore_nodes, by_name):
                if variable in keys and keys[variable][0] != key:
                    raise Unsupported("variable '{}' is restored from two keys".format(variable))
                keys[variable] = (key, sliced)
    return keys


def _restore_specs(reader, by_name):
    """(tensor names, shape_and_slices) a Restore* op reads; Unsupported unless they are Consts."""
    def strings(spelled):
        source = by_name.get(node_name(spelled))
        if source is None or source.op != "Const":
            raise Unsupported("restore op '{}' takes its tensor names from a {}".format(
                reader.name, source.op if source is not None else "missing node"))
        values = edit.const_value(source).reshape(-1).tolist()
        return [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
    data = [spelled for spelled in reader.input if not names.is_control(spelled)]
    tensor_names = strings(data[1])
    slices = strings(data[2]) if reader.op in ("RestoreV2", "RestoreSlice") and len(data) > 2 else []
    return tensor_names, slices


def _assigned_variables(tensor, consumers, restore_nodes, by_name):
    """Variables the restore output `tensor` is assigned to (Assign / AssignVariableOp, through Identity)."""
    found, todo = [], [tensor]
    while todo:
        current = todo.pop()
        producer, index = node_name(current), names.output_index(current)
        for reader, spelled in consumers.get(producer, []):
            if names.is_control(spelled) or names.output_index(spelled) != index or reader.name not in restore_nodes:
                continue
            data = [i for i in reader.input if not names.is_control(i)]
            if reader.op == "Identity":
                todo.append(reader.name)
            elif reader.op in ASSIGN_OPS and len(data) > 1 and data[1] == spelled:
                target = node_name(data[0])
                if target in by_name and by_name[target].op in VARIABLE_OPS:
                    found.append(target)
    return found


def _refuse_reassigned(model, by_name, consumers, variables):
    """Init ops the loader runs after the restore (a SavedModel's main_op, table initializers) may assign
    variables: their values are then not the checkpoint's."""
    meta = model.meta_graph
    if meta is None:  # graph + checkpoint: the table initializers are the TABLE_INITIALIZERS collection,
        return        # which a bare GraphDef does not carry
    roots = []
    for key in INIT_COLLECTIONS.get(model.kind, ()):
        if key in meta.collection_def:
            roots.extend(node_name(n) for n in meta.collection_def[key].node_list.value if node_name(n) in by_name)
    if model.kind == m.SAVED_MODEL and "__saved_model_init_op" in meta.signature_def:
        roots.extend(node_name(info.name) for info in meta.signature_def["__saved_model_init_op"].outputs.values()
                     if node_name(info.name) in by_name)
    if not roots:
        return
    for name in edit.needed_nodes(model.graph_def, roots):
        node = by_name[name]
        if node.op in freeze_mod._ASSIGN_TWINS or node.op in RESOURCE_WRITES or node.op.startswith("Scatter"):
            data = [i for i in node.input if not names.is_control(i)]
            if data and node_name(data[0]) in variables:
                raise Unsupported("init op assigns variable '{}' after the restore".format(node_name(data[0])))


def _stored(prefix):
    """{key: (dims, dtype enum or None)} from the checkpoint's index."""
    from migrate import session
    reader = artifacts.open_checkpoint(session._reader_prefix(prefix))
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map() if hasattr(reader, "get_variable_to_dtype_map") else {}
    return dict((key, (list(shape), dtypes[key].as_datatype_enum if key in dtypes else None))
                for key, shape in shapes.items())


def _variable_spec(node):
    """(dtype enum, dims or None) a variable node declares."""
    dtype = node.attr["dtype"].type
    shape = node.attr["shape"].shape if "shape" in node.attr else None
    dims = None if shape is None or shape.unknown_rank else [d.size for d in shape.dim]
    return dtype, dims


def _structure(model, source, needed, by_name, weights):
    """The needed nodes in graph order, variables converted (without values), as TF's converter does."""
    from migrate import session
    from tensorflow.core.framework import graph_pb2
    graph_def = graph_pb2.GraphDef()
    graph_def.versions.CopyFrom(source.versions)
    graph_def.library.CopyFrom(source.library)
    for node in source.node:
        if node.name in needed:
            graph_def.node.add().CopyFrom(node)
    if model.kind != m.SAVED_MODEL:  # what the session path's loaders do to these graphs before importing
        session.normalize_for_import(graph_def)
    handles = dict((name, spec) for name, spec in weights.items() if by_name[name].op == "VarHandleOp")
    resource_of = _resource_origins(graph_def, handles)
    added = []
    for node in graph_def.node:
        if node.name in weights:
            _as_weight_node(node, weights[node.name])
        elif node.op == "Identity" and node.name in resource_of:
            node.attr["T"].type = weights[resource_of[node.name]][1]
            if "_output_shapes" in node.attr:
                del node.attr["_output_shapes"]
        elif node.op in ("ReadVariableOp", "ResourceGather", "ResourceGatherNd") and \
                node_name(node.input[0]) in resource_of:
            added += _convert_read(node)
    for node in added:
        graph_def.node.add().CopyFrom(node)
    return graph_def


def _resource_origins(graph_def, handles):
    """{handle or Identity-of-handle node: the handle it forwards}."""
    origin = dict((name, name) for name in handles)
    changed = True
    while changed:  # Identity chains are short; graph order is usually producer first
        changed = False
        for node in graph_def.node:
            if node.op == "Identity" and node.name not in origin and node.input and \
                    not names.is_control(node.input[0]) and node_name(node.input[0]) in origin:
                origin[node.name] = origin[node_name(node.input[0])]
                changed = True
    return origin


def _as_weight_node(node, spec):
    """VariableV2/VarHandleOp -> Const of the variable's dtype; the value is written when streaming."""
    _, dtype, dims = spec
    name = node.name
    node.Clear()
    node.name = name
    node.op = "Const"
    node.attr["dtype"].type = dtype


def _convert_read(node):
    """ReadVariableOp -> Identity, ResourceGather -> GatherV2 (+ axis Const), ResourceGatherNd -> GatherNd,
    as TF's convert_variables_to_constants (2.x) does; returns nodes to add."""
    from tensorflow.core.framework import node_def_pb2
    original = node_def_pb2.NodeDef()
    original.CopyFrom(node)
    node.Clear()
    node.name = original.name
    added = []
    if original.op == "ReadVariableOp":
        node.op = "Identity"
        node.input.append(original.input[0])
        node.attr["T"].CopyFrom(original.attr["dtype"])
    elif original.op == "ResourceGather":
        axis = node_def_pb2.NodeDef()
        axis.name = original.name + "/axis"
        axis.op = "Const"
        axis.attr["dtype"].CopyFrom(original.attr["Tindices"])
        import numpy as np
        tf = tfcompat.v1()
        axis.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.array(0), dtype=tf.as_dtype(
            original.attr["Tindices"].type)))
        added.append(axis)
        node.op = "GatherV2"
        node.input.extend([original.input[0], original.input[1], axis.name])
        node.attr["Tparams"].CopyFrom(original.attr["dtype"])
        node.attr["Tindices"].CopyFrom(original.attr["Tindices"])
        node.attr["Taxis"].CopyFrom(original.attr["Tindices"])
    else:
        node.op = "GatherNd"
        node.input.extend([original.input[0], original.input[1]])
        node.attr["Tparams"].CopyFrom(original.attr["dtype"])
        node.attr["Tindices"].CopyFrom(original.attr["Tindices"])
    if "_class" in original.attr:
        node.attr["_class"].CopyFrom(original.attr["_class"])
    return added


def _check_size(plan, where):
    tf = tfcompat.v1()
    total = plan.graph_def.ByteSize()
    for _, dtype, dims in plan.weights.values():
        count = 1
        for dim in dims:
            count *= dim
        total += count * max(tf.as_dtype(dtype).size, 1) + 64
    if total > artifacts.PROTOBUF_LIMIT:
        raise BadInput("frozen graph would be {:.2f} GiB, over protobuf's 2 GiB limit".format(total / 2.0 ** 30),
                       where, "use `migrate export` instead: a SavedModel keeps the weights as variables")


# ------------------------------------------------------------------------------------------ writing

def write_frozen(plan, path, text=False):
    """Write the plan's GraphDef to path, each weight read from the checkpoint when its node comes (the next
    one read on a thread meanwhile, see _tensors). Returns the bytes written."""
    from migrate import session
    reader = artifacts.open_checkpoint(session._reader_prefix(plan.checkpoint))
    tail = type(plan.graph_def)()
    tail.versions.CopyFrom(plan.graph_def.versions)
    tail.library.CopyFrom(plan.graph_def.library)
    order = [node.name for node in plan.graph_def.node if node.name in plan.weights]
    planted = io.planted_weight(dict((name, (tfcompat.v1().as_dtype(plan.weights[name][1]).name,
                                             _nbytes(plan.weights[name]))) for name in order)) \
        if io.planted("freeze") else None  # test-only (io.planted)
    tensors = _Tensors(reader, [(plan.weights[name][0], _nbytes(plan.weights[name])) for name in order],
                       plan.checkpoint)
    written = 0
    try:
        with open(path, "w" if text else "wb") as handle:
            for node in plan.graph_def.node:
                if node.name in plan.weights:
                    dtype = plan.weights[node.name][1]
                    value = tensors.next()
                    if node.name == planted:
                        value = io.plant_value(value)
                    written += (_write_text_weight if text else _write_weight)(handle, node, value, dtype)
                    del value
                    tensors.done()
                elif text:
                    written += _write_text_node(handle, node)
                else:
                    payload = node.SerializeToString(deterministic=True)
                    handle.write(_NODE_TAG + _varint(len(payload)))
                    handle.write(payload)
                    written += len(payload)
            if text:
                from google.protobuf import text_format
                handle.write(text_format.MessageToString(tail))
            else:
                handle.write(tail.SerializeToString(deterministic=True))
    finally:
        tensors.close()
    return written


def _nbytes(spec):
    _, dtype, dims = spec
    count = 1
    for dim in dims:
        count *= dim
    return count * max(tfcompat.v1().as_dtype(dtype).size, 1)


READ_AHEAD_BYTES = 128 << 20  # tensors in memory at once (reading + writing); a larger one is read alone


class _Tensors(object):
    """Checkpoint tensors in a given order, read on a thread while the previous one is written (file writes
    release the GIL). At most READ_AHEAD_BYTES are held at once, or one tensor when it alone is larger: the
    peak stays about the largest tensor."""

    def __init__(self, reader, keys, prefix=None):
        import threading
        try:
            import queue
        except ImportError:  # Python 2 spelling never needed; kept for clarity of the dependency
            import Queue as queue
        self.reader, self.keys, self.prefix = reader, keys, prefix
        self.ready = queue.Queue()
        self.condition = threading.Condition()
        self.held, self.sizes, self.stopped = 0, [], False
        self.thread = threading.Thread(target=self._read_all, name="migrate-stream-reader")
        self.thread.daemon = True
        self.thread.start()

    def _read_all(self):
        try:
            for key, size in self.keys:
                with self.condition:
                    while not self.stopped and self.held and self.held + size > READ_AHEAD_BYTES:
                        self.condition.wait()
                    if self.stopped:
                        return
                    self.held += size
                self.ready.put((size, artifacts.read_tensor(self.reader, key, self.prefix), None))
        except BaseException as exc:  # handed to the writer, which raises it
            self.ready.put((0, None, exc))

    def next(self):
        size, value, error = self.ready.get()
        if error is not None:
            raise error
        self.sizes.append(size)
        return value

    def done(self):
        """The last value from next() is written and dropped."""
        with self.condition:
            self.held -= self.sizes.pop(0)
            self.condition.notify()

    def close(self):
        with self.condition:
            self.stopped = True
            self.condition.notify()


_NODE_TAG = b"\x0a"          # GraphDef.node: field 1, wire type 2
_ATTR_TAG = b"\x2a"          # NodeDef.attr: field 5, wire type 2 (a map entry: key 1, value 2)
_VALUE_KEY = b"\x0a\x05value"
_ENTRY_VALUE_TAG = b"\x12"
_ATTR_TENSOR_TAG = b"\x42"   # AttrValue.tensor: field 8, wire type 2
_CONTENT_TAG = b"\x22"       # TensorProto.tensor_content: field 4, wire type 2


def _varint(value):
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _tensor_head(value, dtype):
    """TensorProto with dtype and shape only, serialized."""
    from tensorflow.core.framework import tensor_pb2
    head = tensor_pb2.TensorProto()
    head.dtype = dtype
    head.tensor_shape.SetInParent()
    for size in value.shape:
        head.tensor_shape.dim.add().size = size
    return head.SerializeToString()


def _raw_bytes_ok(value, dtype):
    """True when tensor_content may be the array's own bytes (numbers of the dtype's size, little-endian)."""
    import numpy as np
    value = np.asarray(value)
    tf = tfcompat.v1()
    tf_dtype = tf.as_dtype(dtype)
    if tf_dtype.name in ("string", "resource", "variant") or value.dtype.kind in "OSU":
        return False
    little = value.dtype.byteorder == "<" or (value.dtype.byteorder in ("=", "|") and np.little_endian)
    return little and value.dtype.itemsize == tf_dtype.size


def _write_weight(handle, node, value, dtype):
    """NodeDef `node` (a Const without value) + its value attr, tensor_content straight from the array."""
    import numpy as np
    if not _raw_bytes_ok(value, dtype):
        full = type(node)()
        full.CopyFrom(node)
        tf = tfcompat.v1()
        full.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype=tf.as_dtype(dtype)))
        payload = full.SerializeToString(deterministic=True)
        handle.write(_NODE_TAG + _varint(len(payload)))
        handle.write(payload)
        return len(payload)
    value = np.asarray(value)  # the reader gives numpy scalars for 0-d tensors
    if not value.flags.c_contiguous:
        value = value.copy(order="C")  # (np.ascontiguousarray would make a 0-d value 1-d)
    content = memoryview(value.reshape(-1).view(np.uint8)) if value.size else b""
    head = node.SerializeToString(deterministic=True)
    tensor_head = _tensor_head(value, dtype)
    tensor_len = len(tensor_head) + (1 + len(_varint(value.nbytes)) + value.nbytes if value.nbytes else 0)
    attr_len = 1 + len(_varint(tensor_len)) + tensor_len
    entry_len = len(_VALUE_KEY) + 1 + len(_varint(attr_len)) + attr_len
    node_len = len(head) + 1 + len(_varint(entry_len)) + entry_len
    handle.write(b"".join([_NODE_TAG, _varint(node_len), head, _ATTR_TAG, _varint(entry_len), _VALUE_KEY,
                           _ENTRY_VALUE_TAG, _varint(attr_len), _ATTR_TENSOR_TAG, _varint(tensor_len),
                           tensor_head]))
    if value.nbytes:
        handle.write(_CONTENT_TAG + _varint(value.nbytes))
        handle.write(content)
    return node_len


def _write_text_node(handle, node):
    from google.protobuf import text_format
    body = text_format.MessageToString(node, indent=2)
    handle.write("node {\n" + body + "}\n")
    return len(body)


def _write_text_weight(handle, node, value, dtype):
    full = type(node)()
    full.CopyFrom(node)
    tf = tfcompat.v1()
    full.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype=tf.as_dtype(dtype)))
    return _write_text_node(handle, full)


# ------------------------------------------------------------------------------------------ the result

class StreamedModel(m.Model):
    """A frozen Model whose GraphDef lives in the file the streaming freeze wrote: parsed when first asked
    for (verification), dropped again by release(). `file_path` follows the file when Target.commit moves it."""

    def __init__(self, file_path, text, *args, **kwargs):
        self.file_path = file_path
        self.text = text
        self._graph_def = None
        m.Model.__init__(self, *args, **kwargs)

    @property
    def graph_def(self):
        if self._graph_def is None and self.file_path is not None:
            from tensorflow.core.framework import graph_pb2
            self._graph_def = artifacts.parse_proto(self.file_path, graph_pb2.GraphDef())
        return self._graph_def

    @graph_def.setter
    def graph_def(self, value):
        self._graph_def = value

    def release(self):
        """Forget the parsed GraphDef (the file stays); the next use parses it again."""
        self._graph_def = None

    def derive(self, **changes):
        fields = dict((k, v) for k, v in self.__dict__.items() if k not in ("file_path", "text", "_graph_def"))
        plain = m.Model(fields.pop("kind"), fields.pop("path"), self.graph_def, **fields)
        return plain.derive(**changes)


def streamed_from(model, file_path, text=False):
    """The Model `model` is, its GraphDef left to the file it was written to (parsed again only if asked)."""
    fields = dict((k, v) for k, v in model.__dict__.items()
                  if k not in ("kind", "path", "graph_def", "file_path", "text", "_graph_def"))
    return StreamedModel(file_path, text, model.kind, model.path, None, **fields)


class Target(object):
    """Where a frozen graph is written: a temp file beside `output`, renamed to it by commit(), removed by
    close() otherwise (also on errors and SIGTERM, like io.atomic_file). Use as a context manager:

        with stream.Target(output) as target:
            frozen, record = freeze.freeze(model, ..., stream_to=target)
            ... verify ...
            if ok:
                target.commit(frozen)      # streamed: rename; in memory: write frozen.graph_def
    """

    def __init__(self, output, replace=True):
        self.output = output
        self.replace = replace  # False (no --force): never replace a file that appeared at output meanwhile
        self.text = output.endswith(TEXT_SUFFIXES)
        self.path = io.temp_file_beside(output)
        self.committed = False
        self._unwind = None

    def __enter__(self):
        self._unwind = io._terminate_unwinds()
        self._unwind.__enter__()
        return self

    def __exit__(self, kind, value, trace):
        try:
            self.close()
        finally:
            if self._unwind is not None:
                self._unwind.__exit__(kind, value, trace)
        if isinstance(value, (IOError, OSError)):  # disk full, permissions: the one line io.atomic_file gives
            raise io._write_error(value, self.output)
        return False

    def commit(self, frozen=None):
        """Put the graph at `output`: the file at `path` (streamed, or written with write_graph_def; frozen
        None or a StreamedModel of it) is renamed into place; an in-memory GraphDef (the session path ran)
        is written by io.write_graph, and the unused temp file removed."""
        if frozen is None:
            io.rename_into_place(self.path, self.output, self.replace)
        elif isinstance(frozen, StreamedModel) and frozen.file_path == self.path:
            io.rename_into_place(self.path, self.output, self.replace)
            frozen.file_path = self.output
        else:
            io.write_graph(frozen.graph_def, self.output, self.replace)
            self.close()
        self.committed = True

    def close(self):
        if not self.committed and os.path.exists(self.path):
            os.remove(self.path)


# ------------------------------------------------------------------------------------------ verification

FED_CONST_BYTES = 1 << 20  # Consts above this are fed when a streamed file is read back for verification


def is_binary_graph_file(path):
    """True for a GraphDef file runners.run_file can read (binary; text files are parsed whole)."""
    return bool(path) and os.path.isfile(path) and not path.endswith(TEXT_SUFFIXES) and \
        not artifacts._looks_like_text(open(path, "rb").read(256))


def write_graph_def(graph_def, path, text=None):
    """io.write_graph for a GraphDef in memory, binary files written node by node: the serialized graph
    never exists as one bytes object (1 GB more for a 1 GB graph). Attrs equal to their op's default are
    dropped first, as io.write_graph does. text (default: by the path's suffix): io.write_graph's way."""
    if text if text is not None else path.endswith(TEXT_SUFFIXES):
        from google.protobuf import text_format
        edit.strip_default_attrs(graph_def)
        with open(path, "w") as handle:
            handle.write(text_format.MessageToString(graph_def))
        return
    edit.strip_default_attrs(graph_def)
    tail = type(graph_def)()
    tail.versions.CopyFrom(graph_def.versions)
    tail.library.CopyFrom(graph_def.library)
    with open(path, "wb") as handle:
        for node in graph_def.node:
            payload = node.SerializeToString(deterministic=True)
            handle.write(_NODE_TAG + _varint(len(payload)))
            handle.write(payload)
        handle.write(tail.SerializeToString(deterministic=True))


def check_importable(where, graph_def=None, path=None):
    """The cheap check every graph written unverified gets: TF's import_graph_def into a fresh Graph, no
    session run. Large Consts are imported as Placeholders of their dtype/shape (a file is read without its
    weights, a GraphDef in memory is not copied with them). BadInput naming the node TF refused."""
    from migrate import session as session_mod
    if path is not None:
        if path.endswith(TEXT_SUFFIXES):
            structure = split_weights(artifacts.read_graph_def(path), values=False)[0]
        else:
            structure, _ = read_back(path, values=False)
    else:
        structure, _ = split_weights(graph_def, values=False)
    v1 = tfcompat.v1()
    try:
        with v1.Graph().as_default():
            v1.import_graph_def(structure, name="")
    except Exception as exc:
        if not isinstance(exc, (tfcompat.tf().errors.OpError, ValueError, KeyError, TypeError)):
            raise
        raise BadInput("the graph to write does not import into TF {}: {}".format(
            tfcompat.version_string(), session_mod.tf_error_line(exc)), where,
            "nothing was written; run without --no-verify to see more, or report it")


def read_back(path, fed_bytes=FED_CONST_BYTES, values=True):
    """(GraphDef with every Const above fed_bytes turned into a Placeholder, {tensor: value of that Const})
    from a binary GraphDef file, read one field at a time. A large Const's tensor_content is read from the
    file straight into a 64-byte aligned array (TF feeds such arrays without copying them)."""
    from tensorflow.core.framework import graph_pb2, node_def_pb2
    graph_def = graph_pb2.GraphDef()
    rest = bytearray()
    weights = {}
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        while handle.tell() < size:
            key, head = _read_varint(handle, path)
            number, wire = key >> 3, key & 7
            if wire == 0:
                _, value_bytes = _read_varint(handle, path)
                rest += head + value_bytes
                continue
            if wire != 2:
                raise BadInput("unexpected wire type {} in a GraphDef".format(wire), path, "freeze again")
            length, length_bytes = _read_varint(handle, path)
            start = handle.tell()
            if start + length > size:
                raise BadInput("frozen graph file is truncated", path, "freeze again")
            weight = _read_weight(handle, start, length, values) if number == 1 and length > fed_bytes else None
            if weight is not None:
                name, dtype, value = weight
                node = graph_def.node.add()
                node.name, node.op = name, "Placeholder"
                node.attr["dtype"].type = dtype
                node.attr["shape"].shape.CopyFrom(tfcompat.v1().TensorShape(value.shape).as_proto())
                weights[tensor_name(name)] = value
                continue
            handle.seek(start)
            payload = handle.read(length)
            if number == 1:
                graph_def.node.extend([node_def_pb2.NodeDef.FromString(payload)])
            else:
                rest += head + length_bytes + payload
    graph_def.MergeFromString(bytes(rest))
    return graph_def, weights


def split_weights(graph_def, fed_bytes=FED_CONST_BYTES, values=True):
    """read_back for a GraphDef in memory: (a new GraphDef with every Const whose tensor_content is above
    fed_bytes turned into a Placeholder, {tensor: value of that Const}). The input is not changed; small nodes
    are copied into the new GraphDef, each large value is decoded once (values=False: not at all, {})."""
    from tensorflow.core.framework import graph_pb2
    structure = graph_pb2.GraphDef()
    weights = {}
    for node in graph_def.node:
        if node.op == "Const" and len(node.attr["value"].tensor.tensor_content) > fed_bytes:
            value = edit.const_value(node) if values else None
            placeholder = structure.node.add()
            placeholder.name, placeholder.op = node.name, "Placeholder"
            placeholder.attr["dtype"].type = node.attr["dtype"].type
            placeholder.attr["shape"].shape.CopyFrom(node.attr["value"].tensor.tensor_shape)
            if values:
                weights[tensor_name(node.name)] = value
        else:
            structure.node.add().CopyFrom(node)
    structure.library.CopyFrom(graph_def.library)
    structure.versions.CopyFrom(graph_def.versions)
    return structure, weights


def _read_weight(handle, start, length, values=True, head_size=1 << 16):
    """(name, dtype enum, array) for the Const NodeDef of `length` bytes at `start`, its tensor_content read
    into an aligned array (values=False: a zero-stride stand-in of that shape, nothing read); None (file
    position undefined) when the node is not laid out that way."""
    import numpy as np
    handle.seek(start)
    head = handle.read(min(length, head_size))
    layout = _const_layout(head)
    if layout is None:
        return None
    name, dtype, dims, offset, count = layout
    np_dtype = np.dtype(tfcompat.v1().as_dtype(dtype).as_numpy_dtype)
    elements = 1
    for dim in dims:
        elements *= dim
    if offset + count > length or np_dtype.kind in "OSUV" or elements * np_dtype.itemsize != count:
        return None
    if not values:
        handle.seek(start + length)
        return name, dtype, np.lib.stride_tricks.as_strided(np.zeros(1, np_dtype), shape=dims,
                                                            strides=[0] * len(dims))
    raw = np.empty(count + 64, np.uint8)
    shift = (-raw.ctypes.data) % 64
    buffer = raw[shift:shift + count]
    have = min(len(head) - offset, count)
    buffer[:have] = np.frombuffer(head, np.uint8, have, offset)
    if count > have:
        handle.seek(start + offset + have)
        if handle.readinto(memoryview(buffer)[have:]) != count - have:
            return None
    handle.seek(start + length)
    return name, dtype, buffer.view(np_dtype).reshape(dims)


def _const_layout(head):
    """(name, dtype enum, dims, offset, length of tensor_content) of a serialized Const NodeDef whose name,
    op and value tensor's dtype/shape come before the content within `head` (its first bytes); else None."""
    name = op = None
    position, end = 0, len(head)
    while position < end:
        key, position = _varint_at(head, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, position = _varint_at(head, position)
            continue
        if wire != 2:
            return None
        length, position = _varint_at(head, position)
        if number == 1:
            name = bytes(head[position:position + length]).decode("utf-8")
        elif number == 2:
            op = bytes(head[position:position + length]).decode("utf-8")
        elif number == 5 and head[position:position + 7] == b"\x0a\x05value":
            found = _tensor_content(head, position + 7)
            if found is None or name is None or op != "Const":
                return None
            return (name,) + found
        position += length
        if position > end:
            return None
    return None


def _tensor_content(head, position):
    """Inside the value entry of NodeDef.attr (after its key): (dtype, dims, offset, length) of the content."""
    if head[position:position + 1] != b"\x12":       # entry.value: AttrValue
        return None
    _, position = _varint_at(head, position + 1)
    if head[position:position + 1] != b"\x42":       # AttrValue.tensor: TensorProto
        return None
    _, position = _varint_at(head, position + 1)
    dtype, dims = None, None
    while position < len(head):
        key, position = _varint_at(head, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint_at(head, position)
            if number == 1:
                dtype = value
            continue
        if wire != 2:
            return None
        length, position = _varint_at(head, position)
        if number == 2:
            dims = _shape_dims(head[position:position + length])
        elif number == 4:
            if dtype is None or dims is None:
                return None
            return dtype, dims, position, length
        position += length
    return None


def _shape_dims(data):
    """TensorShapeProto bytes -> [sizes] (None when the rank is unknown)."""
    dims, position = [], 0
    while position < len(data):
        key, position = _varint_at(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint_at(data, position)
            if number == 3 and value:  # unknown_rank
                return None
            continue
        length, position = _varint_at(data, position)
        if number == 2:  # Dim {size = 1, name = 2}
            size, inner = 0, position
            while inner < position + length:
                dim_key, inner = _varint_at(data, inner)
                if dim_key & 7 == 0:
                    value, inner = _varint_at(data, inner)
                    if dim_key >> 3 == 1:
                        size = value
                else:
                    skip, inner = _varint_at(data, inner)
                    inner += skip
            dims.append(size)
        position += length
    return dims


def _varint_at(data, position):
    result, shift = 0, 0
    while True:
        if position >= len(data):
            return 0, len(data) + 1  # past the end: callers stop
        byte = data[position]
        byte = byte if isinstance(byte, int) else ord(byte)
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _read_varint(handle, path):
    result, shift, raw = 0, 0, bytearray()
    while True:
        byte = handle.read(1)
        if not byte:
            raise BadInput("frozen graph file is truncated", path, "freeze again")
        raw += byte
        value = bytearray(byte)[0]
        result |= (value & 0x7F) << shift
        if not value & 0x80:
            return result, bytes(raw)
        shift += 7
