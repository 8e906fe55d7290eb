"""A networkx view of a GraphDef: who feeds whom, in which order, and what the outputs need.

Nodes are node names (attributes `op` and `index`, the position in graph_def.node). An edge
producer -> consumer exists per input; its `kind` is 'data' when the consumer reads any output of the
producer, else 'control'. The view holds names only, never NodeDefs, so it stays valid while passes edit
the GraphDef in place.
"""
import networkx as nx

from migrate.errors import BadInput
from migrate.graph import names

DATA = "data"
CONTROL = "control"

NEXT_ITERATION_OPS = frozenset(["NextIteration", "RefNextIteration"])
MERGE_OPS = frozenset(["Merge", "RefMerge"])


def to_digraph(graph_def):
    """The graph as an nx.DiGraph. Inputs naming nodes that do not exist are left out (see dangling_inputs)."""
    graph = nx.DiGraph()
    for index, node in enumerate(graph_def.node):
        graph.add_node(node.name, op=node.op, index=index)
    for node in graph_def.node:
        for input_name in node.input:
            producer = names.node_name(input_name)
            if producer not in graph:
                continue
            kind = CONTROL if names.is_control(input_name) else DATA
            # One edge per pair: a data edge already implies the ordering a control edge would add.
            if graph.has_edge(producer, node.name) and graph[producer][node.name]["kind"] == DATA:
                continue
            graph.add_edge(producer, node.name, kind=kind)
    return graph


def as_digraph(graph):
    return graph if isinstance(graph, nx.DiGraph) else to_digraph(graph)


def dangling_inputs(graph_def):
    """[(node, input)] for inputs that name a node the graph does not have."""
    known = set(node.name for node in graph_def.node)
    return [(node.name, input_name) for node in graph_def.node for input_name in node.input
            if names.node_name(input_name) not in known]


def loop_back_edges(graph):
    """NextIteration -> Merge edges: the only cycles a valid v1 graph has (one per while-loop variable)."""
    graph = as_digraph(graph)
    return [(producer, consumer) for producer, consumer in graph.edges()
            if graph.nodes[producer]["op"] in NEXT_ITERATION_OPS and graph.nodes[consumer]["op"] in MERGE_OPS]


def acyclic(graph):
    """A copy of the view without while-loop back edges; BadInput when another cycle remains."""
    graph = as_digraph(graph).copy()
    graph.remove_edges_from(loop_back_edges(graph))
    if not nx.is_directed_acyclic_graph(graph):
        cycle = [edge[0] for edge in nx.find_cycle(graph)]
        raise BadInput("graph has a cycle that is not a while loop: {}".format(" -> ".join(cycle + cycle[:1])),
                       fix="the GraphDef is malformed; re-export it from TensorFlow")
    return graph


def topological_order(graph):
    """Node names, producers before consumers; while-loop back edges are ignored.

    Ties keep the GraphDef's own order, so an already sorted graph comes back unchanged.
    """
    graph = acyclic(graph)
    return list(nx.lexicographical_topological_sort(graph, key=lambda name: graph.nodes[name]["index"]))


def needed_nodes(graph, outputs):
    """Names of the nodes the given outputs (tensor or node names) need: themselves and every ancestor
    through data and control edges (while loops included: back edges are followed too)."""
    graph = as_digraph(graph)
    roots = set(names.node_name(output) for output in outputs)
    missing = sorted(root for root in roots if root not in graph)
    if missing:
        raise BadInput("output node(s) not in the graph: {}".format(", ".join(missing)),
                       fix="name existing nodes or tensors, e.g. 'logits' or 'logits:0'")
    return reachable(graph, roots, orientation="reverse")


def reachable(graph, sources, orientation="original"):
    """The sources and every node reachable from them along edges ('original') or against them ('reverse')."""
    graph = as_digraph(graph)
    found = set(sources)
    for producer, consumer, _ in nx.edge_bfs(graph, list(found), orientation=orientation):
        found.add(producer)
        found.add(consumer)
    return found


def consumers(graph):
    """{node: [nodes reading it through a data or control edge]}."""
    graph = as_digraph(graph)
    return {name: list(graph.successors(name)) for name in graph}


def data_consumers(graph, name):
    return [consumer for consumer in graph.successors(name) if graph[name][consumer]["kind"] == DATA]


def sinks(graph):
    """Nodes nothing reads: outputs, target ops such as 'init', and dead ends."""
    graph = as_digraph(graph)
    return set(name for name in graph if graph.out_degree(name) == 0)
