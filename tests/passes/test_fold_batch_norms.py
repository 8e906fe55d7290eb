"""fold_batch_norms: fused and decomposed batch norms folded into the conv / matmul before them (the
batch-norm formula, per channel), NHWC and NCHW, and why a batch norm stays when it cannot be folded."""
import numpy as np
import pytest

from migrate import passes, tfcompat
from migrate.graph import names
from migrate.passes import PassContext
from tests.passes.graphs import api, assert_same_numbers, build, has_node, node, ops, run_graph, run_pass, seeded
from tests.passes.graphs import assert_shared_index_changes_nothing

BATCH_NORMS = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}


def conv_bn_graph(op_type, data_format="NHWC", linear="Conv2D", conv_bias=False, is_training=False,
                  extra_reader=False, placeholder_weights=False):
    def body():
        channels_in = 3
        x_shape = [None, 6, 6, channels_in] if data_format == "NHWC" else [None, channels_in, 6, 6]
        x = api.placeholder(api.float32, x_shape, name="x")
        if placeholder_weights:
            weights = api.placeholder(api.float32, [3, 3, channels_in, 4], name="weights")
        else:
            shape = [3, 3, channels_in, 4] if linear == "Conv2D" else [3, 3, channels_in, 2]
            weights = api.constant(seeded(shape, seed=1), name="weights")
        if linear == "Conv2D":
            out = api.nn.conv2d(x, weights, [1, 1, 1, 1], "SAME", data_format=data_format, name="conv")
        else:
            out = api.nn.depthwise_conv2d_native(x, weights, [1, 1, 1, 1], "SAME", data_format=data_format,
                                                 name="conv")
        channels = 4 if linear == "Conv2D" else channels_in * 2
        if conv_bias:
            out = api.nn.bias_add(out, api.constant(seeded([channels], seed=2)), data_format=data_format,
                                  name="conv_bias")
        params = batch_norm_params(channels)
        normed = tfcompat.fused_batch_norm_builders()[op_type](
            out, *params, epsilon=1e-3, data_format=data_format, is_training=is_training, name="bn")[0]
        if extra_reader:
            api.identity(out, name="raw")
        api.nn.relu(normed, name="out")
    return build(body)


def batch_norm_params(channels):
    rng = np.random.RandomState(7)
    scale = rng.uniform(0.5, 2.0, channels).astype(np.float32)
    offset = rng.uniform(-1.0, 1.0, channels).astype(np.float32)
    mean = rng.uniform(-1.0, 1.0, channels).astype(np.float32)
    variance = rng.uniform(0.5, 2.0, channels).astype(np.float32)
    return [api.constant(v, name=n) for v, n in zip((scale, offset, mean, variance),
                                                      ("gamma", "beta", "moving_mean", "moving_variance"))]


def matmul_bn_graph():
    x = api.placeholder(api.float32, [None, 5], name="x")
    dense = api.matmul(x, api.constant(seeded([5, 3], seed=4)), name="dense")
    mean, variance, offset, scale = [api.constant(v) for v in ([0.1, -0.2, 0.3], [1.5, 0.5, 2.0],
                                                                 [0.0, 1.0, -1.0], [1.0, 2.0, 0.5])]
    normed = api.nn.batch_normalization(dense, mean, variance, offset, scale, 1e-3, name="bn")
    api.identity(normed, name="out")


