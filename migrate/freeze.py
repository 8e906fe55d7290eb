"""Freeze: restore a model in its own session, turn the variables its outputs need into constants,
drop everything training-only, and keep tables working.

Steps (each noted in the FreezeRecord):
  outputs   --outputs, else the signature, else ranked forward sinks (ambiguity is an error that lists them)
  restore   session.Restored: meta graph / SavedModel / graph + checkpoint, tables initialized
  switches  train/infer PlaceholderWithDefault (is_training, keras_learning_phase) -> Const; --set overrides
  tables    contents read from the live tables, re-initialized from constants by node `migrate_init_tables`
  convert   TF's convert_variables_to_constants (ref + resource variables, pruned to the outputs)
  rewrite   what would not import frozen: Assign*/Ref* ops left reachable become their value-semantics twins
"""
import difflib
import re
import time
from collections import Counter, namedtuple

from migrate import artifacts, opsets, outputs as output_discovery, tfcompat
from migrate import model as m
from migrate.errors import BadInput
from migrate.graph import edit
from migrate.graph.names import data_input, node_name, output_index, tensor_name
from migrate.opsets import TABLE_INIT_NODE
from migrate.session import Restored, tf_error_line

FreezeRecord = namedtuple("FreezeRecord", ["outputs", "how_outputs", "variables", "switches", "tables",
                                           "rewritten", "nodes_before", "nodes_after", "seconds", "notes"])

# PlaceholderWithDefault nodes that switch between training and inference behaviour.
TRAIN_SWITCH = re.compile(r"(^|/)(is_training|training|is_train|train_phase|phase_train|keras_learning_phase|"
                          r"learning_phase|mode)(_\d+)?$", re.IGNORECASE)



# ------------------------------------------------------------------------------------------ outputs

def resolve_outputs(model, requested=None, signature=None):
    """(tensor names, how) for the outputs to keep."""
    if requested:
        known = set(node.name for node in model.graph_def.node)  # names only: a dict of 1M NodeDefs costs ~2 s
        tensors = [_checked_tensor(name, known, model.path) for name in requested]
        check_output_indices(model.graph_def, tensors, model.path)
        return tensors, _how_requested(model, tensors)
    if signature:
        sig = artifacts.choose_signature(model, signature)
        return sorted(sig.outputs.values()), "signature " + signature
    if model.kind == m.FROZEN_GRAPH and model.outputs and any(note.startswith(RECORDED_NOTE)
                                                               for note in model.provenance):
        return list(model.outputs), "recorded in the graph"
    if len(model.signatures) == 1 or "serving_default" in model.signatures:
        name = "serving_default" if "serving_default" in model.signatures else list(model.signatures)[0]
        if model.signatures[name].outputs:
            return sorted(model.signatures[name].outputs.values()), "signature " + name
    chosen, ranked = output_discovery.infer_outputs(model.graph_def)
    if chosen:
        return [tensor_name(name) for name in chosen], output_discovery.how_inferred(model.graph_def, chosen)
    listing = ", ".join("{} [{}; {}]".format(c.name, c.op, c.why) for c in ranked[:8]) or "none"
    raise BadInput("cannot tell the outputs apart; candidates, best first: " + listing, model.path,
                   "pass --outputs NAME[,NAME]")


def _how_requested(model, tensors):
    """'--outputs', or the signature(s) whose outputs these are all of (convert passes them on)."""
    names = sorted(name for name, sig in model.signatures.items() if sig.outputs)
    for name in names:
        if set(tensors) == set(model.signatures[name].outputs.values()):
            return "signature " + name
    if len(names) > 1 and set(tensors) == set(t for name in names for t in model.signatures[name].outputs.values()):
        return "signatures " + ", ".join(names)
    return "--outputs"


RECORDED_NOTE = "outputs recorded in the graph: "


