"""The exit codes of errors.py as the CLI uses them and README documents them: an unexpected exception (a bug
of ours) is 70 with one line pointing to --debug, an interrupt 130 (a real SIGINT: test_pipelines)."""
import os
import re

import pytest

from migrate import errors

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _planted(monkeypatch, raised):
    """`migrate inspect` whose library call raises `raised` (our code failing, not TF: nothing of TF is hidden)."""
    from migrate import inspect_model

    def inspect(path, tag=None, checkpoint=None):
        raise raised
    monkeypatch.setattr(inspect_model, "inspect", inspect)


def test_an_internal_error_exits_70_with_one_line_pointing_to_debug(monkeypatch, run_cli, tmp_path):
    _planted(monkeypatch, KeyError("signature_def"))
    code, out, err = run_cli("inspect", tmp_path)
    assert code == errors.EXIT_INTERNAL == 70
    assert err.splitlines() == ["migrate: internal error: KeyError: 'signature_def' (rerun with --debug and "
                                "report it)"], err
    assert "Traceback" not in err and out == ""


def test_debug_shows_the_traceback_of_an_internal_error(monkeypatch, run_cli, tmp_path):
    _planted(monkeypatch, KeyError("signature_def"))
    with pytest.raises(KeyError):
        run_cli("--debug", "inspect", tmp_path)


def test_an_interrupted_run_exits_130(monkeypatch, run_cli, tmp_path):
    _planted(monkeypatch, KeyboardInterrupt())
    code, out, err = run_cli("inspect", tmp_path)
    assert code == errors.EXIT_INTERRUPTED == 130
    assert err.strip() == "migrate: interrupted"  # (click ends the line the terminal was on first)


def test_readme_exit_code_table_lists_every_code_of_errors_py():
    with open(os.path.join(REPO, "README.md")) as handle:
        text = handle.read()
    table = text.split("## Exit codes", 1)[1].split("\n\n", 2)[1]
    documented = set(int(code) for row in table.splitlines() if row.startswith("| ")
                     for code in re.findall(r"\b\d+\b", row.split("|")[1]))
    defined = set(value for name, value in vars(errors).items() if name.startswith("EXIT_"))
    assert defined == documented, (defined, documented)
