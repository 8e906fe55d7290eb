"""A graph's outputs: recorded in the graphs migrate writes, else guessed from the graph.

Recorded: every graph migrate writes (freeze, optimize, convert) carries its inputs and outputs as attrs on
the nodes that produce them, `_migrate_outputs` / `_migrate_inputs` (opsets.RECORDED_*_ATTR), each a list of
that node's output indices. Why attrs and not a node of our own: TF's importer (1.7 to 2.21) skips attrs whose
name starts with an underscore (internal attrs such as `_class`, `_output_shapes`), no kernel reads them, and
they travel with the output nodes through pruning tools (extract_sub_graph, strip_unused, our own passes keep
outputs), where an extra node would be a dead end that summarize_graph-style tools list as a likely output
and pruning drops. tests/test_outputs.py imports such a graph with plain TF and runs TF's own tools on it.

Guessed (no signature, nothing recorded, no --outputs):
  inference graph (no variables, no optimizer): EVERY forward sink that reads an input, except plumbing (v1
    cond pivots switch_t/switch_f, ops with no outputs, queue/iterator/reader/dataset/summary ops);
  training graph: ranked sinks; where a label input meets the model at its end (a loss), the model side of
    that join is a prediction, and a sink computed from a prediction (its softmax) ranks above it. A join
    with a scalar input (keep_prob) or one the model goes on computing from (weights read downstream of it:
    dropout inside the network) is not a loss.
"""
import re
from collections import namedtuple

from migrate import opsets, tfcompat

Candidate = namedtuple("Candidate", ["name", "op", "score", "why", "reads_input"])
Candidate.__new__.__defaults__ = (False,)

# Name scopes TF's own training machinery writes into: never an inference output.
_TRAINING_SCOPES = re.compile(
    r"(^|/)(save(_\d+)?|gradients(_\d+)?|train(_op)?|init(_\d+)?|init_all_tables|report_uninitialized_variables|"
    r"Adam|Adagrad|Momentum|RMSProp|GradientDescent|Ftrl|global_step|summaries|summary|Merge/MergeSummary|"
    r"zero_fraction|ExponentialMovingAverage|beta1_power|beta2_power|group_deps)(/|$|_)",
    re.IGNORECASE)
_LOSS_NAMES = re.compile(r"(loss|cross_entropy|xent|accuracy|correct|metric|mean_squared|label)", re.IGNORECASE)
_OUTPUT_NAMES = re.compile(r"(softmax|prob|pred|output|logit|score|sigmoid|classes|argmax|embedding|y$|result)",
                           re.IGNORECASE)
_INPUT_OPS = frozenset(["Placeholder"])


# ------------------------------------------------------------------------------------------ recorded

# The provenance note of a frozen graph loaded with its outputs recorded (freezing.outputs.resolve_outputs keeps
# those outputs then).
RECORDED_NOTE = "outputs recorded in the graph: "


def recorded(graph_def):
    """(inputs, outputs): the tensor names a graph written by migrate records (sorted), or ([], [])."""
    input_attr, output_attr = opsets.RECORDED_INPUT_ATTR, opsets.RECORDED_OUTPUT_ATTR
    inputs, outputs = [], []
    for node in graph_def.node:
        attrs = node.attr
        if input_attr in attrs:
            inputs.extend("{}:{}".format(node.name, index) for index in attrs[input_attr].list.i)
        if output_attr in attrs:
            outputs.extend("{}:{}".format(node.name, index) for index in attrs[output_attr].list.i)
    return sorted(set(inputs)), sorted(set(outputs))


def record(graph_def, inputs, outputs):
    """Stamp `inputs`/`outputs` (tensor names) into graph_def in place; earlier stamps are removed first.
    Tensors whose node is not in the graph are left out. Returns (inputs, outputs) recorded."""
    wanted = ((opsets.RECORDED_INPUT_ATTR, _by_node(inputs), []), (opsets.RECORDED_OUTPUT_ATTR, _by_node(outputs), []))
    for node in graph_def.node:
        attrs, name = node.attr, None
        for attr, by_node, done in wanted:
            if attr in attrs:
                del attrs[attr]
            if by_node:
                name = node.name if name is None else name
                if name in by_node:
                    indices = sorted(by_node[name])
                    attrs[attr].list.i.extend(indices)
                    done.extend("{}:{}".format(name, i) for i in indices)
    return sorted(wanted[0][2]), sorted(wanted[1][2])


def _by_node(tensors):
    by_node = {}
    for tensor in tensors or []:
        name, _, index = tensor.lstrip("^").partition(":")
        by_node.setdefault(name, set()).add(int(index) if index else 0)
    return by_node


# ------------------------------------------------------------------------------------------ inference

def _data_inputs(node):
    return [name.split(":")[0] for name in node.input if not name.startswith("^")]


