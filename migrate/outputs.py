"""Guess a graph's outputs when no signature or --outputs names them: ranked forward-graph sinks."""
import re
from collections import namedtuple

from migrate import opsets

Candidate = namedtuple("Candidate", ["name", "op", "score", "why"])

# Name scopes TF's own training machinery writes into: never an inference output.
_TRAINING_SCOPES = re.compile(
    r"(^|/)(save(_\d+)?|gradients(_\d+)?|train(_op)?|init(_\d+)?|init_all_tables|report_uninitialized_variables|"
    r"Adam|Adagrad|Momentum|RMSProp|GradientDescent|Ftrl|global_step|summaries|summary|Merge/MergeSummary|"
    r"zero_fraction|ExponentialMovingAverage|beta1_power|beta2_power|group_deps)(/|$|_)",
    re.IGNORECASE)
_LOSS_NAMES = re.compile(r"(loss|cross_entropy|xent|accuracy|correct|metric|mean_squared|label)", re.IGNORECASE)
_OUTPUT_NAMES = re.compile(r"(softmax|prob|pred|output|logit|score|sigmoid|classes|argmax|embedding|y$|result)",
                           re.IGNORECASE)
_NO_OUTPUT_OPS = frozenset(["NoOp", "Assert", "PrintV2", "SaveV2", "Save", "SaveSlices", "MergeV2Checkpoints"])
_NOT_OUTPUTS = frozenset(["Const", "Placeholder", "PlaceholderWithDefault", "VarHandleOp", "Variable",
                          "VariableV2", "ReadVariableOp", "VarIsInitializedOp", "IsVariableInitialized"])


def _inputs(node):
    return [name.lstrip("^").split(":")[0] for name in node.input]


def _data_consumed(graph_def):
    consumed = set()
    for node in graph_def.node:
        for name in node.input:
            if not name.startswith("^"):
                consumed.add(name.split(":")[0])
    return consumed


def _ancestry(graph_def):
    """{node: (placeholders it reads, whether it reads a variable)}, one memoized walk (tolerates cycles)."""
    by_name = dict((node.name, node) for node in graph_def.node)
    memo = {}
    for start in by_name:
        if start in memo:
            continue
        stack, order = [start], []
        while stack:
            current = stack.pop()
            if current in memo or current not in by_name:
                continue
            memo[current] = (frozenset(), False)  # placeholder value while in progress (breaks loops)
            order.append(current)
            stack.extend(_inputs(by_name[current]))
        for current in reversed(order):
            node = by_name[current]
            inputs = [memo.get(i, (frozenset(), False)) for i in _inputs(node)]
            placeholders = frozenset([current]) if node.op == "Placeholder" else frozenset().union(
                *[p for p, _ in inputs]) if inputs else frozenset()
            reads_variable = node.op in opsets.VARIABLE_OPS or any(v for _, v in inputs)
            memo[current] = (placeholders, reads_variable)
    return memo


def _loss_joins(graph_def, ancestry):
    """(predictions, losses): where a label input meets the model's output (sub, cross-entropy, ...),
    the side that reads weights is a prediction; nodes downstream of such a join are losses."""
    predictions, joins = set(), set()
    for node in graph_def.node:
        data = [name.split(":")[0] for name in node.input if not name.startswith("^")]
        sides = [(name, ancestry.get(name, (frozenset(), False))) for name in data]
        sides = [(name, p, v) for name, (p, v) in sides if p]
        for name, placeholders, reads_variable in sides:
            others = [p for other, p, _ in sides if other != name]
            if reads_variable and others and all(not (p & placeholders) for p in others):
                predictions.add(name)
                joins.add(node.name)
    return predictions, joins


def rank_outputs(graph_def):
    """Candidate outputs, best first: forward sinks that read an input, scored on op and name."""
    consumed = _data_consumed(graph_def)
    ancestry = _ancestry(graph_def)
    predictions, joins = _loss_joins(graph_def, ancestry)
    by_name = dict((node.name, node) for node in graph_def.node)
    losses = _downstream(graph_def, joins)
    candidates = []
    for node in graph_def.node:
        if node.name in predictions and node.op not in _NOT_OUTPUTS and not _TRAINING_SCOPES.search(node.name):
            candidates.append(Candidate(node.name, node.op, 6, "prediction compared with another input (a label)"))
            continue
        if node.name in consumed or node.op in _NO_OUTPUT_OPS or node.op in _NOT_OUTPUTS:
            continue
        if opsets.is_training_only(node.op) or node.op in opsets.V1_CONTROL_FLOW or _TRAINING_SCOPES.search(
                node.name):
            continue
        score, why = 0, []
        if ancestry[node.name][0]:
            score += 4
            why.append("reads an input")
        if node.name in losses:
            score -= 4
            why.append("computed from a prediction and a label (a loss)")
        elif _LOSS_NAMES.search(node.name):
            score -= 3
            why.append("looks like a loss/metric")
        elif _OUTPUT_NAMES.search(node.name):
            score += 1
            why.append("output-like name")
        candidates.append(Candidate(node.name, node.op, score, ", ".join(why) or "sink"))
    ranked = sorted(candidates, key=lambda c: -c.score)
    useful = [c for c in ranked if c.score > 0]  # sinks reading no input (switch plumbing, constants) last resort
    return useful or ranked


def _downstream(graph_def, starts):
    from migrate.graph import view
    return view.reachable(view.to_digraph(graph_def), set(starts))


def infer_outputs(graph_def):
    """(outputs, candidates): the chosen output node names, or [] when the top is ambiguous."""
    candidates = rank_outputs(graph_def)
    if not candidates:
        return [], candidates
    best = [c for c in candidates if c.score == candidates[0].score]
    return ([best[0].name] if len(best) == 1 else []), candidates
