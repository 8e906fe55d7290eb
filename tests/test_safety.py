"""safety.py on its own, on GraphDefs built with the installed TF: an unsafe op the outputs need is refused in
one line naming the node; what is not run is not refused; the model's own restore and its own assets pass,
also when the file name reaches the op through a library function's arguments (Defun calls and
PartitionedCall); anything else is refused, naming the function."""
import os
import shutil

import numpy as np
import pytest

from migrate import artifacts, safety, tfcompat
from migrate.errors import BadInput
from migrate.model import FROZEN_GRAPH, GRAPH_WITH_CHECKPOINT, Model

api = tfcompat.v1()


def _defun(*types):
    from tensorflow.python.framework import function  # Defun: library functions on every TF from 1.7
    return function.Defun(*types)


def _reading_graph(readers=1, needed=True):
    """y = x + the numbers in files read by ReadFile nodes `contents_<i>` (only a dead branch when not needed)."""
    graph = api.Graph()
    with graph.as_default():
        x = api.placeholder(api.float32, [None], name="x")
        total = api.constant(0.0)
        for index in range(readers):
            contents = api.read_file(api.constant("/etc/hostname"), name="contents_{}".format(index))
            total += api.string_to_number(contents)
        api.identity(x + total if needed else x, name="y")
        api.identity(x * total, name="reads")
    return graph.as_graph_def()


def test_unsafe_op_the_outputs_need_is_refused_in_one_line():
    model = Model(FROZEN_GRAPH, "/models/reader.pb", _reading_graph())
    assert safety.unsafe_nodes(model, ["y:0"]) == [("contents_0", "ReadFile")]
    with pytest.raises(BadInput) as caught:
        safety.check(model, ["y:0"])
    error = caught.value
    assert error.where == "/models/reader.pb"
    assert error.what == "graph would run ops that touch files, the network or Python: contents_0 (ReadFile)"
    assert "--allow-unsafe-ops" in error.fix and "\n" not in str(error)
    safety.check(model, ["y:0"], allow_unsafe=True)  # the user's explicit choice


def test_an_unsafe_op_nothing_runs_is_not_refused():
    graph_def = _reading_graph(needed=False)
    assert "ReadFile" in [n.op for n in graph_def.node]
    model = Model(FROZEN_GRAPH, "reader.pb", graph_def)
    assert safety.unsafe_nodes(model, ["y:0"]) == []
    assert safety.unsafe_nodes(model, ["reads:0"]) == [("contents_0", "ReadFile")]


def test_more_than_five_unsafe_ops_are_counted_not_listed():
    model = Model(FROZEN_GRAPH, "reader.pb", _reading_graph(readers=7))
    with pytest.raises(BadInput) as caught:
        safety.check(model, ["y:0"])
    listed = caught.value.what.split(": ", 1)[1]
    assert listed.endswith(" and 2 more") and listed.count("(ReadFile)") == 5


# ------------------------------------------------------------------------------------------ restore

def _saver_graph(extra_saver=False):
    """x @ w with a tf.train.Saver (save/Const -> save/RestoreV2 -> save/restore_all); extra_saver: y also
    waits on a second saver's restore, which reads a file name migrate does not feed."""
    graph = api.Graph()
    with graph.as_default():
        x = api.placeholder(api.float32, [None, 2], name="x")
        w = api.get_variable("w", initializer=np.eye(2, dtype=np.float32))
        saver = api.train.Saver()
        controls = []
        if extra_saver:
            other = api.train.Saver(name="other_saver")
            controls = [graph.get_operation_by_name(other.saver_def.restore_op_name)]
        with api.control_dependencies(controls):
            api.identity(api.matmul(x, w), name="y")
        meta = saver.export_meta_graph()
    return graph.as_graph_def(), meta


@pytest.mark.parametrize("with_meta", [True, False])
def test_the_models_own_restore_of_the_fed_checkpoint_passes(with_meta):
    graph_def, meta = _saver_graph()
    ops = set(n.op for n in graph_def.node)
    assert {"RestoreV2", "SaveV2"} <= ops  # unsafe ops, in the graph the loader runs (save/restore_all)
    model = Model(GRAPH_WITH_CHECKPOINT, "graph.pbtxt", graph_def, meta_graph=meta if with_meta else None,
                  checkpoint="/ckpt/model.ckpt-1")
    assert safety.unsafe_nodes(model, ["y:0"]) == []


def test_a_restore_of_another_file_is_refused():
    graph_def, meta = _saver_graph(extra_saver=True)
    model = Model(GRAPH_WITH_CHECKPOINT, "graph.pbtxt", graph_def, meta_graph=meta, checkpoint="/ckpt/model.ckpt-1")
    assert safety.unsafe_nodes(model, ["y:0"]) == [("other_saver/RestoreV2", "RestoreV2")]


# ------------------------------------------------------------------------------------------ function arguments

