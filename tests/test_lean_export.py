"""What keeps export and convert within a few times the model's size (numbers: README "Performance").

- Large binary protobuf files are parsed a run of whole fields at a time (artifacts/parsing.py): the same
  message as one parse, the same one-line refusal for a truncated file.
- A tf2 export keeps the weights as variables in variables/ (not as constants inside every function graph),
  and from a checkpoint it freezes through a temp file that never stays in the output.
"""
import os

import numpy as np
import pytest

from migrate import api, artifacts, tfcompat
from migrate.errors import BadInput

BIG = np.linspace(-1.0, 1.0, 512 * 1024, dtype=np.float32).reshape(1024, 512)  # 2 MiB: above FED_CONST_BYTES


def _graph_def():
    v1 = tfcompat.v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 1024], name="x")
        hidden = v1.nn.relu(v1.matmul(x, v1.constant(BIG, name="big")), name="hidden")
        v1.identity(v1.reduce_sum(hidden * v1.constant(np.float32(0.5), name="half"), axis=1), name="y")
    return graph.as_graph_def()


def _write(path, graph_def):
    with open(path, "wb") as handle:
        handle.write(graph_def.SerializeToString())
    return path


@pytest.mark.parametrize("chunk", [64, 4096, 1 << 20, 64 << 20])
def test_chunked_parse_gives_the_message_one_parse_gives(chunk, tmp_path, monkeypatch):
    """Chunks smaller than one field, than some fields, and larger than the file."""
    graph_def = _graph_def()
    path = _write(str(tmp_path / "g.pb"), graph_def)
    monkeypatch.setattr(artifacts.parsing, "CHUNKED_PARSE_BYTES", 0)
    monkeypatch.setattr(artifacts.parsing, "CHUNK_BYTES", chunk)
    parsed = artifacts.read_graph_def(path)
    assert parsed == graph_def and len(parsed.node) == len(graph_def.node) > 5


def test_chunked_parse_refuses_a_truncated_file_in_one_line(tmp_path, monkeypatch):
    path = str(tmp_path / "g.pb")
    data = _graph_def().SerializeToString()
    with open(path, "wb") as handle:
        handle.write(data[:len(data) - 1000])
    monkeypatch.setattr(artifacts.parsing, "CHUNKED_PARSE_BYTES", 0)
    monkeypatch.setattr(artifacts.parsing, "CHUNK_BYTES", 4096)
    with pytest.raises(BadInput) as caught:
        artifacts.read_graph_def(path)
    assert caught.value.where == path and "corrupt or truncated" in caught.value.what


def _sizes(directory):
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            found[os.path.relpath(os.path.join(root, name), directory)] = os.path.getsize(os.path.join(root, name))
    return found


def test_tf2_export_keeps_the_weights_in_variables(tmp_path):
    source = _write(str(tmp_path / "frozen.pb"), _graph_def())
    output = str(tmp_path / "saved_model")
    if not tfcompat.is_tf2():  # the tf2 format needs TF 2.x; here the refusal says so
        with pytest.raises(BadInput, match=r"needs TF >= 2\.0"):
            api.export(source, output, fmt="tf2", outputs=["y"])
        return
    npz = str(tmp_path / "x.npz")
    np.savez(npz, **{"x:0": np.random.RandomState(4).randn(3, 1024).astype(np.float32)})
    result = api.export(source, output, fmt="tf2", outputs=["y"], inputs_npz=npz)
    rows = result.comparisons["serving_default"]
    assert [row.output for row in rows] == ["y:0"] and all(row.ok for row in rows)
    sizes = _sizes(output)
    variables = sum(size for name, size in sizes.items() if name.startswith("variables" + os.sep))
    assert sizes["saved_model.pb"] < BIG.nbytes // 4, sizes  # the 2 MiB weight is not in the graph
    assert variables >= BIG.nbytes, sizes
    # The small constant stays a constant: only weights above 1 MiB become variables.
    tf = tfcompat.tf()
    loaded = tf.saved_model.load(output)
    assert [tuple(v.shape) for v in loaded.weights] == [BIG.shape]
    x = np.random.RandomState(3).rand(2, 1024).astype(np.float32)
    want = (np.maximum(x.dot(BIG), 0) * 0.5).sum(axis=1)
    got = loaded.signatures["serving_default"](x=tf.constant(x))["y"].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_tf2_export_of_a_checkpoint_leaves_no_temp_file(tmp_path):
    from tests.test_broken_inputs import _mlp, _save_checkpoint
    from tests.test_broken_inputs import W_VALUE
    ckpt = _save_checkpoint(str(tmp_path / "ckpt"), {"w": W_VALUE, "b": np.zeros(3, np.float32)}, _mlp)
    output = str(tmp_path / "saved_model")
    fmt = "tf2" if tfcompat.is_tf2() else "tf1"
    result = api.export(ckpt, output, fmt=fmt, outputs=["probabilities"])
    assert all(row.ok for rows in result.comparisons.values() for row in rows)
    assert sorted(os.listdir(str(tmp_path))) == ["ckpt", "saved_model"]
    assert not [name for name in _sizes(output) if name.endswith(".tmp") or "frozen" in name]
