"""set_static_shapes: unknown placeholder dims fixed from max_batch / input_shapes, only when static."""
import pytest

from migrate.errors import BadInput
from tests.passes.graphs import api, assert_same_numbers, build, node, run_graph, run_pass, seeded, static_graph
from tests.passes.graphs import assert_shared_index_changes_nothing


def test_set_static_shapes_uses_max_batch_and_input_shapes():
    graph = api.Graph()
    with graph.as_default():
        static_graph()
    before = graph.as_graph_def(add_shapes=True)
    after, record = run_pass("set_static_shapes", before, ["out:0"], ["x:0"], static=True, max_batch=1,
                             input_shapes={"x:0": [None, 4, 5]})
    shape = node(after, "x").attr["shape"].shape
    assert [d.size for d in shape.dim] == [1, 4, 5]
    assert [d.size for d in node(after, "x").attr["_output_shapes"].list.shape[0].dim] == [1, 4, 5]
    assert record.applied and "[?, 4, ?] -> [1, 4, 5]" in record.notes[0]
    assert_same_numbers(before, after, {"x:0": seeded([1, 4, 5])}, ["out:0"])
    with pytest.raises(ValueError):  # TF itself now refuses another batch size
        run_graph(after, {"x:0": seeded([2, 4, 5])}, ["out:0"])


def test_set_static_shapes_names_the_unknown_dim():
    before = build(static_graph)
    with pytest.raises(BadInput) as caught:
        run_pass("set_static_shapes", before, ["out:0"], ["x:0"], static=True, max_batch=4)
    assert "placeholder 'x'" in str(caught.value) and "dim 2" in str(caught.value)
    with pytest.raises(BadInput) as caught:
        run_pass("set_static_shapes", before, ["out:0"], ["x:0"], static=True, input_shapes={"x": [None, 4, 5]})
    assert "dim 0" in str(caught.value) and "max_batch" in str(caught.value)


def test_set_static_shapes_only_when_static():
    before = build(static_graph)
    after, record = run_pass("set_static_shapes", before, ["out:0"], ["x:0"], max_batch=4)
    assert not record.applied and "static" in record.reason
    assert after == before


def test_set_static_shapes_on_the_shared_index_as_on_an_index_of_its_own(zoo_model):
    """Every zoo model, in the default pipeline: the pass on the index all passes share gives the graph and
    the record it gives on an index built fresh from the graph it is handed (as each pass swept it before)."""
    assert_shared_index_changes_nothing("set_static_shapes", zoo_model)
