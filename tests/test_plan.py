"""`migrate plan`: per-generation converter tables, the classification of real graphs, coverage of the conv nets,
v1 while loops as blockers, static shapes against TF's own inference, and the CLI's contract (text, --json,
--dot, exit 2 in one line)."""
import json
import os
import re

import pytest
from tensorflow.core.framework import graph_pb2, types_pb2

from migrate import api, artifacts, planning, tfcompat
from migrate.graph.view import topological_order, to_digraph
from migrate.planning import shapes as shapes_mod, tables

GENERATIONS = list(tables.GENERATIONS)
FLOAT, INT32 = types_pb2.DT_FLOAT, types_pb2.DT_INT32


# ------------------------------------------------------------------------------------ hand-built GraphDefs

class Builder(object):
    """A frozen GraphDef built node by node (ops any TF generation may lack, e.g. AddV2 in TF 1.7)."""

    def __init__(self):
        self.graph_def = graph_pb2.GraphDef()

    def placeholder(self, name, shape, dtype=FLOAT):
        node = self.add(name, "Placeholder", [], dtype=dtype)
        node.attr["shape"].shape.SetInParent()  # [] is a scalar, not an unknown rank
        for dim in shape:
            node.attr["shape"].shape.dim.add().size = dim
        return name

    def const(self, name, shape, dtype=FLOAT, values=None):
        node = self.add(name, "Const", [], dtype=dtype)
        tensor = node.attr["value"].tensor
        tensor.dtype = dtype
        for dim in shape:
            tensor.tensor_shape.dim.add().size = dim
        if values is not None:
            (tensor.int_val if dtype == INT32 else tensor.float_val).extend(values)
        return name

    def add(self, name, op, inputs, dtype=FLOAT, **attrs):
        node = self.graph_def.node.add()
        node.name, node.op = name, op
        node.input.extend(inputs)
        node.attr["dtype" if op in ("Placeholder", "Const") else "T"].type = dtype
        for key, value in attrs.items():
            if isinstance(value, bool):
                node.attr[key].b = value
            elif isinstance(value, bytes):
                node.attr[key].s = value
            elif isinstance(value, list):
                node.attr[key].list.i.extend(value)
            else:
                node.attr[key].i = value
        return node


def decision(graph_def, name, generation, outputs=("out",), **options):
    options["tf_trt"] = generation
    result = planning.plan(graph_def, list(outputs), options)
    return result["nodes"][name], result


def op_graph(op, dtype=FLOAT, extra=None, shape=(8, 16)):
    """x -> op(x[, extra]) -> Identity 'out': the op under test fed by a rank-2 tensor."""
    b = Builder()
    b.placeholder("x", list(shape), dtype)
    inputs = ["x"] + ([extra(b)] if extra else [])
    b.add("target", op, inputs, dtype)
    b.add("out", "Identity", ["target"], dtype)
    return b.graph_def


def _weights(b):
    return b.const("w", [16, 4])


def _second_tensor(b):
    return b.placeholder("y", [8, 16])


