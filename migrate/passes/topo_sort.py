"""topo_sort: order graph_def.node so that producers come before consumers.

While-loop back edges (NextIteration -> Merge) are ignored, as TF's own importer does. Ties keep the
existing order, so a sorted graph is left untouched. Reordering sorts the repeated field in place: it moves
pointers, never weight bytes.
"""
from migrate.graph import to_digraph, topological_order
from migrate.graph.view import acyclic, is_topologically_sorted
from migrate.passes import base

NAME = "topo_sort"
SUMMARY = "order nodes producers-first (while-loop back edges ignored)"


def run(graph_def, context, in_place=False):
    return base.run_pass(NAME, _sort, graph_def, context, in_place)


def _sort(index, context, record):
    graph_def = index.graph_def
    # The index knows when no edit made a node read a later one; else one sweep checks the whole graph.
    if not index.unsorted or is_topologically_sorted(graph_def):
        record.skip("already in topological order", untouched=True)
        return
    graph = to_digraph(graph_def)
    order = topological_order(graph)
    if all(node.name == name for node, name in zip(graph_def.node, order)):
        record.skip("already in topological order", untouched=True)
        return
    late = _nodes_after_a_reader(graph, index)
    position = dict((name, rank) for rank, name in enumerate(order))
    graph_def.node.sort(key=lambda node: position[node.name])
    index.reordered()
    record.applied = True
    record.note("{} of {} node(s) came after a node reading them".format(len(late), len(order)))


def _nodes_after_a_reader(graph, index):
    graph = acyclic(graph)
    rank = index.order
    return [name for name in graph if any(rank[reader] < rank[name] for reader in graph.successors(name))]
