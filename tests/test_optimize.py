"""`migrate optimize`: the default pass pipeline keeps every number, on zoo models and real frozen graphs."""
import io as _io
import os
import wave

import numpy as np
import pytest

from migrate import api, artifacts, verify
from tests.conftest import assert_compared


def _wav_bytes(seconds=1.0, rate=16000, seed=0):
    """A real 16 kHz mono WAV (what the keyword-spotting graphs decode), a chirp plus noise."""
    rng = np.random.RandomState(seed)
    t = np.arange(int(seconds * rate)) / float(rate)
    signal = 0.3 * np.sin(2 * np.pi * (300 + 900 * t) * t) + 0.05 * rng.standard_normal(t.shape)
    signal[-1] = 0.5  # numpy 'S' arrays drop trailing NUL bytes: end on a non-zero sample
    buffer = _io.BytesIO()
    writer = wave.open(buffer, "wb")
    writer.setnchannels(1)
    writer.setsampwidth(2)
    writer.setframerate(rate)
    writer.writeframes((signal * 32767).astype("<i2").tobytes())
    writer.close()
    return buffer.getvalue()


def _optimize_and_compare(source, tmp_path, feeds, outputs, **kwargs):
    npz = os.path.join(str(tmp_path), "inputs.npz")
    np.savez(npz, **feeds)
    out = os.path.join(str(tmp_path), "optimized.pb")
    result = api.optimize(source, out, outputs=outputs, inputs_npz=npz, **kwargs)
    assert_compared(result.comparisons, outputs)
    expected = verify.run_model(artifacts.load(source), result.outputs, feeds)
    actual = verify.run_model(artifacts.load(out), result.outputs, feeds)
    for name in result.outputs:
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-4, atol=1e-5, err_msg=name)
    return result, artifacts.load(out).graph_def


def _ops(graph_def):
    from collections import Counter
    return Counter(node.op for node in graph_def.node)


@pytest.mark.parametrize("graph", ["DS_CNN_S.pb", "LSTM_S.pb", "GRU_S.pb", "CRNN_S.pb"])
def test_keyword_spotting_graphs(artifact, tmp_path, graph):
    source = artifact("arm_kws_frozen/" + graph)
    feeds = {"wav_data:0": np.array(_wav_bytes())}  # dtype S: an npz needs no pickle for it
    result, optimized = _optimize_and_compare(source, tmp_path, feeds, ["labels_softmax"])
    before = _ops(artifacts.load(source).graph_def)
    after = _ops(optimized)
    assert after["Identity"] < before["Identity"]
    if graph == "DS_CNN_S.pb":
        assert before["FusedBatchNorm"] == 9
        assert after["FusedBatchNorm"] < before["FusedBatchNorm"]  # folded into conv weights
    else:  # while loops survive every pass
        assert after["NextIteration"] == before["NextIteration"] > 0


@pytest.mark.parametrize("name", ["tf2onnx_gru", "tf2onnx_lstm", "tf2onnx_ae0", "tf2onnx_fc-layers"])
def test_tf2onnx_frozen_graphs(artifact, tmp_path, name):
    source = artifact(name + "/frozen.pb")
    model = artifacts.load(source)
    rng = np.random.RandomState(1)
    feeds = {}
    for node in model.graph_def.node:
        if node.op == "Placeholder":
            feeds[node.name + ":0"] = (np.float32(1.0) if node.name == "keep_prob"
                                       else rng.rand(2, 784).astype(np.float32))
    result, optimized = _optimize_and_compare(source, tmp_path, feeds, ["output"])
    assert len(optimized.node) < len(model.graph_def.node)



