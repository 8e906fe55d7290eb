"""The planner's segmenter held to TF-TRT's own: the cases of tensorflow/compiler/tf2tensorrt/segment/
segment_test.cc (graph, candidate sets, expected segments, rebuilt here node for node), hand-made graphs where
contracting an edge would close a cycle, and networkx as the oracle on random DAGs (every segment contracted
leaves a DAG; segments are disjoint, connected sets of candidates)."""
from collections import OrderedDict

import pytest

from migrate.planning import segment
from tests.conftest import hypothesis_settings, require_module

nx = require_module("networkx")
hypothesis = require_module("hypothesis")
st = hypothesis.strategies
SETTINGS = hypothesis_settings()  # the suite's one profile (tests/test_suite_rules.py)


def run(graph, candidates, input_candidates=None, output_candidates=None, minimum=2, **kwargs):
    """SegmentTest::RunTest: candidate_fn by name; input_candidate_fn(edge) = edge.dst in input_candidates,
    output_candidate_fn(edge) = edge.src in output_candidates (SegmentOptions' default minimum size: 2)."""
    names, edges = segment.graph_edges(graph)
    candidate = [name in candidates for name in names]
    input_ok = (lambda e: names[e[2]] in input_candidates) if input_candidates is not None else None
    output_ok = (lambda e: names[e[0]] in output_candidates) if output_candidates is not None else None
    found, _ = segment.segment_graph(names, edges, candidate, input_ok, output_ok, minimum_segment_size=minimum,
                                     **kwargs)
    return [set(names[i] for i in members) for members in found]


def adds(*pairs):
    """{name: [inputs]}: 'feed' Placeholder then Add nodes (TF's ops::Add(s.WithOpName(name), a, b))."""
    graph = OrderedDict([("feed", [])])
    for name, a, b in pairs:
        graph[name] = [a, b]
    return graph


SIMPLE = adds(("add0", "feed", "feed"), ("add1", "feed", "feed"), ("add2", "add0", "add1"),
              ("add3", "add0", "add2"), ("add4", "add2", "add2"))
ALL5 = {"add0", "add1", "add2", "add3", "add4"}


def test_empty():
    assert run(OrderedDict(), set(), set(), set()) == []


def test_simple():
    assert run(SIMPLE, ALL5, ALL5, ALL5) == [ALL5]
    without_add1 = ALL5 - {"add1"}
    assert run(SIMPLE, without_add1, without_add1, without_add1) == [without_add1]
    # add1 not a candidate and add2 not an input candidate: add0 and add2 leave the segment
    assert run(SIMPLE, without_add1, ALL5 - {"add2"}, without_add1) == [{"add3", "add4"}]
    assert run(SIMPLE, ALL5, ALL5 - {"add2"}, ALL5) == [ALL5]      # add2 is no input node: nothing changes
    assert run(SIMPLE, ALL5, without_add1, ALL5) == [without_add1]
    assert run(SIMPLE, ALL5, ALL5, ALL5 - {"add3"}) == [ALL5]      # add3 feeds only the sink


def test_avoid_cycle():
    without_add2 = ALL5 - {"add2"}
    assert run(SIMPLE, without_add2, without_add2, without_add2) == []


MULTIPLE = adds(("add0", "feed", "feed"), ("add1", "feed", "feed"), ("add7", "feed", "feed"),
                ("add2", "add0", "add1"), ("add5", "add2", "add7"), ("add8", "add7", "add7"),
                ("add3", "add0", "add2"), ("add4", "add2", "add5"), ("add6", "add5", "add8"))
ALL9 = set("add{}".format(i) for i in range(9))


def test_multiple():
    without_add5 = ALL9 - {"add5"}
    assert run(MULTIPLE, without_add5, without_add5, without_add5) == [
        {"add0", "add1", "add2", "add3"}, {"add6", "add8"}]
    assert run(MULTIPLE, ALL9 - {"add8"}, ALL9 - {"add6"}, ALL9) == [{"add3", "add4"}]
    assert run(MULTIPLE, ALL9 - {"add3"}, ALL9, ALL9 - {"add0"}) == [{"add1", "add7", "add8"}]


def test_big_if_else():
    graph = adds(("add0", "feed", "feed"), ("add1", "add0", "add0"), ("add2", "add1", "add1"),
                 ("add3", "add2", "add2"), ("add4", "add0", "add0"), ("add5", "add4", "add4"),
                 ("add6", "add5", "add5"), ("add7", "add3", "add6"))
    all8 = set("add{}".format(i) for i in range(8))
    assert run(graph, all8 - {"add2"}, all8, all8) == [{"add0", "add1"}, {"add3", "add4", "add5", "add6", "add7"}]


def test_segment_grows_from_the_outputs_side():
    """segment.cc's own comment: A->B, A->C, B->D, C->D with C not convertible: B and D are contracted (visited
    first, outputs side), A cannot join them without closing the cycle A -> C -> D."""
    graph = OrderedDict([("A", []), ("B", ["A"]), ("C", ["A"]), ("D", ["B", "C"])])
    assert run(graph, {"A", "B", "D"}, minimum=1) == [{"A"}, {"B", "D"}]


def test_contracting_would_close_a_cycle_through_a_non_candidate():
    """x -> a -> b -> c and a -> n -> c with n not convertible: {a, b, c} would make a -> n -> {a, b, c} a cycle."""
    graph = OrderedDict([("x", []), ("a", ["x"]), ("b", ["a"]), ("n", ["a"]), ("c", ["b", "n"])])
    found = run(graph, {"a", "b", "c"}, minimum=1)
    assert sorted(map(sorted, found)) == [["a"], ["b", "c"]]
    assert not any({"a", "c"} <= s for s in found)