@pytest.mark.parametrize("op_type", sorted(tfcompat.fused_batch_norm_builders()))
def test_fold_fused_batch_norm_after_conv_nhwc(op_type):
    before = conv_bn_graph(op_type)
    after, record = run_pass("fold_batch_norms", before, ["out:0"], ["x:0"])
    assert ops(before)[op_type] == 1
    assert not BATCH_NORMS & set(ops(after)) and ops(after)["BiasAdd"] == 1
    assert node(after, "bn").op == "BiasAdd" and list(node(after, "bn").input)[0] == "conv"
    assert record.removed[op_type] == 1 and record.added["BiasAdd"] == 1
    assert_same_numbers(before, after, {"x:0": seeded([2, 6, 6, 3])}, ["out:0"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("linear", ["Conv2D", "DepthwiseConv2dNative"])
def test_fold_batch_norm_nchw(linear):
    op_type = sorted(tfcompat.fused_batch_norm_builders())[-1]
    before = conv_bn_graph(op_type, data_format="NCHW", linear=linear)
    after, _ = run_pass("fold_batch_norms", before, ["out:0"], ["x:0"])
    assert not BATCH_NORMS & set(ops(after))
    bias_add = node(after, "bn")
    assert bias_add.op == "BiasAdd" and bias_add.attr["data_format"].s == b"NCHW"
    # Expected weights and bias from the batch-norm formula, per output channel.
    weights = api.make_ndarray(node(before, "weights").attr["value"].tensor)
    gamma, beta, mean, variance = [api.make_ndarray(node(before, n).attr["value"].tensor)
                                   for n in ("gamma", "beta", "moving_mean", "moving_variance")]
    factor = gamma / np.sqrt(variance + 1e-3)
    expected = weights * (factor if linear == "Conv2D" else factor.reshape(weights.shape[2:]))
    new_weights = api.make_ndarray(node(after, names.node_name(node(after, "conv").input[1])).attr["value"].tensor)
    np.testing.assert_allclose(new_weights, expected, rtol=1e-6)
    new_bias = api.make_ndarray(node(after, names.node_name(bias_add.input[1])).attr["value"].tensor)
    np.testing.assert_allclose(new_bias, beta - mean * factor, rtol=1e-6, atol=1e-6)
    runnable = (lambda g: g) if nchw_runs_on_cpu() else nhwc_twin
    assert_same_numbers(runnable(before), runnable(after), {"x:0": seeded([2, 3, 6, 6])}, ["out:0"],
                        rtol=1e-5, atol=1e-5)


def test_fold_batch_norm_through_conv_bias():
    op_type = sorted(tfcompat.fused_batch_norm_builders())[0]
    before = conv_bn_graph(op_type, conv_bias=True)
    after, record = run_pass("fold_batch_norms", before, ["out:0"], ["x:0"])
    assert ops(after)["BiasAdd"] == 1 and not has_node(after, "conv_bias")
    assert_same_numbers(before, after, {"x:0": seeded([2, 6, 6, 3])}, ["out:0"], rtol=1e-5, atol=1e-5)


def test_fold_decomposed_batch_norm_after_matmul():
    before = build(matmul_bn_graph)
    assert "Rsqrt" in ops(before)
    context = PassContext(["out:0"], ["x:0"])
    after, records = passes.run_pipeline(before, ["fold_constants", "fold_batch_norms"], context)
    assert [r.applied for r in records] == [True, True]
    assert ops(after)["Mul"] == 0 and ops(after)["BiasAdd"] == 1 and ops(after)["MatMul"] == 1
    assert node(after, names.node_name(node(after, "out").input[0])).op == "BiasAdd"
    assert_same_numbers(before, after, {"x:0": seeded([4, 5])}, ["out:0"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case, expected", [
    (dict(is_training=True), "is_training=True"),
    (dict(extra_reader=True), "also feeds 1 other"),
    (dict(placeholder_weights=True), "not a Const"),
])
def test_batch_norm_not_folded_says_why(case, expected):
    op_type = sorted(tfcompat.fused_batch_norm_builders())[0]
    before = conv_bn_graph(op_type, **case)
    outputs = ["out:0", "raw:0"] if case.get("extra_reader") else ["out:0"]
    after, record = run_pass("fold_batch_norms", before, outputs, ["x:0"])
    assert ops(after)[op_type] == 1 and not record.applied
    assert any(expected in note and "'bn'" in note for note in record.notes), record.notes


# ------------------------------------------------------------------------------------------------ NCHW on CPU


_nchw = {}


def nchw_runs_on_cpu():
    """Whether this TF's CPU kernels run NCHW convolutions and batch norms (TF 1.x's do not)."""
    if "ok" not in _nchw:
        op_type = sorted(tfcompat.fused_batch_norm_builders())[-1]
        graph_def = conv_bn_graph(op_type, data_format="NCHW", linear="DepthwiseConv2dNative")
        try:
            run_graph(graph_def, {"x:0": seeded([1, 3, 6, 6])}, ["out:0"])
            _nchw["ok"] = True
        except (api.errors.InvalidArgumentError, api.errors.UnimplementedError):
            _nchw["ok"] = False
    return _nchw["ok"]


def nhwc_twin(graph_def):
    """The same computation with every NCHW conv / batch norm run as transpose -> NHWC op -> transpose,
    so CPUs without NCHW kernels can compare a graph before and after folding."""
    twin = type(graph_def)()
    twin.CopyFrom(graph_def)
    for original in list(twin.node):
        if original.op in BATCH_NORMS | {"Conv2D", "DepthwiseConv2dNative"} and \
                "data_format" in original.attr and original.attr["data_format"].s == b"NCHW":
            _run_as_nhwc(twin, original)
    return twin


def _run_as_nhwc(graph_def, op_node):
    name = op_node.name
    to_nhwc = _transpose(graph_def, name + "/to_nhwc", op_node.input[0], [0, 2, 3, 1])
    op_node.name = name + "/nhwc"
    op_node.input[0] = to_nhwc
    op_node.attr["data_format"].s = b"NHWC"
    for key in ("strides", "dilations"):
        if key in op_node.attr:
            n, c, h, w = op_node.attr[key].list.i
            del op_node.attr[key].list.i[:]
            op_node.attr[key].list.i.extend([n, h, w, c])
    _transpose(graph_def, name, op_node.name, [0, 3, 1, 2])


def _transpose(graph_def, name, tensor, perm):
    perm_node = graph_def.node.add()
    perm_node.name, perm_node.op = name + "/perm", "Const"
    perm_node.attr["dtype"].type = api.int32.as_datatype_enum
    perm_node.attr["value"].tensor.CopyFrom(api.make_tensor_proto(np.array(perm, np.int32)))
    transpose = graph_def.node.add()
    transpose.name, transpose.op = name, "Transpose"
    transpose.input.extend([tensor, perm_node.name])
    transpose.attr["T"].type = api.float32.as_datatype_enum
    transpose.attr["Tperm"].type = api.int32.as_datatype_enum
    return name


def test_fold_batch_norms_on_the_shared_index_as_on_an_index_of_its_own(zoo_model):
    """Every zoo model, in the default pipeline: the pass on the index all passes share gives the graph and
    the record it gives on an index built fresh from the graph it is handed (as each pass swept it before)."""
    assert_shared_index_changes_nothing("fold_batch_norms", zoo_model)
