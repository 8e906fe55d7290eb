"""fold_batch_norms: fold per-channel affine ops that follow a Conv2D / DepthwiseConv2dNative / MatMul with
Const weights into those weights plus one BiasAdd.

What folds: a chain starting at the linear op, each link its only reader, made of
  FusedBatchNorm / V2 / V3 with is_training=False and Const scale/offset/mean/variance,
  Mul by a per-channel (or scalar) Const        (decomposed BN after fold_constants: x * c1 + c2),
  BiasAdd / Add / AddV2 / Sub of a per-channel Const,
with at least one scaling link (a BN or a Mul). The chain computes linear(x, W) * S + B; the weights become
W * S on their output-channel axis and the chain's last node becomes BiasAdd(linear, B) under its own name,
so readers and requested outputs keep working. NHWC and NCHW (the data_format attrs) are both handled; a
per-channel constant must vary along the channel axis of that layout only.
Every FusedBatchNorm that stays gets a note saying why.
Numerics: S and B are computed in float64 and stored in the weights' dtype; results match the unfolded
graph to float32 rounding (like TF's fold_batch_norms / fold_old_batch_norms transforms).
"""
import numpy as np

from migrate import tfcompat
from migrate.graph import add_const, const_value, make_const, names, unique_name
from migrate.graph.edit import rewrite_inputs, set_op
from migrate.graph.ops import attr
from migrate.opsets import BATCH_NORM_OPS, BIAS_OPS, LINEAR_OPS, ORDERED_BIAS_OPS
from migrate.passes import base

NAME = "fold_batch_norms"
SUMMARY = "fold inference batch norms (fused or decomposed x*c1+c2) into Conv2D/Depthwise/MatMul weights + BiasAdd"

FLOAT_TYPES = frozenset(["float16", "bfloat16", "float32", "float64"])


def run(graph_def, context, in_place=False):
    return base.run_pass(NAME, _fold_all, graph_def, context, in_place)


class _Layout(object):
    """Where the channels of a linear op's output are, and how many."""

    def __init__(self, rank, axis, channels, data_format):
        self.rank, self.axis, self.channels, self.data_format = rank, axis, channels, data_format


class _Step(object):
    """One link of a chain: output = input * scale + bias, per channel."""

    def __init__(self, node, scale, bias, is_scaling):
        self.node, self.scale, self.bias, self.is_scaling = node, scale, bias, is_scaling


def _fold_all(index, context, record):
    graph_def, nodes = index.graph_def, index.nodes
    linears = index.of_ops(LINEAR_OPS)
    protected = context.protected_nodes()
    why_not = {}  # batch norm name -> why it was not folded
    reachability = base.Reachability(index) if linears else None  # no linear op: nothing to fold
    folded = []
    taken = set(nodes) if linears else set()  # names in use: new constants get fresh ones (none without a linear op)
    # Weights shared by several linear ops stay shared (each folded op gets its own copy), counted before
    # any fold rewires a reader away.
    shared = set(name for name in (names.node_name(linear.input[1]) for linear in linears if len(linear.input) > 1)
                 if len(index.readers.get(name, ())) > 1)
    for linear in linears:
        problem = _linear_problem(linear, nodes, protected)
        if problem:
            _blame(why_not, index, linear.name, problem)
            continue
        chain, stop = _chain(linear, index, protected)
        if stop:
            why_not.update(stop)
        if any(step.is_scaling for step in chain):
            _fold_chain(index, linear, chain, protected | shared, taken)
            folded.append((linear.name, chain[-1].node.name))
    for node in index.of_ops(BATCH_NORM_OPS):
        record.note("not folded {} '{}': {}".format(node.op, node.name, why_not.get(node.name) or
                                                     _input_problem(node, nodes)))
    if not folded:
        record.skip("nothing to fold: no Conv2D/DepthwiseConv2dNative/MatMul followed by a batch norm or "
                    "a per-channel Mul" + ("; see notes" if record.notes else ""), untouched=True)
        return
    for linear_name, last in folded:
        record.note("folded into '{}': now BiasAdd '{}'".format(linear_name, last))
    reachability.drop_orphans(graph_def, context)


def _linear_problem(linear, nodes, protected):
    weights = nodes.get(names.node_name(linear.input[1]))
    if weights is None or weights.op != "Const":
        return "the weights of {} '{}' come from {}, not a Const".format(
            linear.op, linear.name, "'{}' ({})".format(weights.name, weights.op) if weights else "nowhere")
    value = attr(weights, "value")
    rank = len(value.tensor.tensor_shape.dim) if value is not None else -1
    wanted = 2 if linear.op == "MatMul" else 4
    if rank != wanted:
        return "the weights of {} '{}' have rank {}, not {}".format(linear.op, linear.name, rank, wanted)
    if linear.name in protected:
        return "{} '{}' is a requested output: its values must stay".format(linear.op, linear.name)
    if tfcompat.v1().as_dtype(attr(linear, "T").type).name not in FLOAT_TYPES:
        return "{} '{}' is not floating point".format(linear.op, linear.name)
    return None


