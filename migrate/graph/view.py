"""A directed-graph view of a GraphDef: who feeds whom, in which order, and what the outputs need.

Nodes are node names (attributes `op` and `index`, the position in graph_def.node). An edge
producer -> consumer exists per input; its `kind` is 'data' when the consumer reads any output of the
producer, else 'control'. The view holds names only, never NodeDefs, so it stays valid while passes edit
the GraphDef in place.

DiGraph is the part of networkx.DiGraph's interface the passes use (graph[producer][consumer]['kind'],
graph.nodes[name]['op'], successors, predecessors, degrees, edges, copy, subgraph), built in one sweep over
the GraphDef with plain dicts; the algorithms below (reachability, topological orders, cycle checks) work on
those dicts directly. Graphs of a million nodes are the norm for some legacy models: networkx's generic
add_edge / edge_bfs / lexicographical_topological_sort cost several seconds each at that size
(benchmarks/graph_view.py times both; tests/test_graph_oracle.py holds these answers to networkx's).
"""
import heapq
from collections import deque

from migrate.errors import BadInput
from migrate.graph import names
from migrate.opsets import MERGE_OPS, NEXT_ITERATION_OPS

DATA = "data"
CONTROL = "control"


# Edge attribute dicts are shared by all edges of a kind: treat them as read-only.
_DATA_EDGE = {"kind": DATA}
_CONTROL_EDGE = {"kind": CONTROL}


class NodeContainer(object):
    """`name in graph`, iteration over names and len, for graph views keeping their nodes in self.nodes."""

    def __contains__(self, name):
        return name in self.nodes

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self):
        return len(self.nodes)


class DiGraph(NodeContainer):
    """Dict-of-dicts adjacency: graph[producer] -> {consumer: {'kind': ...}}, graph.nodes[name] -> attrs."""

    def __init__(self):
        self.nodes = {}
        self._succ = {}
        self._pred = {}
        self.control_inputs = 0  # how many control inputs were seen while building (0: no control edge)

    # networkx-style read access
    def __getitem__(self, name):
        return self._succ[name]

    def successors(self, name):
        return iter(self._succ[name])

    def predecessors(self, name):
        return iter(self._pred[name])

    def out_degree(self, name):
        return len(self._succ[name])

    def in_degree(self, name):
        return len(self._pred[name])

    def has_edge(self, producer, consumer):
        return producer in self._succ and consumer in self._succ[producer]

    def edges(self, data=False):
        return list(self._edges(self.nodes, self._succ, data, outgoing=True))

    def out_edges(self, name, data=False):
        return list(self._edges([name], self._succ, data, outgoing=True))

    def in_edges(self, name, data=False):
        return list(self._edges([name], self._pred, data, outgoing=False))

    @staticmethod
    def _edges(sources, adjacency, data, outgoing):
        for source in sources:
            for other, attrs in adjacency[source].items():
                pair = (source, other) if outgoing else (other, source)
                if data is False:
                    yield pair
                elif data is True:
                    yield pair + (attrs,)
                else:
                    yield pair + (attrs.get(data),)

    # building and copying
    def add_node(self, name, **attrs):
        if name not in self.nodes:
            self.nodes[name] = {}
            self._succ[name] = {}
            self._pred[name] = {}
        self.nodes[name].update(attrs)

    def add_edge(self, producer, consumer, kind=DATA):
        for name in (producer, consumer):
            if name not in self.nodes:
                self.add_node(name)
        attrs = _DATA_EDGE if kind == DATA else _CONTROL_EDGE
        self.control_inputs += kind != DATA
        self._succ[producer][consumer] = attrs
        self._pred[consumer][producer] = attrs

    def remove_edge(self, producer, consumer):
        del self._succ[producer][consumer]
        del self._pred[consumer][producer]

    def remove_edges_from(self, edges):
        for edge in edges:
            self.remove_edge(edge[0], edge[1])

    def copy(self):
        graph = self.subgraph(self.nodes)
        graph.control_inputs = self.control_inputs
        return graph

    def subgraph(self, keep):
        """A new view of the nodes in keep and the edges between them (a copy, not a live view)."""
        keep = keep if isinstance(keep, (set, frozenset, dict)) else set(keep)
        graph = DiGraph()
        for name in self.nodes:
            if name in keep:
                graph.nodes[name] = dict(self.nodes[name])
                graph._succ[name] = dict((c, a) for c, a in self._succ[name].items() if c in keep)
                graph._pred[name] = dict((p, a) for p, a in self._pred[name].items() if p in keep)
        return graph


