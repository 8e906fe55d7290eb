"""How verification runs import a graph (tfcompat.import_for_run): through TF's C API with one bare Operation per
node from TF 1.13, import_graph_def before (and for graphs with a function library). Both paths must give the
same graph (ops, dtypes, static shapes: what the memory check reads) and the same numbers, on zoo models written
by old TF and on the real frozen graphs of test_optimize."""
import os

import numpy as np
import pytest

from migrate import api, artifacts, tfcompat
from migrate.errors import BadInput
from migrate.graph import files as graph_files
from migrate.verification import runners
from tests.conftest import ATTRS_LACKING, expected_unknown_ops
from tests.test_optimize import _wav_bytes

# Independent of tfcompat's constant: TF 1.7's tf.Graph is not built on the C API by default (its ops.py reads
# TF_C_API_GRAPH_CONSTRUCTION, default off); 1.13 is the oldest TF of the matrix whose Graph is.
EXPECTED_PATH = [((0, 0), (1, 13), tfcompat.IMPORT_PYTHON), ((1, 13), (99, 0), tfcompat.IMPORT_C_API)]


def _expected_path(version):
    return [path for low, high, path in EXPECTED_PATH if low <= version[:2] < high][0]


def test_path_is_chosen_by_version():
    assert tfcompat.run_import_path(tf_version=(1, 7, 1)) == tfcompat.IMPORT_PYTHON
    assert tfcompat.run_import_path(tf_version=(1, 12, 3)) == tfcompat.IMPORT_PYTHON
    assert tfcompat.run_import_path(tf_version=(1, 13, 2)) == tfcompat.IMPORT_C_API
    assert tfcompat.run_import_path(tf_version=(2, 21, 0)) == tfcompat.IMPORT_C_API
    assert tfcompat.run_import_path() == _expected_path(tfcompat.version())


def test_env_names_the_path(run_cli):
    code, out, err = run_cli("env")
    assert code == 0, err
    assert "verification_import      " + _expected_path(tfcompat.version()) in out


def _imported(path):
    """(import path taken, {op name: (type, [(dtype, static shape)])}) of a binary graph file imported by
    import_for_run, weights as fed placeholders (as run_file imports it)."""
    structure, _ = graph_files.read_back(path, values=False)
    graph = tfcompat.v1().Graph()
    taken = tfcompat.import_for_run(graph, structure)
    ops = dict((op.name, (op.type, [(t.dtype.name, str(t.shape)) for t in op.outputs]))
               for op in graph.get_operations())
    assert len(ops) == len(structure.node)
    functions = len(structure.library.function) > 0  # graphs calling functions take import_graph_def
    return taken, ops, functions


def _same_both_ways(path, outputs, feeds, monkeypatch):
    """run_file of `path` on the C path (where this TF has it) and on import_graph_def: identical graphs (ops,
    dtypes, static shapes) and the same outputs (exact, or within 1e-5 relative for floats: under load, a
    DS-CNN's oneDNN convolutions in TF 2.21 differed by ~1e-7 between two runs). Returns the outputs."""
    taken, graph, functions = _imported(path)
    assert taken == (tfcompat.IMPORT_PYTHON if functions else _expected_path(tfcompat.version()))
    fast = runners.run_file(path, outputs, feeds)
    with monkeypatch.context() as patch:
        patch.setattr(tfcompat, "_C_IMPORT_SINCE", (99, 0, 0))
        taken_plain, graph_plain, _ = _imported(path)
        plain = runners.run_file(path, outputs, feeds)
    assert taken_plain == tfcompat.IMPORT_PYTHON
    assert graph == graph_plain
    assert sorted(fast) == sorted(plain) == sorted(outputs)
    for name in outputs:
        assert fast[name].dtype == plain[name].dtype and fast[name].shape == plain[name].shape, name
        if fast[name].dtype.kind in "fc":  # oneDNN's convolutions (TF 2.x) may differ in the last bits from run
            np.testing.assert_allclose(fast[name], plain[name], rtol=1e-5, atol=1e-6, err_msg=name)  # to run
        else:
            np.testing.assert_array_equal(fast[name], plain[name], err_msg=name)
    return fast