def record_io(graph_def, model, outputs, how):
    """Stamp the inputs and outputs into a graph migrate writes (outputs.record): the outputs, and as inputs
    the signature's inputs when the outputs came from a signature, else the placeholders left in the graph."""
    inputs = []
    if how.startswith("signature "):
        sig = model.signatures.get(how[len("signature "):])
        inputs = sorted(sig.inputs.values()) if sig is not None else []
    if not inputs:
        inputs = [tensor_name(node.name) for node in graph_def.node if node.op == "Placeholder"]
    return output_discovery.record(graph_def, inputs, outputs)


def _checked_tensor(name, known, where):
    node = node_name(name)
    if node not in known:
        close = difflib.get_close_matches(node, list(known), n=5, cutoff=0.5)
        hint = "did you mean: {}?".format(", ".join(close)) if close else "run `migrate inspect` to list nodes"
        raise BadInput("no node '{}' in the graph (from --outputs '{}')".format(node, name), where, hint)
    return tensor_name(name)


def check_output_indices(graph_def, tensors, where):
    """BadInput for a tensor `y:N` whose node has no output N (op known to this TF)."""
    wanted = dict((node_name(t), t) for t in tensors if not t.endswith(":0"))
    if not wanted:
        return
    for node in graph_def.node:
        if node.name in wanted:
            count = artifacts.output_count(node)
            index = int(wanted[node.name].rpartition(":")[2])
            if count is not None and index >= count:
                raise BadInput("--outputs '{}': node '{}' ({}) has {} output(s), numbered from 0".format(
                    wanted[node.name], node.name, node.op, count), where,
                    "use {}".format(" or ".join("{}:{}".format(node.name, i) for i in range(min(count, 3)))
                                    if count else "another node"))


# ------------------------------------------------------------------------------------------ switches

def parse_set_values(pairs):
    """['is_training=false', 'rate=0.5'] -> {'is_training': False, 'rate': 0.5}."""
    values = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise BadInput("--set takes name=value, got '{}'".format(pair), None, "e.g. --set is_training=false")
        name, raw = pair.split("=", 1)
        values[node_name(name.strip())] = _parse_scalar(raw.strip())
    return values


def _parse_scalar(raw):
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def switch_values(graph_def, set_values):
    """{node: value} for train/infer switches resolved to inference, plus every --set."""
    values = {}
    known = dict((node.name, node) for node in graph_def.node)
    for name, value in set_values.items():
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=5, cutoff=0.5)
            raise BadInput("--set names no node '{}'".format(name), None,
                           "did you mean: {}?".format(", ".join(close)) if close else "check the node name")
        _check_set_value(known[name], value)
        values[name] = value
    for node in graph_def.node:
        if node.name not in values and TRAIN_SWITCH.search(node.name) and _is_switch_placeholder(node):
            values[node.name] = False if node.attr["dtype"].type == tfcompat.tf().bool.as_datatype_enum else 0
    return values


def _is_switch_placeholder(node):
    """A PlaceholderWithDefault, or a plain bool scalar Placeholder (older Keras' keras_learning_phase,
    hand-made is_training flags): named like a train/infer switch, it is one."""
    if node.op == "PlaceholderWithDefault":
        return True
    if node.op != "Placeholder" or "shape" not in node.attr:  # reading a missing map key would add it
        return False
    shape = node.attr["shape"].shape
    return node.attr["dtype"].type == tfcompat.tf().bool.as_datatype_enum and not shape.unknown_rank and \
        len(shape.dim) == 0


def _check_set_value(node, value):
    """BadInput when `value` (from --set) is not a value of the node's dtype (hello for a float, 0.5 for an
    int)."""
    if "dtype" not in node.attr:
        return
    dtype = tfcompat.tf().as_dtype(node.attr["dtype"].type)
    try:
        array = _as_array(value, dtype)
        fits = array.shape == () and (dtype.is_bool or dtype == tfcompat.tf().string or array.item() == value)
    except (ValueError, TypeError, OverflowError):
        fits = False
    if not fits:
        raise BadInput("'{}={}': node '{}' takes a {} scalar, not {!r}".format(node.name, value, node.name,
                                                                              dtype.name, value), "--set",
                       "e.g. --set {}={}".format(node.name, "false" if dtype.is_bool else
                                                 "0" if dtype.is_integer else "0.5"))


