"""Streaming freeze (migrate/freezing/streaming/): the graph it writes tensor by tensor means what the session
path (freezing/session_path.py) computes, node for node and value for value; what it cannot handle it refuses,
and freezing.freeze then falls back with a note."""
import os

import numpy as np
import pytest

from migrate import artifacts, freezing, tfcompat, verify
from migrate.freezing import streaming
from migrate.freezing.streaming import target as stream_target
from migrate.graph import files as graph_files
from migrate.verification import runners
from migrate.errors import BadInput
from migrate.graph import edit
from tests.conftest import assert_compared

RTOL, ATOL = 1e-4, 1e-5
# Zoo features the streaming path leaves to the session path, with the reason it gives.
REFUSED = {"partitioned_variable": "slice", "hash_table": "lookup table", "tables_in_functions": "lookup table",
           "frozen_graph": "already a frozen graph"}


# ------------------------------------------------------------------------------------------ helpers

def _node_summary(graph_def):
    """{name: (op, inputs, attrs without 'value', Const value or None)}: what a node means."""
    api = tfcompat.v1()
    summary = {}
    for node in graph_def.node:
        value = api.make_ndarray(node.attr["value"].tensor) if node.op == "Const" else None
        attrs = dict((k, v.SerializeToString(deterministic=True)) for k, v in node.attr.items()
                     if k not in ("value", "_output_shapes"))
        summary[node.name] = (node.op, list(node.input), attrs, value)
    return summary


def assert_same_graph(streamed, in_memory):
    """Same nodes, ops, inputs, attrs; every Const the same dtype, shape and bytes."""
    expected = type(in_memory)()
    expected.CopyFrom(in_memory)
    edit.strip_default_attrs(expected)  # what io.write_graph does to the session path's graph
    got, want = _node_summary(streamed), _node_summary(expected)
    assert sorted(got) == sorted(want)
    for name in want:
        op, inputs, attrs, value = got[name]
        assert (op, inputs) == want[name][:2], name
        assert attrs == want[name][2], name
        if value is not None:
            assert value.dtype == want[name][3].dtype and value.shape == want[name][3].shape, name
            assert np.array_equal(value, want[name][3]) or value.tobytes() == want[name][3].tobytes(), name


def _unknown_ops(zoo_model):
    from tests.test_freeze import _unknown_ops as by_manifest  # the manifest decides; the registry must agree
    return by_manifest(zoo_model)


def _stream(model, path, **kwargs):
    return streaming.freeze_to_file(model, path, **kwargs)


# ------------------------------------------------------------------------------------------ zoo models

def test_zoo_model_streams_like_the_session_path(zoo_model, tmp_path):
    model = artifacts.load(zoo_model.path)
    out = os.path.join(str(tmp_path), "streamed.pb")
    unknown = _unknown_ops(zoo_model) if zoo_model.kind != "frozen_graph" else None  # nothing to freeze there
    if unknown:  # written by a newer TF: the same refusal as the session path, nothing written
        with pytest.raises(BadInput) as error:
            _stream(model, out, outputs=zoo_model.outputs)
        assert "ops not registered" in str(error.value) and all(op in str(error.value) for op in unknown)
        assert not os.path.exists(out) or os.path.getsize(out) == 0
        return
    refused = [reason for feature, reason in REFUSED.items() if feature in zoo_model.entry["features"]]
    if refused:
        with pytest.raises(streaming.Unsupported) as why:
            _stream(model, out, outputs=zoo_model.outputs)
        assert refused[0] in str(why.value)
        assert not os.path.exists(out)
        return
    streamed, record = _stream(model, out, outputs=zoo_model.outputs)
    in_memory, session_record = freezing.freeze(model, outputs=zoo_model.outputs)
    assert record.outputs == session_record.outputs and record.variables == session_record.variables
    assert record.rewritten == session_record.rewritten and record.switches == session_record.switches
    assert isinstance(streamed, stream_target.StreamedModel) and streamed.file_path == out
    assert_same_graph(streamed.graph_def, in_memory.graph_def)
    golden = zoo_model.golden()
    feeds = dict((name, golden[name]) for name in zoo_model.inputs)
    from_file = verify.run_model(artifacts.load(out), zoo_model.outputs, feeds)
    for name in zoo_model.outputs:
        np.testing.assert_allclose(from_file[name], golden[name], rtol=RTOL, atol=ATOL, err_msg=name)
    rows = runners.check_frozen(model, streamed, zoo_model.outputs, feeds)  # the lean verification
    assert_compared(rows, zoo_model.outputs)


