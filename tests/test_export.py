"""`migrate export`, `migrate verify` and `migrate convert`: SavedModels that reload with the source's numbers."""
import json
import os

import numpy as np
import pytest

from migrate import api, artifacts, savedmodel, tfcompat, verify
from migrate.errors import BadInput, VerificationFailed


def _golden_signature(zoo_model):
    """A signature over the manifest's inputs/outputs, to call the exported SavedModel with."""
    return savedmodel.export_signatures(artifacts.load(zoo_model.path).derive(inputs=list(zoo_model.inputs)),
                                        zoo_model.outputs)


def _unknown_ops(zoo_model):
    from tests.test_freeze import _unknown_ops as unknown
    return unknown(zoo_model)


def test_zoo_model_exports_and_reloads_with_goldens(zoo_model, tmp_path):
    if _unknown_ops(zoo_model):
        pytest.skip("written by a newer TF than this one (refusal covered by test_freeze)")
    out = os.path.join(str(tmp_path), "saved")
    signatures = _golden_signature(zoo_model)
    result = api.export(zoo_model.path, out, outputs=zoo_model.outputs, inputs_npz=zoo_model.golden_path,
                        signatures=signatures)
    assert result["format"] == ("tf2" if tfcompat.is_tf2() else "tf1")
    golden = zoo_model.golden()
    feeds = dict((name, golden[name]) for name in zoo_model.inputs)
    for sig in signatures.values():
        actual = savedmodel.run_signature(out, sig, feeds)
        for tensor in sig.outputs.values():
            np.testing.assert_allclose(actual[tensor], golden[tensor], rtol=1e-4, atol=1e-5, err_msg=tensor)


def _example(value, key="x"):
    """A serialized tf.Example with one float feature (values chosen so no byte string ends in NUL)."""
    tf = tfcompat.tf()
    feature = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature={key: feature})).SerializeToString()


def test_half_plus_two_cpu_keeps_all_five_signatures(artifact, tmp_path):
    source = artifact("serving_half_plus_two_cpu")
    npz = os.path.join(str(tmp_path), "inputs.npz")
    x = np.array([[1.5], [3.25]], dtype=np.float32)
    examples = np.array([_example(1.5), _example(3.25)])
    np.savez(npz, **{"x:0": x, "x2:0": x, "tf_example:0": examples})
    out = os.path.join(str(tmp_path), "saved")
    result = api.export(source, out, inputs_npz=npz)
    assert result["signatures"] == ["classify_x_to_y", "regress_x2_to_y3", "regress_x_to_y", "regress_x_to_y2",
                                    "serving_default"]
    model = artifacts.load(source)
    y = savedmodel.run_signature(out, model.signatures["serving_default"], {"x:0": x})["y:0"]
    np.testing.assert_allclose(y, 0.5 * x + 2.0)
    y3 = savedmodel.run_signature(out, model.signatures["regress_x2_to_y3"], {"x2:0": x})["y3:0"]
    np.testing.assert_allclose(y3, 0.5 * x + 3.0)
    scores = savedmodel.run_signature(out, model.signatures["classify_x_to_y"], {"tf_example:0": examples})["y:0"]
    np.testing.assert_allclose(scores, 0.5 * x + 2.0)
    for name, rows in result["comparisons"].items():
        assert all(row.ok for row in rows), name


def test_mkl_resource_variables_export(artifact, tmp_path):
    source = artifact("serving_half_plus_two_mkl")
    npz = os.path.join(str(tmp_path), "inputs.npz")
    x = np.array([[1.5], [3.25]], dtype=np.float32)
    np.savez(npz, **{"x:0": x, "x2:0": x, "tf_example:0": np.array([_example(1.5), _example(3.25)])})
    out = os.path.join(str(tmp_path), "saved")
    result = api.export(source, out, inputs_npz=npz, signature="serving_default")
    assert result["signatures"] == ["serving_default"]
    assert all(row.ok for row in result["comparisons"]["serving_default"])


def test_regression_three_formats_export_alike(artifact, tmp_path):
    root = artifact("tf2onnx_regression_3formats")
    npz = os.path.join(str(tmp_path), "x.npz")
    x = np.linspace(-2, 3, 7).astype(np.float32)
    np.savez(npz, **{"X:0": x})
    values = []
    for kind in ("checkpoint", "graphdef/frozen.pb", "saved_model"):
        out = os.path.join(str(tmp_path), kind.replace("/", "_"))
        api.export(os.path.join(root, kind), out, outputs=["pred"], inputs_npz=npz,
                   signature="serving_default" if kind == "saved_model" else None)
        sig = list(savedmodel.export_signatures(artifacts.load(os.path.join(root, "graphdef/frozen.pb")),
                                                ["pred:0"]).values())[0]
        values.append(savedmodel.run_signature(out, sig, {"X:0": x})["pred:0"])
    np.testing.assert_allclose(values[0], values[1], rtol=1e-6)
    np.testing.assert_allclose(values[2], values[1], rtol=1e-6)


