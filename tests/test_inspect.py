"""`migrate inspect` on every real third-party artifact and on every zoo model old TF wrote."""
import json
import os

import pytest

from migrate import inspect_model


def _inspect(path, **kwargs):
    return json.loads(json.dumps(inspect_model.inspect(path, **kwargs)))


def test_half_plus_two_cpu_has_five_signatures(artifact):
    report = _inspect(artifact("serving_half_plus_two_cpu"))
    assert report["kind"] == "saved_model"
    assert report["written_by_tf"] == "1.14.0"
    assert sorted(report["signatures"]) == ["classify_x_to_y", "regress_x2_to_y3", "regress_x_to_y",
                                           "regress_x_to_y2", "serving_default"]
    assert report["signatures"]["serving_default"] == {
        "method": "tensorflow/serving/predict", "inputs": {"x": "x:0"}, "outputs": {"y": "y:0"}}
    assert report["signatures"]["classify_x_to_y"]["method"] == "tensorflow/serving/classify"
    assert report["variables"]["count"] == 5
    assert os.path.basename(report["assets"]["Const:0"]) == "foo.txt"


def test_two_versions_picks_newest_and_says_so(artifact):
    report = _inspect(artifact("serving_half_plus_two_2_versions"))
    assert report["resolved"].endswith("00000124")
    assert report["written_by_tf"] == "1.1.0-rc2"
    assert any("00000124" in note for note in report["notes"])
    assert len(report["signatures"]) == 6


def test_mkl_mixes_ref_and_resource_variables(artifact):
    report = _inspect(artifact("serving_half_plus_two_mkl"))
    assert report["care"]["variables"] == ["VarHandleOp", "VariableV2"]
    assert report["op_histogram"]["VarHandleOp"] == 6


def test_counter_signatures_have_side_effects_and_no_inputs(artifact):
    report = _inspect(artifact("serving_counter"))
    assert report["signatures"]["get_counter"]["inputs"] == {}
    assert report["signatures"]["incr_counter"]["outputs"] == {"output": "incr_counter_op/AssignAdd:0"}
    assert "AssignAdd" in report["care"]["training_only"]


def test_matrix_half_plus_two_has_no_variables(artifact):
    report = _inspect(artifact("serving_matrix_half_plus_two"))
    assert report["variables"]["where"] == "constants in the graph"
    assert report["placeholders"] == [{"name": "x", "op": "Placeholder", "dtype": "float32", "shape": [None, 3, 3]}]


def test_v1_checkpoint_from_2016(artifact):
    report = _inspect(artifact("nxt_v1_ckpt"))
    assert report["kind"] == "checkpoint"
    assert report["resolved"].endswith("model.ckpt")
    shapes = {p["name"]: p["shape"] for p in report["placeholders"]}
    assert shapes == {"Placeholder": [32, 4], "Placeholder_1": [32, 2]}
    assert report["variables"]["count"] == 14  # weights + Adam slots
    assert "SaveSlices" in report["care"]["unsafe"]
    assert "ApplyAdam" in report["care"]["training_only"]


@pytest.mark.parametrize("bundle,signatures,version", [
    ("serving_session_bundles_v1/half_plus_two_0.12_sharded_v1", {"default", "serving_default"}, "0.12.head"),
    ("serving_half_plus_two_v2ckpt_bundle", {"regress", "serving_default"}, "0.12.head"),
    ("serving_session_bundles_v1/half_plus_two_2016_v1ckpt", {"serving_default"}, None),
    ("serving_bad_half_plus_two", set(), None),
])
def test_session_bundles(artifact, bundle, signatures, version):
    report = _inspect(artifact(bundle))
    assert report["kind"] == "session_bundle"
    assert set(report["signatures"]) == signatures
    assert report["written_by_tf"] == version
    assert report["variables"]["count"] == 2


def test_session_bundle_generic_signature_maps_x_to_y(artifact):
    report = _inspect(artifact("serving_session_bundles_v1/half_plus_two_2016_v1ckpt"))
    assert report["signatures"]["serving_default"]["inputs"] == {"x": "Placeholder:0"}
    assert report["signatures"]["serving_default"]["outputs"] == {"y": "Add:0"}


def test_regression_three_formats_agree_on_facts(artifact):
    root = artifact("tf2onnx_regression_3formats")
    ckpt = _inspect(os.path.join(root, "checkpoint"))
    frozen = _inspect(os.path.join(root, "graphdef", "frozen.pb"))
    saved = _inspect(os.path.join(root, "saved_model"))
    assert (ckpt["kind"], frozen["kind"], saved["kind"]) == ("checkpoint", "frozen_graph", "saved_model")
    assert ckpt["written_by_tf"] == saved["written_by_tf"] == "1.11.0"
    assert ckpt["variables"]["count"] == saved["variables"]["count"] == 2
    assert frozen["variables"]["count"] == 2 and frozen["likely_outputs"][0]["name"] == "pred"
    assert saved["signatures"]["serving_default"]["outputs"] == {"pred": "pred:0"}


