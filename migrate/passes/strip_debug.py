"""strip_debug: remove Assert, CheckNumerics, Print and PrintV2, and what existed only to serve them.

- CheckNumerics and Print forward their first input: readers read that input instead.
- Assert and PrintV2 have no outputs: control inputs on them are dropped.
- TF1's tf.Assert / tf.debugging.assert_* wrap the Assert in a cond ('AssertGuard': Switch, Identity, NoOp,
  Merge) and hand out the Merge for control dependencies. Once the Assert is gone the guard computes
  nothing, so control inputs on such guard nodes (descendants of a stripped op, side-effect free, read
  through control edges only) are dropped too.
- Nodes that only fed what was removed (the guard, the condition, message strings) are removed.
  (TF's remove_training_nodes leaves the Assert nodes in place and only handles CheckNumerics.)
Asserts inside functions of graph_def.library (TF2 If-based guards) are not looked at.
"""
from migrate.graph import Splice, Sweep, names, reachable, splice_out, to_digraph
from migrate.graph.ops import pure_nodes
from migrate.opsets import DEBUG_OPS, FORWARDING_DEBUG_OPS
from migrate.passes import base

NAME = "strip_debug"
SUMMARY = "remove Assert, CheckNumerics, Print/PrintV2 and the guards and control edges that served them"


def run(graph_def, context, in_place=False):
    return base.run_pass(NAME, _strip, graph_def, context, in_place)


def _strip(graph_def, context, record):
    protected = context.protected_nodes()
    debug = dict((node.name, node) for node in graph_def.node if node.op in DEBUG_OPS)
    for name in sorted(set(debug) & protected):
        record.note("kept {} '{}': it is a requested input/output".format(debug[name].op, name))
    splices = dict((name, _splice(node)) for name, node in debug.items() if name not in protected)
    if not splices:
        record.skip("no Assert, CheckNumerics, Print or PrintV2 nodes" if not debug else
                    "every debug node is a requested input/output", untouched=True)
        return
    sweep = Sweep(graph_def, splices)
    reachability = base.Reachability(graph_def, sweep=sweep)
    # Splicing never adds control edges: without any, no node can end up waited on only (no guards).
    has_controls = sweep.control_inputs > 0
    downstream = reachable(to_digraph(graph_def), splices) - set(splices) if has_controls else set()
    readers = dict((reader, sweep.reader_nodes[reader]) for name in splices for reader in sweep.readers[name])
    # Who may lose their last reader: what the removed nodes read. Counted on the readers that get
    # rewritten, before and after, so the whole graph need not be swept again in the usual case.
    affected = set(names.node_name(i) for name in splices for i in debug[name].input) - set(splices)
    before = _references(readers.values(), affected)
    removed = _references([debug[name] for name in splices], affected)
    splice_out(graph_def, splices, readers)
    after = _references(readers.values(), affected)
    guards = _guards(graph_def, downstream - protected) if has_controls else set()
    if guards:
        _drop_control_inputs(graph_def, guards)
        record.note("dropped control dependencies on {} assert guard node(s)".format(len(guards)))
    keep = reachability.sinks | protected
    orphaned = [name for name in affected if name not in keep and
                sweep.read.get(name, 0) - removed.get(name, 0) - before.get(name, 0) + after.get(name, 0) <= 0]
    if guards or orphaned or reachability.loops:
        reachability.drop_orphans(graph_def, context)


def _references(nodes, producers):
    """{producer: how many inputs of these nodes name it}, for the given producers."""
    counts = {}
    for node in nodes:
        for input_name in node.input:
            producer = names.node_name(input_name)
            if producer in producers:
                counts[producer] = counts.get(producer, 0) + 1
    return counts


def _splice(node):
    if node.op in FORWARDING_DEBUG_OPS:
        return Splice({0: names.tensor_name(node.input[0])}, [], [])
    return Splice({}, [], [])


def _guards(graph_def, downstream):
    """Nodes downstream of a stripped op that are now only waited on (read through control edges only)
    and whose execution changes nothing: waiting on them is pointless."""
    waited_on, read = set(), set()
    for node in graph_def.node:  # one sweep finds the candidates; the full view only when there are some
        for input_name in node.input:
            if input_name[:1] == "^":
                waited_on.add(input_name[1:])
            else:
                read.add(names.node_name(input_name))
    candidates = (waited_on - read) & downstream
    if not candidates:
        return set()
    return candidates & pure_nodes(to_digraph(graph_def))


def _drop_control_inputs(graph_def, doomed):
    for node in graph_def.node:
        if any(names.is_control(name) and names.node_name(name) in doomed for name in node.input):
            kept = [name for name in node.input if not (names.is_control(name) and names.node_name(name) in doomed)]
            del node.input[:]
            node.input.extend(kept)
