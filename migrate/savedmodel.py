"""Export a Model to a SavedModel that TF 2.x `tf.saved_model.load` and TF Serving load.

Two formats:
  tf2 (default on TF >= 2): a TF2 object-graph SavedModel. The model is frozen (weights become constants)
       and every signature is a concrete function pruned from the frozen graph (`wrap_function` + `prune`);
       lookup tables are re-initialized on load by the saved `_initializer` (from `migrate_init_tables`).
  tf1 (default on TF 1.x, `--format tf1` anywhere): the graph + variables as they are, written with TF's own
       SavedModelBuilder from the restored session: variables stay variables (so models past the 2 GiB
       protobuf limit export too), every signature, assets and the table initializer (main_op) are kept.
       TF 2.x loads it with `tf.saved_model.load` (the v1 loading path) and TF Serving serves it.
"""
import os

from migrate import io
from migrate.graph import files as graph_files
from migrate import model as m
from migrate import opsets
from migrate import tfcompat
from migrate.errors import BadInput
from migrate.freezing import outputs as freeze_outputs
from migrate.graph.names import node_name, tensor_name
from migrate.opsets import TABLE_INIT_NODE
from migrate.session import Restored

PREDICT = "tensorflow/serving/predict"
FORMATS = ("tf1", "tf2")


def default_format():
    return "tf2" if tfcompat.is_tf2() else "tf1"


def export_signatures(model, outputs=None, signature_name="serving_default"):
    """{name: Signature} to export: the model's own (all of them), else one built from inputs/outputs."""
    if model.signatures and not outputs:
        return dict((name, sig) for name, sig in model.signatures.items() if sig.outputs)
    if outputs:  # from the user (--outputs): names and output indices checked, one line when wrong
        outputs, _ = freeze_outputs.resolve_outputs(model, outputs)
    outputs = [tensor_name(o) for o in (outputs or model.outputs)]
    if not outputs:
        outputs, _ = freeze_outputs.resolve_outputs(model)
    from migrate import verify
    # The model's own inputs (given, or recorded in a graph migrate wrote) when they go with these outputs;
    # else the placeholders the outputs need.
    own = model.inputs if not model.outputs or set(outputs) == set(model.outputs) else []
    inputs = own or sorted(verify.input_specs(model.graph_def, outputs))
    return {signature_name: m.Signature(signature_name, _keyed(inputs), _keyed(outputs), PREDICT)}


def _keyed(tensors):
    """{key: tensor}; where two tensors share a short key ('head_a/probs', 'head_b/probs'), both get their
    whole node name as key, '/' -> '_' ('head_a_probs')."""
    short = [_key(t) for t in tensors]
    keys = [key if short.count(key) == 1 else _long_key(t) for key, t in zip(short, tensors)]
    return dict(zip(keys, tensors))


def _long_key(tensor):
    index = tensor.split(":")[-1] if ":" in tensor else "0"
    name = node_name(tensor).replace("/", "_")
    return name if index == "0" else "{}_{}".format(name, index)


def _key(tensor):
    """Signature key from a tensor name: 'scope/probabilities:0' -> 'probabilities' (':1' kept as '_1')."""
    name = node_name(tensor).split("/")[-1]
    index = tensor.split(":")[-1] if ":" in tensor else "0"
    return name if index == "0" else "{}_{}".format(name, index)


# ------------------------------------------------------------------------------------------ tf1 format

def write_tf1(model, directory, signatures, graph_file=None):
    """SavedModelBuilder from the restored session: variables, signatures, assets, table init.

    A frozen graph's weights (Consts above graph_files.FED_CONST_BYTES) become variables saved in variables/, read
    where the Const was (graph_file: the binary file they are read from, see write_tf2): as constants they
    would be imported into the session and serialized again into saved_model.pb."""
    v1 = tfcompat.v1()
    loaded = _FrozenAsVariables(model, graph_file) if model.kind == m.FROZEN_GRAPH else Restored(model)
    with loaded as restored:
        graph = restored.graph
        if io.planted("export") and model.kind != m.FROZEN_GRAPH:  # test-only (io.planted): variables kept
            _plant_variable(restored)
        with graph.as_default():
            defs = {}
            for name, sig in signatures.items():
                defs[name] = v1.saved_model.signature_def_utils.build_signature_def(
                    inputs=dict((k, v1.saved_model.utils.build_tensor_info(graph.get_tensor_by_name(t)))
                                for k, t in sig.inputs.items()),
                    outputs=dict((k, v1.saved_model.utils.build_tensor_info(graph.get_tensor_by_name(t)))
                                 for k, t in sig.outputs.items()),
                    method_name=sig.method or PREDICT)
            init = _table_init_op(restored)
            for key in opsets.SAVED_MODEL_INIT_COLLECTIONS + (opsets.SAVED_MODEL_TRAIN_COLLECTION,):
                graph.clear_collection(key)  # the source's own; the builder writes ours
            builder = v1.saved_model.builder.SavedModelBuilder(directory)
            kwargs = tfcompat.saved_model_builder_kwargs(init, _asset_tensors(restored), _saver(graph))
            try:
                builder.add_meta_graph_and_variables(restored.session, [v1.saved_model.tag_constants.SERVING],
                                                     signature_def_map=defs, clear_devices=True, **kwargs)
            except ValueError as exc:
                if not tfcompat.is_duplicate_saver_error(exc) or "saver" in kwargs:
                    raise
                raise SaverUnsupported(str(exc))
            builder.save()