# What the tables say each generation does with an op, read from the TF sources (tables.py names the files):
# (graph, node, {generation: (convertible, reason code)}).
DIFFERENCES = [
    ("MatMul with constant weights", lambda: op_graph("MatMul", extra=_weights), "target", {
        "contrib-1.7": (False, "no_converter"), "contrib-1.10": (True, None), "contrib-1.13": (True, None),
        "converter-v1": (True, None), "converter-v2": (True, None)}),
    ("MatMul of two tensors", lambda: op_graph("MatMul", extra=lambda b: b.placeholder("y", [16, 4])), "target", {
        "contrib-1.13": (False, "attribute"), "converter-v1": (True, None), "converter-v2": (True, None)}),
    ("Sigmoid", lambda: op_graph("Sigmoid"), "target", {
        "contrib-1.7": (False, "no_converter"), "contrib-1.10": (False, "no_converter"),
        "contrib-1.13": (True, None), "converter-v2": (True, None)}),
    ("LeakyRelu", lambda: op_graph("LeakyRelu"), "target", {
        "contrib-1.13": (False, "no_converter"), "converter-v1": (True, None), "converter-v2": (True, None)}),
    ("AddV2", lambda: op_graph("AddV2", extra=_second_tensor), "target", {
        "contrib-1.13": (False, "no_converter"), "converter-v1": (False, "no_converter"),
        "converter-v2": (True, None)}),
    ("int32 Add", lambda: op_graph("Add", INT32, extra=lambda b: b.placeholder("y", [8, 16], INT32)), "target", {
        "contrib-1.7": (True, None),               # TF 1.7 looks at op types only
        "contrib-1.13": (True, None),              # ConvertDType of 1.13 maps int32; no per-op dtype list yet
        "converter-v1": (False, "dtype"),          # AllowDataTypes float/half in 1.14/1.15's ConvertBinary
        "converter-v2": (True, None)}),            # ops/binary_ops.cc: float, half, int32
    ("int32 Relu", lambda: op_graph("Relu", INT32), "target", {
        "converter-v1": (False, "dtype"), "converter-v2": (False, "dtype")}),
    ("Softmax over a rank-1 input", lambda: op_graph("Softmax", shape=(16,)), "target", {
        "contrib-1.13": (False, "shape"), "converter-v1": (False, "shape"), "converter-v2": (False, "shape")}),
]


@pytest.mark.parametrize("case", DIFFERENCES, ids=[c[0] for c in DIFFERENCES])
def test_ops_known_to_differ_between_generations(case):
    _, build, name, expected = case
    graph_def = build()
    for generation, (convertible, code) in expected.items():
        entry, _ = decision(graph_def, name, generation)
        assert (entry["convertible"], entry["reason"]) == (convertible, code), (generation, entry)


def test_every_table_entry_names_its_source():
    for generation in tables.GENERATIONS.values():
        assert generation["segment_source"]
        for op, entry in generation["ops"].items():
            assert entry["provenance"] in (tables.READ, tables.RECALLED), (generation["name"], op)
            assert entry["source"].startswith("tensorflow/"), (generation["name"], op)
    assert tables.describe()["converter-v2"]["ops"]["AddV2"]["provenance"] == tables.READ


def test_versions_map_to_generations():
    assert [planning.generation_for(v)["name"] for v in ("1.7", "1.8.0", "1.10", "1.12", "1.13.2", "1.14", "1.15",
                                                          "2.12", "2.17.1", "2.21")] == [
        "contrib-1.7", "contrib-1.7", "contrib-1.10", "contrib-1.13", "contrib-1.13", "converter-v1",
        "converter-v1", "converter-v2", "converter-v2", "converter-v2"]
    assert planning.generation_for(None) is tables.for_version(tfcompat.version())


def _conv_graph(filter_as_tensor=False, dilations=None, is_training=False):
    b = Builder()
    b.placeholder("x", [4, 16, 16, 3])
    weights = b.placeholder("k", [3, 3, 3, 8]) if filter_as_tensor else b.const("k", [3, 3, 3, 8])
    b.add("conv", "Conv2D", ["x", weights], strides=[1, 1, 1, 1], padding=b"SAME", data_format=b"NHWC",
          dilations=dilations or [1, 1, 1, 1])
    for name in ("scale", "offset", "mean", "var"):
        b.const(name, [8])
    b.add("bn", "FusedBatchNorm", ["conv", "scale", "offset", "mean", "var"], is_training=is_training,
          data_format=b"NHWC")
    b.add("relu", "Relu", ["bn"])
    b.add("out", "Identity", ["relu"])
    return b.graph_def