def apply_switches(graph_def, values):
    """Turn each switch (PlaceholderWithDefault or Placeholder) into a Const of its value."""
    tf = tfcompat.tf()
    for node in graph_def.node:
        if node.name in values:
            dtype = tf.as_dtype(node.attr["dtype"].type)
            edit.make_const(node, _as_array(values[node.name], dtype), dtype)


def _as_array(value, dtype):
    import numpy as np
    return np.asarray(value, dtype=dtype.as_numpy_dtype)


# ------------------------------------------------------------------------------------------ tables

def _export_tables(restored, needed, graph_def):
    """{table handle: ((keys, values), key dtype, value dtype)} of the initialized tables the outputs use:
    HashTable(V2) nodes, and tables created inside functions (their handle is a call's output)."""
    from migrate.graph.ops import table_handles
    tf = tfcompat.tf()
    contents = {}
    for handle, (key_enum, value_enum, node) in sorted(table_handles(graph_def).items()):
        if node not in needed:
            continue
        key_dtype, value_dtype = tf.as_dtype(key_enum), tf.as_dtype(value_enum)
        tensor = restored.graph.get_tensor_by_name(handle)
        contents[handle] = (_table_contents(restored, tensor, key_dtype, value_dtype), key_dtype, value_dtype)
    return contents


def _table_contents(restored, handle, key_dtype, value_dtype):
    """Ask the live table for its contents; TF < 1.8 cannot export static tables, so there we read the
    vocabulary file its initializer names (the index_table_from_file layout: line -> line number)."""
    with restored.graph.as_default():
        export = tfcompat.export_lookup_table(handle, key_dtype, value_dtype)
    try:
        return restored.session.run(list(export))
    except tfcompat.tf().errors.UnimplementedError:
        return _vocabulary_file_contents(restored, handle.op, key_dtype, value_dtype)


def _vocabulary_file_contents(restored, table, key_dtype, value_dtype):
    import numpy as np
    inits = [op for op in restored.graph.get_operations() if op.type.startswith("InitializeTableFromTextFile")
             and op.inputs[0].op is table]
    if not inits or inits[0].get_attr("key_index") != -2 or inits[0].get_attr("value_index") != -1:
        raise BadInput("lookup table '{}' cannot be exported by TF {} and is not a plain vocabulary file "
                       "table".format(table.name, tfcompat.version_string()), restored.model.path,
                       "freeze with TF >= 1.8")
    init = inits[0]
    # SavedModel loaders feed asset tensors with the file in assets/ only while the init op runs.
    path = restored.model.assets.get(init.inputs[1].name) or restored.session.run(init.inputs[1])
    path = path.decode("utf-8") if isinstance(path, bytes) else path
    with open(path, "rb") as handle:
        lines = handle.read().decode("utf-8").split("\n")  # one entry per line (delimiter splits columns)
    if lines and lines[-1] == "":
        lines.pop()
    size = init.get_attr("vocab_size")
    lines = lines[:size] if size and size > 0 else lines
    keys = np.array([line.encode("utf-8") for line in lines], dtype=object)
    return [keys, np.arange(len(lines), dtype=value_dtype.as_numpy_dtype)]


def _import_tables(graph_def, contents):
    """Constants + an initializer per table, all behind one NoOp `migrate_init_tables`."""
    imports = []
    for table, ((keys, values), key_dtype, value_dtype) in sorted(contents.items()):
        ref = any(n.name == node_name(table) and n.op == "HashTable" for n in graph_def.node)
        prefix = node_name(table) if output_index(table) == 0 else "{}_{}".format(node_name(table),
                                                                                  output_index(table))
        keys_name = edit.unique_name(graph_def, prefix + "/migrate_keys")
        edit.add_const(graph_def, keys_name, keys, key_dtype)
        values_name = edit.unique_name(graph_def, prefix + "/migrate_values")
        edit.add_const(graph_def, values_name, values, value_dtype)
        import_name = edit.unique_name(graph_def, prefix + "/migrate_init")
        node = graph_def.node.add()
        node.name = import_name
        # The KeyValueTensorInitializer op: every TF since 1.0 has it and it works on static hash tables,
        # which LookupTableImport does not (TF < 1.8). A table made inside a function (its handle a call's
        # output) is initialized the same way, from the graph, on the handle the call returns.
        node.op = "InitializeTable" if ref else "InitializeTableV2"
        node.input.extend([data_input(table), keys_name, values_name])
        node.attr["Tkey"].type = key_dtype.as_datatype_enum
        node.attr["Tval"].type = value_dtype.as_datatype_enum
        imports.append(node.name)
    if imports:
        init = graph_def.node.add()
        init.name = TABLE_INIT_NODE
        init.op = "NoOp"
        init.input.extend("^" + name for name in imports)
    return imports


