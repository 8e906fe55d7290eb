"""remove_identity: splice out nodes that only forward (Identity, IdentityN, StopGradient, Snapshot,
PreventGradient) or only group control dependencies (NoOp); readers are reconnected to what they forwarded.

Kept, and why (each reason is counted in the record's notes):
- requested inputs/outputs: users fetch them by name (an Identity chain ending at an output keeps its last
  link, named as before).
- nothing reads them: a NoOp like 'init' or an Identity nobody names may be a target someone runs;
  prune_unused decides with the outputs in hand.
- they read a Switch: in v1 cond and while loops that Identity is the pivot ('cond/switch_t',
  'while/Identity'); constants in a branch or loop body hang on it through control edges, which is how
  they get into the branch or frame. Rewiring those to the Switch itself would change which frame runs them.
- they read a ref (VariableV2 ...): the Identity is what turns the ref into a value.
- they carry control dependencies and sit next to v1 control flow (a Merge, Switch, Enter ... reads them or
  feeds them): moving control inputs onto a Merge changes when the Merge fires.
Otherwise control dependencies are kept, not lost: an Identity's control inputs move to its readers, and
whoever waited on the Identity (or NoOp) now waits on its inputs.
TF's remove_training_nodes instead keeps every Identity that has or is a control dependency.
"""
from collections import OrderedDict

from migrate.graph import forwarding_splice, names, splice_out
from migrate.opsets import FORWARDING_OPS, REF_PRODUCING_OPS, SWITCH_OPS, V1_CONTROL_FLOW
from migrate.passes import base

NAME = "remove_identity"
SUMMARY = "splice out Identity/IdentityN/StopGradient/Snapshot/PreventGradient/NoOp, keeping control deps"


KEEP_PROTECTED = "requested input/output"
KEEP_SINK = "nothing reads it (a target such as 'init'; prune_unused decides)"
KEEP_PIVOT = "reads a Switch (v1 cond/while pivot)"
KEEP_REF = "reads a ref (turns a variable into a value)"
KEEP_CONTROL_FLOW = "has control dependencies next to v1 control flow"


def run(graph_def, context, in_place=False):
    return base.run_pass(NAME, _remove, graph_def, context, in_place)


def _remove(index, context, record):
    protected = context.protected_nodes()
    splices, kept = OrderedDict(), OrderedDict()
    nodes = index.nodes
    for name in index.names_of_ops(FORWARDING_OPS):
        node = nodes[name]
        inputs = list(node.input)
        reason = _reason_to_keep(node, index, protected, name, inputs)
        if reason:
            kept.setdefault(reason, []).append(name)
        else:
            splices[name] = forwarding_splice(node, inputs)
    for reason, kept_names in kept.items():
        record.note("kept {} node(s), {}: {}".format(len(kept_names), reason, base.short_list(kept_names)))
    if not splices:
        record.skip("no removable forwarding node" + ("; all kept, see notes" if kept else ""), untouched=True)
        return
    splice_out(index.graph_def, splices, index=index)


def _reason_to_keep(node, index, protected, name=None, inputs=None):
    """Why node stays, or None. name, inputs: node.name and list(node.input), when the caller has them."""
    name = node.name if name is None else name
    if name in protected:
        return KEEP_PROTECTED
    if not index.readers.get(name):
        return KEEP_SINK
    ops = index.ops
    producer_ops = []
    has_control = ops[name] == "NoOp"
    for input_name in (node.input if inputs is None else inputs):
        if input_name[:1] == "^":
            has_control = True
            continue
        op = ops.get(input_name if ":" not in input_name else names.node_name(input_name))
        if op is not None:
            producer_ops.append(op)
    if any(op in SWITCH_OPS for op in producer_ops):
        return KEEP_PIVOT
    if any(op in REF_PRODUCING_OPS for op in producer_ops):
        return KEEP_REF
    if has_control and _touches_control_flow(node, index):
        return KEEP_CONTROL_FLOW
    return None


def _touches_control_flow(node, index):
    ops = index.ops
    neighbours = [names.node_name(name) for name in node.input] + index.reader_names(node.name)
    return any(ops[other] in V1_CONTROL_FLOW for other in neighbours if other in ops)
