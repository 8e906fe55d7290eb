"""TF-TRT's segmenter (segment.cc SegmentGraph), step for step, in Python.

The algorithm, as every TF-TRT version from 1.7 to 2.x runs it (see tables.py for the per-version knobs):
 1. every node is a candidate or not (classify.py decides, from the generation's converter table);
 2. nodes are visited in post-order of a DFS from the graph's SOURCE (outputs first); each candidate contracts
    its data out-edges to candidate consumers into one cluster, unless contracting would create a cycle
    (CanContractEdge: a reverse DFS from the consumer's other inputs reaches the producer), repeated until no
    out-edge can be contracted; implicit-batch 2.x also refuses to merge clusters of different batch sizes;
 3. (1.12+) nodes on a segment's border whose edges the input/output validators reject are removed with
    everything behind them (their inputs for an input node or a Const, their outputs for an output node);
 4. segments smaller than minimum_segment_size are dropped (2.x: Identity/Snapshot/StopGradient not counted);
    2.x then keeps only the TF_TRT_MAX_ALLOWED_ENGINES (20) largest.
Like TF's Graph, node ids 0 and 1 are SOURCE and SINK, with control edges from SOURCE to every node without
inputs and from every node without outputs to SINK; freed edge ids are reused smallest first (as
SimpleGraph::AddEdge does), so contraction order, and with it the result, is TF's.

Speed: CanContractEdge's reverse DFS is pruned by a topological rank of the contracted graph (a node ranked
before the producer cannot lie on a path from it), which changes no answer; ranks are recomputed when a
contraction breaks them, and the pruning is off in graphs with while-loop back edges (cycles). TF's own
unpruned search is quadratic on long chains; this one is linear in practice (benchmarks/plan.py).
"""
import heapq
from collections import deque

SOURCE, SINK = 0, 1


class Graph(object):
    """The mutable SimpleGraph of segment.cc: edges [src, src_port, dst, dst_port, control] or None (freed)."""

    def __init__(self, names, edges):
        self.names = names
        count = len(names)
        self.edges = []
        # per node {edge id: None}: insertion-ordered like TF's vectors, O(1) removal (SOURCE and SINK touch
        # every node: a list's remove() made contraction quadratic)
        self.out_edges = [{} for _ in range(count)]
        self.in_edges = [{} for _ in range(count)]
        self.free = []
        for src, src_port, dst, dst_port, control in edges:
            self._add(src, src_port, dst, dst_port, control)

    def _add(self, src, src_port, dst, dst_port, control):
        if self.free:
            edge_id = heapq.heappop(self.free)
            self.edges[edge_id] = [src, src_port, dst, dst_port, control]
        else:
            edge_id = len(self.edges)
            self.edges.append([src, src_port, dst, dst_port, control])
        self.out_edges[src][edge_id] = None
        self.in_edges[dst][edge_id] = None
        return edge_id

    def remove(self, edge_id):
        """RemoveEdge: unlink; the id is NOT freed (SimpleGraph::RemoveEdge leaves edges_[id] in place)."""
        src, _, dst, _, _ = self.edges[edge_id]
        del self.out_edges[src][edge_id]
        del self.in_edges[dst][edge_id]

    def in_nodes(self, node):
        edges = self.edges
        return [edges[e][0] for e in self.in_edges[node]]

    def out_nodes(self, node):
        edges = self.edges
        return [edges[e][2] for e in self.out_edges[node]]


def graph_edges(node_inputs):
    """(names, edges) of TF's Graph for {node name: [input tensor names]} in GraphDef order: ids 0/1 SOURCE and
    SINK, data edges (src, port, dst, input index, False), control edges (src, -1, dst, -1, True), SOURCE ->
    every node without inputs, every node without consumers -> SINK. Inputs naming no node are left out."""
    names = ["_SOURCE", "_SINK"] + list(node_inputs)
    ids = dict((name, index) for index, name in enumerate(names))
    edges, has_in, has_out = [], set(), set()
    for name, inputs in node_inputs.items():
        dst = ids[name]
        port = 0
        for tensor in inputs:
            producer, index = parse_tensor(tensor)
            if producer not in ids:
                continue
            src = ids[producer]
            if index < 0:
                edges.append((src, -1, dst, -1, True))
            else:
                edges.append((src, index, dst, port, False))
                port += 1
            has_in.add(dst)
            has_out.add(src)
    for index in range(2, len(names)):
        if index not in has_in:
            edges.append((SOURCE, -1, index, -1, True))
        if index not in has_out:
            edges.append((index, -1, SINK, -1, True))
    return names, edges


def parse_tensor(tensor):
    """(node, output index) of an input name; -1 for a control input '^y'."""
    if tensor.startswith("^"):
        return tensor[1:], -1
    head, _, tail = tensor.rpartition(":")
    if head and tail.isdigit():
        return head, int(tail)
    return tensor, 0


