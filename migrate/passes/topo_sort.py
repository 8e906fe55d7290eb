"""topo_sort: order graph_def.node so that producers come before consumers.

While-loop back edges (NextIteration -> Merge) are ignored, as TF's own importer does. Ties keep the
existing order, so a sorted graph is left untouched. Reordering sorts the repeated field in place: it moves
pointers, never weight bytes.
"""
from migrate.graph import topological_order
from migrate.graph.view import acyclic, is_topologically_sorted
from migrate.passes import base

NAME = "topo_sort"
SUMMARY = "order nodes producers-first (while-loop back edges ignored)"


def run(graph_def, context, in_place=False):
    return base.run_pass(NAME, _sort, graph_def, context, in_place)


def _sort(graph_def, context, record):
    if is_topologically_sorted(graph_def):  # one sweep; the sort itself builds the full view
        record.skip("already in topological order", untouched=True)
        return
    order = topological_order(graph_def)
    if all(node.name == name for node, name in zip(graph_def.node, order)):
        record.skip("already in topological order", untouched=True)
        return
    late = _nodes_after_a_reader(graph_def)
    position = dict((name, index) for index, name in enumerate(order))
    graph_def.node.sort(key=lambda node: position[node.name])
    record.applied = True
    record.note("{} of {} node(s) came after a node reading them".format(len(late), len(order)))


def _nodes_after_a_reader(graph_def):
    graph = acyclic(graph_def)
    index = dict((node.name, position) for position, node in enumerate(graph_def.node))
    return [name for name in graph if any(index[reader] < index[name] for reader in graph.successors(name))]