@pytest.mark.zoo("partitioned")
def test_hook_falls_back_to_the_session_path_with_a_note(zoo_model, tmp_path):
    model = artifacts.load(zoo_model.path)
    assert _unknown_ops(zoo_model) == []  # partitioned has no op newer than TF 1.7 (see conftest.NEWER_OPS)
    os.mkdir(os.path.join(str(tmp_path), "out"))
    target_path = os.path.join(str(tmp_path), "out", "frozen.pb")
    with stream_target.Target(target_path) as target:
        frozen, record = freezing.freeze(model, outputs=zoo_model.outputs, stream_to=target)
        assert not isinstance(frozen, stream_target.StreamedModel)
        assert any("streaming does not apply" in note and "slice" in note for note in record.notes)
        target.commit(frozen)
    golden = zoo_model.golden()
    feeds = dict((name, golden[name]) for name in zoo_model.inputs)
    actual = verify.run_model(artifacts.load(target_path), zoo_model.outputs, feeds)
    for name in zoo_model.outputs:
        np.testing.assert_allclose(actual[name], golden[name], rtol=RTOL, atol=ATOL, err_msg=name)
    assert os.listdir(os.path.dirname(target_path)) == ["frozen.pb"]  # no temp file left


@pytest.mark.zoo("mlp")
def test_hook_streams_through_freeze_and_target_commits(zoo_model, tmp_path):
    model = artifacts.load(zoo_model.path)
    os.mkdir(os.path.join(str(tmp_path), "out"))
    out = os.path.join(str(tmp_path), "out", "frozen.pb")
    with stream_target.Target(out) as target:
        frozen, record = freezing.freeze(model, outputs=zoo_model.outputs, stream_to=target)
        assert isinstance(frozen, stream_target.StreamedModel) and frozen.file_path == target.path
        assert any(note.startswith("streamed:") for note in record.notes)
        assert not os.path.exists(out)
        target.commit(frozen)
    assert os.path.exists(out) and frozen.file_path == out
    assert os.listdir(os.path.dirname(out)) == ["frozen.pb"]
    assert len(frozen.graph_def.node) == record.nodes_after
    derived = frozen.derive(note="checked")
    assert len(derived.graph_def.node) == record.nodes_after and derived.provenance[-1] == "checked"


def test_target_removes_its_temp_file_unless_committed(tmp_path):
    out = os.path.join(str(tmp_path), "frozen.pb")
    with pytest.raises(RuntimeError):
        with stream_target.Target(out) as target:
            with open(target.path, "wb") as handle:
                handle.write(b"partial")
            raise RuntimeError("verification blew up")
    assert os.listdir(str(tmp_path)) == []
    with stream_target.Target(out):
        pass  # not committed (verification failed): nothing written
    assert os.listdir(str(tmp_path)) == []


# ------------------------------------------------------------------------------------------ synthetic models