def test_control_edges_block_cycles_but_are_never_contracted():
    graph = OrderedDict([("x", []), ("a", ["x"]), ("n", ["^a"]), ("b", ["a", "^n"])])
    assert run(graph, {"a", "b"}, minimum=1) == [{"a"}, {"b"}]
    assert run(graph, {"a", "b", "n"}, minimum=1) == [{"a"}, {"b"}, {"n"}]  # a -> n -> b stays a path
    graph["b"] = ["a"]
    assert run(graph, {"a", "b", "n"}, minimum=1) == [{"a", "b"}, {"n"}]


def test_minimum_size_and_uncounted_nodes():
    graph = OrderedDict([("x", []), ("a", ["x"]), ("i", ["a"]), ("b", ["i"])])
    names, _ = segment.graph_edges(graph)
    assert run(graph, {"a", "i", "b"}, minimum=3) == [{"a", "i", "b"}]
    counts = [name != "i" for name in names]  # 2.x: Identity does not count
    assert run(graph, {"a", "i", "b"}, minimum=3, counts=counts) == []
    assert run(graph, {"a", "i", "b"}, minimum=2, counts=counts) == [{"a", "i", "b"}]


def test_batch_size_clusters_do_not_merge():
    graph = OrderedDict([("x", []), ("a", ["x"]), ("b", ["a"]), ("c", ["b"])])
    names, _ = segment.graph_edges(graph)
    sizes = {"a": 8, "b": 8, "c": 4}
    found = run(graph, {"a", "b", "c"}, minimum=1, batch_sizes=[sizes.get(n) for n in names])
    assert sorted(map(sorted, found)) == [["a", "b"], ["c"]]


def test_max_engines_keeps_the_largest():
    graph = OrderedDict([("x", [])])
    for chain, length in enumerate([1, 3, 2]):
        previous = "x"
        for step in range(length):
            graph["c{}_{}".format(chain, step)] = [previous]
            previous = "c{}_{}".format(chain, step)
        graph["n{}".format(chain)] = [previous]  # a non-candidate after each chain
    candidates = set(name for name in graph if name.startswith("c"))
    found = run(graph, candidates, minimum=1, max_engines=2)
    assert [len(s) for s in found] == [3, 2]


@st.composite
def dags(draw):
    count = draw(st.integers(min_value=2, max_value=14))
    graph = OrderedDict()
    for index in range(count):
        name = "n{:02d}".format(index)
        producers = draw(st.lists(st.integers(min_value=0, max_value=max(0, index - 1)), max_size=3)) \
            if index else []
        controls = draw(st.lists(st.booleans(), min_size=len(producers), max_size=len(producers)))
        graph[name] = [("^" if control else "") + "n{:02d}".format(p) for p, control in zip(producers, controls)]
    candidates = set(name for name in graph if draw(st.booleans()))
    return graph, candidates


@SETTINGS
@hypothesis.given(dags())
def test_segments_never_create_a_cycle(case):
    graph, candidates = case
    found = run(graph, candidates, minimum=1)
    seen = set()
    digraph = nx.DiGraph()
    digraph.add_nodes_from(graph)
    for name, inputs in graph.items():
        for tensor in inputs:
            digraph.add_edge(tensor.lstrip("^"), name)
    cluster = dict((name, name) for name in graph)
    for index, members in enumerate(found):
        assert members <= candidates
        assert not members & seen
        seen |= members
        data_edges = nx.Graph()
        data_edges.add_nodes_from(members)
        data_edges.add_edges_from((t.lstrip("^"), n) for n in members for t in graph[n]
                                  if not t.startswith("^") and t in members)
        assert nx.is_connected(data_edges)  # grown by contracting data edges
        for name in members:
            cluster[name] = "segment{}".format(index)
    assert seen == candidates  # minimum 1: every candidate ends in some segment
    quotient = nx.DiGraph()
    quotient.add_nodes_from(set(cluster.values()))
    quotient.add_edges_from((cluster[a], cluster[b]) for a, b in digraph.edges() if cluster[a] != cluster[b])
    assert nx.is_directed_acyclic_graph(quotient)


@SETTINGS
@hypothesis.given(dags())
def test_rank_pruning_changes_no_answer(case):
    """The pruned cycle search (ranks of the contracted graph) against TF's unpruned reverse DFS."""
    graph, candidates = case
    pruned = run(graph, candidates, minimum=1)
    unpruned = run(graph, candidates, minimum=1, has_cycles=True)  # has_cycles turns the pruning off
    assert pruned == unpruned


@pytest.mark.parametrize("blocks", [1000, 4000])
def test_a_long_chain_is_segmented_per_block(blocks):
    graph = OrderedDict([("x", [])])
    previous = "x"
    for index in range(blocks):
        graph["a{}".format(index)] = []
        graph["m{}".format(index)] = ["a{}".format(index), "a{}".format(index)]
        graph["s{}".format(index)] = [previous, "m{}".format(index)]
        graph["k{}".format(index)] = ["s{}".format(index)]  # not convertible: cuts the chain
        previous = "k{}".format(index)
    candidates = set(name for name in graph if name[0] in "ams")
    found = run(graph, candidates, minimum=3)
    assert len(found) == blocks and all(len(s) == 3 for s in found)