def post_order(graph):
    """StableDFS(forward, {SOURCE}) leave order: every node after all its consumers (outputs first); children
    visited in name order as TF does (pushed sorted, popped last-first)."""
    names = graph.names
    visited = [False] * len(names)
    order = []
    stack = [(SOURCE, False)]
    while stack:
        node, leave = stack.pop()
        if leave:
            order.append(node)
            continue
        if visited[node]:
            continue
        visited[node] = True
        stack.append((node, True))
        children = sorted(set(graph.out_nodes(node)), key=names.__getitem__)
        stack.extend((child, False) for child in children if not visited[child])
    return order


class _Ranks(object):
    """A topological numbering of the contracted graph (rank[u] < rank[v] for every edge u -> v), for pruning
    the cycle search: along any path from src every rank is larger than src's. Ranks start as "as late as
    possible" levels (a node sits right below its earliest consumer, so a side input like a bias joins the rank
    of the chain it feeds and prunes at once); a contraction gives the merged node a rank between its
    producers' and consumers', and renumbers everything only when no such rank exists."""

    def __init__(self, graph, enabled):
        self.graph = graph
        self.enabled = enabled
        self.rank = None
        self.recomputed = 0
        if enabled:
            self.recompute()

    def recompute(self):
        graph = self.graph
        count = len(graph.names)
        pending = [len(graph.out_edges[n]) for n in range(count)]
        ready = deque(n for n in range(count) if pending[n] == 0)
        rank = [0.0] * count
        done = 0
        edges = graph.edges
        while ready:
            node = ready.popleft()
            done += 1
            consumers = [edges[e][2] for e in graph.out_edges[node]]
            rank[node] = min(rank[c] for c in consumers) - 1.0 if consumers else 0.0
            for e in graph.in_edges[node]:
                producer = edges[e][0]
                pending[producer] -= 1
                if pending[producer] == 0:
                    ready.append(producer)
        self.rank = rank
        self.recomputed += 1
        if done < count:  # a cycle: no topological order (should not happen without back edges)
            self.enabled = False

    def merged(self, src):
        """After a contraction into src: keep src's rank if it still sits between its producers' and its
        consumers', else move it between them, else renumber."""
        if not self.enabled:
            return
        graph, rank, edges = self.graph, self.rank, self.graph.edges
        low = max([rank[edges[e][0]] for e in graph.in_edges[src]] or [float("-inf")])
        high = min([rank[edges[e][2]] for e in graph.out_edges[src]] or [float("inf")])
        if low < rank[src] < high:
            return
        middle = (low + high) / 2.0 if low > float("-inf") and high < float("inf") else (
            high - 1.0 if low == float("-inf") else low + 1.0)
        if low < middle < high:
            rank[src] = middle
        else:
            self.recompute()


def can_contract(graph, edge_id, ranks):
    """CanContractEdge: False when a path from src to dst other than a direct edge exists (contracting the
    edge would close a cycle)."""
    src, _, dst, _, _ = graph.edges[edge_id]
    start = [n for n in graph.in_nodes(dst) if n != src]
    if not start:
        return True
    edges, in_edges = graph.edges, graph.in_edges
    limit = ranks.rank[src] if ranks.enabled else None
    rank = ranks.rank
    seen = set()
    stack = list(start)
    while stack:
        node = stack.pop()
        if node == src:
            return False
        if node in seen:
            continue
        seen.add(node)
        if limit is not None and rank[node] <= limit:
            continue  # not ranked after src: no path from src runs through it
        for e in in_edges[node]:
            producer = edges[e][0]
            if producer not in seen:
                stack.append(producer)
    return True


def contract(graph, edge_id):
    """ContractEdge + the caller's removal: dst's edges move to src; returns the removed edge ids."""
    src, _, dst, _, _ = graph.edges[edge_id]
    edges = graph.edges
    for e in list(graph.in_edges[dst]):
        e_src, e_port, _, _, control = edges[e]
        if e_src == src:
            continue
        if control:
            graph._add(e_src, -1, src, -1, True)
        elif e_src == SOURCE:
            graph._add(e_src, e_port, src, -1, True)
        else:
            graph._add(e_src, e_port, src, 0, False)
    for e in list(graph.out_edges[dst]):
        _, _, e_dst, e_dst_port, control = edges[e]
        if control:
            graph._add(src, -1, e_dst, -1, True)
        elif e_dst == SINK:
            graph._add(src, -1, e_dst, e_dst_port, True)
        else:
            graph._add(src, 0, e_dst, e_dst_port, False)
    removed = list(graph.in_edges[dst]) + list(graph.out_edges[dst])
    for e in removed:
        graph.remove(e)
    return removed


class _UnionFind(object):
    """segment/union_find.h: Merge makes other's root a child of this root (the contracting producer's)."""

    def __init__(self, count):
        self.parent = list(range(count))

    def root(self, node):
        parent = self.parent
        path = []
        while parent[node] != node:
            path.append(node)
            node = parent[node]
        for step in path:
            parent[step] = node
        return node

    def merge(self, a, b):
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            self.parent[rb] = ra


def _batch_compatible(a, b):
    """ClusterBatchSize::MergeIfCompatible, for static batch sizes: unknown (-1/None) merges with anything."""
    if a is None or a < 0:
        return True, b
    if b is None or b < 0:
        return True, a
    return a == b, a