def test_zoo_models_run_the_same_both_ways(zoo_model, tmp_path, monkeypatch):
    unknown = expected_unknown_ops(zoo_model)
    path = zoo_model.path
    if zoo_model.kind != "frozen_graph":
        path = os.path.join(str(tmp_path), "frozen.pb")
        if unknown:  # written by a newer TF than this one: refused before any import, on either path
            with pytest.raises(BadInput):
                api.freeze(zoo_model.path, path, outputs=zoo_model.outputs, verify=False)
            return
        api.freeze(zoo_model.path, path, outputs=zoo_model.outputs, verify=False)
    golden = zoo_model.golden()
    feeds = dict((name, golden[name]) for name in zoo_model.inputs)
    if unknown or _lacks_attrs(path):  # ops or attrs this TF lacks: the same failure on either path
        failures = []
        for forced in (False, True):
            with monkeypatch.context() as patch:
                if forced:
                    patch.setattr(tfcompat, "_C_IMPORT_SINCE", (99, 0, 0))
                with pytest.raises(Exception) as error:
                    runners.run_file(path, zoo_model.outputs, feeds)
                failures.append((type(error.value), str(error.value).splitlines()[0]))
        assert failures[0] == failures[1]
        if unknown and unknown != [ATTRS_LACKING]:  # ops it lacks: refused before any import
            assert failures[0][0] is BadInput and "not registered in TF" in failures[0][1]
        return
    actual = _same_both_ways(path, zoo_model.outputs, feeds, monkeypatch)
    for name in zoo_model.outputs:
        np.testing.assert_allclose(actual[name], golden[name], rtol=1e-4, atol=1e-5, err_msg=name)


def _lacks_attrs(path):
    """Whether the frozen graph at `path` holds attrs this TF's ops do not define (written by a newer TF)."""
    from migrate import session
    try:
        session.check_attrs_known(graph_files.read_back(path, values=False)[0], path)
        return False
    except BadInput:
        return True


def _placeholder_feeds(graph_def, rng):
    feeds = {}
    for node in graph_def.node:
        if node.op == "Placeholder":
            feeds[node.name + ":0"] = (np.float32(1.0) if node.name == "keep_prob"
                                       else rng.rand(2, 784).astype(np.float32))
    return feeds


@pytest.mark.parametrize("name,outputs", [
    ("arm_kws_frozen/DS_CNN_S.pb", ["labels_softmax"]), ("arm_kws_frozen/LSTM_S.pb", ["labels_softmax"]),
    ("arm_kws_frozen/GRU_S.pb", ["labels_softmax"]), ("arm_kws_frozen/CRNN_S.pb", ["labels_softmax"]),
    ("tf2onnx_lstm/frozen.pb", ["output"]), ("tf2onnx_ae0/frozen.pb", ["output"]),
    ("tf2onnx_fc-layers/frozen.pb", ["output"])])
def test_real_frozen_graphs_run_the_same_both_ways(artifact, name, outputs, monkeypatch):
    source = artifact(name)
    if name.startswith("arm_kws"):
        feeds = {"wav_data:0": np.array(_wav_bytes())}
    else:
        feeds = _placeholder_feeds(artifacts.load(source).graph_def, np.random.RandomState(1))
    values = _same_both_ways(source, outputs, feeds, monkeypatch)
    assert all(np.all(np.isfinite(values[o])) and values[o].size for o in outputs)


def _doubling_graph_file(path):
    """A frozen graph whose output calls a library function (Defun): y = f(x) = 2x."""
    from tensorflow.python.framework import function
    v1 = tfcompat.v1()
    graph = v1.Graph()
    with graph.as_default():
        @function.Defun(v1.float32)
        def double(x):
            return x * 2.0
        x = v1.placeholder(v1.float32, [None, 3], name="x")
        v1.identity(double(x), name="y")
    graph_def = graph.as_graph_def()
    assert len(graph_def.library.function) == 1
    graph_files.write_graph_def(graph_def, path)