def producer_of(input_name):
    """names.node_name, inlined for the sweeps below: '^y' -> 'y', 'y:1' -> 'y'."""
    if input_name[:1] == "^":
        input_name = input_name[1:]
    colon = input_name.rfind(":")
    if colon >= 0 and input_name[colon + 1:].isdigit():
        return input_name[:colon]
    return input_name


def parse_input(input_name):
    """(producer node, output index) of a NodeDef input; index -1 for a control input '^y'."""
    if input_name[:1] == "^":
        return input_name[1:], -1
    colon = input_name.rfind(":")
    if colon >= 0 and input_name[colon + 1:].isdigit():
        return input_name[:colon], int(input_name[colon + 1:])
    return input_name, 0


def to_digraph(graph_def):
    """The graph as a DiGraph. Inputs naming nodes that do not exist are left out (see dangling_inputs)."""
    graph = DiGraph()
    nodes, succ, pred = graph.nodes, graph._succ, graph._pred
    pending = []
    for index, node in enumerate(graph_def.node):
        name = node.name
        nodes[name] = {"op": node.op, "index": index}
        succ[name] = {}
        pred[name] = {}
        inputs = node.input
        if inputs:
            pending.append((name, inputs))
    data_edge, control_edge = _DATA_EDGE, _CONTROL_EDGE
    controls = 0
    for consumer, inputs in pending:
        mine = pred[consumer]
        for input_name in inputs:
            if input_name[:1] == "^":
                producer, attrs = input_name[1:], control_edge
                controls += 1
            else:
                producer = producer_of(input_name) if ":" in input_name else input_name
                attrs = data_edge
            # One edge per pair: a data edge already implies the ordering a control edge would add.
            if producer not in succ or mine.get(producer) is data_edge:
                continue
            mine[producer] = attrs
            succ[producer][consumer] = attrs
    graph.control_inputs = controls
    return graph


def as_digraph(graph):
    if isinstance(graph, DiGraph) or hasattr(graph, "successors"):
        return graph
    return to_digraph(graph)


def dangling_inputs(graph_def):
    """[(node, input)] for inputs that name a node the graph does not have."""
    known = set(node.name for node in graph_def.node)
    found = []
    for node in graph_def.node:
        for input_name in node.input:
            if (input_name if ":" not in input_name and input_name[:1] != "^" else producer_of(input_name)) \
                    not in known:
                found.append((node.name, input_name))
    return found


def is_topologically_sorted(graph_def):
    """True when every input names an earlier node, while-loop back edges (NextIteration -> Merge) aside:
    then the graph has no other cycle and its own order is what topological_order gives. One sweep, no view."""
    position, ops = {}, {}
    for index, node in enumerate(graph_def.node):
        position[node.name] = index
        ops[node.name] = node.op
    for index, node in enumerate(graph_def.node):
        for input_name in node.input:
            producer = input_name if ":" not in input_name and input_name[:1] != "^" else producer_of(input_name)
            if position.get(producer, -1) >= index and not (
                    node.op in MERGE_OPS and ops[producer] in NEXT_ITERATION_OPS):
                return False
    return True


def loop_back_edges(graph):
    """NextIteration -> Merge edges: the only cycles a valid v1 graph has (one per while-loop variable)."""
    graph = as_digraph(graph)
    return [(name, consumer) for name, attrs in graph.nodes.items() if attrs.get("op") in NEXT_ITERATION_OPS
            for consumer in graph.successors(name) if graph.nodes[consumer].get("op") in MERGE_OPS]


def acyclic(graph):
    """The view without while-loop back edges (the view itself when it has none, else a copy);
    BadInput when another cycle remains."""
    graph = as_digraph(graph)
    back = loop_back_edges(graph)
    if back:
        graph = graph.copy()
        graph.remove_edges_from(back)
    topological_sort(graph)  # raises on a cycle
    return graph