def test_format_choice(artifact, tmp_path):
    """TF 1.x refuses tf2 in one line naming the way out; TF 2.x also writes tf1 and reloads it."""
    source = artifact("tf2onnx_fc-layers/frozen.pb")
    out = os.path.join(str(tmp_path), "s")
    if not tfcompat.is_tf2():
        with pytest.raises(BadInput) as error:
            api.export(source, out, fmt="tf2")
        assert "--format tf1" in str(error.value) and not os.path.exists(out)
        return
    result = api.export(source, out, fmt="tf1", outputs=["output"], batch=3)
    assert result["format"] == "tf1" and os.path.isfile(os.path.join(out, "saved_model.pb"))
    assert all(row.ok for row in result["comparisons"]["serving_default"])


def _planted(source, target, delta):
    """Copy a frozen graph with one weight changed by delta."""
    model = artifacts.load(source)
    from migrate.graph import edit
    for node in model.graph_def.node:
        if node.op == "Const" and node.attr["value"].tensor.tensor_content:
            value = edit.const_value(node).copy()
            value.reshape(-1)[0] += delta
            edit.make_const(node, value, tfcompat.tf().as_dtype(node.attr["dtype"].type))
            break
    with open(target, "wb") as handle:
        handle.write(model.graph_def.SerializeToString())


def test_verify_catches_a_planted_difference(artifact, tmp_path, run_cli):
    source = artifact("tf2onnx_fc-layers/frozen.pb")
    same = os.path.join(str(tmp_path), "same.pb")
    changed = os.path.join(str(tmp_path), "changed.pb")
    _planted(source, same, 0.0)
    _planted(source, changed, 0.5)
    code, out, err = run_cli("verify", source, same, "--outputs", "output", "--batch", "4")
    assert code == 0, err
    assert "OK   output:0 shape=[4, 10]" in out and "max_abs_err=0 " in out
    code, out, err = run_cli("verify", source, changed, "--outputs", "output", "--batch", "4")
    assert code == 1
    assert "FAIL output:0" in out and "outputs differ" in err


@pytest.mark.zoo("mlp", "rnn", "resource_vars", "partitioned")
def test_verify_checkpoint_against_its_frozen_graph(zoo_model, tmp_path, run_cli):
    frozen = os.path.join(str(tmp_path), "frozen.pb")
    api.freeze(zoo_model.path, frozen, outputs=zoo_model.outputs, inputs_npz=zoo_model.golden_path)
    rows, notes = api.verify_artifacts(zoo_model.path, frozen, outputs=zoo_model.outputs,
                                       inputs_npz=zoo_model.golden_path)
    assert [row.output for row in rows] == sorted(zoo_model.outputs)
    assert all(row.ok for row in rows)


@pytest.mark.zoo("cnn_bn", "lookup", "rnn", "partitioned")
def test_convert_end_to_end(zoo_model, tmp_path):
    if _unknown_ops(zoo_model):
        pytest.skip("written by a newer TF than this one (refusal covered by test_freeze)")
    out = os.path.join(str(tmp_path), "out")
    summary = api.convert(zoo_model.path, out, outputs=zoo_model.outputs, inputs_npz=zoo_model.golden_path,
                          trt={"require_trt": False}, static=False)
    assert sorted(os.listdir(out)) == [".migrate-output", "frozen.pb", "optimized.pb", "report.json", "saved_model"]
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["nodes"]["optimized"] <= report["nodes"]["frozen"] < report["nodes"]["source"]
    status = tfcompat.trt_status()
    assert report["tf_trt"]["engines"] == 0 and report["tf_trt"]["generation"] == status.generation
    golden = zoo_model.golden()
    feeds = dict((name, golden[name]) for name in zoo_model.inputs)
    for sig in _golden_signature(zoo_model).values():
        actual = savedmodel.run_signature(os.path.join(out, "saved_model"), sig, feeds)
        for tensor in sig.outputs.values():
            np.testing.assert_allclose(actual[tensor], golden[tensor], rtol=1e-4, atol=1e-5, err_msg=tensor)
    assert summary["steps"]["verify"]