# ------------------------------------------------------------------------------------------ rewrites

def rewrite_stateful(graph_def):
    """Make ops that need mutable inputs valid on constants. Returns Counter of 'Old->New'."""
    changed = Counter()
    _rewrite_resource_reads(graph_def)
    consts = set(node.name for node in graph_def.node if node.op == "Const")
    for node in graph_def.node:
        if node.op in opsets.IS_INITIALIZED_OPS and node.input and node_name(node.input[0]) in consts:
            changed["{}->Const(True)".format(node.op)] += 1
            controls = [name for name in node.input if name.startswith("^")]
            edit.make_const(node, _as_array(True, tfcompat.tf().bool), tfcompat.tf().bool)
            node.input.extend(controls)
        elif node.op in opsets.REF_TWINS:
            changed["{}->{}".format(node.op, opsets.REF_TWINS[node.op])] += 1
            node.op = opsets.REF_TWINS[node.op]
        elif node.op in opsets.ASSIGN_TWINS:
            changed[_assign_to_value(node)] += 1
        elif node.op in opsets.RESOURCE_WRITE_OPS:
            changed["{}->NoOp".format(node.op)] += 1
            data = [name for name in node.input if not name.startswith("^")]
            controls = [name for name in node.input if name.startswith("^")]
            del node.input[:]
            node.input.extend(controls + ["^" + node_name(name) for name in data])
            node.op = "NoOp"
            node.attr.clear()
    return changed


def _rewrite_resource_reads(graph_def):
    """Resource reads left on a constant (TF <= 1.13's convert_variables_to_constants keeps ResourceGather):
    the rewrite TF 2.x's own conversion does, ResourceGather -> GatherV2 + axis Const, ReadVariableOp ->
    Identity. Part of turning variables into constants, so not counted among the rewrites."""
    from migrate import stream
    consts = set(node.name for node in graph_def.node if node.op == "Const")
    added = []
    for node in graph_def.node:
        if node.op in opsets.RESOURCE_READ_OPS and \
                node_name(node.input[0]) in consts:
            added.extend(stream.convert_read(node))
    for node in added:
        graph_def.node.add().CopyFrom(node)


def _assign_to_value(node):
    """Assign -> Identity(value); AssignAdd/Sub -> Add/Sub(ref, value): the value the update would produce."""
    old = node.op
    data = [name for name in node.input if not name.startswith("^")]
    controls = [name for name in node.input if name.startswith("^")]
    dtype = node.attr["T"].type
    node.attr.clear()
    node.attr["T"].type = dtype
    del node.input[:]
    if old == "Assign":
        node.op = "Identity"
        node.input.extend([data[1]] + controls + ["^" + node_name(data[0])])
    else:
        node.op = opsets.ASSIGN_TWINS[old]
        node.input.extend(data[:2] + controls)
    return "{}->{}".format(old, node.op)


def strip_devices(graph_def):
    for node in graph_def.node:
        node.device = ""
        if "_class" in node.attr:  # colocation with nodes that may be gone after pruning
            del node.attr["_class"]


# ------------------------------------------------------------------------------------------ freeze

