"""NodeIndex: what the passes ask about a GraphDef (name -> node, op, readers, graph order), built in ONE sweep
per pipeline run and kept up to date by the edit helpers of migrate.graph.edit.

Why: reading a NodeDef's inputs through protobuf costs about a microsecond per node; a pipeline of nine passes
that each swept the graph for its own view paid that a dozen times over (about 23 us per node in all on a
million-node graph). With one index, a pass touches only the nodes it changes and their neighbours.

The contract: every change of a node's op or inputs, every added and removed node goes through edit.py
(set_op, rewrite_inputs, set_inputs, make_const, add_const, remove_nodes, splice_out, keep_only), which
tells the index. NodeDef references stay valid while other nodes are removed or reordered (the repeated field
is sorted and its tail cut: protobuf moves the elements, it does not copy them; checked in every backend we
support, upb and cpp, by tests/test_node_index.py). check() compares the index with a fresh sweep (tests).
"""
from migrate.graph.view import NodeContainer, producer_of
from migrate.opsets import MERGE_OPS, NEXT_ITERATION_OPS


class NodeIndex(NodeContainer):
    """nodes     {name: NodeDef}
    ops       {name: op}
    readers   {producer: {reader: how many of reader's inputs name producer}} (data and control)
    by_op     {op: {name: None}} (insertion ordered; graph order comes from `order`)
    order     {name: rank}: ranks increase along graph_def.node (removal keeps it, added nodes rank last);
              its keys are in graph order too (added nodes are inserted last, a reorder rebuilds it)
    controls  how many control inputs the graph has
    unsorted  False only when every input names an earlier node (while-loop back edges aside)
    orphans   names that lost their last reader, or were added unread, since take_orphans()
    changes   {name: op before the first change since start_changes()} (None: the node is new)
    """

    def __init__(self, graph_def):
        self.graph_def = graph_def
        self.nodes, self.ops, self.readers, self.by_op, self.order = {}, {}, {}, {}, {}
        self.controls = 0
        self.unsorted = False
        self.orphans = set()
        self.changes = {}
        self._build(graph_def.node)

    def _build(self, nodedefs):
        """The one sweep: _add and _link inlined (a million nodes: every attribute lookup counts)."""
        nodes, ops, readers, by_op, order = self.nodes, self.ops, self.readers, self.by_op, self.order
        forward, controls = [], 0  # forward: (reader, producer) where the producer was not seen yet
        for rank, node in enumerate(nodedefs):
            name, op = node.name, node.op
            nodes[name] = node
            ops[name] = op
            same_op = by_op.get(op)
            if same_op is None:
                by_op[op] = {name: None}
            else:
                same_op[name] = None
            order[name] = rank
            for input_name in node.input:
                if input_name[:1] == "^":
                    producer = input_name[1:]
                    controls += 1
                elif ":" in input_name:
                    producer = producer_of(input_name)
                else:
                    producer = input_name
                mine = readers.get(producer)
                if mine is None:
                    readers[producer] = {name: 1}
                else:
                    mine[name] = mine.get(name, 0) + 1
                if producer not in order:
                    forward.append((name, producer))
        self.controls = controls
        self._next_rank = len(order)
        self.unsorted = any(producer in nodes and not self._back_edge(reader, producer)
                            for reader, producer in forward)

    # reading (`name in index`, iteration and len come from NodeContainer)
    def reader_names(self, name):
        return list(self.readers.get(name, ()))

    def of_ops(self, ops):
        """NodeDefs whose op is in ops, in graph order."""
        return [self.nodes[name] for name in self.names_of_ops(ops)]

    def names_of_ops(self, ops):
        """Names of the nodes whose op is in ops, in graph order."""
        return sorted([name for op in ops for name in self.by_op.get(op, ())], key=self.order.__getitem__)

    def has_op(self, ops):
        return any(self.by_op.get(op) for op in ops)

    def sinks(self):
        """Nodes nothing reads: outputs, target ops such as 'init', and dead ends."""
        readers = self.readers
        return set(name for name in self.nodes if not readers.get(name))

    # the part of DiGraph's interface that view.reachable / needed_nodes use
    def successors(self, name):
        return iter(self.readers.get(name, ()))

    def predecessors(self, name):
        seen = set()
        for input_name in self.nodes[name].input:
            producer = producer_of(input_name)
            if producer in self.nodes and producer not in seen:
                seen.add(producer)
                yield producer

    # what the edit helpers call (nothing else should)
    def added(self, node):
        self.changes.setdefault(node.name, None)
        self._add(node)
        if not self.readers.get(node.name):
            self.orphans.add(node.name)

    def removed(self, names):
        nodes, ops, by_op, order, changes = self.nodes, self.ops, self.by_op, self.order, self.changes
        unlink = self._unlink
        for name in names:
            node = nodes.pop(name, None)
            if node is None:
                continue
            op = ops.pop(name)
            if name not in changes:
                changes[name] = op
            del by_op[op][name]
            del order[name]
            unlink(name, node.input)
        self.orphans.difference_update(names)
        readers = self.readers
        for name in names:  # no entry for a removed node nothing reads any more
            if not readers.get(name, True):
                del readers[name]

    def op_changed(self, node, old_op):
        name = node.name
        self.changes.setdefault(name, old_op)
        del self.by_op[old_op][name]
        self.by_op.setdefault(node.op, {})[name] = None
        self.ops[name] = node.op

    def inputs_changed(self, node, old_inputs, new_inputs=None):
        """new_inputs: node.input as a list, when the caller has it. An input that stays at its position
        keeps its reader entry: only what changed is unlinked and linked."""
        if new_inputs is None:
            new_inputs = list(node.input)
        if len(old_inputs) == len(new_inputs):
            if len(old_inputs) == 1:
                if old_inputs[0] == new_inputs[0]:
                    return
            else:
                pairs = [(before, after) for before, after in zip(old_inputs, new_inputs) if before != after]
                if not pairs:
                    return
                old_inputs = [before for before, _ in pairs]
                new_inputs = [after for _, after in pairs]
        if old_inputs:
            self._unlink(node.name, old_inputs)
        if new_inputs:
            self._link(node.name, new_inputs)

    def reordered(self):
        """graph_def.node was sorted: ranks follow the new order, which a sort makes topological."""
        self.order = dict((node.name, rank) for rank, node in enumerate(self.graph_def.node))
        self._next_rank = len(self.order)
        self.unsorted = False

    # what a pass takes from the index
    def start_changes(self):
        self.changes = {}

    def take_orphans(self):
        orphans, self.orphans = self.orphans, set()
        return orphans

    def check(self):
        """AssertionError when the index differs from a fresh index of the same GraphDef (tests use it)."""
        fresh = NodeIndex(self.graph_def)
        assert set(self.nodes) == set(fresh.nodes), "node names differ"
        assert all(self.nodes[name] == fresh.nodes[name] for name in fresh.nodes), "NodeDefs differ"
        assert self.ops == fresh.ops, "ops differ"
        assert dict((k, v) for k, v in self.readers.items() if v) == \
            dict((k, v) for k, v in fresh.readers.items() if v), "readers differ"
        assert dict((k, v) for k, v in self.by_op.items() if v) == \
            dict((k, v) for k, v in fresh.by_op.items() if v), "by_op differs"
        assert sorted(self.order, key=self.order.get) == [node.name for node in self.graph_def.node], \
            "order differs"
        assert list(self.order) == [node.name for node in self.graph_def.node], "order's keys not in graph order"
        assert self.controls == fresh.controls, "control input count differs"
        assert self.unsorted or not fresh.unsorted, "the graph is unsorted but the index says sorted"

    # internals
    def _add(self, node):
        name = node.name
        self.nodes[name] = node
        self.ops[name] = node.op
        self.by_op.setdefault(node.op, {})[name] = None
        self.order[name] = self._next_rank
        self._next_rank += 1
        self._link(name, node.input)

    def _link(self, name, inputs):
        readers, order = self.readers, self.order
        rank = order.get(name)
        for input_name in inputs:
            if input_name[:1] == "^":
                self.controls += 1
                producer = producer_of(input_name)
            elif ":" in input_name:
                producer = producer_of(input_name)
            else:
                producer = input_name
            mine = readers.get(producer)
            if mine is None:
                readers[producer] = {name: 1}
            else:
                mine[name] = mine.get(name, 0) + 1
            if rank is not None and order.get(producer, -1) >= rank and not self.unsorted and \
                    not self._back_edge(name, producer):
                self.unsorted = True  # a node now reads a later one (topo_sort checks the whole graph then)

    def _unlink(self, name, inputs):
        readers, nodes = self.readers, self.nodes
        for input_name in inputs:
            if input_name[:1] == "^":
                producer = input_name[1:]
                self.controls -= 1
            elif ":" in input_name:
                producer = producer_of(input_name)
            else:
                producer = input_name
            mine = readers[producer]
            count = mine[name]
            if count == 1:
                del mine[name]
                if not mine and producer in nodes:
                    self.orphans.add(producer)
            else:
                mine[name] = count - 1

    def _back_edge(self, reader, producer):
        """A while loop's NextIteration -> Merge edge: the one input allowed to name a later node."""
        return self.ops[reader] in MERGE_OPS and self.ops.get(producer) in NEXT_ITERATION_OPS


def index_of(graph_def, context):
    """The context's index when it indexes graph_def, else a new one (kept in the context for later passes)."""
    index = context.index
    if index is None or index.graph_def is not graph_def:
        index = NodeIndex(graph_def)
        context.index = index
    return index

