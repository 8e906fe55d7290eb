"""fold_constants: constant subgraphs become Consts, within the byte cap, around failing subgraphs."""
import numpy as np

from tests.passes.graphs import api, assert_same_numbers, build, node, ops, run_pass, seeded, static_graph
from tests.passes.graphs import assert_shared_index_changes_nothing


def fold_graph():
    x = api.placeholder(api.float32, [None, 3], name="x")
    folded = api.add(api.constant([1.0, 2.0, 3.0]) * 2.0, api.constant([4.0, 5.0, 6.0]), name="folded")
    api.add(x, folded, name="y")
    wide = api.placeholder(api.float32, [None, 1024], name="wide")
    big = api.fill([1024, 1024], 0.5, name="big")  # 4 MiB from a few bytes: must stay a Fill
    api.matmul(wide, big, name="w")


def test_fold_constants_replaces_constant_subgraphs_but_not_big_fills():
    before = build(fold_graph)
    after, record = run_pass("fold_constants", before, ["y:0", "w:0"], ["x:0", "wide:0"])
    assert node(after, "folded").op == "Const"
    np.testing.assert_allclose(api.make_ndarray(node(after, "folded").attr["value"].tensor), [6.0, 9.0, 12.0])
    assert ops(after)["Mul"] == 0 and ops(after)["Add"] + ops(after)["AddV2"] == 1
    assert node(after, "big").op == "Fill"
    assert any("big:0" in note and "4.0 MiB" in note for note in record.notes)
    feeds = {"x:0": seeded([2, 3]), "wide:0": seeded([2, 1024])}
    assert_same_numbers(before, after, feeds, ["y:0", "w:0"], rtol=1e-5, atol=1e-5)


def test_fold_constants_respects_the_byte_cap():
    before = build(fold_graph)
    after, record = run_pass("fold_constants", before, ["y:0", "w:0"], ["x:0", "wide:0"], fold_max_bytes=8)
    assert node(after, "folded").op in ("Add", "AddV2")
    assert not record.applied and "size limits" in record.reason


def test_fold_constants_keeps_a_failing_constant_subgraph_and_folds_the_rest():
    def body():
        x = api.placeholder(api.float32, [None, 3], name="x")
        values = api.constant([1.0, 2.0, 3.0])
        api.add(x, api.gather(values, [10, 0, 1], name="broken"), name="bad")  # index 10: fails when run
        api.add(x, api.gather(values, [2, 0, 1], name="fine"), name="good")
    before = build(body)
    after, record = run_pass("fold_constants", before, ["good:0", "bad:0"], ["x:0"])
    assert node(after, "fine").op == "Const" and node(after, "broken").op != "Const"
    assert any("broken:0" in note and "failed" in note for note in record.notes), record.notes
    assert_same_numbers(before, after, {"x:0": seeded([2, 3])}, ["good:0"])


def test_fold_constants_folds_shapes_of_static_placeholders():
    before = build(static_graph)
    shaped, _ = run_pass("set_static_shapes", before, ["out:0"], ["x:0"], static=True, max_batch=2,
                         input_shapes={"x": [None, 4, 5]})
    after, record = run_pass("fold_constants", shaped, ["out:0"], ["x:0"])
    assert ops(shaped)["Shape"] == 1 and ops(after)["Shape"] == 0 and ops(after)["Cast"] == 0
    assert record.added["Const"] >= 1
    assert_same_numbers(shaped, after, {"x:0": seeded([2, 4, 5])}, ["out:0"])


def test_fold_constants_on_the_shared_index_as_on_an_index_of_its_own(zoo_model):
    """Every zoo model, in the default pipeline: the pass on the index all passes share gives the graph and
    the record it gives on an index built fresh from the graph it is handed (as each pass swept it before)."""
    assert_shared_index_changes_nothing("fold_constants", zoo_model)
