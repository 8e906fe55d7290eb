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
from collections import OrderedDict

from migrate.graph import Splice, names, reachable, splice_out
from migrate.graph.edit import rewrite_inputs
from migrate.graph.ops import pure_nodes
from migrate.opsets import DEBUG_OPS, FORWARDING_DEBUG_OPS
from migrate.passes import base

NAME = "strip_debug"
SUMMARY = "remove Assert, CheckNumerics, Print/PrintV2 and the guards and control edges that served them"


def run(graph_def, context, in_place=False):
    return base.run_pass(NAME, _strip, graph_def, context, in_place)


def _strip(index, context, record):
    graph_def = index.graph_def
    protected = context.protected_nodes()
    debug = OrderedDict((node.name, node) for node in index.of_ops(DEBUG_OPS))
    for name in sorted(set(debug) & protected):
        record.note("kept {} '{}': it is a requested input/output".format(debug[name].op, name))
    splices = OrderedDict((name, _splice(node)) for name, node in debug.items() if name not in protected)
    if not splices:
        record.skip("no Assert, CheckNumerics, Print or PrintV2 nodes" if not debug else
                    "every debug node is a requested input/output", untouched=True)
        return
    reachability = base.Reachability(index)
    # Splicing never adds control edges: without any, no node can end up waited on only (no guards).
    downstream = reachable(index, splices) - set(splices) if index.controls else set()
    splice_out(graph_def, splices, index=index)
    guards = _guards(index, downstream - protected)
    if guards:
        _drop_control_inputs(index, guards)
        record.note("dropped control dependencies on {} assert guard node(s)".format(len(guards)))
    reachability.drop_orphans(graph_def, context)  # what fed only the removed nodes and guards


def _splice(node):
    if node.op in FORWARDING_DEBUG_OPS:
        return Splice({0: names.tensor_name(node.input[0])}, [], [])
    return Splice({}, [], [])


def _guards(index, downstream):
    """Nodes downstream of a stripped op that are now only waited on (read through control edges only)
    and whose execution changes nothing: waiting on them is pointless."""
    candidates = set(name for name in downstream if name in index and _only_waited_on(index, name))
    return pure_nodes(index, candidates) if candidates else set()


def _only_waited_on(index, name):
    """True when some node waits on name (a control input) and none reads its data."""
    inputs = [i for reader in index.readers.get(name, ()) for i in index.nodes[reader].input
              if names.node_name(i) == name]
    return bool(inputs) and all(names.is_control(i) for i in inputs)


def _drop_control_inputs(index, doomed):
    waiting = set(reader for name in doomed for reader in index.readers.get(name, ()))
    for reader in waiting:
        node = index.nodes[reader]
        kept = [name for name in node.input if not (names.is_control(name) and names.node_name(name) in doomed)]
        rewrite_inputs(node, kept, index)
