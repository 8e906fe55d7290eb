"""Outputs that read random ops (opsets.RANDOM_OPS): a dropout fed keep_prob < 1 draws new values on every run,
so the two sides of a verification differ however faithful the conversion. The FAIL line (and the error line of
a verb that writes) says which random op the output reads and which switch turns the dropout off; never OK on a
mismatch. A seeded op draws the same in every session of the same graph: equal by construction, fine."""
import os

import numpy as np
import pytest

from migrate import artifacts, opsets
from migrate.verification import randomness

GRU_RANDOM = "model/dropout/random_uniform/RandomUniform"


def _gru_inputs(tmp_path, keep_prob):
    path = os.path.join(str(tmp_path), "inputs.npz")
    values = {"X:0": np.random.RandomState(3).rand(2, 28, 28).astype(np.float32)}
    if keep_prob is not None:
        values["keep_prob:0"] = np.float32(keep_prob)
    np.savez(path, **values)
    return path


def test_unseeded_dropout_mismatch_names_the_random_op_and_the_switch(artifact, tmp_path, run_cli):
    """tf2onnx's GRU (a real third-party frozen graph): an unseeded RandomUniform behind a dropout whose keep_prob
    is a placeholder (unknown rank). Fed 0.5, two runs of the same graph differ in every element."""
    source = artifact("tf2onnx_gru/frozen.pb")
    code, out, err = run_cli("verify", source, source, "--inputs-npz", _gru_inputs(tmp_path, 0.5))
    assert code == 1, err
    fail = [line for line in out.splitlines() if line.strip().startswith("FAIL output:0")]
    assert len(fail) == 1 and "mismatch=100.00%" in fail[0], out
    assert fail[0].endswith(": differs because {} (RandomUniform, unseeded) is random: pass --set keep_prob=1.0 "
                            "to turn the dropout off, or seed the random ops".format(GRU_RANDOM)), fail[0]
    assert "OK   output:0" not in out
    code, out, err = run_cli("verify", source, source, "--inputs-npz", _gru_inputs(tmp_path, None), "--set",
                             "keep_prob=1.0")  # the suggested switch: the same graph matches itself exactly
    assert code == 0, err
    assert "OK   output:0 shape=[2, 10] dtype=float32 max_abs_err=0 " in out


def test_optimize_refusal_names_the_random_op_and_writes_nothing(artifact, tmp_path, run_cli):
    source = artifact("tf2onnx_gru/frozen.pb")
    with open(source, "rb") as handle:
        before = handle.read()
    out = os.path.join(str(tmp_path), "o.pb")
    code, stdout, err = run_cli("optimize", source, "-o", out, "--no-trt", "--inputs-npz",
                                _gru_inputs(tmp_path, 0.5))
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("migrate: error: {}: outputs differ beyond tolerance: output:0; nothing written "
                           "(differs because {} (RandomUniform, unseeded) is random: pass --set keep_prob=1.0"
                           .format(source, GRU_RANDOM)), line
    assert not os.path.exists(out)
    with open(source, "rb") as handle:
        assert handle.read() == before
    # with the switch it names, optimize verifies and writes: test_optimize's test_placeholder_without_shape_...


def test_explain_finds_only_random_ancestors(artifact):
    graph_def = artifacts.load(artifact("tf2onnx_gru/frozen.pb")).graph_def
    assert sum(1 for n in graph_def.node if n.op in opsets.RANDOM_OPS) == 1
    reasons = randomness.explain(graph_def, ["output:0", "model/rnn/gru_cell/add_27:0"])
    assert sorted(reasons) == ["output:0"]  # the GRU's last state is upstream of the dropout
    assert GRU_RANDOM in reasons["output:0"]


@pytest.mark.zoo("dropout")
def test_seeded_dropout_of_old_tf(zoo_model, tmp_path, run_cli):
    """The zoo's dropout (tf.nn.dropout(keep_prob=placeholder), written by TF 1.7 as keep_prob + uniform -> Floor,
    by TF 1.15 as uniform >= 1 - keep_prob) is built under a graph seed: its RandomUniform is seeded, so the
    same graph draws the same mask in every session (equal by construction, OK at keep_prob 0.5); against the
    optimized graph of `--set keep_prob=1.0` it differs, and the line names the seeded op and the switch."""
    model = artifacts.load(zoo_model.path)
    random = [n for n in model.graph_def.node if n.op in opsets.RANDOM_OPS and n.name.startswith("dropout/")]
    assert [n.op for n in random] == ["RandomUniform"] and randomness._seeded(random[0])  # (+ initializers)
    nodes = dict((n.name, n) for n in model.graph_def.node)
    assert randomness.dropout_switches(model.graph_def, nodes, [random[0].name]) == {"keep_prob": 1.0}
    golden = zoo_model.golden()
    inputs = os.path.join(str(tmp_path), "half.npz")
    np.savez(inputs, **{"x:0": golden["x:0"], "keep_prob:0": np.float32(0.5)})
    code, out, err = run_cli("verify", zoo_model.path, zoo_model.path, "--inputs-npz", inputs)
    assert code == 0, err
    assert "OK   probabilities:0 shape=[5, 3]" in out
    optimized = os.path.join(str(tmp_path), "optimized.pb")
    code, out, err = run_cli("optimize", zoo_model.path, "-o", optimized, "--no-trt", "--set", "keep_prob=1.0")
    assert code == 0, err
    code, out, err = run_cli("verify", zoo_model.path, optimized, "--inputs-npz", inputs)
    assert code == 1, err
    fail = [line for line in out.splitlines() if "FAIL probabilities:0" in line]
    assert len(fail) == 1 and fail[0].endswith(
        ": differs and reads seeded random op(s) {} (RandomUniform, seeded) (a changed graph draws differently): "
        "pass --set keep_prob=1.0 to turn the dropout off, or seed the random ops".format(random[0].name)), out
    code, out, err = run_cli("verify", zoo_model.path, optimized, "--inputs-npz", inputs, "--set", "keep_prob=1.0")
    assert code == 0, err
    assert "OK   probabilities:0 shape=[5, 3]" in out
    np.testing.assert_allclose(_run(optimized, golden), golden["probabilities:0"], rtol=1e-5, atol=1e-6)


@pytest.mark.zoo("dropout")
def test_export_with_set_drops_the_switch_from_the_signature(zoo_model, tmp_path, run_cli):
    """`export --set keep_prob=1.0` of the zoo dropout checkpoint: keep_prob is a constant in the export, not a
    signature input (it used to stay one, fed a generated value on the reloaded side: 100% mismatch). A TF1
    SavedModel keeps the graph as it is: there --set is refused in one line."""
    from migrate import savedmodel
    out = os.path.join(str(tmp_path), "exported")
    code, stdout, err = run_cli("export", zoo_model.path, "-o", out, "--set", "keep_prob=1.0")
    if savedmodel.default_format() == "tf1":
        assert code == 2 and "--set with --format tf1" in err and not os.path.exists(out), err
        return
    assert code == 0, err
    sig = artifacts.load(out).signatures["serving_default"]
    assert sorted(sig.inputs) == ["x"]  # keys; a TF2 export's tensors are serving_default_x:0
    code, stdout, err = run_cli("verify", zoo_model.path, out, "--set", "keep_prob=1.0")
    assert code == 0, err
    assert "OK   probabilities:0" in stdout


def _run(path, golden):
    from migrate import verify
    return verify.run_model(artifacts.load(path), ["probabilities:0"], {"x:0": golden["x:0"]})["probabilities:0"]
