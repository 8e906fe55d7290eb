"""prune_unused: what the outputs need stays (control dependencies included), the rest goes."""
from tests.passes.graphs import api, assert_same_numbers, build, has_node, run_pass, seeded
from tests.passes.graphs import assert_shared_index_changes_nothing


def test_prune_unused_keeps_what_outputs_need_including_control_deps():
    def body():
        x = api.placeholder(api.float32, [None, 2], name="x")
        api.placeholder(api.float32, [None, 2], name="unused_input")
        api.multiply(x, 10.0, name="dead")
        marker = api.add(api.constant(1.0), api.constant(2.0), name="marker")
        with api.control_dependencies([marker]):
            api.add(x, 1.0, name="out")
    before = build(body)
    after, record = run_pass("prune_unused", before, ["out:0"], ["x:0", "unused_input:0"])
    assert not has_node(after, "dead") and has_node(after, "marker") and has_node(after, "unused_input")
    assert record.removed["Mul"] == 1 and any("unused_input" in note for note in record.notes)
    assert_same_numbers(before, after, {"x:0": seeded([2, 2])}, ["out:0"])


def test_prune_unused_on_the_shared_index_as_on_an_index_of_its_own(zoo_model):
    """Every zoo model, in the default pipeline: the pass on the index all passes share gives the graph and
    the record it gives on an index built fresh from the graph it is handed (as each pass swept it before)."""
    assert_shared_index_changes_nothing("prune_unused", zoo_model)
