"""Random ops the compared outputs read: an output that depends on an unseeded random op (a dropout fed a
keep_prob below 1, a sampling head) draws new values on every run, so the two sides of a comparison differ
however faithful the conversion. compare() names them in the row of an output that differs ("differs because
... is random") instead of a bare mismatch, with the switch that turns the dropout off (--set keep_prob=1.0)
where a placeholder feeds it.

Computed only when an output differs (a Results' `random` is a callable): a passing verification costs nothing."""
from migrate import opsets, tfcompat
from migrate.graph.names import is_control, node_name

# How far from a random op its dropout's switch may sit (keep_prob + uniform -> Floor; 1 - keep_prob -> >=).
_HOPS = 4


def explain(graph_def, outputs):
    """{output tensor: 'differs because N (Op, unseeded) is random (pass --set keep_prob=1.0 ...)'} for the
    outputs whose ancestors hold a random op; {} when the graph has none."""
    nodes = dict((node.name, node) for node in graph_def.node)
    if not any(node.op in opsets.RANDOM_OPS for node in nodes.values()):
        return {}
    reasons = {}
    for output in outputs:
        found = _random_ancestors(nodes, node_name(output))
        if found:
            reasons[output] = _reason(graph_def, nodes, found)
    return reasons


def _random_ancestors(nodes, start):
    seen, stack, found = set([start]), [start], []
    while stack:
        node = nodes.get(stack.pop())
        if node is None:
            continue
        if node.op in opsets.RANDOM_OPS:
            found.append(node)
        for name in node.input:
            parent = node_name(name)
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return sorted(found, key=lambda node: node.name)


def _seeded(node):
    return any(key in node.attr and node.attr[key].i != 0 for key in ("seed", "seed2"))


def _reason(graph_def, nodes, found):
    named = ", ".join("{} ({}, {})".format(node.name, node.op, "seeded" if _seeded(node) else "unseeded")
                      for node in found[:3]) + (" and {} more".format(len(found) - 3) if len(found) > 3 else "")
    switches = dropout_switches(graph_def, nodes, [node.name for node in found])
    fix = ("pass --set {} to turn the dropout off, or seed the random ops".format(
        " --set ".join("{}={}".format(name, value) for name, value in sorted(switches.items())))
        if switches else "seed the random ops (tf.set_random_seed before building), or cut them off the outputs")
    if all(_seeded(node) for node in found):  # the same draws in every session of the same graph only
        return "differs and reads seeded random op(s) {} (a changed graph draws differently): {}".format(named, fix)
    return "differs because {} {} random: {}".format(named, "is" if len(found) == 1 else "are", fix)


def dropout_switches(graph_def, nodes, random_names):
    """{placeholder: value that keeps every unit} for the float scalar (or unknown-rank) placeholders read
    within a few hops downstream of the random ops: keep_prob (added to the uniform, or as 1 - keep_prob) -> 1.0,
    a rate compared with the uniform (>=) -> 0.0."""
    consumers = {}
    for node in graph_def.node:
        for name in node.input:
            if not is_control(name):
                consumers.setdefault(node_name(name), []).append(node)
    switches, seen, frontier = {}, set(random_names), list(random_names)
    for _ in range(_HOPS):
        following = []
        for name in frontier:
            for consumer in consumers.get(name, []):
                if consumer.name in seen:
                    continue
                seen.add(consumer.name)
                following.append(consumer.name)
                for given in consumer.input:
                    placeholder, inverted = _switch_behind(nodes, node_name(given))
                    if placeholder is not None:
                        rate = (consumer.op in opsets.DROPOUT_RATE_OPS) != inverted
                        switches[placeholder] = 0.0 if rate else 1.0
        frontier = following
    return switches


def _switch_behind(nodes, name):
    """(placeholder, inverted): a float scalar placeholder read as it is (through Identity) or as 1 - it."""
    node = nodes.get(name)
    inverted = False
    if node is not None and node.op == "Sub" and len(node.input) == 2:
        node, inverted = nodes.get(node_name(node.input[1])), True
    while node is not None and node.op in opsets.IDENTITY_OPS and node.input:
        node = nodes.get(node_name(node.input[0]))
    if node is None or node.op not in opsets.PLACEHOLDER_OPS:
        return None, False
    tf = tfcompat.tf()
    floating = "dtype" in node.attr and tf.as_dtype(node.attr["dtype"].type).is_floating
    shape = node.attr["shape"].shape if "shape" in node.attr else None
    scalar = shape is None or shape.unknown_rank or len(shape.dim) == 0
    return (node.name, inverted) if floating and scalar else (None, False)
