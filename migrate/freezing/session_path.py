"""The session path of freeze: restore the model in its own session, read the live lookup tables, let TF's
convert_variables_to_constants turn the variables the outputs need into constants, then rewrite (rewrites.py)."""
import time

from migrate import artifacts, opsets, tfcompat
from migrate import model as m
from migrate.errors import BadInput
from migrate.freezing import rewrites
from migrate.freezing.outputs import FreezeRecord, record_io, resolve_outputs
from migrate.graph import edit
from migrate.graph.ops import table_handles
from migrate.graph.names import data_input, node_name, output_index, tensor_name
from migrate.opsets import TABLE_INIT_NODE
from migrate.session import Restored, tf_error_line


def _export_tables(restored, needed, graph_def):
    """{table handle: ((keys, values), key dtype, value dtype)} of the initialized tables the outputs use:
    HashTable(V2) nodes, and tables created inside functions (their handle is a call's output)."""
    tf = tfcompat.tf()
    contents = {}
    for handle, (key_enum, value_enum, node) in sorted(table_handles(graph_def).items()):
        if node not in needed:
            continue
        key_dtype, value_dtype = tf.as_dtype(key_enum), tf.as_dtype(value_enum)
        tensor = restored.graph.get_tensor_by_name(handle)
        contents[handle] = (_sorted_by_key(*_table_contents(restored, tensor, key_dtype, value_dtype)),
                            key_dtype, value_dtype)
    return contents


def _sorted_by_key(keys, values):
    """[keys, values] in key order: a hash table exports in its bucket order, which changes from run to run
    (TF 1.7's static tables), and the frozen file should not (the same model freezes to the same bytes).
    A table maps keys to values: the order of its import constants does not change a lookup."""
    import numpy as np
    order = np.argsort(keys, kind="mergesort")
    return [keys[order], values[order]]


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


def freeze(model, outputs=None, signature=None, set_values=None, allow=None, deny=None, clear_devices=True,
           fallback=None):
    """(frozen Model, FreezeRecord) by the session path; `fallback`: why streaming did not apply (noted)."""
    started = time.time()
    if model.kind == m.FROZEN_GRAPH:
        raise BadInput("already a frozen graph (no variables)", model.path, "use `migrate optimize` or `export`")
    output_tensors, how = resolve_outputs(model, outputs, signature)
    switches = rewrites.switch_values(model.graph_def, rewrites.parse_set_values(set_values))
    with Restored(model) as restored:
        graph_def = restored.graph.as_graph_def()
        needed = edit.needed_nodes(graph_def, output_tensors)
        tables = _export_tables(restored, needed, graph_def)
        frozen = _convert(restored, graph_def, [node_name(t) for t in output_tensors] +
                          sorted(set(node_name(t) for t in tables)), allow, deny)
    variables = sum(1 for n in graph_def.node if n.op in opsets.FREEZABLE_VARIABLE_OPS and
                    n.name in needed)
    rewrites.apply_switches(frozen, dict((k, v) for k, v in switches.items() if k in set(n.name for n in frozen.node)))
    rewritten = rewrites.rewrite_stateful(frozen)
    imported = _import_tables(frozen, tables)
    if clear_devices:
        rewrites.strip_devices(frozen)
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
