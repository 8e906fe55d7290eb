"""migrate batch: a folder of zoo models, real third-party artifacts, a broken file and a model that hangs; each
converted by a real `python -m migrate convert` process, the summary read back, --resume redoing only what failed."""
import csv
import json
import os
import shutil

import pytest

from tests.conftest import ZOO_ROOT, _missing, zoo_manifests

HANG_TIMEOUT = 30  # s: far above a small model's conversion (2-8 s on a loaded 2-core machine), far below the hang


def _zoo_dir(name):
    for zoo, manifest, directory in zoo_manifests():
        if zoo == name and manifest.get("models"):
            return directory
    _missing("zoo {} not found under {} (run `tox -e {}` or set MIGRATE_ZOO_ROOT)".format(name, ZOO_ROOT, name))


def _copy(source, target):
    (shutil.copytree if os.path.isdir(source) else shutil.copy)(source, target)


@pytest.fixture
def models(tmp_path, artifact):
    """DIR of the batch: zoo models TF 1.7 wrote, real artifacts, a broken graph file, and hang.pb (a real
    frozen graph whose conversion sleeps while MIGRATE_TEST_HANG names it)."""
    zoo = _zoo_dir("zoo-tf1.7")
    root = os.path.join(str(tmp_path), "models")
    os.makedirs(os.path.join(root, "zoo"))
    _copy(os.path.join(zoo, "mlp"), os.path.join(root, "zoo", "mlp"))  # checkpoint directory
    _copy(os.path.join(zoo, "lookup", "saved_model"), os.path.join(root, "zoo", "lookup"))  # SavedModel + assets
    os.makedirs(os.path.join(root, "real"))
    _copy(artifact("nxt_v1_ckpt"), os.path.join(root, "real", "nxt_v1_ckpt"))  # V1 checkpoint, TF 0.12
    _copy(artifact("serving_matrix_half_plus_two"), os.path.join(root, "real", "matrix"))  # TF Serving base dir
    _copy(artifact("tf2onnx_regression_3formats/graphdef/frozen.pb"), os.path.join(root, "real", "regression.pb"))
    _copy(artifact("tf2onnx_fc-layers/frozen.pb"), os.path.join(root, "hang.pb"))
    with open(os.path.join(root, "broken.pb"), "wb") as handle:
        handle.write(b"\x0a\xff\xff\xff\x0fnot a graph")
    return root


EXPECTED = {  # model -> (status, kind as each convert report / detection says)
    "broken.pb": ("bad input", "frozen_graph"),
    "hang.pb": ("timed out", "frozen_graph"),
    "real/matrix": ("converted", "saved_model"),
    "real/nxt_v1_ckpt": ("converted", "checkpoint"),
    "real/regression.pb": ("bad input", "frozen_graph"),
    "zoo/lookup": ("converted", "saved_model"),
    "zoo/mlp": ("converted", "checkpoint"),
}