def _plant_variable(restored):
    """Test-only (io.planted): the largest float variable of the restored session moved by io.plant_value."""
    v1 = tfcompat.v1()
    variables = dict((v.op.name, v) for v in restored.graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES))
    specs = dict((name, (v.dtype.base_dtype.name, v.shape.num_elements() or 0)) for name, v in variables.items())
    chosen = io.planted_weight(specs)
    if chosen is not None:
        variable = variables[chosen]
        variable.load(io.plant_value(restored.session.run(variable)), restored.session)


class _FrozenAsVariables(Restored):
    """A Restored (model, graph, session; closed on exit) for a frozen graph whose large Consts are turned into
    variables: each is created from a placeholder, initialized from its array (dropped right after), and the
    graph is imported with the variable's value where the Const was."""

    def __init__(self, model, graph_file=None):
        # (Restored.__init__ is not called: it would import the graph with its constants)
        from migrate import session as session_mod
        v1 = tfcompat.v1()
        self.model = model
        self.graph = v1.Graph()
        self.session = v1.Session(graph=self.graph, config=session_mod.session_config())
        try:
            if graph_file:
                graph_def, weights = graph_files.read_back(graph_file)
            else:
                graph_def, weights = graph_files.split_weights(model.graph_def)
            graph_def, weights = io.plant_in("export", graph_def, weights)  # test-only (io.planted)
            session_mod.check_ops_known(graph_def, model.path)
            mapped = {}
            with self.graph.as_default():
                for name in sorted(weights):
                    value = weights.pop(name)
                    with v1.name_scope("migrate_weights/"):
                        fed = v1.placeholder(v1.as_dtype(value.dtype), value.shape)
                        variable = v1.Variable(fed, name=node_name(name).replace("/", "_"))
                    self.session.run(variable.initializer, {fed: value})
                    mapped[name] = variable.value()
                    del value
                session_mod.importing(model.path, v1.import_graph_def, graph_def, input_map=mapped, name="")
                if any(node.name == TABLE_INIT_NODE for node in graph_def.node):
                    self.session.run(self.graph.get_operation_by_name(TABLE_INIT_NODE))
        except BaseException:
            self.close()
            raise


class SaverUnsupported(Exception):
    """This TF's builder makes its own Saver (no `saver` argument before TF 1.8) and that Saver cannot save
    the model's variables (TF 1.7 resource variables whose slots share their shared_name)."""


def _saver(graph):
    """A Saver over the global variables keyed by their op names (the checkpoint keys): TF 1.7 gives a resource
    variable's optimizer slots the variable's own shared_name, so the builder's default Saver sees duplicates."""
    v1 = tfcompat.v1()
    unique = {}
    for variable in graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES):
        unique.setdefault(variable.op.name, variable)
    if not unique:
        return None
    return v1.train.Saver(var_list=unique, sharded=True, allow_empty=True)


def _table_init_op(restored):
    v1 = tfcompat.v1()
    names = [op.name for op in restored.graph.get_operations()]
    if TABLE_INIT_NODE in names:
        return restored.graph.get_operation_by_name(TABLE_INIT_NODE)
    initializers = restored.graph.get_collection(v1.GraphKeys.TABLE_INITIALIZERS)
    if initializers:
        return v1.group(*initializers, name="migrate_main_op")
    return None


def _asset_tensors(restored):
    """Asset filename tensors, pointed at the files in the source SavedModel's assets/ (TF copies them)."""
    tensors = []
    for name, path in sorted(restored.model.assets.items()):
        if path and os.path.isfile(path):
            tensor = restored.graph.get_tensor_by_name(name)
            tensors.append((tensor, path))
    return tensors


# ------------------------------------------------------------------------------------------ tf2 format