def topological_sort(graph, skip=()):
    """Some order of all nodes, producers first; edges in `skip` ((producer, consumer) pairs) ignored.
    BadInput naming a cycle when there is one."""
    graph = as_digraph(graph)
    skip = set(skip)
    pending = {}
    for name in graph:
        count = graph.in_degree(name)
        if skip:
            count -= sum(1 for producer in graph.predecessors(name) if (producer, name) in skip)
        pending[name] = count
    ready = deque(name for name, count in pending.items() if count == 0)
    order = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for consumer in graph.successors(name):
            if skip and (name, consumer) in skip:
                continue
            pending[consumer] -= 1
            if pending[consumer] == 0:
                ready.append(consumer)
    if len(order) != len(pending):
        _raise_cycle(graph, set(name for name, count in pending.items() if count > 0), skip)
    return order


def _raise_cycle(graph, stuck, skip):
    """BadInput with one cycle among the nodes Kahn's algorithm could not order."""
    start = min(stuck)
    path, position, name = [], {}, start
    while name not in position:  # every stuck node has a stuck producer: walk producers until one repeats
        position[name] = len(path)
        path.append(name)
        name = min(p for p in graph.predecessors(name) if p in stuck and (p, name) not in skip)
    cycle = list(reversed(path[position[name]:]))
    raise BadInput("graph has a cycle that is not a while loop: {}".format(" -> ".join(cycle + cycle[:1])),
                   fix="the GraphDef is malformed; re-export it from TensorFlow")


def topological_order(graph):
    """Node names, producers before consumers; while-loop back edges are ignored.

    Ties keep the GraphDef's own order, so an already sorted graph comes back unchanged.
    """
    graph = as_digraph(graph)
    skip = set(loop_back_edges(graph))
    index = dict((name, attrs.get("index", 0)) for name, attrs in graph.nodes.items())
    by_index = sorted(graph.nodes, key=index.get)
    position = dict((name, rank) for rank, name in enumerate(by_index))
    if all(position[p] < position[c] for p in graph for c in graph.successors(p) if (p, c) not in skip):
        return by_index  # already sorted: the lexicographic order is the GraphDef's order
    pending = {}
    for name in graph:
        pending[name] = graph.in_degree(name) - (sum(1 for p in graph.predecessors(name) if (p, name) in skip)
                                                 if skip else 0)
    heap = [(position[name], name) for name, count in pending.items() if count == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, name = heapq.heappop(heap)
        order.append(name)
        for consumer in graph.successors(name):
            if skip and (name, consumer) in skip:
                continue
            pending[consumer] -= 1
            if pending[consumer] == 0:
                heapq.heappush(heap, (position[consumer], consumer))
    if len(order) != len(pending):  # the heap stalled on a cycle
        _raise_cycle(graph, set(name for name, count in pending.items() if count > 0), skip)
    return order


def needed_nodes(graph, outputs):
    """Names of the nodes the given outputs (tensor or node names) need: themselves and every ancestor
    through data and control edges (while loops included: back edges are followed too)."""
    roots = set(names.node_name(output) for output in outputs)
    if isinstance(graph, DiGraph) or hasattr(graph, "predecessors"):
        known = graph
    else:  # a GraphDef: walk the inputs of the visited nodes only, no full view
        known = dict((node.name, node) for node in graph.node)
    missing = sorted(root for root in roots if root not in known)
    if missing:
        raise BadInput("output node(s) not in the graph: {}".format(", ".join(missing)),
                       fix="name existing nodes or tensors, e.g. 'logits' or 'logits:0'")
    if known is graph:
        return reachable(graph, roots, orientation="reverse")
    found, todo = set(roots), list(roots)
    while todo:
        for input_name in known[todo.pop()].input:
            producer = input_name if ":" not in input_name and input_name[:1] != "^" else producer_of(input_name)
            if producer not in found and producer in known:
                found.add(producer)
                todo.append(producer)
    return found


def reachable(graph, sources, orientation="original"):
    """The sources and every node reachable from them along edges ('original') or against them ('reverse')."""
    graph = as_digraph(graph)
    step = graph.successors if orientation == "original" else graph.predecessors
    found = set(sources)
    todo = [name for name in found if name in graph]
    while todo:
        for other in step(todo.pop()):
            if other not in found:
                found.add(other)
                todo.append(other)
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