def segment_graph(names, edges, candidate, input_ok=None, output_ok=None, minimum_segment_size=3,
                  counts=None, batch_sizes=None, max_engines=None, is_const=None, has_cycles=False):
    """TF-TRT's SegmentGraph. names: node names by id, ids 0/1 = SOURCE/SINK (edges to them included);
    edges: (src, src_port, dst, dst_port, control); candidate: [bool] per id; input_ok/output_ok: edge tuple
    -> bool (None: always true); counts: [bool] per id, whether the node counts towards the segment size;
    batch_sizes: [int or None] per id (implicit-batch 2.x clusters), None = no batch-size rule;
    is_const: [bool] per id (Step 2 removes a Const's inputs, not its outputs).
    Returns (segments, dropped): segments [[node ids]] in TF's order (by the cluster root's name), dropped
    [(node ids, why)] for segments Step 3/4 removed."""
    graph = Graph(names, edges)
    original_in = [list(graph.in_edges[n]) for n in range(len(names))]
    original_out = [list(graph.out_edges[n]) for n in range(len(names))]
    original_edges = [tuple(edge) for edge in graph.edges]
    ranks = _Ranks(graph, enabled=not has_cycles)
    clusters = _UnionFind(len(names))
    batch = list(batch_sizes) if batch_sizes is not None else None
    for node in post_order(graph):
        if not candidate[node]:
            continue
        while True:
            expected = batch[clusters.root(node)] if batch is not None else None
            chosen = []
            for edge_id in graph.out_edges[node]:
                _, _, dst, _, control = graph.edges[edge_id]
                if control or not candidate[dst]:
                    continue
                if batch is not None:
                    ok, merged = _batch_compatible(expected, batch[clusters.root(dst)])
                    if not ok:
                        continue
                if can_contract(graph, edge_id, ranks):
                    chosen.append(edge_id)
                    if batch is not None:
                        expected = merged
            if not chosen:
                break
            pending = sorted(set(chosen))
            gone = set()
            for edge_id in pending:
                if edge_id in gone:
                    continue
                src, _, dst, _, _ = graph.edges[edge_id]
                root_src, root_dst = clusters.root(src), clusters.root(dst)
                clusters.merge(src, dst)
                if batch is not None:
                    batch[clusters.root(src)] = _batch_compatible(batch[root_src], batch[root_dst])[1]
                gone.update(contract(graph, edge_id))
                ranks.merged(src)
    groups = {}
    for node in range(2, len(names)):
        if candidate[node]:
            groups.setdefault(names[clusters.root(node)], set()).add(node)
    segments, dropped, sizes = [], [], []
    for root_name in sorted(groups):
        members = groups[root_name]
        if input_ok is not None or output_ok is not None:
            _remove_ineligible(members, names, original_in, original_out, original_edges, input_ok, output_ok,
                               is_const)
        if not members:
            continue
        effective = sum(1 for n in members if counts is None or counts[n])
        ordered = sorted(members, key=names.__getitem__)
        if effective == 0 or effective < minimum_segment_size:
            dropped.append((ordered, "{} node(s) count towards the size, minimum_segment_size is {}".format(
                effective, minimum_segment_size)))
            continue
        segments.append(ordered)
        sizes.append(effective)
    if max_engines is not None and len(segments) > max_engines:
        keep = sorted(sorted(range(len(segments)), key=lambda i: -sizes[i])[:max_engines])
        for index in range(len(segments)):
            if index not in keep:
                dropped.append((segments[index], "only the {} largest segments become engines "
                                                 "(TF_TRT_MAX_ALLOWED_ENGINES)".format(max_engines)))
        segments = [segments[i] for i in keep]
    return segments, dropped


def _remove_ineligible(members, names, original_in, original_out, edges, input_ok, output_ok, is_const):
    """Step 2 of SegmentGraph on one segment (its node set, edited in place), nodes visited by name."""
    while True:
        in_queue, out_queue = deque(), deque()
        for node in sorted(members, key=names.__getitem__):
            added = False
            for e in original_in[node]:
                src, _, _, _, control = edges[e]
                if not control and src != SOURCE and src not in members and input_ok is not None \
                        and not input_ok(edges[e]):
                    in_queue.append(node)
                    added = True
                    break
            if added:
                continue
            for e in original_out[node]:
                _, _, dst, _, control = edges[e]
                if dst != SINK and not control and dst not in members and output_ok is not None \
                        and not output_ok(edges[e]):
                    out_queue.append(node)
                    break
        if not in_queue and not out_queue:
            return
        for is_input, queue in ((True, in_queue), (False, out_queue)):
            visited = set()
            while queue:
                node = queue.popleft()
                if node in visited:
                    continue
                visited.add(node)
                members.discard(node)
                if is_input or (is_const is not None and is_const[node]):
                    nexts = [edges[e][0] for e in original_in[node]]
                else:
                    nexts = [edges[e][2] for e in original_out[node]]
                queue.extend(n for n in nexts if n in members)