def _layout(linear, weights_shape):
    if linear.op == "MatMul":
        channels = weights_shape[0] if attr(linear, "transpose_b").b else weights_shape[1]
        return _Layout(2, 1, channels, b"NHWC")
    data_format = _data_format(linear)
    channels = weights_shape[3] if linear.op == "Conv2D" else weights_shape[2] * weights_shape[3]
    return _Layout(4, 1 if data_format.startswith(b"NC") else 3, channels, data_format)


def _chain(linear, index, protected):
    """([_Step], {batch norm name: why the chain stopped before it})."""
    nodes = index.nodes
    weights_shape = _const_shape(nodes[names.node_name(linear.input[1])])
    layout = _layout(linear, weights_shape)
    chain, tail = [], linear.name
    while True:
        readers = index.reader_names(tail)
        if not readers:
            return chain, {}
        batch_norms = [r for r in readers if index.ops[r] in BATCH_NORM_OPS]
        if chain and tail in protected:
            return chain, _stop(batch_norms, "'{}' before it is a requested output".format(tail))
        if len(readers) != 1:
            return chain, _stop(batch_norms, "'{}' also feeds {} other node(s), which need its unscaled "
                                             "values".format(tail, len(readers) - 1))
        if not _read_indices(index, tail, readers[0]):  # only waited on: nothing to fold into
            return chain, {}
        step = _step(nodes[readers[0]], tail, layout, index)
        if isinstance(step, str):
            return chain, _stop(batch_norms, step)
        chain.append(step)
        tail = readers[0]


def _stop(batch_norms, reason):
    return dict((name, reason) for name in batch_norms)


def _step(node, tail, layout, index):
    """The _Step node applies to tail's output, or a string saying why it cannot be folded."""
    nodes = index.nodes
    if node.op in BATCH_NORM_OPS:
        return _batch_norm_step(node, tail, layout, index)
    data = [name for name in node.input if not names.is_control(name)]
    if node.op == "Mul" or node.op in BIAS_OPS:
        if node.op in ORDERED_BIAS_OPS and names.node_name(data[0]) != tail:
            return "{} '{}' does not take '{}' as first input".format(node.op, node.name, tail)
        other = [name for name in data if names.node_name(name) != tail]
        if len(other) != 1 or nodes[names.node_name(other[0])].op != "Const":
            return "{} '{}' does not combine '{}' with a Const".format(node.op, node.name, tail)
        vector = _channel_vector(const_value(nodes[names.node_name(other[0])]), layout, node)
        if vector is None:
            return "{} '{}': its constant is not per-channel for this layout".format(node.op, node.name)
        if node.op == "Mul":
            return _Step(node, vector, np.zeros_like(vector), True)
        return _Step(node, np.ones_like(vector), -vector if node.op == "Sub" else vector, False)
    return "{} '{}' is not a foldable affine op".format(node.op, node.name)


def _const_shape(node):
    """A Const's shape from its TensorProto, without materializing the values (weights can be 64 MB each)."""
    shape = node.attr["value"].tensor.tensor_shape
    if shape.unknown_rank:
        return const_value(node).shape
    return tuple(dim.size for dim in shape.dim)


def _batch_norm_step(node, tail, layout, index):
    if attr(node, "is_training").b:
        return "is_training=True (a training graph: statistics come from the batch)"
    if layout.rank != 4:
        return "its input is {}-D".format(layout.rank)
    if _data_format(node) != layout.data_format:
        return "its data_format {} differs from its input's {}".format(
            _data_format(node).decode(), layout.data_format.decode())
    if any(_read_indices(index, node.name, reader) - {0} for reader in index.reader_names(node.name)):
        return "its batch statistics outputs are read"
    params = [index.nodes.get(names.node_name(name)) for name in node.input[1:5]]
    if any(param is None or param.op != "Const" for param in params):
        return "its scale/offset/mean/variance are not all Const (run fold_constants first?)"
    scale, offset, mean, variance = [const_value(param).astype(np.float64) for param in params]
    factor = scale / np.sqrt(variance + attr(node, "epsilon").f)
    return _Step(node, factor, offset - mean * factor, True)