def test_graph_with_functions_falls_back_to_import_graph_def(tmp_path):
    """A graph the C path does not take (a function library: import_graph_def also registers the functions on
    the Python side) is imported by import_graph_def in every TF, and runs."""
    path = os.path.join(str(tmp_path), "defun.pb")
    _doubling_graph_file(path)
    structure, _ = graph_files.read_back(path)
    assert tfcompat.run_import_path(structure) == tfcompat.IMPORT_PYTHON
    assert tfcompat.import_for_run(tfcompat.v1().Graph(), structure) == tfcompat.IMPORT_PYTHON
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    values = runners.run_file(path, ["y:0"], {"x:0": x})
    np.testing.assert_array_equal(values["y:0"], 2 * x)


@pytest.mark.parametrize("forced_plain", [False, True], ids=["this-tf", "import_graph_def"])
def test_an_invalid_graph_is_one_line_on_either_path(tmp_path, monkeypatch, forced_plain):
    """A graph TF refuses (an input naming a node that is not there): the same BadInput line on either path."""
    from tensorflow.core.framework import graph_pb2
    if forced_plain:
        monkeypatch.setattr(tfcompat, "_C_IMPORT_SINCE", (99, 0, 0))
    graph_def = graph_pb2.GraphDef()
    node = graph_def.node.add()
    node.name, node.op = "y", "Identity"
    node.input.append("missing")
    node.attr["T"].type = 1
    path = os.path.join(str(tmp_path), "bad.pb")
    graph_files.write_graph_def(graph_def, path)
    with pytest.raises(BadInput, match="cannot import the graph.*missing"):
        runners.run_file(path, ["y:0"], {})


def test_run_file_frees_its_graph_and_leaves_the_collector_as_it_was(tmp_path, monkeypatch):
    """run_file's graph (a tf.Graph and its Operations hold each other) is freed by run_file itself, with the
    objects alive before it set aside for that collection (gcpause.young_only); on return nothing stays set
    aside, and a garbage cycle made before the run is still collected by the next full collection."""
    import gc
    import weakref
    import numpy as np
    from migrate import gcpause, tfcompat
    from migrate.graph import files as graph_files
    from migrate.verification import runners
    v1 = tfcompat.v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 3], name="x")
        v1.identity(x * 2.0, name="y")
    path = str(tmp_path / "g.pb")
    graph_files.write_graph_def(graph.as_graph_def(), path)
    built, frozen_inside = [], []
    real = tfcompat.import_for_run

    def spying(graph, *args, **kwargs):
        built.append(weakref.ref(graph))
        if hasattr(gc, "get_freeze_count"):
            frozen_inside.append(gc.get_freeze_count())
        return real(graph, *args, **kwargs)
    monkeypatch.setattr(tfcompat, "import_for_run", spying)

    class Cycle(object):
        pass
    old = Cycle()
    old.me = old
    old_ref = weakref.ref(old)
    del old
    enabled = gc.isenabled()
    gc.disable()  # only run_file's own collection may free its graph
    try:
        result = runners.run_file(path, ["y:0"], {"x:0": np.ones([2, 3], np.float32)})
        assert built and built[0]() is None  # the graph went before run_file returned
        if hasattr(gc, "get_freeze_count"):  # Python 3.7+: set aside during the run, put back after
            assert old_ref() is not None  # made before the run: not walked by its collection
            assert frozen_inside[0] > 0 and gc.get_freeze_count() == 0
        with gcpause.young_only():
            with gcpause.young_only():  # nested: the outer block keeps them aside
                pass
            if hasattr(gc, "get_freeze_count"):
                assert gc.get_freeze_count() > 0
        gc.collect()
        assert old_ref() is None
    finally:
        if enabled:
            gc.enable()
    np.testing.assert_array_equal(result["y:0"], np.full([2, 3], 2.0, np.float32))