def _summary(out_dir):
    with open(os.path.join(out_dir, "summary.json")) as handle:
        summary = json.load(handle)
    with open(os.path.join(out_dir, "summary.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert [row["model"] for row in rows] == [row["model"] for row in summary["models"]]
    assert [row["status"] for row in rows] == [row["status"] for row in summary["models"]]
    return summary, dict((row["model"], row) for row in summary["models"])


def test_batch_summary_timeout_and_resume(models, tmp_path, run_cli, monkeypatch):
    from migrate.artifacts import read_graph_def
    out_dir = os.path.join(str(tmp_path), "out")
    monkeypatch.setenv("MIGRATE_TEST_HANG", "hang.pb")
    code, out, err = run_cli("batch", models, "-o", out_dir, "-j", "2", "--timeout", HANG_TIMEOUT, "--no-trt")
    summary, rows = _summary(out_dir)
    assert sorted(rows) == sorted(EXPECTED), out
    assert dict((name, (row["status"], row["kind"])) for name, row in rows.items()) == EXPECTED, out
    assert code == 2 and summary["exit_code"] == 2  # bad input (and a deadline passed) in the batch
    assert "not a valid GraphDef" in rows["broken.pb"]["reason"]
    assert "X:0 has unknown rank" in rows["real/regression.pb"]["reason"]
    assert "--timeout {}".format(HANG_TIMEOUT) in rows["hang.pb"]["reason"]
    for name in ("broken.pb", "hang.pb", "real/regression.pb"):  # a failed convert writes nothing
        assert not os.path.exists(os.path.join(out_dir, rows[name]["output"])), name
    # converted models: what each report.json says, the outputs beside it
    mlp, nxt, matrix = rows["zoo/mlp"], rows["real/nxt_v1_ckpt"], rows["real/matrix"]
    assert mlp["written_by_tf"] == "1.7.1" and mlp["outputs"] == ["probabilities:0"]
    assert mlp["how_outputs"].startswith("inferred")
    assert matrix["written_by_tf"] == "1.2.0-rc2" and matrix["how_outputs"].startswith("signature")
    assert nxt["outputs"] == ["Relu_1:0"]
    for row in (mlp, nxt, matrix, rows["zoo/lookup"]):
        assert row["max_abs_err"] is not None and row["max_abs_err"] <= 1e-5, row
        assert row["tf_trt"] == "not requested (--no-trt)" and row["tf_trt_plan"] == "-"  # nothing planned
        for name, count in (("frozen.pb", row["nodes_frozen"]), ("optimized.pb", row["nodes_optimized"])):
            assert len(read_graph_def(os.path.join(out_dir, row["output"], name)).node) == count, (row, name)
        assert os.path.isdir(os.path.join(out_dir, row["output"], "saved_model"))
    assert "matrix" in out and "7 model(s)" in out  # the text table
    assert not [name for name in os.listdir(out_dir) if name.endswith(".tmp")]  # the killed convert left nothing
    optimized_before = mlp["nodes_optimized"]
    converted_at = os.path.getmtime(os.path.join(out_dir, "zoo", "mlp", "report.json"))

    monkeypatch.delenv("MIGRATE_TEST_HANG")  # hang.pb converts now: --resume redoes only the failed ones
    code, out, err = run_cli("batch", models, "-o", out_dir, "-j", "2", "--resume", "--no-trt")
    summary, rows = _summary(out_dir)
    resumed = dict((name, row["status"]) for name, row in rows.items())
    assert resumed == {"broken.pb": "bad input", "hang.pb": "converted", "real/matrix": "converted earlier",
                       "real/nxt_v1_ckpt": "converted earlier", "real/regression.pb": "bad input",
                       "zoo/lookup": "converted earlier", "zoo/mlp": "converted earlier"}, out
    assert os.path.getmtime(os.path.join(out_dir, "zoo", "mlp", "report.json")) == converted_at
    assert rows["zoo/mlp"]["nodes_optimized"] == optimized_before  # read back from the earlier report
    assert rows["hang.pb"]["outputs"] == ["output:0"] and code == 2


def test_batch_plan_column(tmp_path, run_cli):
    """Without --no-trt and without TensorRT (every machine here), each model's row says what TF-TRT would build
    (the plan convert's report.json records): the same engines and coverage `planning.plan` gives on the written
    optimized.pb, in summary.json, summary.csv and the text table; '-' where nothing was planned (bad input)."""
    from migrate import planning
    from migrate.artifacts import read_graph_def
    zoo = _zoo_dir("zoo-tf1.7")
    root = os.path.join(str(tmp_path), "models")
    os.makedirs(root)
    _copy(os.path.join(zoo, "cnn_bn"), os.path.join(root, "cnn_bn"))
    with open(os.path.join(root, "broken.pb"), "wb") as handle:
        handle.write(b"\x0a\xff\xff\xff\x0fnot a graph")
    out_dir = os.path.join(str(tmp_path), "out")
    code, out, err = run_cli("batch", root, "-o", out_dir)
    summary, rows = _summary(out_dir)
    assert code == 2 and rows["cnn_bn"]["status"] == "converted" and rows["broken.pb"]["status"] == "bad input", out
    optimized = os.path.join(out_dir, rows["cnn_bn"]["output"], "optimized.pb")
    plan = planning.plan(read_graph_def(optimized), rows["cnn_bn"]["outputs"], {})
    assert plan["engines"] >= 1 and plan["coverage"]["flops"] > 50  # a conv net: mostly in engines
    expected = "{}: {}".format(plan["tf_trt"], planning.engines_line(plan))
    assert rows["cnn_bn"]["tf_trt_plan"] == expected and rows["broken.pb"]["tf_trt_plan"] == "-"
    with open(os.path.join(out_dir, "summary.csv")) as handle:
        by_model = dict((row["model"], row["tf_trt_plan"]) for row in csv.DictReader(handle))
    assert by_model == {"cnn_bn": expected, "broken.pb": "-"}
    lines = out.splitlines()
    assert "TF-TRT plan" in lines[0] and expected in [line for line in lines if line.startswith("cnn_bn")][0]


def test_batch_crash_is_one_failed_model(tmp_path, run_cli, monkeypatch):
    """A conversion killed by SIGKILL (as the OOM killer does) is one row, the others go on; exit 1."""
    zoo = _zoo_dir("zoo-tf1.7")
    root = os.path.join(str(tmp_path), "models")
    os.makedirs(root)
    _copy(os.path.join(zoo, "mlp"), os.path.join(root, "mlp"))
    _copy(os.path.join(zoo, "two_softmax", "frozen_inference_graph.pb"), os.path.join(root, "crash.pb"))
    monkeypatch.setenv("MIGRATE_TEST_CRASH", "crash.pb")
    out_dir = os.path.join(str(tmp_path), "out")
    code, out, err = run_cli("batch", root, "-o", out_dir, "-j", "2", "--no-trt", "--json")
    summary = json.loads(out)  # --json: the summary on stdout, nothing else
    rows = dict((row["model"], row) for row in summary["models"])
    assert rows["crash.pb"]["status"] == "crashed" and "SIGKILL" in rows["crash.pb"]["reason"]
    assert rows["mlp"]["status"] == "converted"
    assert code == 1 and summary["exit_code"] == 1
    assert sorted(os.listdir(out_dir)) == ["crash.log", "mlp", "mlp.log", "summary.csv", "summary.json",
                                           "summary.txt"]  # the temp dir SIGKILL left behind was removed


def test_discovery_one_artifact_per_model(tmp_path, artifact):
    """Checkpoint dirs, Estimator model_dirs (graph.pbtxt + checkpoints, an export/ folder of SavedModels), TF
    Serving version dirs, session bundles, a folder of several frozen graphs: one entry per model."""
    from migrate import batch
    zoo = _zoo_dir("zoo-tf1.7")
    root = os.path.join(str(tmp_path), "models")
    os.makedirs(root)
    _copy(os.path.join(zoo, "estimator", "model_dir"), os.path.join(root, "estimator"))
    _copy(os.path.join(zoo, "two_signatures", "saved_model"), os.path.join(root, "estimator", "export", "1"))
    _copy(artifact("serving_half_plus_two_2_versions"), os.path.join(root, "serving"))
    _copy(artifact("serving_session_bundles_v1"), os.path.join(root, "bundles"))
    _copy(artifact("arm_kws_frozen"), os.path.join(root, "kws"))
    _copy(artifact("tf2onnx_regression_3formats"), os.path.join(root, "regression"))
    found = batch.plan_outputs(batch.discover(root))
    assert [(item.relative, item.kind, item.out) for item in found] == [
        ("bundles/half_plus_two_0.12_sharded_v1", "session_bundle", "bundles/half_plus_two_0.12_sharded_v1"),
        ("bundles/half_plus_two_2016_v1ckpt", "session_bundle", "bundles/half_plus_two_2016_v1ckpt"),
        ("estimator", "checkpoint", "estimator/_model"),  # its output would hold export/1's
        ("estimator/export", "saved_model", "estimator/export"),  # a TF Serving base: version 1
        ("kws/CRNN_S.pb", "frozen_graph", "kws/CRNN_S"),
        ("kws/DS_CNN_S.pb", "frozen_graph", "kws/DS_CNN_S"),
        ("kws/GRU_S.pb", "frozen_graph", "kws/GRU_S"),
        ("kws/LSTM_S.pb", "frozen_graph", "kws/LSTM_S"),
        ("regression/checkpoint", "checkpoint", "regression/checkpoint"),
        ("regression/graphdef/frozen.pb", "frozen_graph", "regression/graphdef/frozen"),
        ("regression/saved_model", "saved_model", "regression/saved_model"),
        ("serving", "saved_model", "serving"),
    ]


@pytest.mark.parametrize("case,expect", [
    ("missing", "no such directory"),
    ("inside", "OUT_DIR is inside DIR"),
    ("not_empty", "OUT_DIR exists and is not empty"),
    ("bad_flag", "--precision"),
    ("no_models", "no TF model found"),
    ("flag_first", "put convert flags after DIR"),
])
def test_batch_bad_input_is_one_line(tmp_path, run_cli, case, expect):
    root = os.path.join(str(tmp_path), "models")
    os.makedirs(os.path.join(root, "empty"))
    out_dir = os.path.join(str(tmp_path), "out")
    args = {"missing": [os.path.join(root, "nope"), "-o", out_dir],
            "inside": [root, "-o", os.path.join(root, "out")],
            "not_empty": [root, "-o", out_dir],
            "bad_flag": [root, "-o", out_dir, "--precision", "FP64"],
            "no_models": [root, "-o", out_dir],
            "flag_first": ["--no-trt", root, "-o", out_dir]}[case]
    if case == "not_empty":
        os.makedirs(out_dir)
        open(os.path.join(out_dir, "summary.json"), "w").close()
    code, out, err = run_cli("batch", *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and expect in lines[0] and "Traceback" not in err, err
    assert lines[0].startswith("migrate: error: ")
    assert case == "not_empty" or not os.path.exists(out_dir)  # nothing written


def _processes_naming(text):
    """pids of live processes whose command line holds `text` (Linux /proc)."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(os.path.join("/proc", pid, "cmdline"), "rb") as handle:
                if text.encode() in handle.read():
                    found.append(int(pid))
        except (IOError, OSError, ValueError):
            continue
    return found


def test_sigterm_to_the_batch_ends_every_conversion(tmp_path, artifact):
    """The batch killed (SIGTERM) while a conversion hangs: exit 143, the conversion's process group is gone,
    the summary says what was interrupted."""
    import signal
    import subprocess
    import sys
    import time
    root = os.path.join(str(tmp_path), "models")
    os.makedirs(root)
    _copy(artifact("tf2onnx_fc-layers/frozen.pb"), os.path.join(root, "hang.pb"))
    out_dir = os.path.join(str(tmp_path), "out")
    env = dict(os.environ, MIGRATE_TEST_HANG="hang.pb")
    batch = subprocess.Popen([sys.executable, "-m", "migrate", "batch", root, "-o", out_dir], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    child = os.path.join(root, "hang.pb")
    while time.time() < deadline and not [p for p in _processes_naming(child) if p != batch.pid]:
        time.sleep(0.2)
    converting = [p for p in _processes_naming(child) if p != batch.pid]
    assert converting, "the conversion never started"
    time.sleep(1.0)
    batch.send_signal(signal.SIGTERM)
    out, err = batch.communicate(timeout=60)
    assert batch.returncode == 143, (out, err)
    assert err.decode().strip().splitlines()[-1] == "migrate: interrupted"
    assert not _processes_naming(child)
    summary, rows = _summary(out_dir)
    assert rows["hang.pb"]["status"] == "interrupted" and summary["exit_code"] == 1
    assert not [name for name in os.listdir(out_dir) if name.endswith(".tmp")]  # convert unwound on SIGTERM
