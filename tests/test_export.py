"""`migrate export`, `migrate verify` and `migrate convert`: SavedModels that reload with the source's numbers."""
import json
import os

import numpy as np
import pytest

from migrate import api, artifacts, savedmodel, tfcompat, verify
from migrate.verification import runners
from migrate.errors import BadInput, VerificationFailed
from tests.conftest import assert_compared
from tests.test_freeze import _unknown_ops, assert_refused


def _golden_signature(zoo_model):
    """A signature over the manifest's inputs/outputs, to call the exported SavedModel with."""
    return savedmodel.export_signatures(artifacts.load(zoo_model.path).derive(inputs=list(zoo_model.inputs)),
                                        zoo_model.outputs)


def test_zoo_model_exports_and_reloads_with_goldens(zoo_model, tmp_path, run_cli):
    out = os.path.join(str(tmp_path), "saved")
    unknown = _unknown_ops(zoo_model)
    if unknown:  # written by a newer TF than this one: one line naming the ops, nothing written
        assert_refused(run_cli, "export", zoo_model, out, unknown, "--outputs", ",".join(zoo_model.outputs))
        return
    signatures = _golden_signature(zoo_model)
    result = api.export(zoo_model.path, out, outputs=zoo_model.outputs, inputs_npz=zoo_model.golden_path,
                        signatures=signatures)
    assert result.format == ("tf2" if tfcompat.is_tf2() else "tf1")
    assert sorted(result.comparisons) == sorted(signatures)
    for name, sig in signatures.items():
        assert_compared(result.comparisons[name], sig.outputs.values())
    golden = zoo_model.golden()
    feeds = dict((name, golden[name]) for name in zoo_model.inputs)
    for sig in signatures.values():
        actual = runners.run_signature(out, sig, feeds)
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
    assert result.signatures == ["classify_x_to_y", "regress_x2_to_y3", "regress_x_to_y", "regress_x_to_y2",
                                    "serving_default"]
    model = artifacts.load(source)
    y = runners.run_signature(out, model.signatures["serving_default"], {"x:0": x})["y:0"]
    np.testing.assert_allclose(y, 0.5 * x + 2.0)
    y3 = runners.run_signature(out, model.signatures["regress_x2_to_y3"], {"x2:0": x})["y3:0"]
    np.testing.assert_allclose(y3, 0.5 * x + 3.0)
    scores = runners.run_signature(out, model.signatures["classify_x_to_y"], {"tf_example:0": examples})["y:0"]
    np.testing.assert_allclose(scores, 0.5 * x + 2.0)
    assert sorted(result.comparisons) == result.signatures
    for name, rows in result.comparisons.items():
        assert_compared(rows, model.signatures[name].outputs.values())


def test_mkl_resource_variables_export(artifact, tmp_path):
    source = artifact("serving_half_plus_two_mkl")
    npz = os.path.join(str(tmp_path), "inputs.npz")
    x = np.array([[1.5], [3.25]], dtype=np.float32)
    np.savez(npz, **{"x:0": x, "x2:0": x, "tf_example:0": np.array([_example(1.5), _example(3.25)])})
    out = os.path.join(str(tmp_path), "saved")
    result = api.export(source, out, inputs_npz=npz, signature="serving_default")
    assert result.signatures == ["serving_default"]
    assert_compared(result.comparisons["serving_default"], ["y:0"])


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
        values.append(runners.run_signature(out, sig, {"X:0": x})["pred:0"])
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
    assert result.format == "tf1" and os.path.isfile(os.path.join(out, "saved_model.pb"))
    assert_compared(result.comparisons["serving_default"], ["output:0"])


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
    assert_compared(rows, zoo_model.outputs)


@pytest.mark.zoo("cnn_bn", "lookup", "rnn", "partitioned")
def test_convert_end_to_end(zoo_model, tmp_path, run_cli):
    out = os.path.join(str(tmp_path), "out")
    unknown = _unknown_ops(zoo_model)
    if unknown:  # written by a newer TF than this one: one line naming the ops, nothing written
        assert_refused(run_cli, "convert", zoo_model, out, unknown, "--outputs", ",".join(zoo_model.outputs))
        return
    summary = api.convert(zoo_model.path, out, outputs=zoo_model.outputs, inputs_npz=zoo_model.golden_path,
                          trt={"require_trt": False}, static=False)
    assert sorted(os.listdir(out)) == [".migrate-output", "frozen.pb", "optimized.pb", "report.json", "saved_model"]
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["nodes"]["optimized"] <= report["nodes"]["frozen"] < report["nodes"]["source"]
    status = tfcompat.trt_status()  # what `migrate env` reports decides what TF-TRT must have done here
    assert report["tf_trt"]["generation"] == status.generation
    assert (report["tf_trt"]["engines"] > 0) == status.usable, (report["tf_trt"], status.reason)
    if not status.usable:  # no engine: the report says what TF-TRT would have built (migrate plan)
        assert report["tf_trt_plan"]["tf_trt"] and report["tf_trt_plan"]["engines"] >= 0
        assert (zoo_model.name == "rnn") == ("while_loop" in [b["kind"] for b in report["tf_trt_plan"]["blockers"]])
    for step in ("freeze", "optimize"):
        assert report["steps"][step]["verification"], step
    assert report["steps"]["verify"] and all(report["steps"]["verify"].values())
    golden = zoo_model.golden()
    feeds = dict((name, golden[name]) for name in zoo_model.inputs)
    for sig in _golden_signature(zoo_model).values():
        actual = runners.run_signature(os.path.join(out, "saved_model"), sig, feeds)
        for tensor in sig.outputs.values():
            np.testing.assert_allclose(actual[tensor], golden[tensor], rtol=1e-4, atol=1e-5, err_msg=tensor)
    assert summary.report["steps"]["verify"] and summary.out_dir == out and sorted(summary.verification) == sorted(
        summary.report["steps"]["verify"])