def _input_names(graph_def):
    """([node name], [op], [every input's node], [every data input's node]) in graph order, each input named
    up to its first ':' ('^' dropped): node.input read once per node (a node without control inputs shares
    one list between the two)."""
    names, ops, every, data = [], [], [], []
    for node in graph_def.node:
        names.append(node.name)
        ops.append(node.op)
        raw = node.input
        if not raw:
            every.append(())
            data.append(())
            continue
        producers = [input_name.split(":")[0] for input_name in raw]
        fed = [producer for producer in producers if producer[:1] != "^"]
        if len(fed) == len(producers):
            every.append(producers)
            data.append(producers)
        else:
            every.append([producer.lstrip("^") for producer in producers])
            data.append(fed)
    return names, ops, every, data


def _ancestry(every, ops):
    """{node: (placeholders it reads, whether it reads a variable)}: one iterative post-order walk over
    every ({node: [every input's node]}) in graph order (ops: {node: op}). A while loop's back edge
    (NextIteration's input) is not followed: the loop's Enter carries the values in; any other cycle (a
    malformed graph) is cut where the walk meets it. A node whose inputs are all known by the time the walk
    reaches it (graph order is topological in most graphs) is done at once, as the walk would."""
    back_edges = opsets.NEXT_ITERATION_OPS
    variable_ops = opsets.VARIABLE_OPS
    variables = not variable_ops.isdisjoint(ops.values())  # else no node reads one
    empty = frozenset()
    memo, active = {}, set()

    def done(current, op):
        if op in back_edges:
            inputs = []
        else:
            inputs = [memo[i] for i in every[current] if i in memo]
        if op in _INPUT_OPS:
            placeholders = frozenset([current])
        elif not inputs:
            placeholders = empty
        else:
            placeholders = inputs[0][0]
            for other, _ in inputs:
                if other is not placeholders and not other <= placeholders:
                    placeholders = frozenset().union(*[p for p, _ in inputs])
                    break
        memo[current] = (placeholders, variables and (op in variable_ops or any(v for _, v in inputs)))

    for start, op in ops.items():
        if start in memo:
            continue
        for name in every[start] if op not in back_edges else ():
            if name not in memo and name in ops:
                break
        else:
            done(start, op)  # what the walk below does for a node with nothing left to visit
            continue
        stack = [(start, False)]
        while stack:
            current, expanded = stack.pop()
            if current in memo or current not in ops:
                continue
            if not expanded:
                if current in active:
                    continue
                active.add(current)
                stack.append((current, True))
                if ops[current] not in back_edges:
                    stack.extend((name, False) for name in every[current] if name not in memo and name not in active)
                continue
            active.discard(current)
            done(current, ops[current])
    return memo


def is_inference_graph(graph_def):
    """No variables and no optimizer (no Apply* op, no gradients): a frozen or serving graph."""
    for op in set(node.op for node in graph_def.node):
        if op in opsets.VARIABLE_OPS or opsets.APPLY_OP.match(op):
            return False
    return not any(node.name.startswith("gradients/") for node in graph_def.node)


class _Plumbing(object):
    """Whether a node can never be an output: consts/placeholders/variables, ops with no outputs, input
    pipelines and summaries, v1 control flow and cond pivots, training-only ops and scopes.
    ops: {node: op}; by_name ({node: NodeDef}) is made when first asked for."""

    def __init__(self, graph_def, ops):
        self.graph_def, self.ops = graph_def, ops
        self._by_name = None
        self.no_outputs = {}

    @property
    def by_name(self):
        if self._by_name is None:
            self._by_name = dict((node.name, node) for node in self.graph_def.node)
        return self._by_name

    def __call__(self, node):
        op = node.op
        if op in opsets.NOT_OUTPUT_OPS or op in opsets.V1_CONTROL_FLOW or opsets.is_training_only(op) or \
                opsets.NEVER_OUTPUT_OPS.match(op) or _TRAINING_SCOPES.search(node.name):
            return True
        if op not in self.no_outputs:
            definition = tfcompat.op_def(op)
            self.no_outputs[op] = definition is not None and not definition.output_arg
        if self.no_outputs[op]:
            return True
        if op == "Identity" and opsets.COND_PIVOT.search(node.name):
            data = _data_inputs(node)
            return bool(data) and data[0] in self.ops and self.ops[data[0]] in opsets.SWITCH_OPS
        return False


def _scalar(node):
    if node is None or "shape" not in node.attr:
        return False
    shape = node.attr["shape"].shape
    return not shape.unknown_rank and len(shape.dim) == 0


