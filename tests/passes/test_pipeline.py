"""The pass registry and run_pipeline: every pass keeps TF1 control flow working, the default pipeline on a
while loop, unknown pass names, the caller's GraphDef left alone."""
import pytest

from migrate import passes
from migrate.errors import BadInput
from migrate.passes import PassContext
from tests.passes.graphs import (assert_same_numbers, build, cond_graph, debug_graph, has_node, identity_graph, node,
                                 ops, run_pass, seeded, while_graph)


CONTROL_FLOW_GRAPHS = {
    # graph: (builder, feeds, control-flow ops that must all survive)
    "while": (while_graph, lambda: {"x:0": seeded([2, 4])}, ("NextIteration", "LoopCond", "Enter")),
    "cond": (cond_graph, lambda: {"x:0": seeded([2, 4])}, ("Merge",)),
    "assert_guards": (debug_graph, lambda: {"x:0": seeded([2, 3])}, ()),
}


@pytest.mark.parametrize("graph_name", sorted(CONTROL_FLOW_GRAPHS))
@pytest.mark.parametrize("pass_name", list(passes.REGISTRY))
def test_every_pass_keeps_v1_control_flow_working(pass_name, graph_name):
    builder, feeds, kept_ops = CONTROL_FLOW_GRAPHS[graph_name]
    before = build(builder)
    options = dict(static=True, max_batch=2)
    after, record = run_pass(pass_name, before, ["out:0"], ["x:0"], **options)
    assert record.applied or record.reason
    for op in kept_ops:
        assert ops(after)[op] == ops(before)[op] > 0, op
    assert_same_numbers(before, after, feeds(), ["out:0"], rtol=1e-5, atol=1e-5)


def test_default_pipeline_on_a_while_loop():
    before = build(while_graph)
    context = PassContext(["out:0"], ["x:0"], dict(static=True, max_batch=2))
    after, records = passes.run_pipeline(before, passes.DEFAULT_PASSES, context)
    assert [r.name for r in records] == list(passes.DEFAULT_PASSES)
    assert node(after, "limit").op == "Const"     # folded outside the loop
    assert not has_node(after, "w/read")          # identity on the weights removed
    assert ops(after)["NextIteration"] == 2
    assert_same_numbers(before, after, {"x:0": seeded([2, 4])}, ["out:0"], rtol=1e-5, atol=1e-5)


def test_unknown_pass_is_bad_input_listing_known_passes():
    with pytest.raises(BadInput) as caught:
        passes.parse_pass_list("strip_debug, fold_everything")
    message = str(caught.value)
    assert "fold_everything" in message and all(name in message for name in passes.REGISTRY)
    assert passes.parse_pass_list(" strip_debug,topo_sort ,") == ["strip_debug", "topo_sort"]


def test_pipeline_leaves_the_callers_graph_alone_and_checks_outputs():
    before = build(identity_graph)
    snapshot = type(before)()
    snapshot.CopyFrom(before)
    after, _ = passes.run_pipeline(before, passes.DEFAULT_PASSES, PassContext(["out:0"], ["x:0"]))
    assert before == snapshot and after != before
    with pytest.raises(BadInput) as caught:
        passes.run_pipeline(before, ["prune_unused"], PassContext(["nope:0"], ["x:0"]))
    assert "nope" in str(caught.value)