def test_keyword_spotting_graph_with_v1_while_loops(artifact):
    report = _inspect(artifact("arm_kws_frozen/LSTM_S.pb"))
    assert report["placeholders"][0]["name"] == "wav_data"
    assert report["placeholders"][0]["dtype"] == "string"
    assert report["likely_outputs"][0]["name"] == "labels_softmax"
    assert {"Enter", "Exit", "Merge", "NextIteration", "Switch", "LoopCond"} <= set(
        report["care"]["v1_control_flow"])
    assert "DecodeWav" in report["op_histogram"]


def test_ds_cnn_batch_norms_counted(artifact):
    report = _inspect(artifact("arm_kws_frozen/DS_CNN_S.pb"))
    assert report["op_histogram"]["FusedBatchNorm"] == 9
    assert report["op_histogram"]["DepthwiseConv2dNative"] == 4


def test_directory_with_several_graphs_names_them(artifact, run_cli):
    code, out, err = run_cli("inspect", artifact("arm_kws_frozen"))
    assert code == 2
    assert "4 graph files" in err and "DS_CNN_S.pb" in err and "Traceback" not in err


def test_quantized_graph(artifact):
    report = _inspect(artifact("utensor_cifar10_cnn/quant_mnist.pb"))
    assert report["op_histogram"]["QuantizedMatMul"] == 3
    assert report["variables"]["dtypes"]["quint8"] == 3
    assert report["likely_outputs"][0]["name"] == "y_pred"


def test_redundant_signature_inputs(artifact):
    report = _inspect(artifact("tf2onnx_saved_model_with_redundant_inputs"))
    assert report["signatures"]["serving_default"]["inputs"] == {"x": "Placeholder:0", "y": "Placeholder_1:0"}


# The folders of ../shared/legacy_artifacts the suite relies on (SOURCES.md lists where each comes from).
SHARED_FOLDERS = [
    "arm_kws_frozen", "nxt_v1_ckpt", "serving_bad_half_plus_two", "serving_counter",
    "serving_half_plus_two_2_versions", "serving_half_plus_two_cpu", "serving_half_plus_two_mkl",
    "serving_half_plus_two_v2ckpt_bundle", "serving_matrix_half_plus_two", "serving_session_bundles_v1",
    "tf2onnx_ae0", "tf2onnx_fc-layers", "tf2onnx_gru", "tf2onnx_lstm", "tf2onnx_regression_3formats",
    "tf2onnx_saved_model_with_redundant_inputs", "utensor_cifar10_cnn",
]


def test_every_shared_artifact_inspects(shared_dir, artifact):
    """Every folder (or, for folders of several graphs, every graph) gives a report, no error; an empty or
    partial mirror fails, naming what is missing."""
    folders = sorted(name for name in os.listdir(shared_dir) if os.path.isdir(os.path.join(shared_dir, name)))
    missing = sorted(set(SHARED_FOLDERS) - set(folders))
    assert not missing, "shared artifacts missing from {}: {}".format(shared_dir, ", ".join(missing))
    inspected = []
    for name in folders:
        path = os.path.join(shared_dir, name)
        if not os.path.isdir(path):
            continue
        targets = [path]
        graphs = [f for f in os.listdir(path) if f.endswith(".pb")]
        if len(graphs) > 1:
            targets = [os.path.join(path, g) for g in graphs]
        elif name in ("serving_session_bundles_v1", "tf2onnx_regression_3formats"):
            targets = [os.path.join(path, d) for d in os.listdir(path)]
        for target in targets:
            report = inspect_model.inspect(target)
            assert report["nodes"] > 0, target
            inspected.append(name)
    assert set(inspected) >= set(SHARED_FOLDERS)


def test_zoo_model_inspects(zoo_model):
    report = _inspect(zoo_model.path)
    placeholders = {p["name"] + ":0": p for p in report["placeholders"]}
    components = dict((c["tensor"], c) for b in report["input_pipeline"]["boundaries"] for c in b["components"])
    for tensor, spec in zoo_model.inputs.items():
        if tensor in components:  # data enters through a queue / iterator: flagged, nothing to feed
            assert components[tensor]["dtype"] == spec["dtype"]
            assert report["input_pipeline"]["no_feedable_inputs"] is True
            assert report["care"]["input_pipeline"]
            continue
        assert tensor in placeholders, (tensor, sorted(placeholders))
        assert placeholders[tensor]["dtype"] == spec["dtype"]
    if not components:
        assert report["input_pipeline"]["no_feedable_inputs"] is False
    # a bare GraphDef carries no TF version (only its producer number)
    assert report["written_by_tf"] == zoo_model.tf_version or zoo_model.kind in ("estimator", "frozen_graph")
    if zoo_model.signature:
        assert zoo_model.signature in report["signatures"]
    assert report["variables"]["count"] > 0


def test_cli_inspect_json(artifact, run_cli):
    code, out, err = run_cli("inspect", "--json", artifact("serving_matrix_half_plus_two"))
    assert code == 0, err
    assert json.loads(out)["signatures"]["serving_default"]["outputs"] == {"y": "y:0"}