def freeze(model, outputs=None, signature=None, set_values=None, allow=None, deny=None, clear_devices=True,
           stream_to=None):
    """(frozen Model, FreezeRecord). The input model is not modified.

    stream_to (a path or stream.Target): write the frozen graph there by streaming weights from the checkpoint
    one tensor at a time (stream.py) when that path applies; the Model returned then reads its GraphDef from
    that file. Otherwise (a note says why) the session path below runs and nothing is written."""
    # --- streaming hook (migrate/stream.py) ------------------------------------------------------------------
    fallback = None
    if stream_to is not None:
        from migrate import stream
        try:
            return stream.freeze_to_file(model, stream_to, outputs, signature, set_values, allow, deny,
                                         clear_devices)
        except stream.Unsupported as why:
            fallback = "in-memory freeze: streaming does not apply ({})".format(why)
    # --- end of streaming hook -------------------------------------------------------------------------------
    started = time.time()
    if model.kind == m.FROZEN_GRAPH:
        raise BadInput("already a frozen graph (no variables)", model.path, "use `migrate optimize` or `export`")
    output_tensors, how = resolve_outputs(model, outputs, signature)
    switches = switch_values(model.graph_def, parse_set_values(set_values))
    with Restored(model) as restored:
        graph_def = restored.graph.as_graph_def()
        needed = edit.needed_nodes(graph_def, output_tensors)
        tables = _export_tables(restored, needed, graph_def)
        frozen = _convert(restored, graph_def, [node_name(t) for t in output_tensors] +
                          sorted(set(node_name(t) for t in tables)), allow, deny)
    variables = sum(1 for n in graph_def.node if n.op in opsets.FREEZABLE_VARIABLE_OPS and
                    n.name in needed)
    apply_switches(frozen, dict((k, v) for k, v in switches.items() if k in set(n.name for n in frozen.node)))
    rewritten = rewrite_stateful(frozen)
    imported = _import_tables(frozen, tables)
    if clear_devices:
        strip_devices(frozen)
    edit.drop_unreachable(frozen, [node_name(t) for t in output_tensors] + ([TABLE_INIT_NODE] if imported else []))
    record_io(frozen, model, output_tensors, how)
    _check_size(frozen, model.path)
    inputs = sorted(tensor_name(n.name) for n in frozen.node if n.op == "Placeholder")
    notes = list(model.provenance) + ([fallback] if fallback else [])  # streaming hook: why it did not apply
    if imported:
        notes.append("lookup tables {} hold their contents as constants; run node '{}' once before inference "
                     "(migrate verify/export do it)".format(", ".join(_table_names(tables)), TABLE_INIT_NODE))
    result = model.derive(kind=m.FROZEN_GRAPH, graph_def=frozen, checkpoint=None, meta_graph=None,
                          inputs=inputs, outputs=output_tensors, saved_model_dir=None,
                          note="froze {} variables from {}".format(variables, model.path))
    record = FreezeRecord(output_tensors, how, variables, switches, _table_names(tables), dict(rewritten),
                          len(graph_def.node), len(frozen.node), time.time() - started, notes)
    return result, record


def _table_names(tables):
    """Table handles as users know them: the node for a HashTable's output 0, the tensor otherwise."""
    return sorted(node_name(t) if output_index(t) == 0 else t for t in tables)


def _convert(restored, graph_def, output_nodes, allow, deny):
    graph_util = tfcompat.graph_util()
    try:
        return graph_util.convert_variables_to_constants(
            restored.session, graph_def, output_nodes,
            variable_names_whitelist=allow or None, variable_names_blacklist=deny or None)
    except Exception as exc:
        if isinstance(exc, tfcompat.tf().errors.OpError) or isinstance(exc, (ValueError, AssertionError)):
            raise BadInput("cannot turn variables into constants: {}".format(tf_error_line(exc)),
                           restored.model.path, "check --outputs and that the checkpoint matches the graph")
        raise


def _check_size(graph_def, where):
    size = graph_def.ByteSize()
    if size > artifacts.PROTOBUF_LIMIT:
        raise BadInput("frozen graph would be {:.2f} GiB, over protobuf's 2 GiB limit".format(size / 2.0 ** 30),
                       where, "use `migrate export` instead: a SavedModel keeps the weights as variables")
