"""What every pass shares: the context it runs in, the record it leaves, the wrapper that times and counts."""
import time
from collections import Counter

from migrate.graph import Sweep, drop_unreachable, names, needed_nodes, remove_nodes, sinks
from migrate.graph.view import producer_of
from migrate.opsets import NEXT_ITERATION_OPS

DEFAULT_OPTIONS = {
    "max_batch": None,          # batch size set_static_shapes gives an unknown dim 0
    "input_shapes": {},         # {placeholder: [dims]} for set_static_shapes; None/-1 = keep the graph's dim
    "static": False,            # set_static_shapes only changes shapes when this is True
    "fold_max_bytes": 256 << 20,  # fold_constants never writes a constant larger than this
}


class PassContext(object):
    """What passes must respect: the outputs that must survive, the inputs (placeholders), the options."""

    def __init__(self, outputs=(), inputs=(), options=None):
        self.snapshot = None  # run_pipeline: (GraphDef, [(name, op)]) as the last pass left it
        self.outputs = [names.tensor_name(name) for name in outputs]
        self.inputs = [names.tensor_name(name) for name in inputs]
        self.options = dict(DEFAULT_OPTIONS)
        self.options.update(options or {})
        self.oversized = []  # fold_constants: [(tensor, bytes, bound)] constant subgraphs too big to compute

    def output_nodes(self):
        return set(names.node_name(name) for name in self.outputs)

    def input_nodes(self):
        return set(names.node_name(name) for name in self.inputs)

    def protected_nodes(self):
        """Nodes no pass may remove or rename: users feed and fetch them by name."""
        return self.output_nodes() | self.input_nodes()


class PassRecord(object):
    """What one pass did. removed/added count node ops by name: a node replaced under the same name by a
    node of another op (Add folded to Const) counts once in each."""

    def __init__(self, name):
        self.name = name
        self.applied = False
        self.untouched = False
        self.reason = ""       # why it could not apply or did nothing
        self.notes = []        # what it left alone and why (a BN not folded, an Identity kept)
        self.removed = Counter()
        self.added = Counter()
        self.nodes_before = 0
        self.nodes_after = 0
        self.seconds = 0.0

    def skip(self, reason, untouched=False):
        """Nothing done, and why. untouched=True: the pass has not edited the graph at all (run_pass then
        skips re-reading every node to count changes; a million-node graph costs a second per sweep)."""
        self.reason = reason
        self.untouched = untouched

    def note(self, text):
        self.notes.append(text)

    def to_dict(self):
        return {"name": self.name, "applied": self.applied, "reason": self.reason, "notes": list(self.notes),
                "removed": dict(self.removed), "added": dict(self.added), "nodes_before": self.nodes_before,
                "nodes_after": self.nodes_after, "seconds": round(self.seconds, 4)}

    def summary(self):
        if not self.applied:
            return "{}: not applied ({})".format(self.name, self.reason)
        changes = ["-{} {}".format(count, op) for op, count in sorted(self.removed.items())]
        changes += ["+{} {}".format(count, op) for op, count in sorted(self.added.items())]
        return "{}: {} nodes -> {}{} ({:.2f}s)".format(self.name, self.nodes_before, self.nodes_after,
                                                       ": " + ", ".join(changes) if changes else "", self.seconds)

    def __repr__(self):
        return "PassRecord({})".format(self.summary())


def copy_graph_def(graph_def):
    copy = type(graph_def)()
    copy.CopyFrom(graph_def)
    return copy


def run_pass(name, body, graph_def, context, in_place=False):
    """Run body(graph_def, context, record), which edits graph_def in place; fill counts and time.

    Without in_place the caller's GraphDef is left alone (one copy); the pipeline copies once and then
    passes its working GraphDef with in_place=True.
    """
    started = time.time()
    if not in_place:
        graph_def = copy_graph_def(graph_def)
    record = PassRecord(name)
    snapshot = getattr(context, "snapshot", None)  # left by the previous pass of run_pipeline
    if snapshot is not None and snapshot[0] is graph_def:
        ops_before = snapshot[1]
    else:
        ops_before = [(node.name, node.op) for node in graph_def.node]
    body(graph_def, context, record)
    if record.untouched and record.reason and not record.applied:
        ops_after = ops_before
    else:
        ops_after = [(node.name, node.op) for node in graph_def.node]
    if ops_after != ops_before:
        before, after = dict(ops_before), dict(ops_after)
        record.removed = Counter(op for node, op in before.items() if after.get(node) != op)
        record.added = Counter(op for node, op in after.items() if before.get(node) != op)
    if snapshot is not None:
        context.snapshot = (graph_def, ops_after)
    record.nodes_before, record.nodes_after = len(ops_before), len(ops_after)
    if record.removed or record.added:
        record.applied = True
    if not record.applied and not record.reason:
        raise AssertionError("pass {} changed nothing and gave no reason".format(name))
    record.seconds = time.time() - started
    return graph_def, record


class Reachability(object):
    """Which nodes have a reason to exist before a pass edits: they feed a sink (an output, a target op,
    a dead end). After the edit, drop_orphans removes the nodes that lost that reason (what fed only a
    removed Assert, the old parameters of a folded batch norm), and nothing else.

    Without while loops the graph is a DAG: every node feeds some sink, and after the edit the orphans are
    found by counting readers (nodes nothing reads that are no root, then their producers, ...), one sweep
    over the graph instead of a full reachability walk. With loops (cycles) the walk is used."""

    def __init__(self, graph_def, graph=None, sweep=None):
        """graph (a DiGraph) or sweep (a Sweep) of graph_def as it is now, when the caller has one."""
        if graph is not None:
            self.sinks = sinks(graph)
            self.loops = any(attrs.get("op") in NEXT_ITERATION_OPS for attrs in graph.nodes.values())
        else:
            sweep = sweep if sweep is not None else Sweep(graph_def)
            self.sinks = sweep.sinks()
            self.loops = any(op in NEXT_ITERATION_OPS for op in sweep.ops.values())
        self.needed = needed_nodes(graph if graph is not None else graph_def, self.sinks) if self.loops else None

    def drop_orphans(self, graph_def, context):
        if self.loops:
            existing = set(node.name for node in graph_def.node)
            roots = (self.sinks | context.protected_nodes()) & existing
            # Nodes no sink needed before (rare: a loop without exit) are not ours to judge: keep them too.
            roots |= existing - self.needed
            return drop_unreachable(graph_def, roots)
        return _drop_unread(graph_def, self.sinks | context.protected_nodes())


def _drop_unread(graph_def, roots):
    """Remove nodes nothing reads that are not roots, then whatever only they read, ... (a DAG's
    unreachable nodes). Returns the removed names."""
    nodes, readers = {}, {}
    for node in graph_def.node:
        nodes[node.name] = node
        for input_name in node.input:
            producer = input_name if ":" not in input_name and input_name[:1] != "^" else producer_of(input_name)
            readers[producer] = readers.get(producer, 0) + 1
    doomed = set()
    todo = [name for name in nodes if name not in readers and name not in roots]
    while todo:
        name = todo.pop()
        if name in doomed:
            continue
        doomed.add(name)
        for input_name in nodes[name].input:
            producer = producer_of(input_name)
            if producer in readers:
                readers[producer] -= 1
                if readers[producer] == 0 and producer in nodes and producer not in roots:
                    todo.append(producer)
    remove_nodes(graph_def, doomed)
    return doomed


def short_list(items, limit=5):
    items = sorted(items)
    text = ", ".join("'{}'".format(item) for item in items[:limit])
    return text + (" and {} more".format(len(items) - limit) if len(items) > limit else "")
