"""Every pass on small graphs built with the installed TF: the structural change it promises, and the same
numbers before and after (isolated sessions, seeded inputs)."""
from collections import Counter

import numpy as np
import pytest

from migrate import passes, tfcompat
from migrate.errors import BadInput
from migrate.graph import names
from migrate.passes import PassContext

api = tfcompat.v1()
DEBUG_OPS = {"Assert", "CheckNumerics", "Print", "PrintV2"}
BATCH_NORMS = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}


# ------------------------------------------------------------------------------------------------ helpers

def build(body):
    """GraphDef of what body() builds in a fresh graph (TF1 control flow on every TF)."""
    graph = api.Graph()
    with graph.as_default(), tfcompat.tf1_control_flow():
        body()
    return graph.as_graph_def()


def run_graph(graph_def, feeds, fetches):
    graph = api.Graph()
    with graph.as_default():
        api.import_graph_def(graph_def, name="")
    with api.Session(graph=graph) as session:
        return session.run(fetches, feeds)


def assert_same_numbers(before, after, feeds, fetches, rtol=1e-6, atol=1e-6):
    expected = run_graph(before, feeds, fetches)
    got = run_graph(after, feeds, fetches)
    for name, want, have in zip(fetches, expected, got):
        np.testing.assert_allclose(have, want, rtol=rtol, atol=atol, err_msg=name)
    return expected


def ops(graph_def):
    return Counter(node.op for node in graph_def.node)


def node(graph_def, name):
    found = [n for n in graph_def.node if n.name == name]
    assert found, "no node {}".format(name)
    return found[0]


def has_node(graph_def, name):
    return any(n.name == name for n in graph_def.node)


def run_pass(name, graph_def, outputs, inputs=(), **options):
    new, record = passes.REGISTRY[name].run(graph_def, PassContext(outputs, inputs, options))
    assert record.name == name
    return new, record