def test_attribute_validators():
    for generation in ("contrib-1.13", "converter-v1", "converter-v2"):
        entry, result = decision(_conv_graph(), "conv", generation)
        assert entry["convertible"] and result["engines"] == 1
        assert decision(_conv_graph(filter_as_tensor=True), "conv", generation)[0]["reason"] == "attribute"
        assert "batch or channel" in decision(_conv_graph(dilations=[2, 1, 1, 1]), "conv", generation)[0]["why"]
        assert decision(_conv_graph(is_training=True), "bn", generation)[0]["reason"] == "attribute"
    # TF 1.7 had no validators: the same nodes are candidates there (and fail later, at engine build)
    assert decision(_conv_graph(filter_as_tensor=True), "conv", "contrib-1.7")[0]["convertible"]


def test_flops_of_the_conv():
    _, result = decision(_conv_graph(), "conv", "converter-v2")
    conv = 2 * 4 * 16 * 16 * 8 * 3 * 3 * 3  # 2 * N*H*W*Cout * Kh*Kw*Cin
    elementwise = 4 * 16 * 16 * 8
    assert result["coverage"]["flops_total"] == conv + 2 * elementwise + elementwise
    assert result["coverage"]["flops"] == 100.0
    assert result["segments"][0]["inputs"] == [{"tensor": "x:0", "shape": [4, 16, 16, 3]}]
    assert result["segments"][0]["outputs"] == [{"tensor": "relu:0", "shape": [4, 16, 16, 8]}]


def test_identity_counts_towards_the_size_only_before_2x():
    b = Builder()
    b.placeholder("x", [8, 16])
    b.add("relu", "Relu", ["x"])
    b.add("id1", "Identity", ["relu"])
    b.add("tanh", "Tanh", ["id1"])
    b.add("stop", "CheckNumerics", ["tanh"], message=b"m")
    b.add("out", "Identity", ["stop"])
    assert decision(b.graph_def, "relu", "converter-v1")[1]["engines"] == 1   # relu, id1, tanh: 3 nodes
    v2 = decision(b.graph_def, "relu", "converter-v2")[1]
    assert v2["engines"] == 0 and v2["dropped_segments"][0]["size"] == 3      # only 2 count in 2.x
    assert v2["blockers"][0]["kind"] == "small_segment"
    assert "lower --minimum-segment-size" in v2["blockers"][0]["suggestion"]
    assert decision(b.graph_def, "relu", "converter-v2", minimum_segment_size=2)[1]["engines"] == 1


def test_v2_keeps_only_the_20_largest_engines():
    b = Builder()
    previous = b.placeholder("x", [8, 4])
    for index in range(25):  # Relu -> Tanh -> Identity -> CheckNumerics (no converter: cuts the chain)
        b.add("relu{}".format(index), "Relu", [previous])
        b.add("tanh{}".format(index), "Tanh", ["relu{}".format(index)])
        b.add("id{}".format(index), "Identity", ["tanh{}".format(index)])
        previous = b.add("check{}".format(index), "CheckNumerics", ["id{}".format(index)], message=b"m").name
    b.add("out", "Identity", [previous])
    v2 = planning.plan(b.graph_def, ["out"], {"tf_trt": "2.15"})
    assert v2["engines"] == 0 and v2["blockers"][0]["kind"] == "small_segment"  # Identity does not count
    v2 = planning.plan(b.graph_def, ["out"], {"tf_trt": "2.15", "minimum_segment_size": 2})
    assert v2["engines"] == 20 and len(v2["dropped_segments"]) == 5
    assert "max_engines" in [b["kind"] for b in v2["blockers"]]
    v1 = planning.plan(b.graph_def, ["out"], {"tf_trt": "1.15"})
    assert v1["engines"] == 25  # Identity counts and there is no engine cap before 2.x
    assert v1["blockers"][0]["op"] == "CheckNumerics" and "strip_debug" in v1["blockers"][0]["suggestion"]


