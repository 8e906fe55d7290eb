"""Planning a streaming freeze: the frozen graph's structure (the session path's rewrites, made on the GraphDef),
and for each variable its checkpoint key, read from the restore op the loader would run. Anything the plan
cannot prove it handles the way the session path would raises Unsupported (the caller falls back)."""
from migrate import artifacts, opsets, session, tfcompat
from migrate import model as m
from migrate.errors import BadInput
from migrate.freezing import rewrites
from migrate.freezing.outputs import record_io, resolve_outputs
from migrate.graph import edit, names
from migrate.graph.names import node_name
from migrate.graph.ops import table_handles


# What may read a converted resource handle (directly or through Identity): TF's converter handles these.
RESOURCE_READERS = opsets.RESOURCE_READ_OPS | opsets.RESOURCE_WRITE_OPS


# What the session path's loaders run after the restore (session.py): table initializers for checkpoints,
# a SavedModel's main op (tf.saved_model.loader.load).
INIT_COLLECTIONS = {m.CHECKPOINT: (opsets.TABLE_INIT_COLLECTION,), m.SESSION_BUNDLE: (opsets.TABLE_INIT_COLLECTION,),
                    m.GRAPH_WITH_CHECKPOINT: (opsets.TABLE_INIT_COLLECTION,),
                    m.SAVED_MODEL: opsets.SAVED_MODEL_INIT_COLLECTIONS}


class Unsupported(Exception):
    """This model needs the session path; str() says why (one line)."""


class Plan(object):
    """The frozen graph's structure (weight nodes hold no value yet) and where each weight comes from.

    weights  {node name: (checkpoint key, dtype enum, dims)}
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)


def plan_freeze(model, outputs=None, signature=None, set_values=None, allow=None, deny=None, clear_devices=True):
    """The Plan, or Unsupported. Reads the checkpoint's index only (shapes and dtypes), never its data."""
    if model.kind == m.FROZEN_GRAPH:
        raise Unsupported("already a frozen graph")
    if allow or deny:
        raise Unsupported("--allow/--deny keep some variables")
    if not model.checkpoint:
        raise Unsupported("no checkpoint holds the weights")
    output_tensors, how = resolve_outputs(model, outputs, signature)
    switches = rewrites.switch_values(model.graph_def, rewrites.parse_set_values(set_values))
    source = model.graph_def
    session.check_ops_known(source, model.path)
    by_name = edit.node_map(source)
    consumers = _consumers(source)
    needed = edit.needed_nodes(source, output_tensors)
    _refuse_unhandled(source, needed, consumers, by_name)
    variables = sorted(name for name in needed if by_name[name].op in opsets.VARIABLE_OPS)
    keys = _checkpoint_keys(model, by_name, consumers, needed)
    _refuse_reassigned(model, by_name, consumers, set(variables))
    stored = _stored(model.checkpoint)
    weights = {}
    for name in variables:
        if name not in keys:
            raise Unsupported("variable '{}' is not restored by the graph's restore op".format(name))
        if by_name[name].op not in opsets.FREEZABLE_VARIABLE_OPS:  # TF's converter keeps it a variable
            raise Unsupported("variable '{}' is a {}".format(name, by_name[name].op))
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
    rewrites.apply_switches(graph_def, dict((k, v) for k, v in switches.items() if k in present))
    rewritten = rewrites.rewrite_stateful(graph_def)
    if clear_devices:
        rewrites.strip_devices(graph_def)
    edit.drop_unreachable(graph_def, [node_name(t) for t in output_tensors])
    if model.meta_graph is not None:  # attrs this TF lacks, at the writer's default (Cast.Truncate from 1.15 in 1.7):
        session.strip_unknown_defaults(graph_def, model.meta_graph.meta_info_def.stripped_op_list)  # as on import
    edit.strip_default_attrs(graph_def)  # what io.write_graph does to the session path's graph
    record_io(graph_def, model, output_tensors, how)
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
    for tensor, (_, _, node) in sorted(table_handles(graph_def).items()):
        if node in needed:
            raise Unsupported("lookup table '{}' ({}) is needed".format(tensor, by_name[node].op))
    for node in graph_def.node:
        if node.name not in needed:
            continue
        if node.op in opsets.TABLE_OPS or "Table" in node.op:
            raise Unsupported("lookup table op '{}' ({}) is needed".format(node.name, node.op))
        if node.op not in opsets.STREAMABLE_REF_OPS and _takes_ref(node.op):
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
    root = opsets.restore_root(model.graph_def, model.meta_graph)
    return root if root in by_name else None


def _checkpoint_keys(model, by_name, consumers, needed):
    """{variable node: (checkpoint key, restored from a slice)} from the restore op the loader runs."""
    root = _restore_root(model, by_name)
    if root is None:
        raise Unsupported("no restore op (saver_def / save/restore_all) to map variables to checkpoint keys")
    restore_nodes = edit.needed_nodes(model.graph_def, [root])
    keys = {}
    for name in restore_nodes:
        reader = by_name[name]
        if reader.op not in opsets.CHECKPOINT_READ_OPS:
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
    slices = strings(data[2]) if reader.op in opsets.SLICED_READ_OPS and len(data) > 2 else []
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
            elif reader.op in opsets.RESTORE_ASSIGN_OPS and len(data) > 1 and data[1] == spelled:
                target = node_name(data[0])
                if target in by_name and by_name[target].op in opsets.VARIABLE_OPS:
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
    if model.kind == m.SAVED_MODEL and opsets.INIT_SIGNATURE in meta.signature_def:
        roots.extend(node_name(info.name) for info in meta.signature_def[opsets.INIT_SIGNATURE].outputs.values()
                     if node_name(info.name) in by_name)
    if not roots:
        return
    for name in edit.needed_nodes(model.graph_def, roots):
        node = by_name[name]
        if node.op in opsets.ASSIGN_TWINS or node.op in opsets.RESOURCE_WRITE_OPS or node.op.startswith("Scatter"):
            data = [i for i in node.input if not names.is_control(i)]
            if data and node_name(data[0]) in variables:
                raise Unsupported("init op assigns variable '{}' after the restore".format(node_name(data[0])))


def _stored(prefix):
    """{key: (dims, dtype enum or None)} from the checkpoint's index."""
    reader = artifacts.open_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = tfcompat.checkpoint_dtypes(reader)
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
        elif node.op in opsets.RESOURCE_READ_OPS and \
                node_name(node.input[0]) in resource_of:
            added += rewrites.convert_read(node)
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


def check_size(plan, where):
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
