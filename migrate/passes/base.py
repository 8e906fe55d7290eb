"""What every pass shares: the context it runs in, the record it leaves, the wrapper that times and counts."""
import time
from collections import Counter

from migrate.graph import drop_unreachable, names, needed_nodes, remove_nodes
from migrate.graph.index import index_of
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
        self.index = None  # the NodeIndex of the GraphDef the passes edit (run_pipeline builds it once)
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
    """Run body(index, context, record), which edits index.graph_def in place through the edit helpers; fill
    counts and time.

    Without in_place the caller's GraphDef is left alone (one copy); the pipeline copies once and then
    passes its working GraphDef with in_place=True. The node index is the context's (run_pipeline builds it
    once for all passes), or a new one when the context has none for this GraphDef.
    """
    started = time.time()
    if not in_place:
        graph_def = copy_graph_def(graph_def)
    record = PassRecord(name)
    index = index_of(graph_def, context)
    index.start_changes()
    index.take_orphans()
    record.nodes_before = len(index)
    body(index, context, record)
    _count_changes(record, index)
    record.nodes_after = len(index)
    if not record.applied and not record.reason:
        raise AssertionError("pass {} changed nothing and gave no reason".format(name))
    record.seconds = time.time() - started
    return graph_def, record


def _count_changes(record, index):
    """removed/added ops from what the index saw change: a node whose op differs from before (or that is
    gone, or new) counts once in each direction."""
    ops = index.ops
    for name, before in index.changes.items():
        after = ops.get(name)
        if after != before:
            if before is not None:
                record.removed[before] += 1
            if after is not None:
                record.added[after] += 1
    if record.removed or record.added:
        record.applied = True


class Reachability(object):
    """Which nodes have a reason to exist before a pass edits: they feed a sink (an output, a target op,
    a dead end). After the edit, drop_orphans removes the nodes that lost that reason (what fed only a
    removed Assert, the old parameters of a folded batch norm), and nothing else.

    Without while loops the graph is a DAG: every node feeds some sink, and the orphans are the nodes that
    lost their last reader during the edit (the index collects them), then what only they read: no walk
    over the whole graph. With loops (cycles keep orphans read) the full reachability walk is used."""

    def __init__(self, index):
        self.index = index
        index.take_orphans()  # orphans count from here: what lost its last reader before is not ours
        self.loops = index.has_op(NEXT_ITERATION_OPS)
        if self.loops:
            self.sinks = index.sinks()
            self.needed = needed_nodes(index, self.sinks)

    def drop_orphans(self, graph_def, context):
        index = self.index
        if self.loops:
            existing = set(index.nodes)
            roots = (self.sinks | context.protected_nodes()) & existing
            # Nodes no sink needed before (rare: a loop without exit) are not ours to judge: keep them too.
            roots |= existing - self.needed
            return drop_unreachable(graph_def, roots, index)
        return _drop_unread(graph_def, index, context.protected_nodes())


def _drop_unread(graph_def, index, keep):
    """Remove the orphans nothing reads any more that are not in keep, then whatever only they read, ...
    Returns the removed names."""
    readers, nodes = index.readers, index.nodes
    doomed = set()
    todo = [name for name in index.take_orphans() if not readers.get(name) and name not in keep]
    left = {}  # producer -> how many of its distinct readers are not doomed yet
    while todo:
        name = todo.pop()
        if name in doomed:
            continue
        doomed.add(name)
        inputs = nodes[name].input
        if not inputs:
            continue
        for producer in set([producer_of(input_name) for input_name in inputs]):
            if producer not in nodes or producer in keep:
                continue
            count = left.get(producer)
            left[producer] = count = (len(readers[producer]) if count is None else count) - 1
            if count == 0:
                todo.append(producer)
    remove_nodes(graph_def, doomed, index)
    return doomed


def short_list(items, limit=5):
    items = sorted(items)
    text = ", ".join("'{}'".format(item) for item in items[:limit])
    return text + (" and {} more".format(len(items) - limit) if len(items) > limit else "")