def test_placeholder_without_shape_attr_is_unknown_rank(artifact, tmp_path, run_cli):
    """tf2onnx's test graphs (like graphs written before TF 1.0 or with default attrs stripped) have Placeholders
    with no `shape` attr: unknown rank, the op's default. Generated inputs are refused in one line naming the
    input and the flag (reading the missing attr used to add an empty shape and feed a scalar, failing inside
    the run), the source is untouched, and with the shapes given the graph optimizes and matches."""
    source = artifact("tf2onnx_gru/frozen.pb")
    with open(source, "rb") as handle:
        before = handle.read()
    assert "shape" not in [n for n in artifacts.load(source).graph_def.node if n.name == "X"][0].attr
    out = os.path.join(str(tmp_path), "o.pb")
    code, _, err = run_cli("optimize", source, "-o", out, "--no-trt")
    assert code == 2, err
    assert err.strip().splitlines()[-1] == (
        "migrate: error: input X:0 has unknown rank; cannot generate values (give its shape: --static "
        "--input-shape X:d1,d2,... (empty = a scalar), or pass --inputs-npz with a value for it)")
    assert not os.path.exists(out)
    with open(source, "rb") as handle:
        assert handle.read() == before
    code, stdout, err = run_cli("optimize", source, "-o", out, "--no-trt", "--static", "--max-batch", "2",
                                "--input-shape", "X:2,28,28", "--set", "keep_prob=1.0")
    assert code == 0, err
    assert "OK   output:0 shape=[2, 10]" in stdout

def test_cifar_cnn_static(artifact, tmp_path):
    source = artifact("utensor_cifar10_cnn/cifar10_cnn.pb")
    x = np.random.RandomState(2).rand(1, 32, 32, 3).astype(np.float32)
    result, optimized = _optimize_and_compare(source, tmp_path, {"Placeholder:0": x}, ["pred"], static=True,
                                              max_batch=1)
    placeholder = [n for n in optimized.node if n.op == "Placeholder"][0]
    assert [d.size for d in placeholder.attr["shape"].shape.dim] == [1, 32, 32, 3]


def test_zoo_model_optimizes_and_matches_goldens(zoo_model, tmp_path, run_cli):
    from tests.test_freeze import _unknown_ops, assert_refused
    unknown = _unknown_ops(zoo_model)
    if unknown:  # written by a newer TF than this one: one line naming the ops, nothing written
        assert_refused(run_cli, "optimize", zoo_model, os.path.join(str(tmp_path), "o.pb"), unknown, "--outputs",
                       ",".join(zoo_model.outputs))
        return
    golden = zoo_model.golden()
    feeds = dict((name, golden[name]) for name in zoo_model.inputs)
    frozen = os.path.join(str(tmp_path), "frozen.pb")
    if zoo_model.kind == "frozen_graph":
        frozen = zoo_model.path
    else:
        api.freeze(zoo_model.path, frozen, outputs=zoo_model.outputs, inputs_npz=zoo_model.golden_path)
    result, optimized = _optimize_and_compare(frozen, tmp_path, feeds, zoo_model.outputs)
    actual = verify.run_model(artifacts.load(os.path.join(str(tmp_path), "optimized.pb")), zoo_model.outputs,
                              feeds)
    for name in zoo_model.outputs:
        np.testing.assert_allclose(actual[name], golden[name], rtol=1e-4, atol=1e-5, err_msg=name)
    assert not {"Assert", "CheckNumerics"} & set(_ops(optimized))


def test_unknown_pass_is_bad_input(artifact, tmp_path, run_cli):
    source = artifact("tf2onnx_fc-layers/frozen.pb")
    code, _, err = run_cli("optimize", source, "-o", os.path.join(str(tmp_path), "o.pb"), "--passes",
                           "strip_debug,fold_everything")
    assert code == 2 and "fold_everything" in err and "strip_debug" in err


def test_report_json(artifact, tmp_path, run_cli):
    import json
    source = artifact("tf2onnx_fc-layers/frozen.pb")
    report = os.path.join(str(tmp_path), "report.json")
    code, out, err = run_cli("optimize", source, "-o", os.path.join(str(tmp_path), "o.pb"), "--static",
                             "--max-batch", "4", "--report", report)
    assert code == 0, err
    data = json.load(open(report))
    assert [p["name"] for p in data["passes"]][0] == "strip_debug"
    assert data["nodes_after"] < data["nodes_before"]
    assert [(row["output"], row["ok"], row["shape"]) for row in data["verification"]] == [("output:0", True, [4, 10])]
