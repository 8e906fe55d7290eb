"""-q, --json on the verbs: --json prints exactly the result (convert's report.json, optimize's --report) on
stdout and nothing else; -q prints nothing on stdout, errors still on stderr."""
import json
import os

import pytest


@pytest.mark.zoo("mlp")
def test_convert_json_is_its_report_and_quiet_is_silent(zoo_model, tmp_path, run_cli):
    out_dir = os.path.join(str(tmp_path), "out")
    code, out, err = run_cli("convert", zoo_model.path, out_dir, "--no-trt", "--json")
    assert code == 0, err
    with open(os.path.join(out_dir, "report.json")) as handle:
        assert json.loads(out) == json.load(handle)
    assert "[4/4] verify" in err  # the human lines went to stderr

    code, out, err = run_cli("optimize", os.path.join(out_dir, "frozen.pb"), "-o", str(tmp_path / "o.pb"),
                             "--no-trt", "--json", "-v", "--report", str(tmp_path / "o.json"))
    assert code == 0, err
    with open(str(tmp_path / "o.json")) as handle:
        assert json.loads(out) == json.load(handle)
    detail = err.split("passes in detail:\n", 1)[1].splitlines()  # -v: every pass's record, to stderr here
    assert [line.split()[0] for line in detail if not line.startswith("    ")] == [
        record["name"] for record in json.loads(out)["passes"]]

    code, out, err = run_cli("verify", zoo_model.path, os.path.join(out_dir, "frozen.pb"), "-q")
    assert (code, out) == (0, "")
    code, out, err = run_cli("verify", zoo_model.path, os.path.join(out_dir, "frozen.pb"), "--json")
    rows = json.loads(out)["verification"]
    assert code == 0 and [row["output"] for row in rows] == ["probabilities:0"] and rows[0]["status"] == "ok"

    code, out, err = run_cli("convert", zoo_model.path, out_dir, "--no-trt", "-q")  # exists: bad input
    assert code == 2 and out == "" and err.startswith("migrate: error: ") and "already exists" in err


@pytest.mark.zoo("mlp")
def test_streaming_freeze_reports_its_progress(zoo_model, tmp_path):
    """migrate.progress: the streaming freeze tells a listener (the CLI's progress bar) each weight's bytes as
    it is written; they add up to every variable the frozen graph now holds as a constant."""
    import numpy as np
    from migrate import api, artifacts, progress, tfcompat
    tasks = []

    def listener(label, total):
        done = []
        tasks.append((label, total, done))
        return done.append, lambda: done.append(0)  # (advance, close): close adds nothing
    progress.set_listener(listener)
    try:
        output = str(tmp_path / "frozen.pb")
        api.freeze(zoo_model.path, output)
    finally:
        progress.set_listener(None)
    assert [(label, total, sum(done)) for label, total, done in tasks] == [
        ("streaming weights", tasks[0][1], tasks[0][1])]
    frozen = set(node.name for node in artifacts.read_graph_def(output).node if node.op == "Const")
    variables = artifacts.checkpoint_variables(os.path.join(zoo_model.root, zoo_model.entry["checkpoint"]))
    expected = sum(int(np.prod(shape)) * tfcompat.v1().as_dtype(dtype).size
                   for name, (shape, dtype) in variables.items() if name in frozen)
    assert expected > 0 and tasks[0][1] == expected and len(tasks[0][2]) >= 2
