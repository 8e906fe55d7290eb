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
                             "--no-trt", "--json", "--report", str(tmp_path / "o.json"))
    assert code == 0, err
    with open(str(tmp_path / "o.json")) as handle:
        assert json.loads(out) == json.load(handle)

    code, out, err = run_cli("verify", zoo_model.path, os.path.join(out_dir, "frozen.pb"), "-q")
    assert (code, out) == (0, "")
    code, out, err = run_cli("verify", zoo_model.path, os.path.join(out_dir, "frozen.pb"), "--json")
    rows = json.loads(out)["verification"]
    assert code == 0 and [row["output"] for row in rows] == ["probabilities:0"] and rows[0]["status"] == "ok"

    code, out, err = run_cli("convert", zoo_model.path, out_dir, "--no-trt", "-q")  # exists: bad input
    assert code == 2 and out == "" and err.startswith("migrate: error: ") and "already exists" in err
