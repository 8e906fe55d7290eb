"""strip_debug: debug ops, their AssertGuard conds and control edges go; the numbers stay."""
import numpy as np
import pytest

from tests.passes.graphs import api, assert_same_numbers, build, debug_graph, node, ops, run_graph, run_pass, seeded
from tests.passes.graphs import assert_shared_index_changes_nothing

DEBUG_OPS = {"Assert", "CheckNumerics", "Print", "PrintV2"}


def test_strip_debug_removes_debug_ops_their_guards_and_control_edges():
    before = build(debug_graph)
    assert ops(before)["Assert"] == 3 and ops(before)["Switch"] > 0
    assert ops(before)["PrintV2"] == (1 if hasattr(api, "print") else 0)
    assert "^plain/Assert" in node(before, "out").input and node(before, "plain/Assert").op == "Assert"
    after, record = run_pass("strip_debug", before, ["out:0"], ["x:0"])
    assert ops(before)["Assert"] == 3  # the caller's GraphDef is left alone
    assert not DEBUG_OPS & set(ops(after))
    assert ops(after)["Switch"] == 0 and ops(after)["Merge"] == 0  # the AssertGuard conds went with them
    assert record.removed["Assert"] == 3 and record.removed["CheckNumerics"] == 1 and record.removed["Print"] == 1
    assert all(not name.startswith("^") for name in node(after, "out").input)
    assert_same_numbers(before, after, {"x:0": seeded([2, 3])}, ["out:0"])


def test_stripped_asserts_no_longer_fire():
    before = build(debug_graph)
    after, _ = run_pass("strip_debug", before, ["out:0"], ["x:0"])
    failing = {"x:0": np.full([2, 3], -500.0, np.float32)}
    with pytest.raises(api.errors.InvalidArgumentError):
        run_graph(before, failing, ["out:0"])
    np.testing.assert_allclose(run_graph(after, failing, ["out:0"])[0], np.full([2, 3], -999.0))


def test_strip_debug_keeps_a_requested_debug_node_and_says_so():
    before = build(debug_graph)
    after, record = run_pass("strip_debug", before, ["checked:0"], ["x:0"])
    assert node(after, "checked").op == "CheckNumerics"
    assert any("checked" in note for note in record.notes)


def test_strip_debug_on_the_shared_index_as_on_an_index_of_its_own(zoo_model):
    """Every zoo model, in the default pipeline: the pass on the index all passes share gives the graph and
    the record it gives on an index built fresh from the graph it is handed (as each pass swept it before)."""
    assert_shared_index_changes_nothing("strip_debug", zoo_model)