def seeded(shape, seed=0):
    return np.random.RandomState(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


# ------------------------------------------------------------------------------------------------ graphs

def debug_graph():
    x = api.placeholder(api.float32, [None, 3], name="x")
    guard = api.Assert(api.reduce_all(x > -100.0), [x], name="check")  # data-dependent: an AssertGuard cond
    with api.control_dependencies([guard]):
        y = api.identity(x * 2.0, name="y")
    positive = api.assert_positive(x + 100.0, name="positive")
    checked = api.check_numerics(y, "y is bad", name="checked")
    printed = api.Print(checked, [checked], "y=", name="printed")
    plain = api.Assert(api.reduce_all(x < 1e6), ["x too big"], name="plain")  # string data: no guard
    controls = [positive, plain]
    if hasattr(api, "print"):  # PrintV2 from TF 1.13
        controls.append(api.print(x, name="print_v2"))
    one = api.constant(1.0, name="one")
    with api.control_dependencies(controls):
        api.add(printed, one, name="out")


def identity_graph():
    x = api.placeholder(api.float32, [None, 4], name="x")
    chain = api.identity(api.identity(x, name="a"), name="b")
    relu = api.nn.relu(chain, name="relu")
    stopped = api.stop_gradient(relu, name="stopped")
    marker = api.constant(1.0, name="marker")
    with api.control_dependencies([marker]):
        guarded = api.identity(stopped, name="guarded")
    tripled = api.multiply(guarded, 3.0, name="tripled")
    api.identity(api.identity(tripled, name="o1"), name="out")


def cond_graph():
    x = api.placeholder(api.float32, [None, 4], name="x")
    picked = api.cond(api.reduce_sum(x) > 0.0, lambda: api.identity(x * 2.0), lambda: api.identity(x - 1.0))
    api.identity(picked, name="out")


def while_graph():
    x = api.placeholder(api.float32, [None, 4], name="x")
    weights = api.constant(seeded([4, 4], seed=3), name="w")
    read = api.identity(weights, name="w/read")
    limit = api.add(api.constant(1), api.constant(2), name="limit")  # foldable, outside the loop

    def body(i, acc):
        step = api.identity(api.matmul(acc, read) * 0.5, name="step")
        return i + 1, api.nn.relu(step + api.constant(0.1))

    _, result = api.while_loop(lambda i, acc: i < limit, body, [api.constant(0), x], name="loop")
    api.identity(result, name="out")


def fold_graph():
    x = api.placeholder(api.float32, [None, 3], name="x")
    folded = api.add(api.constant([1.0, 2.0, 3.0]) * 2.0, api.constant([4.0, 5.0, 6.0]), name="folded")
    api.add(x, folded, name="y")
    wide = api.placeholder(api.float32, [None, 1024], name="wide")
    big = api.fill([1024, 1024], 0.5, name="big")  # 4 MiB from a few bytes: must stay a Fill
    api.matmul(wide, big, name="w")


def static_graph():
    x = api.placeholder(api.float32, [None, 4, None], name="x")
    batch = api.cast(api.shape(x)[0], api.float32)
    api.multiply(x, batch, name="out")


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


# ------------------------------------------------------------------------------------------------ strip_debug

def test_strip_debug_removes_debug_ops_their_guards_and_control_edges():
    before = build(debug_graph)
    assert ops(before)["Assert"] == 3 and ops(before)["Switch"] > 0
    assert ops(before)["PrintV2"] == (1 if hasattr(api, "print") else 0)
    assert "^plain/Assert" in node(before, "out").input and node(before, "plain/Assert").op == "Assert"
    after, record = run_pass("strip_debug", before, ["out:0"], ["x:0"])
    assert ops(before)["Assert"] == 3  # the caller's GraphDef is left alone
    assert not DEBUG_OPS & set(ops(after))
    assert ops(after)["Switch"] == 0 and ops(after)["Merge"] == 0  # the AssertGuard conds went with them
    assert record.removed["Assert"] == 3 and record.removed["CheckNumerics"] == 1 and record.removed["Print"] == 1
    assert all(not name.startswith("^") for name in node(after, "out").input)
    assert_same_numbers(before, after, {"x:0": seeded([2, 3])}, ["out:0"])


def test_stripped_asserts_no_longer_fire():
    before = build(debug_graph)
    after, _ = run_pass("strip_debug", before, ["out:0"], ["x:0"])
    failing = {"x:0": np.full([2, 3], -500.0, np.float32)}
    with pytest.raises(api.errors.InvalidArgumentError):
        run_graph(before, failing, ["out:0"])
    np.testing.assert_allclose(run_graph(after, failing, ["out:0"])[0], np.full([2, 3], -999.0))


def test_strip_debug_keeps_a_requested_debug_node_and_says_so():
    before = build(debug_graph)
    after, record = run_pass("strip_debug", before, ["checked:0"], ["x:0"])
    assert node(after, "checked").op == "CheckNumerics"
    assert any("checked" in note for note in record.notes)


# ------------------------------------------------------------------------------------------------ remove_identity

def test_remove_identity_splices_chains_and_keeps_the_output_name():
    before = build(identity_graph)
    after, record = run_pass("remove_identity", before, ["out:0"], ["x:0"])
    assert node(after, "out").op == "Identity"
    assert [n.name for n in after.node if n.op in ("Identity", "StopGradient")] == ["out"]
    assert list(node(after, "relu").input) == ["x"]
    assert list(node(after, "out").input) == ["tripled"]
    # The control dependency of the removed 'guarded' moved to its reader.
    assert "^marker" in node(after, "tripled").input
    assert record.removed["Identity"] == 4 and record.removed["StopGradient"] == 1
    assert_same_numbers(before, after, {"x:0": seeded([3, 4])}, ["out:0"])


def test_remove_identity_forwards_identity_n_outputs():
    def body():
        x = api.placeholder(api.float32, [None, 2], name="x")
        first, second = api.identity_n([x * 2.0, x - 1.0], name="both")
        api.subtract(second, first, name="out")
    before = build(body)
    after, record = run_pass("remove_identity", before, ["out:0"], ["x:0"])
    assert not has_node(after, "both") and record.removed["IdentityN"] == 1
    assert [node(after, names.node_name(i)).op for i in node(after, "out").input] == ["Sub", "Mul"]
    assert_same_numbers(before, after, {"x:0": seeded([3, 2])}, ["out:0"])


def test_remove_identity_keeps_cond_pivots():
    before = build(cond_graph)
    after, record = run_pass("remove_identity", before, ["out:0"], ["x:0"])
    pivots = [n.name for n in before.node if n.op == "Identity" and
              node(before, names.node_name(n.input[0])).op == "Switch"]
    assert pivots and all(node(after, name).op == "Identity" for name in pivots)
    assert record.applied and any("Switch" in note for note in record.notes)
    for sign in (1.0, -1.0):  # both branches
        assert_same_numbers(before, after, {"x:0": sign * np.abs(seeded([2, 4]))}, ["out:0"])


# ------------------------------------------------------------------------------------------------ fold_constants

def test_fold_constants_replaces_constant_subgraphs_but_not_big_fills():
    before = build(fold_graph)
    after, record = run_pass("fold_constants", before, ["y:0", "w:0"], ["x:0", "wide:0"])
    assert node(after, "folded").op == "Const"
    np.testing.assert_allclose(api.make_ndarray(node(after, "folded").attr["value"].tensor), [6.0, 9.0, 12.0])
    assert ops(after)["Mul"] == 0 and ops(after)["Add"] + ops(after)["AddV2"] == 1
    assert node(after, "big").op == "Fill"
    assert any("big:0" in note and "4.0 MiB" in note for note in record.notes)
    feeds = {"x:0": seeded([2, 3]), "wide:0": seeded([2, 1024])}
    assert_same_numbers(before, after, feeds, ["y:0", "w:0"], rtol=1e-5, atol=1e-5)


def test_fold_constants_respects_the_byte_cap():
    before = build(fold_graph)
    after, record = run_pass("fold_constants", before, ["y:0", "w:0"], ["x:0", "wide:0"], fold_max_bytes=8)
    assert node(after, "folded").op in ("Add", "AddV2")
    assert not record.applied and "size limits" in record.reason


def test_fold_constants_keeps_a_failing_constant_subgraph_and_folds_the_rest():
    def body():
        x = api.placeholder(api.float32, [None, 3], name="x")
        values = api.constant([1.0, 2.0, 3.0])
        api.add(x, api.gather(values, [10, 0, 1], name="broken"), name="bad")  # index 10: fails when run
        api.add(x, api.gather(values, [2, 0, 1], name="fine"), name="good")
    before = build(body)
    after, record = run_pass("fold_constants", before, ["good:0", "bad:0"], ["x:0"])
    assert node(after, "fine").op == "Const" and node(after, "broken").op != "Const"
    assert any("broken:0" in note and "failed" in note for note in record.notes), record.notes
    assert_same_numbers(before, after, {"x:0": seeded([2, 3])}, ["good:0"])


def test_fold_constants_folds_shapes_of_static_placeholders():
    before = build(static_graph)
    shaped, _ = run_pass("set_static_shapes", before, ["out:0"], ["x:0"], static=True, max_batch=2,
                         input_shapes={"x": [None, 4, 5]})
    after, record = run_pass("fold_constants", shaped, ["out:0"], ["x:0"])
    assert ops(shaped)["Shape"] == 1 and ops(after)["Shape"] == 0 and ops(after)["Cast"] == 0
    assert record.added["Const"] >= 1
    assert_same_numbers(shaped, after, {"x:0": seeded([2, 4, 5])}, ["out:0"])


# ------------------------------------------------------------------------------------------------ fold_batch_norms

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


# ------------------------------------------------------------------------------------------------ prune_unused

def test_prune_unused_keeps_what_outputs_need_including_control_deps():
    def body():
        x = api.placeholder(api.float32, [None, 2], name="x")
        api.placeholder(api.float32, [None, 2], name="unused_input")
        api.multiply(x, 10.0, name="dead")
        marker = api.add(api.constant(1.0), api.constant(2.0), name="marker")
        with api.control_dependencies([marker]):
            api.add(x, 1.0, name="out")
    before = build(body)
    after, record = run_pass("prune_unused", before, ["out:0"], ["x:0", "unused_input:0"])
    assert not has_node(after, "dead") and has_node(after, "marker") and has_node(after, "unused_input")
    assert record.removed["Mul"] == 1 and any("unused_input" in note for note in record.notes)
    assert_same_numbers(before, after, {"x:0": seeded([2, 2])}, ["out:0"])


# ------------------------------------------------------------------------------------------------ set_static_shapes

def test_set_static_shapes_uses_max_batch_and_input_shapes():
    graph = api.Graph()
    with graph.as_default():
        static_graph()
    before = graph.as_graph_def(add_shapes=True)
    after, record = run_pass("set_static_shapes", before, ["out:0"], ["x:0"], static=True, max_batch=1,
                             input_shapes={"x:0": [None, 4, 5]})
    shape = node(after, "x").attr["shape"].shape
    assert [d.size for d in shape.dim] == [1, 4, 5]
    assert [d.size for d in node(after, "x").attr["_output_shapes"].list.shape[0].dim] == [1, 4, 5]
    assert record.applied and "[?, 4, ?] -> [1, 4, 5]" in record.notes[0]
    assert_same_numbers(before, after, {"x:0": seeded([1, 4, 5])}, ["out:0"])
    with pytest.raises(ValueError):  # TF itself now refuses another batch size
        run_graph(after, {"x:0": seeded([2, 4, 5])}, ["out:0"])


def test_set_static_shapes_names_the_unknown_dim():
    before = build(static_graph)
    with pytest.raises(BadInput) as caught:
        run_pass("set_static_shapes", before, ["out:0"], ["x:0"], static=True, max_batch=4)
    assert "placeholder 'x'" in str(caught.value) and "dim 2" in str(caught.value)
    with pytest.raises(BadInput) as caught:
        run_pass("set_static_shapes", before, ["out:0"], ["x:0"], static=True, input_shapes={"x": [None, 4, 5]})
    assert "dim 0" in str(caught.value) and "max_batch" in str(caught.value)


def test_set_static_shapes_only_when_static():
    before = build(static_graph)
    after, record = run_pass("set_static_shapes", before, ["out:0"], ["x:0"], max_batch=4)
    assert not record.applied and "static" in record.reason
    assert after == before


# ------------------------------------------------------------------------------------------------ topo_sort

def test_topo_sort_orders_a_shuffled_graph_with_a_while_loop():
    ordered = build(while_graph)
    shuffled = type(ordered)()
    shuffled.node.extend(reversed(list(ordered.node)))
    after, record = run_pass("topo_sort", shuffled, ["out:0"], ["x:0"])
    assert record.applied
    position = dict((n.name, i) for i, n in enumerate(after.node))
    for consumer in after.node:
        if consumer.op in ("Merge", "RefMerge"):
            continue  # its NextIteration input is the back edge
        assert all(position[names.node_name(i)] < position[consumer.name] for i in consumer.input), consumer.name
    assert_same_numbers(ordered, after, {"x:0": seeded([2, 4])}, ["out:0"])
    _, again = run_pass("topo_sort", after, ["out:0"], ["x:0"])
    assert not again.applied and "already" in again.reason


# ------------------------------------------------------------------------------------------------ while loops

CONTROL_FLOW_GRAPHS = {
    # graph: (builder, feeds, control-flow ops that must all survive)
    "while": (while_graph, lambda: {"x:0": seeded([2, 4])}, ("NextIteration", "LoopCond", "Enter")),
    "cond": (cond_graph, lambda: {"x:0": seeded([2, 4])}, ("Merge",)),
    "assert_guards": (debug_graph, lambda: {"x:0": seeded([2, 3])}, ()),
}


@pytest.mark.parametrize("graph_name", sorted(CONTROL_FLOW_GRAPHS))
@pytest.mark.parametrize("pass_name", list(passes.REGISTRY))
def test_every_pass_keeps_v1_control_flow_working(pass_name, graph_name):
    builder, feeds, kept_ops = CONTROL_FLOW_GRAPHS[graph_name]
    before = build(builder)
    options = dict(static=True, max_batch=2)
    after, record = run_pass(pass_name, before, ["out:0"], ["x:0"], **options)
    assert record.applied or record.reason
    for op in kept_ops:
        assert ops(after)[op] == ops(before)[op] > 0, op
    assert_same_numbers(before, after, feeds(), ["out:0"], rtol=1e-5, atol=1e-5)


def test_default_pipeline_on_a_while_loop():
    before = build(while_graph)
    context = PassContext(["out:0"], ["x:0"], dict(static=True, max_batch=2))
    after, records = passes.run_pipeline(before, passes.DEFAULT_PASSES, context)
    assert [r.name for r in records] == list(passes.DEFAULT_PASSES)
    assert node(after, "limit").op == "Const"     # folded outside the loop
    assert not has_node(after, "w/read")          # identity on the weights removed
    assert ops(after)["NextIteration"] == 2
    assert_same_numbers(before, after, {"x:0": seeded([2, 4])}, ["out:0"], rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------ registry

def test_unknown_pass_is_bad_input_listing_known_passes():
    with pytest.raises(BadInput) as caught:
        passes.parse_pass_list("strip_debug, fold_everything")
    message = str(caught.value)
    assert "fold_everything" in message and all(name in message for name in passes.REGISTRY)
    assert passes.parse_pass_list(" strip_debug,topo_sort ,") == ["strip_debug", "topo_sort"]


def test_pipeline_leaves_the_callers_graph_alone_and_checks_outputs():
    before = build(identity_graph)
    snapshot = type(before)()
    snapshot.CopyFrom(before)
    after, _ = passes.run_pipeline(before, passes.DEFAULT_PASSES, PassContext(["out:0"], ["x:0"]))
    assert before == snapshot and after != before
    with pytest.raises(BadInput) as caught:
        passes.run_pipeline(before, ["prune_unused"], PassContext(["nope:0"], ["x:0"]))
    assert "nope" in str(caught.value)


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