def _synthetic_checkpoint(directory, big=False):
    """A TF1 checkpoint written with the running TF: ref + resource variables, renamed checkpoint keys, a
    train switch, an update run through a control dependency, scalars, several dtypes, an empty tensor,
    an embedding read with ResourceGather. Returns (prefix, output names, feeds)."""
    api = tfcompat.v1()
    graph = api.Graph()
    rng = np.random.RandomState(0)
    with graph.as_default():
        x = api.placeholder(api.float32, [None, 4], name="x")
        ids = api.placeholder(api.int32, [None], name="ids")
        is_training = api.placeholder_with_default(False, [], name="is_training")
        ref = dict(use_resource=False)  # TF1 ref variables (VariableV2) on every TF
        w = api.get_variable("dense/kernel", initializer=rng.randn(4, 3).astype(np.float32), **ref)
        b = api.get_variable("dense/bias", initializer=np.float32(0.25), **ref)  # a scalar
        scale = api.get_variable("scale", initializer=np.float16(1.5), **ref)
        counter = api.get_variable("counter", initializer=np.int64(7), **ref)
        flag = api.get_variable("flag", initializer=np.array([True, False, True]), **ref)
        empty = api.get_variable("empty", initializer=np.zeros([0, 3], np.float32), **ref)
        table = api.get_variable("embedding", initializer=rng.randn(10, 3).astype(np.float32),
                                 use_resource=True)
        offset = api.get_variable("offset", initializer=rng.randn(3).astype(np.float32), use_resource=True)
        variables = [w, b, scale, counter, flag, empty, table, offset]
        if big:
            huge = api.get_variable("huge", initializer=rng.randn(512, 1024).astype(np.float32), **ref)
            variables.append(huge)
        h = api.matmul(x, w) + b
        if big:
            h = h + api.reduce_mean(huge)
        h = h * api.cast(scale, api.float32)
        h = h + api.reduce_sum(api.gather(table, ids), axis=0) + api.read_variable_op(offset.handle, api.float32) \
            if hasattr(api, "read_variable_op") else h + api.reduce_sum(api.gather(table, ids), axis=0) + offset
        h = h + api.reduce_sum(empty) + api.cast(api.reduce_any(flag), api.float32)
        h = api.cond(is_training, lambda: h * 2.0, lambda: h)
        steps = api.get_variable("steps", initializer=np.int64(0), **ref)
        variables.append(steps)
        with api.control_dependencies([api.assign_add(steps, 1)]):  # an update the output waits for
            y = api.identity(h + api.cast(counter, api.float32), name="y")
        # checkpoint keys that are not the node names
        saver = api.train.Saver(dict(("renamed/" + v.op.name, v) for v in variables))
        with api.Session(graph=graph) as session:
            session.run(api.global_variables_initializer())
            prefix = saver.save(session, os.path.join(directory, "model.ckpt"))
    feeds = {"x:0": rng.randn(2, 4).astype(np.float32), "ids:0": np.array([1, 3, 3], np.int32)}
    return prefix, ["y:0"], feeds


@pytest.mark.parametrize("big", [False, True], ids=["small", "weights-fed-on-read-back"])
def test_synthetic_model_streams_like_the_session_path(tmp_path, big):
    prefix, outputs, feeds = _synthetic_checkpoint(str(tmp_path), big)
    model = artifacts.load(prefix)
    out = os.path.join(str(tmp_path), "frozen.pb")
    streamed, record = _stream(model, out, outputs=outputs)
    in_memory, session_record = freezing.freeze(model, outputs=outputs)
    assert_same_graph(streamed.graph_def, in_memory.graph_def)
    assert record.switches == session_record.switches == {"is_training": False}
    assert record.rewritten == session_record.rewritten and "AssignAdd->Add" in record.rewritten
    expected = verify.run_model(in_memory, outputs, feeds)
    actual = verify.run_model(artifacts.load(out), outputs, feeds)
    np.testing.assert_array_equal(actual["y:0"], expected["y:0"])
    rows = runners.check_frozen(model, streamed, outputs, feeds)
    assert_compared(rows, outputs)
    structure, weights = graph_files.read_back(out)
    if big:  # the 2 MiB weight is fed from an aligned array read straight from the file
        assert "huge:0" in weights and weights["huge:0"].ctypes.data % 64 == 0
        reader = artifacts.open_checkpoint(prefix)
        np.testing.assert_array_equal(weights["huge:0"], reader.get_tensor("renamed/huge"))
        assert [n.op for n in structure.node if n.name == "huge"] == ["Placeholder"]
    else:
        assert not weights


