"""The one error line says what TF said and names what the user gave.

- TF 2.x opens every runtime error with "Graph execution error:" and where the node was defined; the line
  keeps the first informative line (the message itself) instead.
- optimize runs its result from a temp file beside the output and convert runs every step inside OUT_DIR's
  temp directory: when the input is at fault, the line names the input, never a `.XXXX.tmp` path.
"""
import os

import numpy as np
import pytest

from migrate import tfcompat
from migrate.errors import first_line

RESHAPE_MESSAGE = "Input to reshape is a tensor with 4 values, but the requested shape requires a multiple of 3"


def _reshape_graph():
    """x[None, 4] -> reshape to [3, -1] -> y: fails for any batch not a multiple of 3 (the default batch 1)."""
    v1 = tfcompat.v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 4], name="x")
        w = v1.constant(np.eye(4, dtype=np.float32), name="w")
        v1.reshape(v1.matmul(x, w), [3, -1], name="y")
    return graph


def _frozen(tmp_path):
    path = str(tmp_path / "reshape.pb")
    with open(path, "wb") as handle:
        handle.write(_reshape_graph().as_graph_def().SerializeToString())
    return path


def test_first_line_is_the_message_of_a_real_tf_error():
    v1 = tfcompat.v1()
    graph = _reshape_graph()
    with v1.Session(graph=graph) as session:
        with pytest.raises(tfcompat.tf().errors.OpError) as caught:
            session.run("y:0", {"x:0": np.ones((1, 4), np.float32)})
    line = first_line(caught.value)
    assert line.startswith(RESHAPE_MESSAGE), (line, str(caught.value)[:400])
    assert "Graph execution error" not in line and "\n" not in line


def test_first_line_skips_tf2_preamble_and_keeps_the_node():
    """The text TF 2.15 gives for a Session.run of the graph above (copied from a real run)."""
    text = ("Graph execution error:\n\nDetected at node 'r' defined at (most recent call last):\n"
            "    File \"/tmp/errfmt.py\", line 6, in <module>\nNode: 'r'\n" + RESHAPE_MESSAGE +
            "\n\t [[{{node r}}]]")
    assert first_line(ValueError(text)) == RESHAPE_MESSAGE + " [node r]"
    assert first_line(ValueError("plain message\nsecond")) == "plain message"
    assert first_line(ValueError("")) == "ValueError"


def _one_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("migrate: error: "), err
    return lines[0]


@pytest.mark.parametrize("verb", ["optimize", "convert", "export", "verify"])
def test_a_graph_failing_at_run_time_names_the_input_and_the_tf_message(verb, tmp_path, run_cli):
    source = _frozen(tmp_path)
    out = str(tmp_path / "out")
    os.makedirs(out)
    argv = {"optimize": ["optimize", source, "-o", os.path.join(out, "result.pb"), "--no-trt"],
            "convert": ["convert", source, os.path.join(out, "converted"), "--no-trt"],
            "export": ["export", source, "-o", os.path.join(out, "saved_model")],
            "verify": ["verify", source, source]}[verb]
    code, _, err = run_cli(*(argv + ["--outputs", "y"]))
    assert code == 2, err
    line = _one_line(err)
    assert line.startswith("migrate: error: {}: ".format(source)), line
    assert RESHAPE_MESSAGE in line and ".tmp" not in line, line
    assert os.listdir(out) == []


@pytest.mark.parametrize("verb", ["optimize", "convert"])
def test_feeds_that_do_not_fit_name_the_input_not_a_temp_file(verb, tmp_path, run_cli):
    source = _frozen(tmp_path)
    npz = str(tmp_path / "inputs.npz")
    np.savez(npz, **{"x:0": np.ones((3, 5), np.float32)})
    out = str(tmp_path / "out")
    os.makedirs(out)
    target = os.path.join(out, "result.pb" if verb == "optimize" else "converted")
    argv = [verb, source] + (["-o", target] if verb == "optimize" else [target])
    code, _, err = run_cli(*(argv + ["--outputs", "y", "--no-trt", "--inputs-npz", npz]))
    assert code == 2, err
    line = _one_line(err)
    assert ".tmp" not in line and source in line and "(3, 5)" in line, line
    assert os.listdir(out) == []


def test_a_convert_step_that_changes_the_outputs_names_out_dir(tmp_path, run_cli):
    """A mismatch found by the optimize step inside convert names OUT_DIR (where nothing was written)."""
    v1 = tfcompat.v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 4], name="x")
        v1.identity(x + v1.random_uniform([4], name="noise"), name="y")
    source = str(tmp_path / "noisy.pb")
    with open(source, "wb") as handle:
        handle.write(graph.as_graph_def().SerializeToString())
    out_dir = str(tmp_path / "converted")
    code, _, err = run_cli("convert", source, out_dir, "--outputs", "y", "--no-trt")
    assert code == 1, err
    line = _one_line(err)
    assert line.startswith("migrate: error: {}".format(out_dir)) and "optimize changed the outputs" in line, line
    assert ".tmp" not in line, line
    assert not os.path.exists(out_dir)
