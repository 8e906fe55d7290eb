"""Bad input gets one line (what, where, how to fix), exit 2, no traceback, input untouched."""
import hashlib
import os
import subprocess
import sys

import pytest


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _write(tmp_path, name, data):
    path = os.path.join(str(tmp_path), name)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def _random_bytes(count, seed):
    """Seeded noise: the same bytes on every run, so a failure can be replayed."""
    import numpy as np
    return np.random.RandomState(seed).bytes(count)


def _graph_bytes():
    from migrate import tfcompat
    v1 = tfcompat.v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 3], name="x")
        v1.identity(x * 2.0 + 1.0, name="y")
    return graph.as_graph_def().SerializeToString()


@pytest.mark.parametrize("name,make,expect", [
    ("empty.pb", lambda: b"", "empty"),
    ("random.pb", lambda: _random_bytes(4096, seed=0), "not a"),
    ("truncated.pb", lambda: _graph_bytes()[:-7], "not a"),
    ("broken.pbtxt", lambda: b'node { name: "x" op: "Placeholder" attr { key: ', "not a valid text"),
])
def test_corrupt_graph_files(tmp_path, run_cli, name, make, expect):
    path = _write(tmp_path, name, make())
    before = _digest(path)
    code, out, err = run_cli("inspect", path)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0] and path in lines[0], err
    assert "Traceback" not in err
    assert _digest(path) == before


def test_missing_path(tmp_path, run_cli):
    code, out, err = run_cli("inspect", os.path.join(str(tmp_path), "nope"))
    assert code == 2 and "no such file or directory" in err


def test_directory_without_artifact(tmp_path, run_cli):
    code, out, err = run_cli("inspect", str(tmp_path))
    assert code == 2 and "holds no TF artifact" in err


def test_checkpoint_state_names_missing_files(tmp_path, run_cli):
    _write(tmp_path, "checkpoint", b'model_checkpoint_path: "model.ckpt-9"\n')
    code, out, err = run_cli("inspect", str(tmp_path))
    assert code == 2 and "model.ckpt-9" in err and "no checkpoint files" in err


def test_real_process_exit_code_and_no_traceback(tmp_path):
    path = _write(tmp_path, "random.pb", _random_bytes(1000, seed=1))
    proc = subprocess.run([sys.executable, "-m", "migrate", "inspect", path], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    err = proc.stderr.decode()
    assert proc.returncode == 2
    assert "Traceback" not in err
    assert "migrate: error: {}".format(path) in err


def test_debug_shows_traceback(tmp_path, run_cli):
    path = _write(tmp_path, "empty.pb", b"")
    code, out, err = run_cli("--debug", "inspect", path)
    assert code == 2
    assert "Traceback" in err and "file is empty" in err