def test_scalar_inputs_in_implicit_batch():
    """1.x refuses non-constant inputs of rank < 2, 2.x only scalars (ValidateTensorProperties)."""
    b = Builder()
    b.placeholder("x", [8])
    b.placeholder("s", [])
    b.add("mul", "Mul", ["x", "s"])
    b.add("out", "Identity", ["mul"])
    assert decision(b.graph_def, "mul", "converter-v1")[0]["reason"] == "shape"
    assert decision(b.graph_def, "mul", "converter-v2")[0]["reason"] == "shape"
    assert decision(b.graph_def, "mul", "converter-v2", dynamic=True)[0]["convertible"]


def test_deny_ops_and_outputs():
    entry, result = decision(_conv_graph(), "relu", "converter-v2", deny_ops=["Relu"])
    assert entry["reason"] == "deny_ops" and result["engines"] == 1  # conv + bn still form one
    entry, _ = decision(_conv_graph(), "relu", "converter-v2", outputs=["relu"])
    assert entry["reason"] == "output"


def test_unknown_shapes_block_static_engines_and_implicit_batch():
    b = Builder()
    b.placeholder("x", [-1, -1, 16])
    b.add("relu", "Relu", ["x"])
    b.add("tanh", "Tanh", ["relu"])
    b.add("sig", "Sigmoid", ["tanh"])
    b.add("out", "Identity", ["sig"])
    v2 = decision(b.graph_def, "relu", "converter-v2")[0]
    assert v2["reason"] == "dynamic_shape"
    assert decision(b.graph_def, "relu", "converter-v2", dynamic=True)[0]["convertible"]
    v1 = decision(b.graph_def, "relu", "converter-v1")[1]
    assert v1["engines"] == 0 and not v1["segments"][0]["buildable"]
    assert v1["blockers"][0]["kind"] == "static_build"
    assert decision(b.graph_def, "relu", "converter-v1", dynamic=True)[1]["engines"] == 1


def test_bad_generation_is_bad_input():
    from migrate.errors import BadInput
    with pytest.raises(BadInput) as caught:
        planning.plan(_conv_graph(), ["out"], {"tf_trt": "1.5"})
    assert "--tf-trt" in caught.value.line()


# ------------------------------------------------------------------------------------- real models

def _plans(path, outputs=None, signature=None, **kwargs):
    """The plan of every generation for one artifact: api.plan once (frozen + passes), planning.plan for the
    other generations on the same graph."""
    planned = api.plan(path, outputs=outputs, signature=signature, **kwargs)
    result, graph_def = planned.plan, planned.graph_def
    json.dumps(result)
    plans = {result["tf_trt"]: result}
    for generation in GENERATIONS:
        if generation not in plans:
            plans[generation] = planning.plan(graph_def, planned.outputs, {
                "tf_trt": generation, "max_batch": kwargs.get("max_batch")})
    for plan in plans.values():
        assert plan["engines"] == sum(1 for s in plan["segments"] if s["buildable"])
        for value in (plan["coverage"]["nodes"], plan["coverage"]["flops"]):
            assert value is None or 0 <= value <= 100
        assert len(plan["nodes"]) == len(graph_def.node)
    return plans, graph_def


def test_zoo_model_gets_a_plan(zoo_model, run_cli):
    from tests.test_freeze import _unknown_ops
    unknown = _unknown_ops(zoo_model)
    if unknown and zoo_model.kind != "frozen_graph":  # freezing needs TF to run ops it lacks: one line, exit 2
        code, out, err = run_cli("plan", zoo_model.path, "--outputs", ",".join(zoo_model.outputs))
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert all(op in lines[0] for op in unknown), (lines[0], unknown)
        return
    # A frozen graph is planned from its GraphDef alone: ops or attrs this TF lacks do not matter
    plans, graph_def = _plans(zoo_model.path, outputs=zoo_model.outputs, signature=zoo_model.signature)
    loops = "tf1_while_loop" in zoo_model.entry.get("features", ())
    for plan in plans.values():
        kinds = [b["kind"] for b in plan["blockers"]]
        assert ("while_loop" in kinds) == loops, (plan["tf_trt"], kinds)
        if loops:
            assert plan["blockers"][kinds.index("while_loop")]["suggestion"].startswith("v1 while loops")
    if zoo_model.name == "cnn_bn":
        from migrate.options import ShapeOptions, TrtOptions
        static, _ = _plans(zoo_model.path, outputs=zoo_model.outputs, options=(
            ShapeOptions(static=True, max_batch=8), TrtOptions(precision="FP32")))
        for name, plan in static.items():
            assert plan["engines"] >= 1 and plan["coverage"]["flops"] > 50, (name, plan["coverage"])


