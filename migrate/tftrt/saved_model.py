"""A frozen GraphDef as the TF1 SavedModel TrtGraphConverterV2 takes, and the converted SavedModel's serving
function back as a frozen GraphDef with the original input/output names."""
import re

from migrate import tfcompat
from migrate.graph.edit import unique_name
from migrate.graph.names import is_control, node_name, output_index, tensor_name


SIGNATURE_KEY = "serving_default"


SERVE_TAG = "serve"


def signature_keys(tensors):
    """{signature key: tensor name}: keys are node names made identifier-safe (TF 2.x calls take kwargs)."""
    keys = {}
    for tensor in tensors:
        key = re.sub(r"\W", "_", node_name(tensor))
        if output_index(tensor):
            key += "_{}".format(output_index(tensor))
        if not re.match(r"[A-Za-z_]", key):
            key = "t_" + key
        base, suffix = key, 1
        while key in keys:
            key, suffix = "{}_{}".format(base, suffix), suffix + 1
        keys[key] = tensor_name(tensor)
    return keys


def write_saved_model(graph_def, inputs, outputs, path):
    """A TF1 SavedModel of a frozen graph with one serving_default signature ({key: tensor} maps)."""
    v1 = tfcompat.v1()
    builder_class, tensor_info, signature_def = tfcompat.v1_saved_model_api()
    graph = v1.Graph()
    with graph.as_default():
        v1.import_graph_def(graph_def, name="")
        signature = signature_def(
            inputs=dict((key, tensor_info(graph.get_tensor_by_name(t))) for key, t in inputs.items()),
            outputs=dict((key, tensor_info(graph.get_tensor_by_name(t))) for key, t in outputs.items()),
            method_name="tensorflow/serving/predict")
        with v1.Session(graph=graph) as session:
            builder = builder_class(path)
            builder.add_meta_graph_and_variables(session, [SERVE_TAG], signature_def_map={SIGNATURE_KEY: signature})
            builder.save()
    return path


def saved_function_graph(path, inputs, outputs):
    """TF 2.x: the serving function of a SavedModel as a frozen GraphDef that keeps the original input and
    output names (TF2-format SavedModels rename them after the signature keys)."""
    loaded, signature, frozen = tfcompat.load_saved_function(path, SIGNATURE_KEY)
    graph_def = frozen.graph.as_graph_def()
    for key, tensor in inputs.items():
        _restore_input(graph_def, key, node_name(tensor))
    produced = _outputs_by_key(signature, frozen)
    for key, tensor in outputs.items():
        _restore_output(graph_def, produced[key], tensor)
    del loaded
    return graph_def


def _outputs_by_key(signature, frozen):
    """{output key: tensor of the frozen function}. Function outputs are the signature's dict flattened,
    i.e. in sorted key order (tf.nest), and freezing keeps that order."""
    return dict(zip(sorted(signature.structured_outputs), frozen.outputs))


def _restore_input(graph_def, key, wanted):
    nodes = dict((node.name, node) for node in graph_def.node)
    if wanted in nodes and nodes[wanted].op == "Placeholder":
        return
    if key not in nodes:
        raise RuntimeError("the converted function has neither input '{}' nor '{}'".format(wanted, key))
    if wanted in nodes:
        rename_node(graph_def, wanted, unique_name(graph_def, wanted))
    rename_node(graph_def, key, wanted)


def _restore_output(graph_def, produced, wanted):
    """Make `wanted` ('y:0') name the function output `produced`: an Identity alias named 'y'.

    An output other than :0 cannot be aliased under its own name; it stays as the function names it.
    """
    if produced.name == wanted or output_index(wanted) != 0:
        return
    name = node_name(wanted)
    if any(node.name == name for node in graph_def.node):
        rename_node(graph_def, name, unique_name(graph_def, name))
    alias = graph_def.node.add()
    alias.name, alias.op = name, "Identity"
    alias.input.append(_input_spelling(produced.name))
    alias.attr["T"].type = produced.dtype.as_datatype_enum


def _input_spelling(tensor):
    return node_name(tensor) if output_index(tensor) == 0 else tensor


def rename_node(graph_def, old, new):
    """Rename a node and every input that refers to it (data 'old', 'old:k' and control '^old')."""
    for node in graph_def.node:
        if node.name == old:
            node.name = new
        for index, input_name in enumerate(node.input):
            if node_name(input_name) != old:
                continue
            if is_control(input_name):
                node.input[index] = "^" + new
            else:
                node.input[index] = new if output_index(input_name) == 0 and ":" not in input_name else \
                    "{}:{}".format(new, output_index(input_name))