def test_text_output_streams_too(tmp_path):
    prefix, outputs, feeds = _synthetic_checkpoint(str(tmp_path))
    model = artifacts.load(prefix)
    out = os.path.join(str(tmp_path), "frozen.pbtxt")
    streamed, _ = _stream(model, out, outputs=outputs)
    assert open(out).read().startswith("node {")
    in_memory, _ = freezing.freeze(model, outputs=outputs)
    assert_same_graph(artifacts.load(out).graph_def, in_memory.graph_def)
    rows = runners.check_frozen(model, streamed, outputs, feeds)  # text: the plain verification
    assert_compared(rows, outputs)


def test_refusals_leave_the_session_path(tmp_path):
    api = tfcompat.v1()
    graph = api.Graph()
    with graph.as_default():
        x = api.placeholder(api.float32, [None, 2], name="x")
        saved = api.get_variable("saved", initializer=np.ones([2, 2], np.float32))
        unsaved = api.get_variable("unsaved", initializer=np.ones([2], np.float32))
        api.identity(api.matmul(x, saved) + unsaved, name="y")
        saver = api.train.Saver([saved])  # `unsaved` is not restored: the session path would fail on it
        with api.Session(graph=graph) as session:
            session.run(api.global_variables_initializer())
            prefix = saver.save(session, os.path.join(str(tmp_path), "model.ckpt"))
    model = artifacts.load(prefix)
    out = os.path.join(str(tmp_path), "frozen.pb")
    with pytest.raises(streaming.Unsupported) as why:
        _stream(model, out, outputs=["y"])
    assert "'unsaved' is not restored" in str(why.value) and not os.path.exists(out)
    with pytest.raises(streaming.Unsupported) as why:
        _stream(model, out, outputs=["y"], deny=["saved"])
    assert "--allow/--deny" in str(why.value)
    with pytest.raises(BadInput):  # the user's mistakes are the same errors on both paths
        _stream(model, out, outputs=["nope"])


# ------------------------------------------------------------------------------------------ optimize helpers

def test_files_written_node_by_node_and_verified_file_against_file(tmp_path):
    """write_graph_def (no whole serialized copy) writes what io.write_graph writes; check_files runs two
    frozen files with their weights fed and agrees with verify.check_pair."""
    from migrate import io, passes
    prefix, outputs, feeds = _synthetic_checkpoint(str(tmp_path), big=True)
    source = os.path.join(str(tmp_path), "frozen.pb")
    _stream(artifacts.load(prefix), source, outputs=outputs)
    model = artifacts.load(source)
    inputs = sorted(n.name + ":0" for n in model.graph_def.node if n.op == "Placeholder")
    context = passes.PassContext(outputs=outputs, inputs=inputs)
    optimized, _ = passes.run_pipeline(model.graph_def, list(passes.DEFAULT_PASSES), context, checked=True)
    assert len(model.graph_def.node) > len(optimized.node)  # a copy: the caller's graph is untouched
    by_io = os.path.join(str(tmp_path), "io.pb")
    by_stream = os.path.join(str(tmp_path), "stream.pb")
    io.write_graph(optimized, by_io)
    graph_files.write_graph_def(optimized, by_stream)
    assert open(by_io, "rb").read() == open(by_stream, "rb").read()
    rows = runners.check_files(source, by_stream, outputs, feeds)
    assert_compared(rows, outputs)
    expected = verify.check_pair(model, model.derive(graph_def=optimized), outputs, feeds)
    assert [row.ok for row in rows] == [row.ok for row in expected]
    assert graph_files.is_binary_graph_file(by_stream) and not graph_files.is_binary_graph_file(by_stream + "txt")
    in_place, _ = passes.run_pipeline(model.graph_def, list(passes.DEFAULT_PASSES), context, in_place=True)
    assert in_place is model.graph_def and len(model.graph_def.node) == len(optimized.node)


