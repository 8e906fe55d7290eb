"""Each verification must run what was written and fail when it differs: a planted difference proves it.

MIGRATE_TEST_PLANT=STAGE (migrate/io.py, test-only) makes the writer of freeze, optimize or export move every
value of the largest float weight it writes. The command must then see the difference, exit 1, print the FAIL
row, say so in one stderr line, and leave nothing at the output; without the plant the same command passes
(so the plant, not something else, is what it caught). A verification that compared the expected values with
themselves, ran the graph in memory instead of the file, or compared nothing would let these pass: they fail.
"""
import os

import numpy as np
import pytest

from migrate import io, tfcompat, verify
from migrate.verification import compare as comparison
from tests.conftest import assert_compared


def _leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith("."))


def _planted_run(monkeypatch, run_cli, stage, args, output):
    """(code, out, err) of `migrate ARGS` with the difference planted in `stage`'s writer."""
    monkeypatch.setenv(io.PLANT_ENV, stage)
    try:
        return run_cli(*args)
    finally:
        monkeypatch.delenv(io.PLANT_ENV)


def _assert_caught(result, output, message):
    code, out, err = result
    assert code == 1, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert not os.path.exists(output), "a planted difference was written"
    assert _leftovers(os.path.dirname(output)) == []


def _fc_layers(artifact, tmp_path):
    source = artifact("tf2onnx_fc-layers/frozen.pb")
    out_dir = os.path.join(str(tmp_path), "out")
    os.makedirs(out_dir)
    return source, out_dir


@pytest.mark.zoo("mlp", "partitioned")  # mlp streams its weights; partitioned takes the session path
def test_freeze_catches_a_planted_difference(zoo_model, tmp_path, run_cli, monkeypatch):
    out_dir = os.path.join(str(tmp_path), "out")
    os.makedirs(out_dir)
    out = os.path.join(out_dir, "frozen.pb")
    args = ["freeze", zoo_model.path, "-o", out, "--outputs", ",".join(zoo_model.outputs),
            "--inputs-npz", zoo_model.golden_path]
    result = _planted_run(monkeypatch, run_cli, "freeze", args, out)
    _assert_caught(result, out, "outputs differ beyond tolerance")
    assert "FAIL" in result[1]
    code, stdout, err = run_cli(*args)
    assert code == 0, err
    assert "FAIL" not in stdout and os.path.isfile(out)


@pytest.mark.parametrize("flags", [[], ["--no-trt"], ["--no-trt", "-o-text"]],
                         ids=["tf-trt-path", "file-against-file", "text-output"])
def test_optimize_catches_a_planted_difference(artifact, tmp_path, run_cli, monkeypatch, flags):
    """Every way optimize verifies (after TF-TRT, file against file, a text output) runs the written file."""
    source, out_dir = _fc_layers(artifact, tmp_path)
    out = os.path.join(out_dir, "optimized.pbtxt" if "-o-text" in flags else "optimized.pb")
    args = ["optimize", source, "-o", out, "--outputs", "output", "--batch", "4"] + [
        flag for flag in flags if flag != "-o-text"]
    result = _planted_run(monkeypatch, run_cli, "optimize", args, out)
    _assert_caught(result, out, "outputs differ beyond tolerance")
    assert "FAIL output:0" in result[1]
    code, stdout, err = run_cli(*args)
    assert code == 0, err
    assert "OK   output:0" in stdout and os.path.isfile(out)


@pytest.mark.parametrize("fmt", ["tf1", "tf2"] if tfcompat.is_tf2() else ["tf1"])  # TF 1.x refuses tf2
def test_export_catches_a_planted_difference(artifact, tmp_path, run_cli, monkeypatch, fmt):
    source, out_dir = _fc_layers(artifact, tmp_path)
    out = os.path.join(out_dir, "saved")
    args = ["export", source, "-o", out, "--format", fmt, "--outputs", "output", "--batch", "4"]
    result = _planted_run(monkeypatch, run_cli, "export", args, out)
    _assert_caught(result, out, "reloaded SavedModel differs from the source")
    assert "FAIL output:0" in result[1]
    code, stdout, err = run_cli(*args)
    assert code == 0, err
    assert "OK   output:0" in stdout and os.path.isfile(os.path.join(out, "saved_model.pb"))