def _channel_vector(value, layout, node):
    """value as a float64 vector over channels, or None when it varies along another axis."""
    if node.op == "BiasAdd":
        bias_axis = 1 if _data_format(node).startswith(b"NC") and layout.rank > 2 else layout.rank - 1
        ok = value.ndim == 1 and value.shape[0] == layout.channels and bias_axis == layout.axis
        return value.astype(np.float64) if ok else None
    if value.ndim > layout.rank:
        return None
    shape = (1,) * (layout.rank - value.ndim) + value.shape
    if any(size != 1 for axis, size in enumerate(shape) if axis != layout.axis):
        return None
    if shape[layout.axis] not in (1, layout.channels):
        return None
    return np.broadcast_to(value.astype(np.float64).reshape(-1), (layout.channels,)).copy()


def _fold_chain(index, linear, chain, kept, taken):
    graph_def = index.graph_def
    scale, bias = np.ones_like(chain[0].scale), np.zeros_like(chain[0].bias)
    for step in chain:
        scale, bias = scale * step.scale, bias * step.scale + step.bias
    weights_node = index.nodes[names.node_name(linear.input[1])]
    weights = const_value(weights_node)
    layout = _layout(linear, weights.shape)
    new_weights = (weights.astype(np.float64) * _weight_multiplier(linear, scale, weights.shape)).astype(
        weights.dtype)
    _write_weights(index, linear, weights_node, new_weights, kept, taken)
    last = chain[-1].node
    controls = [name for step in chain for name in step.node.input if names.is_control(name)]
    bias_name = unique_name(graph_def, last.name + "/folded_bias", taken)
    taken.add(bias_name)
    dtype = weights.dtype
    add_const(graph_def, bias_name, bias.astype(dtype), dtype, device=last.device, index=index)
    _become_bias_add(last, linear, bias_name, controls, layout, index)


def _weight_multiplier(linear, scale, shape):
    """scale shaped to multiply the weights along their output-channel axis."""
    if linear.op == "Conv2D":                      # HWIO
        return scale
    if linear.op == "DepthwiseConv2dNative":       # H, W, in, multiplier: channel = in * multiplier + m
        return scale.reshape(shape[2], shape[3])
    return scale[:, None] if attr(linear, "transpose_b").b else scale   # MatMul: [K, N] or [N, K]


def _write_weights(index, linear, weights_node, new_weights, kept, taken):
    """Overwrite the weights Const when only this op reads it; shared (in kept) or requested weights get a new
    Const."""
    if len(index.readers.get(weights_node.name, ())) == 1 and weights_node.name not in kept:
        make_const(weights_node, new_weights, new_weights.dtype, index)
        return
    name = unique_name(index.graph_def, linear.name + "/folded_weights", taken)
    taken.add(name)
    add_const(index.graph_def, name, new_weights, new_weights.dtype, device=weights_node.device, index=index)
    inputs = list(linear.input)
    inputs[1] = name
    rewrite_inputs(linear, inputs, index)


def _become_bias_add(node, linear, bias_name, controls, layout, index):
    first_shape = None
    if "_output_shapes" in node.attr and node.attr["_output_shapes"].list.shape:
        kept = node.attr["_output_shapes"].list.shape[0]
        first_shape = type(kept)()
        first_shape.CopyFrom(kept)  # a copy: attr.clear() below drops the original
    dtype = attr(linear, "T").type
    set_op(node, "BiasAdd", index)
    rewrite_inputs(node, [linear.name, bias_name] + sorted(set(controls)), index)
    node.attr.clear()
    node.attr["T"].type = dtype
    node.attr["data_format"].s = b"NCHW" if layout.rank == 4 and layout.axis == 1 else b"NHWC"
    if first_shape is not None:
        node.attr["_output_shapes"].list.shape.add().CopyFrom(first_shape)


def _blame(why_not, index, linear_name, problem):
    for reader in index.reader_names(linear_name):
        if index.ops[reader] in BATCH_NORM_OPS:
            why_not[reader] = problem


def _input_problem(node, nodes):
    producer = nodes.get(names.node_name(node.input[0]))
    if producer is None:
        return "its input '{}' does not exist".format(node.input[0])
    return "its input '{}' is {}, not a Conv2D/DepthwiseConv2dNative/MatMul (through per-channel " \
           "BiasAdd/Add/Mul) with Const weights".format(producer.name, producer.op)


def _read_indices(index, producer, reader):
    """The output indices of producer that reader reads as data (empty: it only waits on producer)."""
    return set(names.output_index(name) for name in index.nodes[reader].input
               if not names.is_control(name) and names.node_name(name) == producer)


def _data_format(node):
    value = attr(node, "data_format")
    return value.s if value is not None and value.s else b"NHWC"
