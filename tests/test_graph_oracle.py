"""migrate.graph.view against networkx, the reference it replaces on the hot path.

view.py keeps its own dict-of-dicts DiGraph because networkx costs several times more on the million-node
graphs legacy models have (benchmarks/graph_view.py measures both). These tests hold it to networkx's answers
on random GraphDefs: the edges and their kinds, the tie-stable topological order, ancestors, descendants,
sinks and cycle detection."""
import os

import pytest
from tensorflow.core.framework import graph_pb2

from migrate.errors import BadInput
from migrate.graph import view
from tests.conftest import hypothesis_settings, require_module

nx = require_module("networkx")  # setup.cfg's test extra: a bare venv skips, CI fails
require_module("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

SETTINGS = hypothesis_settings()  # the suite's one profile: no deadline, no too_slow, derandomized


@st.composite
def graph_defs(draw, cycles=False):
    """A GraphDef of up to 30 nodes whose inputs name earlier nodes (data 'p', 'p:1' or control '^p'), in a
    shuffled order; with cycles=True some inputs may name later nodes too."""
    count = draw(st.integers(1, 30))
    names = ["n{}".format(i) for i in range(count)]
    specs = []
    for index, name in enumerate(names):
        pool = names if cycles else names[:index]
        picks = draw(st.lists(st.tuples(st.sampled_from(pool), st.sampled_from(["", ":0", ":1", "^"])),
                              max_size=4)) if pool else []
        inputs = [("^" + p) if how == "^" else p + how for p, how in picks]
        specs.append((name, draw(st.sampled_from(["Const", "Add", "Identity", "NoOp"])), inputs))
    order = draw(st.permutations(range(count)))
    graph_def = graph_pb2.GraphDef()
    for position in order:
        node = graph_def.node.add()
        node.name, node.op = specs[position][0], specs[position][1]
        node.input.extend(specs[position][2])
    return graph_def


def reference(graph_def):
    """networkx.DiGraph of the GraphDef, built the obvious way: a data edge wins over a control edge."""
    graph = nx.DiGraph()
    for index, node in enumerate(graph_def.node):
        graph.add_node(node.name, index=index)
    for node in graph_def.node:
        for input_name in node.input:
            producer, output = view.parse_input(input_name)
            kind = view.CONTROL if output < 0 else view.DATA
            if graph.has_edge(producer, node.name) and graph[producer][node.name]["kind"] == view.DATA:
                continue
            graph.add_edge(producer, node.name, kind=kind)
    return graph


@SETTINGS
@given(graph_def=graph_defs())
def test_view_agrees_with_networkx(graph_def):
    ours, theirs = view.to_digraph(graph_def), reference(graph_def)
    assert set(ours) == set(theirs.nodes)
    assert sorted((p, c, ours[p][c]["kind"]) for p in ours for c in ours.successors(p)) == \
        sorted((p, c, kind) for p, c, kind in theirs.edges(data="kind"))
    index = dict((node.name, i) for i, node in enumerate(graph_def.node))
    assert view.topological_order(ours) == list(nx.lexicographical_topological_sort(theirs, key=index.get))
    assert view.sinks(ours) == set(n for n in theirs if theirs.out_degree(n) == 0)
    some = sorted(ours)[: max(1, len(ours) // 3)]
    assert view.needed_nodes(ours, some) == set(some).union(*[nx.ancestors(theirs, n) for n in some])
    assert view.needed_nodes(graph_def, some) == view.needed_nodes(ours, some)  # the GraphDef walk, no view
    assert view.reachable(ours, some) == set(some).union(*[nx.descendants(theirs, n) for n in some])


@SETTINGS
@given(graph_def=graph_defs(cycles=True))
def test_cycles_are_found_exactly_when_networkx_finds_one(graph_def):
    theirs = reference(graph_def)
    if nx.is_directed_acyclic_graph(theirs):
        order = view.topological_sort(view.to_digraph(graph_def))
        position = dict((name, i) for i, name in enumerate(order))
        assert all(position[p] < position[c] for p, c in theirs.edges)
    else:
        for order in (view.topological_sort, view.topological_order):
            with pytest.raises(BadInput) as error:
                order(view.to_digraph(graph_def))
            cycle = str(error.value).split(": ", 1)[1].split(" (")[0].split(" -> ")
            assert cycle[0] == cycle[-1] and all(theirs.has_edge(a, b) for a, b in zip(cycle, cycle[1:]))
