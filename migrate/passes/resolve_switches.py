"""resolve_switches: tf.cond with a constant predicate (is_training=False after freezing) becomes straight code.

For a Switch whose predicate is a Const, the live output port (1 for True, 0 for False) is replaced by the
Switch's data input and the other port is dead. Deadness spreads as TensorFlow's executor spreads it: through
data and control edges, except that a Merge is dead only when all its data inputs are; a Merge with one live
input becomes an Identity of it. Dead nodes are removed. Switches inside while loops never have a Const
predicate (theirs is a LoopCond), so loops are untouched. A Merge whose value_index (output 1) is read is
left alone, and so is its Switch.
"""
from collections import OrderedDict

from migrate.graph import edit, names
from migrate.opsets import MERGE_OPS, SWITCH_OPS
from migrate.passes import base

NAME = "resolve_switches"
SUMMARY = "tf.cond on a constant predicate -> the taken branch only (dead branch removed)"


def run(graph_def, context, in_place=False):
    return base.run_pass(NAME, _resolve, graph_def, context, in_place)


def _resolve(index, context, record):
    nodes = index.nodes
    constant_switches = OrderedDict((node.name, _live_port(node, nodes)) for node in index.of_ops(SWITCH_OPS)
                                    if _live_port(node, nodes) is not None)
    if not constant_switches:
        record.skip("no Switch has a constant predicate", untouched=True)
        return
    if _reads_merge_index(index):
        record.skip("a Merge's value_index is read: left as it is", untouched=True)
        return
    dead = _dead_nodes(index, constant_switches) - context.protected_nodes()
    forwards = {}
    for name, port in constant_switches.items():
        forwards[name] = (port, nodes[name].input[0])
    # Only readers of a resolved Switch or of a dead node change, and Merges (one live input: Identity).
    touched = set(reader for name in list(forwards) + list(dead) for reader in index.readers.get(name, ()))
    touched |= set(node.name for node in index.of_ops(MERGE_OPS))
    for name in touched - dead:
        if name in nodes:
            _rewire(nodes[name], forwards, dead, index)
    edit.remove_nodes(index.graph_def, dead | set(constant_switches), index)
    record.note("resolved {} switch(es) on constant predicates; {} dead node(s) removed".format(
        len(constant_switches), len(dead)))


def _live_port(node, nodes):
    pred = nodes.get(names.node_name(node.input[1])) if len(node.input) > 1 else None
    while pred is not None and pred.op == "Identity":  # tf.cond reads its predicate through cond/pred_id
        pred = nodes.get(names.node_name(pred.input[0]))
    if pred is None or pred.op != "Const":
        return None
    value = edit.const_value(pred)
    return 1 if bool(value.reshape(-1)[0]) else 0


def _reads_merge_index(index):
    return any(names.node_name(i) == merge.name and names.output_index(i) == 1
               for merge in index.of_ops(MERGE_OPS) for reader in index.readers.get(merge.name, ())
               for i in index.nodes[reader].input if not names.is_control(i))


def _consumers(index, name):
    """[(reader NodeDef, the input naming name)], one pair per such input."""
    return [(index.nodes[reader], i) for reader in index.readers.get(name, ()) for i in index.nodes[reader].input
            if names.node_name(i) == name]


def _dead_nodes(index, switches):
    """Names of nodes that would never run: fed by a dead Switch port, transitively (Merge needs all dead)."""
    dead = set()
    dead_merge_inputs = {}
    stack = []
    for name, port in switches.items():
        for consumer, i in _consumers(index, name):
            if not names.is_control(i) and names.output_index(i) != port:
                stack.append(consumer)
    while stack:
        node = stack.pop()
        if node.name in dead:
            continue
        if node.op in MERGE_OPS:
            dead_merge_inputs[node.name] = dead_merge_inputs.get(node.name, 0) + 1
            data_inputs = [i for i in node.input if not names.is_control(i)]
            if dead_merge_inputs[node.name] < len(data_inputs):
                continue
        dead.add(node.name)
        stack.extend(consumer for consumer, _ in _consumers(index, node.name))
    return dead


def _rewire(node, forwards, dead, index):
    """Point inputs at live values: Switch live port -> its data input; Merge of one live input -> Identity."""
    new_inputs = []
    for i in node.input:
        producer = names.node_name(i)
        if producer in dead:
            continue  # only control edges (or dead Merge inputs) can point at dead nodes from a live node
        if producer in forwards:
            port, data = forwards[producer]
            if names.is_control(i):
                new_inputs.append("^" + names.node_name(data))
                continue
            new_inputs.append(data)
            continue
        new_inputs.append(i)
    if new_inputs != list(node.input):
        edit.rewrite_inputs(node, new_inputs, index)
    if node.op in MERGE_OPS:
        data = [i for i in node.input if not names.is_control(i)]
        if len(data) == 1:
            dtype = node.attr["T"].type
            edit.set_op(node, "Identity", index)
            node.attr.clear()
            node.attr["T"].type = dtype