def _restoring_function_graph(file_name, call_op):
    """save/* of a tf.train.Saver, and y waiting on a call of `outer(prefix)`, which passes identity(prefix) to
    `inner(prefix)`, which runs RestoreV2 on it; the call is given `file_name` ("saver": the saver's file-name
    tensor migrate feeds, else a constant path). call_op: "Defun" (the call's op is the function's name) or
    "PartitionedCall" (the same call as TF 2.x writes it). Returns (graph_def, outer name, inner name)."""
    from tensorflow.python.ops import gen_io_ops
    graph = api.Graph()
    with graph.as_default():
        x = api.placeholder(api.float32, [None, 2], name="x")
        w = api.get_variable("w", initializer=np.eye(2, dtype=np.float32))
        saver = api.train.Saver()

        @_defun(api.string)
        def inner(prefix):
            return gen_io_ops.restore_v2(prefix, ["w"], [""], [api.float32])[0]

        @_defun(api.string)
        def outer(prefix):
            return inner(api.identity(prefix))

        name = graph.get_tensor_by_name(saver.saver_def.filename_tensor_name) if file_name == "saver" else \
            api.constant(file_name, name="elsewhere")
        restored = outer(name)
        with api.control_dependencies([restored]):
            api.identity(api.matmul(x, w), name="y")
    graph_def = graph.as_graph_def()
    names = dict((f.signature.name.split("_")[0], f.signature.name) for f in graph_def.library.function)
    if call_op == "PartitionedCall":
        [call] = [n for n in graph_def.node if n.op == names["outer"]]
        call.op = "PartitionedCall"
        call.attr["f"].func.name = names["outer"]
        call.attr["Tin"].list.type.append(api.string.as_datatype_enum)
        call.attr["Tout"].list.type.append(api.float32.as_datatype_enum)
    return graph_def, names["outer"], names["inner"]


@pytest.mark.parametrize("call_op", ["Defun", "PartitionedCall"])
def test_restore_inside_functions_of_the_fed_checkpoint_passes(call_op):
    graph_def, outer, _ = _restoring_function_graph("saver", call_op)
    [call] = [n for n in graph_def.node if n.op in (outer, "PartitionedCall")]
    assert call.op == (outer if call_op == "Defun" else "PartitionedCall")
    model = Model(GRAPH_WITH_CHECKPOINT, "graph.pbtxt", graph_def, checkpoint="/ckpt/model.ckpt-1")
    assert safety.unsafe_nodes(model, ["y:0"]) == []


@pytest.mark.parametrize("call_op", ["Defun", "PartitionedCall"])
def test_restore_inside_functions_of_another_file_is_refused_naming_the_function(call_op):
    graph_def, outer, inner = _restoring_function_graph("/etc/other.ckpt", call_op)
    model = Model(GRAPH_WITH_CHECKPOINT, "graph.pbtxt", graph_def, checkpoint="/ckpt/model.ckpt-1")
    [(node, label)] = safety.unsafe_nodes(model, ["y:0"])
    assert label == "{} calling {}/RestoreV2".format(call_op if call_op == "PartitionedCall" else outer, inner)


def test_an_unsafe_op_inside_a_function_is_refused_whatever_its_arguments():
    graph = api.Graph()
    with graph.as_default():
        @_defun(api.string)
        def reader(name):
            return api.read_file(name)
        path = api.placeholder(api.string, [], name="path")
        api.identity(reader(path), name="y")
    graph_def = graph.as_graph_def()
    [function] = [f.signature.name for f in graph_def.library.function]
    model = Model(FROZEN_GRAPH, "reader.pb", graph_def)
    [(node, label)] = safety.unsafe_nodes(model, ["y:0"])
    assert label == "{0} calling {0}/ReadFile".format(function)
    assert [n.op for n in graph_def.node if n.name == node] == [function]


# ------------------------------------------------------------------------------------------ assets

def test_own_assets_pass_and_other_file_names_are_refused(lookup_saved_model):
    model = artifacts.load(lookup_saved_model)
    initializers = [n.name for n in model.graph_def.node if n.op.startswith("InitializeTableFromTextFile")]
    assert len(initializers) == 1
    assert safety.unsafe_nodes(model, ["scores:0"]) == []
    stripped = model.derive(assets={})  # the same file name, but not one the SavedModel ships
    assert [name for name, _ in safety.unsafe_nodes(stripped, ["scores:0"])] == initializers


def test_asset_linked_out_of_the_saved_model_is_refused(lookup_saved_model, tmp_path):
    saved = str(tmp_path / "saved_model")
    shutil.copytree(lookup_saved_model, saved)
    outside = str(tmp_path / "elsewhere.txt")
    shutil.copy(os.path.join(saved, "assets", "vocab.txt"), outside)
    os.remove(os.path.join(saved, "assets", "vocab.txt"))
    os.symlink(outside, os.path.join(saved, "assets", "vocab.txt"))
    model = artifacts.load(saved)
    assert safety.escaping_assets(model) == [(os.path.join("assets", "vocab.txt"), outside)]
    assert safety.own_assets(model) == set()
    with pytest.raises(BadInput) as caught:
        safety.check(model, ["scores:0"])
    assert caught.value.what == "asset file(s) resolve outside the SavedModel (symlinks): {} -> {}".format(
        os.path.join("assets", "vocab.txt"), outside)
    safety.check(model, ["scores:0"], allow_unsafe=True)
