"""topo_sort: a shuffled graph (with a while loop's back edges) put in topological order."""
from migrate.graph import names
from tests.passes.graphs import assert_same_numbers, build, run_pass, seeded, while_graph
from tests.passes.graphs import assert_shared_index_changes_nothing


def test_topo_sort_orders_a_shuffled_graph_with_a_while_loop():
    ordered = build(while_graph)
    shuffled = type(ordered)()
    shuffled.node.extend(reversed(list(ordered.node)))
    after, record = run_pass("topo_sort", shuffled, ["out:0"], ["x:0"])
    assert record.applied
    position = dict((n.name, i) for i, n in enumerate(after.node))
    for consumer in after.node:
        if consumer.op in ("Merge", "RefMerge"):
            continue  # its NextIteration input is the back edge
        assert all(position[names.node_name(i)] < position[consumer.name] for i in consumer.input), consumer.name
    assert_same_numbers(ordered, after, {"x:0": seeded([2, 4])}, ["out:0"])
    _, again = run_pass("topo_sort", after, ["out:0"], ["x:0"])
    assert not again.applied and "already" in again.reason


def test_topo_sort_on_the_shared_index_as_on_an_index_of_its_own(zoo_model):
    """Every zoo model, in the default pipeline: the pass on the index all passes share gives the graph and
    the record it gives on an index built fresh from the graph it is handed (as each pass swept it before)."""
    assert_shared_index_changes_nothing("topo_sort", zoo_model)
