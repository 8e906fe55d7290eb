"""remove_identity: Identity / StopGradient / IdentityN chains spliced out, output names and cond pivots kept."""
import numpy as np

from migrate.graph import names
from tests.passes.graphs import (api, assert_same_numbers, build, cond_graph, has_node, identity_graph, node, run_pass,
                                 seeded)
from tests.passes.graphs import assert_shared_index_changes_nothing


def test_remove_identity_splices_chains_and_keeps_the_output_name():
    before = build(identity_graph)
    after, record = run_pass("remove_identity", before, ["out:0"], ["x:0"])
    assert node(after, "out").op == "Identity"
    assert [n.name for n in after.node if n.op in ("Identity", "StopGradient")] == ["out"]
    assert list(node(after, "relu").input) == ["x"]
    assert list(node(after, "out").input) == ["tripled"]
    # The control dependency of the removed 'guarded' moved to its reader.
    assert "^marker" in node(after, "tripled").input
    assert record.removed["Identity"] == 4 and record.removed["StopGradient"] == 1
    assert_same_numbers(before, after, {"x:0": seeded([3, 4])}, ["out:0"])


def test_remove_identity_forwards_identity_n_outputs():
    def body():
        x = api.placeholder(api.float32, [None, 2], name="x")
        first, second = api.identity_n([x * 2.0, x - 1.0], name="both")
        api.subtract(second, first, name="out")
    before = build(body)
    after, record = run_pass("remove_identity", before, ["out:0"], ["x:0"])
    assert not has_node(after, "both") and record.removed["IdentityN"] == 1
    assert [node(after, names.node_name(i)).op for i in node(after, "out").input] == ["Sub", "Mul"]
    assert_same_numbers(before, after, {"x:0": seeded([3, 2])}, ["out:0"])


def test_remove_identity_keeps_cond_pivots():
    before = build(cond_graph)
    after, record = run_pass("remove_identity", before, ["out:0"], ["x:0"])
    pivots = [n.name for n in before.node if n.op == "Identity" and
              node(before, names.node_name(n.input[0])).op == "Switch"]
    assert pivots and all(node(after, name).op == "Identity" for name in pivots)
    assert record.applied and any("Switch" in note for note in record.notes)
    for sign in (1.0, -1.0):  # both branches
        assert_same_numbers(before, after, {"x:0": sign * np.abs(seeded([2, 4]))}, ["out:0"])


def test_remove_identity_on_the_shared_index_as_on_an_index_of_its_own(zoo_model):
    """Every zoo model, in the default pipeline: the pass on the index all passes share gives the graph and
    the record it gives on an index built fresh from the graph it is handed (as each pass swept it before)."""
    assert_shared_index_changes_nothing("remove_identity", zoo_model)
