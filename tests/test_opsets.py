"""migrate/opsets.py on graphs written by the installed TF: the restore op every loader runs (restore_root /
restore_filename, shared by session, streaming and safety), and the debug set (what inspect reports is what
strip_debug removes, CheckNumericsV2 included where this TF has it)."""
import numpy as np

from migrate import opsets, tfcompat
from migrate.passes import PassContext, run_pipeline

api = tfcompat.v1()


def _saver_graph(second_saver=False):
    """(GraphDef, MetaGraphDef) of a variable with a tf.train.Saver ('save/'), and optionally a second Saver
    ('save_1/') that the meta graph's saver_def names."""
    graph = api.Graph()
    with graph.as_default():
        api.Variable(np.ones([2], np.float32), name="w")
        saver = api.train.Saver()
        if second_saver:
            saver = api.train.Saver()
        meta = api.train.export_meta_graph(saver_def=saver.as_saver_def(), graph=graph)
    return graph.as_graph_def(), meta


def test_restore_root_is_the_savers_restore_op_and_its_filename_input():
    graph_def, meta = _saver_graph()
    by_name = dict((n.name, n) for n in graph_def.node)
    assert opsets.restore_root(graph_def) == "save/restore_all" == opsets.restore_root(graph_def, meta)
    assert by_name["save/restore_all"].op == "NoOp"
    filename = opsets.restore_filename(graph_def)
    assert filename == opsets.restore_filename(graph_def, meta) == meta.saver_def.filename_tensor_name.split(":")[0]
    assert by_name[filename].op in opsets.FEEDABLE_FILENAME_OPS


def test_restore_root_follows_the_saver_def_over_graph_order():
    graph_def, meta = _saver_graph(second_saver=True)
    assert opsets.restore_root(graph_def) == "save/restore_all"  # no meta graph: the first in graph order
    assert opsets.restore_root(graph_def, meta) == "save_1/restore_all"  # the loader runs the saver_def's
    assert opsets.restore_filename(graph_def, meta) == "save_1/Const"
    assert opsets.restore_root(api.GraphDef()) is None and opsets.restore_filename(api.GraphDef()) is None


def test_what_inspect_calls_debug_is_what_strip_debug_removes():
    graph = api.Graph()
    with graph.as_default(), tfcompat.tf1_control_flow():  # the Assert in a v1 cond, not inside a function
        x = api.placeholder(api.float32, [2], name="x")
        y = api.check_numerics(x, "x is finite")
        if tfcompat.op_def("CheckNumericsV2") is not None:  # TF >= 2.x; older TFs do not have the op
            from tensorflow.python.ops import gen_array_ops
            y = gen_array_ops.check_numerics_v2(y, "still finite")
        y = api.Print(y, [y], "y")
        with api.control_dependencies([api.Assert(api.reduce_all(api.is_finite(y)), [y])]):
            api.identity(y * 2.0, name="out")
    graph_def = graph.as_graph_def()
    present = [n.op for n in graph_def.node]
    debug = opsets.categorize(dict((op, present.count(op)) for op in set(present)))["debug"]
    expected = ["Assert", "CheckNumerics", "Print"] + (["CheckNumericsV2"] if "CheckNumericsV2" in present else [])
    assert debug == sorted(expected)
    after, _ = run_pipeline(graph_def, ["strip_debug"], PassContext(["out:0"], ["x:0"]))
    assert not set(n.op for n in after.node) & set(debug)
    with api.Graph().as_default() as fresh, api.Session(graph=fresh) as session:
        api.import_graph_def(after, name="")
        np.testing.assert_allclose(session.run("out:0", {"x:0": [1.5, -2.0]}), [3.0, -4.0])