@pytest.mark.parametrize("name", ["DS_CNN_S.pb", "LSTM_S.pb", "GRU_S.pb", "CRNN_S.pb"])
def test_keyword_spotting_graphs(artifact, name):
    plans, _ = _plans(artifact("arm_kws_frozen/" + name), static=True, max_batch=1)
    for generation, plan in plans.items():
        kinds = [b["kind"] for b in plan["blockers"]]
        if name == "DS_CNN_S.pb":  # the conv net: DecodeWav/Mfcc stay in TF, the convs go to one engine
            assert plan["engines"] >= 1 and plan["coverage"]["flops"] > 50, (generation, plan["coverage"])
            assert "while_loop" not in kinds
        else:
            assert "while_loop" in kinds, (generation, kinds)


def test_cifar_cnn(artifact):
    plans, _ = _plans(artifact("utensor_cifar10_cnn/cifar10_cnn.pb"), static=True, max_batch=1)
    for generation, plan in plans.items():
        assert plan["engines"] >= 1 and plan["coverage"]["flops"] > 50, (generation, plan["coverage"])


SHARED = ["nxt_v1_ckpt", "serving_half_plus_two_cpu", "serving_session_bundles_v1/half_plus_two_2016_v1ckpt",
          "serving_session_bundles_v1/half_plus_two_0.12_sharded_v1", "serving_bad_half_plus_two",
          "serving_counter", "serving_half_plus_two_2_versions", "serving_half_plus_two_mkl",
          "serving_half_plus_two_v2ckpt_bundle", "serving_matrix_half_plus_two", "tf2onnx_ae0/frozen.pb",
          "tf2onnx_fc-layers/frozen.pb", "tf2onnx_gru/frozen.pb", "tf2onnx_lstm/frozen.pb",
          "tf2onnx_regression_3formats/checkpoint", "tf2onnx_regression_3formats/graphdef/frozen.pb",
          "tf2onnx_regression_3formats/saved_model", "tf2onnx_saved_model_with_redundant_inputs",
          "utensor_cifar10_cnn/quant_mnist.pb"]


@pytest.mark.parametrize("relative", SHARED)
def test_every_real_artifact_gets_a_plan(artifact, relative):
    plans, graph_def = _plans(artifact(relative))
    assert set(plans) == set(GENERATIONS)


# Share of the tensors TF knows the rank of that the sweep knows too (measured on TF 2.21: 97-100%, CRNN 74%:
# its loop's TensorArray ops and the audio ops are not modelled).
KNOWN_SHARE = {"tf2onnx_gru/frozen.pb": 0.95, "tf2onnx_lstm/frozen.pb": 0.95, "arm_kws_frozen/CRNN_S.pb": 0.7,
               "arm_kws_frozen/DS_CNN_S.pb": 0.9, "utensor_cifar10_cnn/cifar10_cnn.pb": 1.0}