def test_large_consts_written_around_their_content_byte_identical(tmp_path, monkeypatch):
    """write_graph_def writes a large Const as its head + the value attr around the content read once
    (graph_files.write_node), byte for byte what io.write_graph writes; Consts laid out otherwise (a value
    with another field beside tensor_content) are serialized whole. TF reads the values back unchanged."""
    from tensorflow.core.framework import graph_pb2
    from migrate import io
    from migrate.graph import wire
    v1 = tfcompat.v1()
    rng = np.random.RandomState(3)
    big = rng.standard_normal([700, 400]).astype(np.float32)  # 1.07 MiB: above FED_CONST_BYTES
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 700], name="x")
        w = v1.constant(big, name="w")
        with v1.device("/cpu:0"), v1.control_dependencies([w.op]):
            w2 = v1.constant(big[::-1].copy(), name="w2")
        v1.identity(v1.matmul(x, w) + v1.matmul(x, w2), name="y")
    graph_def = graph.as_graph_def(add_shapes=True)  # _output_shapes beside value: "value" still sorts last
    odd = graph_def.node.add()
    odd.CopyFrom([n for n in graph_def.node if n.name == "w"][0])
    odd.name = "odd"
    odd.attr["value"].tensor.float_val.append(1.0)  # not laid out as head + content: serialized whole
    written = []
    real = wire.write_const_node
    monkeypatch.setattr(wire, "write_const_node", lambda handle, head, *rest: written.append(head) or real(
        handle, head, *rest))
    by_io, by_nodes = str(tmp_path / "io.pb"), str(tmp_path / "nodes.pb")
    io.write_graph(graph_def, by_io)
    graph_files.write_graph_def(graph_def, by_nodes)
    assert open(by_io, "rb").read() == open(by_nodes, "rb").read()
    assert len(written) == 2  # w and w2 took the head + content path, odd did not
    back = graph_pb2.GraphDef()
    back.ParseFromString(open(by_nodes, "rb").read())
    values = dict((n.name, edit.const_value(n)) for n in back.node if n.op == "Const")
    np.testing.assert_array_equal(values["w"], big)
    np.testing.assert_array_equal(values["w2"], big[::-1])
    feeds = {"x:0": rng.standard_normal([2, 700]).astype(np.float32)}
    result = runners.run_file(by_nodes, ["y:0"], feeds)
    np.testing.assert_allclose(result["y:0"], feeds["x:0"].dot(big) + feeds["x:0"].dot(big[::-1]), rtol=1e-4,
                               atol=1e-3)


