"""`migrate demo`: the README's main job works in every TF of the matrix."""


def test_demo_runs_and_matches_goldens(run_cli, tmp_path):
    code, out, err = run_cli("demo", "--workdir", str(tmp_path))
    assert code == 0, err
    assert "[4/4] verify" in out and "demo OK" in out
    assert "FAIL" not in out
    golden = out.split("when it wrote the checkpoint:")[1]  # the rows compared with TF's own outputs, by name
    assert "OK   logits:0 " in golden and "OK   probabilities:0 " in golden
    assert (tmp_path / "converted" / "report.json").exists()