@pytest.mark.parametrize("relative", sorted(KNOWN_SHARE))
def test_static_shapes_agree_with_tensorflow(artifact, relative):
    """Every shape the sweep knows is what TF's own shape inference says (dims TF knows)."""
    graph_def = artifacts.load(artifact(relative)).graph_def
    ours = shapes_mod.infer(graph_def, topological_order(to_digraph(graph_def)))
    v1 = tfcompat.v1()
    graph = v1.Graph()
    with graph.as_default():
        v1.import_graph_def(graph_def, name="")
    known_to_tf = matched = 0
    for operation in graph.get_operations():
        for index, tensor in enumerate(operation.outputs):
            theirs = tensor.shape
            mine = ours.of((operation.name, index))
            if theirs.ndims is None:
                continue
            known_to_tf += 1
            if mine is None:
                continue
            matched += 1
            theirs = theirs.as_list()
            assert len(mine) == len(theirs), (operation.name, mine, theirs)
            for a, b in zip(mine, theirs):
                assert a < 0 or b is None or a == b, (operation.name, mine, theirs)
    assert matched >= KNOWN_SHARE[relative] * known_to_tf, (matched, known_to_tf)


# --------------------------------------------------------------------------------------------------- CLI

def test_cli_text_json_dot(artifact, run_cli, tmp_path):
    source = artifact("utensor_cifar10_cnn/cifar10_cnn.pb")
    code, out, err = run_cli("plan", source, "--tf-trt", "1.15", "--static", "--max-batch", "2")
    assert code == 0, err
    assert "TF-TRT converter-v1 (TrtGraphConverter, TF 1.14-1.15), FP32, implicit batch" in out
    assert "  #  nodes     FLOPs  ops" in out and "blockers" in out
    dot = os.path.join(str(tmp_path), "plan.dot")
    code, out, err = run_cli("plan", source, "--json", "--tf-trt", "2.15", "--dot", dot, "--static")
    assert code == 0, err
    data = json.loads(out)
    assert data["tf_trt"] == "converter-v2" and data["engines"] >= 1
    assert data["segments"][0]["inputs"][0]["shape"] == [1, 32, 32, 3]
    with open(dot) as handle:
        text = handle.read()
    assert text.startswith("digraph plan {") and "->" in text and "fillcolor" in text
    code, _, err = run_cli("plan", source, "--dot", dot)  # an existing output: refused without --force
    assert code == 2 and "--force" in err and len(err.strip().splitlines()) == 1
    assert run_cli("plan", source, "--dot", dot, "--force", "--tf-trt", "1.7")[0] == 0
    with open(dot) as handle:
        assert handle.read() != text


@pytest.mark.parametrize("args, where", [
    (["--tf-trt", "1.2"], "--tf-trt"),
    (["--tf-trt", "banana"], "--tf-trt"),
    (["--minimum-segment-size", "0"], "--minimum-segment-size"),
    (["--precision", "FP8"], "--precision"),
])
def test_cli_bad_input_is_one_line(artifact, run_cli, args, where):
    code, out, err = run_cli("plan", artifact("tf2onnx_fc-layers/frozen.pb"), *args)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("migrate: error: ") and where in lines[0], err


def test_cli_missing_source(run_cli, tmp_path):
    code, _, err = run_cli("plan", os.path.join(str(tmp_path), "nope.pb"))
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_optimize_reports_the_plan_where_tensorrt_is_missing(artifact, tmp_path):
    status = tfcompat.trt_status()
    if status.usable:  # pragma: no cover - a GPU machine builds real engines instead
        pytest.skip("TensorRT is usable here: optimize builds engines, no plan line")
    lines = []
    out = os.path.join(str(tmp_path), "o.pb")
    result = api.optimize(artifact("utensor_cifar10_cnn/cifar10_cnn.pb"), out, static=True, max_batch=1,
                          trt={"max_batch": 1, "static": True}, verify_result=False, progress=lines.append)
    plan_lines = [line for line in lines if line.startswith("with TensorRT, TF-TRT ")]
    assert len(plan_lines) == 1, lines
    expected = planning.summary_line(result["trt_plan"])
    assert plan_lines[0] == expected
    assert result["trt_plan"]["engines"] >= 1
    assert re.match(r"with TensorRT, TF-TRT [\w.-]+ would build \d+ engines? covering \d+\.\d% of FLOPs", expected)
    from migrate import report
    assert report.optimize_report("src", out, result)["tf_trt_plan"]["engines"] == result["trt_plan"]["engines"]