def write_tf2(frozen, directory, signatures, graph_file=None):
    """TF2 SavedModel: each signature a tf.function over a function pruned from the frozen graph.

    The weights (Consts above graph_files.FED_CONST_BYTES) become tf.Variables the module tracks, saved in
    variables/ like any TF2 SavedModel's, read by the functions where the Const was: embedded in the function
    graphs they were copied by every stage of tracing, pruning and saving (benchmarks/README.md has what that
    cost) and again on every load. graph_file: the binary frozen GraphDef file `frozen` comes from; its weights are
    read from the file straight into arrays (graph_files.read_back) and frozen.graph_def is not used.

    Tables (the frozen graph's HashTableV2 nodes, or calls returning a table made in a function, initialized
    by `migrate_init_tables`) become tracked tf.lookup.StaticHashTable objects, initialized once at load;
    their handles are fed into the pruned graph where the table's handle was."""
    import gc
    tf = tfcompat.tf()
    v1 = tfcompat.v1()
    if graph_file:
        graph_def, weights = graph_files.read_back(graph_file)
    else:
        graph_def, weights = graph_files.split_weights(frozen.graph_def)
    graph_def, weights = io.plant_in("export", graph_def, weights)  # test-only (io.planted)
    module = tf.Module()
    variables = {}
    for name in sorted(weights):  # one at a time: each array is dropped once its variable holds it
        variables[name] = tf.Variable(weights.pop(name), trainable=False, name=node_name(name).replace("/", "_"))
    module.weights = [variables[name] for name in sorted(variables)]

    def import_graph():
        mapped = dict((name, variable.read_value()) for name, variable in variables.items())
        v1.import_graph_def(graph_def, input_map=mapped, name="")

    wrapped = v1.wrap_function(import_graph, [])
    module.tables = _tables(graph_def, variables)
    functions = {}
    for name, sig in sorted(signatures.items()):
        functions[name] = _signature_function(wrapped, module, sig)
    module.signature_functions = list(functions.values())
    tf.saved_model.save(module, directory, signatures=functions)
    del module, functions, wrapped, variables
    gc.collect()  # the functions hold the variables through reference cycles: free the weights now


def _tables(graph_def, variables=None):
    """{table handle tensor: StaticHashTable} rebuilt from the constants freeze stored for each table (a large
    one was made a variable: its value is read from it)."""
    tf = tfcompat.tf()
    from migrate.graph import edit
    nodes = edit.node_map(graph_def)

    def value(name):
        if variables and tensor_name(name) in variables:
            return variables[tensor_name(name)].numpy()
        return edit.const_value(nodes[node_name(name)])
    tables = {}
    for node in graph_def.node:
        if node.op == "InitializeTableV2" and node_name(node.input[0]) in nodes:
            initializer = tf.lookup.KeyValueTensorInitializer(value(node.input[1]), value(node.input[2]))
            default = tf.zeros([], dtype=tf.as_dtype(node.attr["Tval"].type))
            # keyed by the handle tensor: a HashTableV2's output, or a call's when the table was made in a function
            tables[tensor_name(node.input[0])] = tf.lookup.StaticHashTable(initializer, default_value=default)
        elif node.op == "InitializeTable":
            raise BadInput("reference-type lookup table '{}' cannot live in a TF2 SavedModel".format(
                node_name(node.input[0])), None, "use --format tf1")
    return tables


def _signature_function(wrapped, module, sig):
    """A tf.function taking the signature's inputs by key, returning its outputs by key."""
    tf = tfcompat.tf()
    keys = sorted(sig.inputs)
    table_names = sorted(module.tables)
    graph = wrapped.graph
    feeds = [graph.get_tensor_by_name(sig.inputs[k]) for k in keys]
    used_tables = [t for t in table_names if _reachable(graph, sig.outputs.values(), node_name(t))]
    feeds += [graph.get_tensor_by_name(t) for t in used_tables]
    out_keys = sorted(sig.outputs)
    fetches = [graph.get_tensor_by_name(sig.outputs[k]) for k in out_keys]
    pruned = wrapped.prune(feeds=feeds, fetches=fetches)
    specs = [tf.TensorSpec(graph.get_tensor_by_name(sig.inputs[k]).shape,
                           graph.get_tensor_by_name(sig.inputs[k]).dtype, name=k) for k in keys]
    tables = module.tables

    @tf.function(input_signature=specs)
    def serve(*args):
        handles = [tables[t].resource_handle for t in used_tables]
        results = pruned(*(list(args) + handles))
        return dict(zip(out_keys, results))
    return serve


def _reachable(graph, outputs, node):
    """True if any output tensor depends on `node` (walks the wrapped graph's ops)."""
    seen, stack = set(), [graph.get_tensor_by_name(t).op for t in outputs]
    while stack:
        op = stack.pop()
        if op.name == node:
            return True
        if op.name in seen:
            continue
        seen.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return False


def check_format(fmt):
    if fmt not in FORMATS:
        raise BadInput("unknown format '{}'".format(fmt), None, "use tf1 or tf2")
    if fmt == "tf2" and not tfcompat.is_tf2():
        raise BadInput("a TF2 object-graph SavedModel needs TF >= 2.0 (this is TF {})".format(
            tfcompat.version_string()), None,
            "use --format tf1 here (TF 2.x loads it with tf.saved_model.load), or run export under TF 2.x")