@pytest.mark.zoo("mlp")
@pytest.mark.parametrize("stage,message", [
    ("freeze", "freeze changed the outputs"),
    ("optimize", "optimize changed the outputs"),
    ("export", "exported SavedModel differs from the source"),  # caught by convert's own final check
])
def test_convert_catches_a_planted_difference_at_every_step(zoo_model, tmp_path, run_cli, monkeypatch, stage,
                                                             message):
    out = os.path.join(str(tmp_path), "converted")
    args = ["convert", zoo_model.path, out, "--outputs", ",".join(zoo_model.outputs), "--inputs-npz",
            zoo_model.golden_path]
    result = _planted_run(monkeypatch, run_cli, stage, args, out)
    _assert_caught(result, out, message)
    assert "FAIL" in result[1]


@pytest.mark.zoo("mlp")
def test_convert_without_a_plant_passes(zoo_model, tmp_path, run_cli):
    out = os.path.join(str(tmp_path), "converted")
    code, stdout, err = run_cli("convert", zoo_model.path, out, "--outputs", ",".join(zoo_model.outputs),
                                "--inputs-npz", zoo_model.golden_path)
    assert code == 0, err
    assert "FAIL" not in stdout and os.path.isfile(os.path.join(out, "report.json"))


def test_the_plant_moves_every_value_of_the_largest_float_weight():
    value = np.zeros((2, 3), np.float32)
    moved = io.plant_value(value)
    assert moved.dtype == np.float32 and moved.shape == (2, 3)
    assert moved.reshape(-1).tolist() == [0.5, 0.75, 1.0, 0.5, 0.75, 1.0]
    assert io.planted_weight({"small": ("float32", 3), "big": ("float32", 12), "ints": ("int32", 99)}) == "big"
    assert io.planted_weight({"ints": ("int64", 4)}) is None


# ------------------------------------------------------------------------------------------ empty comparisons

def test_a_comparison_of_nothing_is_never_ok():
    assert verify.compare({}, {}) == []
    assert verify.all_ok([]) is False
    assert verify.failed_outputs([]) == ["no outputs were compared"]
    rows = verify.compare({"y:0": np.ones(3)}, {"y:0": np.ones(3)})
    assert verify.all_ok(rows) and [row.output for row in rows] == ["y:0"]


def test_verify_refuses_an_empty_comparison(monkeypatch, artifact, tmp_path, run_cli):
    """If the comparator compared nothing (here: forced to), the command fails instead of passing."""
    source, out_dir = _fc_layers(artifact, tmp_path)
    out = os.path.join(out_dir, "optimized.pb")
    monkeypatch.setattr(comparison, "compare", lambda *args, **kwargs: [])  # the one compare every check uses
    code, stdout, err = run_cli("optimize", source, "-o", out, "--outputs", "output", "--no-trt")
    assert code == 1 and "no outputs were compared" in err, err
    assert not os.path.exists(out)


# ------------------------------------------------------------------------------------------ TF-TRT flags

def test_require_trt_follows_the_probe(artifact, tmp_path, run_cli):
    """--require-trt: exit 3 and nothing written where `migrate env` says TensorRT is not usable; engines
    where it is."""
    source, out_dir = _fc_layers(artifact, tmp_path)
    out = os.path.join(out_dir, "optimized.pb")
    status = tfcompat.trt_status()
    code, stdout, err = run_cli("optimize", source, "-o", out, "--outputs", "output", "--require-trt")
    if status.usable:
        assert code == 0, err
        assert "0 TRTEngineOp" not in stdout and os.path.isfile(out)
        return
    assert code == 3, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--require-trt: no TensorRT engines were built" in lines[0], err
    assert not os.path.exists(out) and _leftovers(out_dir) == []


@pytest.mark.parametrize("verb", ["optimize", "convert"])
def test_require_trt_with_no_trt_is_a_contradiction(artifact, tmp_path, run_cli, verb):
    source, out_dir = _fc_layers(artifact, tmp_path)
    out = os.path.join(out_dir, "result")
    args = [verb, source] + (["-o", out] if verb == "optimize" else [out]) + ["--outputs", "output",
                                                                             "--require-trt", "--no-trt"]
    code, stdout, err = run_cli(*args)
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--require-trt and --no-trt contradict each other" in lines[0], err
    assert lines[0].startswith("migrate: error: ") and "Traceback" not in err
    assert not os.path.exists(out) and os.listdir(out_dir) == []


def test_assert_compared_refuses_empty_and_unnamed_rows():
    rows = verify.compare({"y:0": np.ones(2)}, {"y:0": np.ones(2)})
    assert_compared(rows, ["y"])
    with pytest.raises(AssertionError):
        assert_compared([], ["y"])
    with pytest.raises(AssertionError):
        assert_compared(rows, ["z"])
