"""resolve_switches: a cond on a constant predicate collapses to the branch taken, numbers unchanged."""
import numpy as np
import pytest

from migrate.passes import PassContext, run_pipeline
from tests.passes.graphs import api, build, run_graph
from tests.passes.graphs import assert_shared_index_changes_nothing


def _cond_graph(flag):
    """x -> cond(flag, train branch with a side update, infer branch) -> y, built as TF1 Switch/Merge."""
    def body():
        x = api.placeholder(api.float32, [None, 4], name="x")
        pred = api.constant(flag, name="is_training")
        w = api.constant(np.arange(16, dtype=np.float32).reshape(4, 4) / 10.0, name="w")
        y = api.cond(pred, lambda: api.matmul(x, w) * 2.0, lambda: api.nn.relu(api.matmul(x, w) - 1.0))
        api.identity(y, name="y")
    return build(body)


@pytest.mark.parametrize("flag", [False, True])
def test_constant_cond_collapses_to_taken_branch(flag):
    graph_def = _cond_graph(flag)
    ops_before = [n.op for n in graph_def.node]
    assert "Switch" in ops_before and "Merge" in ops_before
    context = PassContext(outputs=["y:0"], inputs=["x:0"])
    optimized, records = run_pipeline(graph_def, ["resolve_switches", "remove_identity", "prune_unused"], context)
    ops_after = [n.op for n in optimized.node]
    assert "Switch" not in ops_after and "Merge" not in ops_after
    assert ("Relu" in ops_after) is (not flag)  # only the taken branch remains
    x = np.random.RandomState(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(run_graph(optimized, {"x:0": x}, ["y:0"])[0],
                               run_graph(graph_def, {"x:0": x}, ["y:0"])[0], rtol=1e-6)
    assert records[0].applied


def test_placeholder_predicate_is_left_alone():
    def body():
        x = api.placeholder(api.float32, [None, 2], name="x")
        pred = api.placeholder(api.bool, [], name="flag")
        api.identity(api.cond(pred, lambda: x + 1.0, lambda: x - 1.0), name="y")
    context = PassContext(outputs=["y:0"], inputs=["x:0", "flag:0"])
    optimized, records = run_pipeline(build(body), ["resolve_switches"], context)
    assert not records[0].applied and "no Switch has a constant predicate" in records[0].reason
    assert "Merge" in [n.op for n in optimized.node]


def test_resolve_switches_on_the_shared_index_as_on_an_index_of_its_own(zoo_model):
    """Every zoo model, in the default pipeline: the pass on the index all passes share gives the graph and
    the record it gives on an index built fresh from the graph it is handed (as each pass swept it before)."""
    assert_shared_index_changes_nothing("resolve_switches", zoo_model)