def _inside_model(graph_def, plumbing):
    """Nodes from which the forward graph goes on to read a weight: a join there is inside the network."""
    from migrate.graph import view
    by_name = plumbing.by_name
    weights = set(name for name, node in by_name.items() if node.op in opsets.VARIABLE_OPS)
    weights |= set(name for name, node in by_name.items() if node.op in opsets.VARIABLE_READ_OPS and
                   _data_inputs(node) and _data_inputs(node)[0] in weights)
    starts = set()
    for node in graph_def.node:
        if node.name in weights or opsets.is_training_only(node.op) or _TRAINING_SCOPES.search(node.name):
            continue
        data = _data_inputs(node)
        if any(name in weights for name in data):
            starts.update(name for name in data if name not in weights)
    return view.reachable(view.to_digraph(graph_def), starts, "reverse") if starts else set()


def _loss_joins(graph_def, ancestry, plumbing):
    """(predictions, joins): where a label input meets the model's output (sub, cross-entropy, ...), the side
    that reads weights is a prediction. Not a label: a scalar input (keep_prob), nor a join the network goes
    on computing from (it reads weights downstream: dropout between layers)."""
    predictions, joins = set(), set()
    if not any(reads_variable for _, reads_variable in ancestry.values()):
        return predictions, joins  # no side reads a variable (a frozen graph): no join below can be one
    inside = None
    for node in graph_def.node:
        sides = [(name, ancestry.get(name, (frozenset(), False))) for name in _data_inputs(node)]
        sides = [(name, p, v) for name, (p, v) in sides if p]
        for name, placeholders, reads_variable in sides:
            others = [p for other, p, _ in sides if other != name]
            if not (reads_variable and others and all(not (p & placeholders) for p in others)):
                continue
            labels = frozenset().union(*others) - placeholders
            if all(_scalar(plumbing.by_name.get(label)) for label in labels):
                continue
            if inside is None:
                inside = _inside_model(graph_def, plumbing)
            if node.name in inside:
                continue
            predictions.add(name)
            joins.add(node.name)
    return predictions, joins


def rank_outputs(graph_def):
    """Candidate outputs, best first: forward sinks that read an input, scored on op and name."""
    names, ops, every, data = _input_names(graph_def)
    consumed = set()
    for producers in data:
        consumed.update(producers)
    ops = dict(zip(names, ops))
    ancestry = _ancestry(dict(zip(names, every)), ops)
    plumbing = _Plumbing(graph_def, ops)
    predictions, joins = _loss_joins(graph_def, ancestry, plumbing)
    losses = _downstream(graph_def, joins)
    served = _downstream(graph_def, predictions) - losses
    candidates = []
    for node in graph_def.node:
        reads_input = bool(ancestry.get(node.name, (frozenset(), False))[0])
        if node.name in predictions and node.op not in opsets.NOT_OUTPUT_OPS and not _TRAINING_SCOPES.search(node.name):
            candidates.append(Candidate(node.name, node.op, 6, "prediction compared with another input (a label)",
                                        reads_input))
            continue
        if node.name in consumed or plumbing(node):
            continue
        score, why = 0, []
        if reads_input:
            score += 4
            why.append("reads an input")
        if node.name in losses:
            score -= 4
            why.append("computed from a prediction and a label (a loss)")
        elif _LOSS_NAMES.search(node.name):
            score -= 3
            why.append("looks like a loss/metric")
        elif node.name in served:
            score = 7
            why.append("computed from a prediction (its served form)")
        elif _OUTPUT_NAMES.search(node.name):
            score += 1
            why.append("output-like name")
        candidates.append(Candidate(node.name, node.op, score, ", ".join(why) or "sink", reads_input))
    ranked = sorted(candidates, key=lambda c: -c.score)
    useful = [c for c in ranked if c.score > 0]  # sinks reading no input (switch plumbing, constants) last resort
    return useful or ranked


def _downstream(graph_def, starts):
    from migrate.graph import view
    if not starts:
        return set()
    return view.reachable(view.to_digraph(graph_def), set(starts))


def infer_outputs(graph_def):
    """(outputs, candidates): the chosen output node names, or [] when the top is ambiguous.
    An inference graph's outputs are all its forward sinks that read an input (best first)."""
    from migrate import gcpause
    with gcpause.paused():  # a few lists and tuples per node, none freed until the ranking is made
        candidates = rank_outputs(graph_def)
    if not candidates:
        return [], candidates
    if is_inference_graph(graph_def):
        every = [c.name for c in candidates if c.reads_input and c.score > 0]
        if every:
            return every, candidates
    best = [c for c in candidates if c.score == candidates[0].score]
    return ([best[0].name] if len(best) == 1 else []), candidates


def how_inferred(graph_def, chosen):
    """The words resolve_outputs reports for inferred outputs."""
    if len(chosen) > 1:
        return "inferred: every forward sink of an inference graph"
    return "inferred (forward-graph sink)"