def test_read_back_reuses_only_arrays_holding_every_byte(tmp_path):
    """read_back(reuse=) hands a file the other file's array for a Const only when every byte of its
    tensor_content is that array's (a weight tampered in its last byte, or in its first, is read from its own
    file); what it did not reuse is let go; check_files still tells the two files apart."""
    from migrate import io
    v1 = tfcompat.v1()
    rng = np.random.RandomState(5)
    weights = [rng.standard_normal([600, 600]).astype(np.float32) for _ in range(4)]  # 1.37 MiB each
    paths = []
    for name, tamper in (("source", None), ("candidate", None), ("tampered_last", -1), ("tampered_first", 0)):
        graph = v1.Graph()
        with graph.as_default():
            y = v1.placeholder(v1.float32, [None, 600], name="x")
            for i, w in enumerate(weights):
                if tamper is not None and i == 2:
                    w = w.copy()
                    w.reshape(-1).view(np.uint8)[tamper] ^= 1  # one bit of one byte
                y = v1.matmul(y, v1.constant(w, name="w{}".format(i)))
            v1.identity(y, name="y")
        path = str(tmp_path / (name + ".pb"))
        io.write_graph(graph.as_graph_def(), path)
        paths.append(path)
    source, candidate, last, first = paths
    _, kept = graph_files.read_back(candidate)
    reuse = dict(kept)
    _, back = graph_files.read_back(source, reuse=reuse)
    assert all(back[k] is kept[k] for k in kept) and reuse == {}
    for tampered in (last, first):
        reuse = dict(kept)
        _, back = graph_files.read_back(tampered, reuse=reuse)
        assert back["w0:0"] is kept["w0:0"] and back["w1:0"] is kept["w1:0"]
        assert back["w2:0"] is not kept["w2:0"] and not np.array_equal(back["w2:0"], weights[2])
        assert back["w3:0"] is not kept["w3:0"]  # after the first difference nothing more is reused
        np.testing.assert_array_equal(back["w3:0"], weights[3])
        assert reuse == {}
    feeds = {"x:0": rng.standard_normal([1, 600]).astype(np.float32)}
    assert all(row.ok for row in runners.check_files(source, candidate, ["y:0"], feeds))
    rows = runners.check_files(source, last, ["y:0"], feeds, rtol=0, atol=0)
    assert not all(row.ok for row in rows)


def test_verified_freeze_feeds_the_checkpoint_arrays_only_where_the_file_holds_their_bytes(tmp_path, monkeypatch):
    """A verified streaming freeze keeps the arrays it wrote; the frozen file's run is fed one only where every
    byte of the Const's tensor_content equals it (else the file's own bytes are read). A weight planted by the
    writer (MIGRATE_TEST_PLANT=freeze) differs: it is read from the file, and the check fails."""
    from migrate import api, io
    prefix, outputs, _ = _synthetic_checkpoint(str(tmp_path), big=True)
    seen = []
    real = graph_files._same_bytes
    monkeypatch.setattr(graph_files, "_same_bytes", lambda array, *rest: seen.append(real(array, *rest)) or seen[-1])
    result = api.freeze(prefix, str(tmp_path / "frozen.pb"), outputs=outputs)
    assert seen == [True]  # 'huge', the one weight above FED_CONST_BYTES
    assert_compared(result.comparisons, outputs)
    del seen[:]
    monkeypatch.setenv(io.PLANT_ENV, "freeze")
    planted = str(tmp_path / "planted.pb")
    result = api.freeze(prefix, planted, outputs=outputs)
    assert seen == [False] and not os.path.exists(planted)
    assert not verify.all_ok(result.comparisons)


def test_large_bytes_reach_the_file_in_pieces_unchanged(tmp_path):
    """wire.write_bytes hands a large buffer to the file WRITE_PIECE_BYTES at a time (the page cache then
    fills small folios, see wire.py), the same bytes in the same order, for bytes and for an array's
    memoryview of any dtype and rank; a small one goes in one call."""
    from migrate.graph import wire

    class Recording(object):
        def __init__(self):
            self.calls = []

        def write(self, data):
            self.calls.append(bytes(data))

    piece = wire.WRITE_PIECE_BYTES
    values = np.arange(3 * piece // 4 + 5, dtype=np.float32).reshape(-1, 1)  # 2-D, 4-byte items, odd tail
    for data in (values.tobytes(), memoryview(values), memoryview(values.reshape(-1).view(np.uint8))):
        handle = Recording()
        wire.write_bytes(handle, data)
        assert b"".join(handle.calls) == values.tobytes()
        assert len(handle.calls) == 4 and max(len(c) for c in handle.calls) == piece
    handle = Recording()
    wire.write_bytes(handle, b"small")
    assert handle.calls == [b"small"]
    path = str(tmp_path / "pieces.bin")
    with open(path, "wb") as real:
        wire.write_bytes(real, memoryview(values))
    assert open(path, "rb").read() == values.tobytes()
