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


def _placeholder_ancestry(graph_def):
    """{node: True} for nodes that (transitively) read a Placeholder, computed in one memoized walk."""
    by_name = {node.name: node for node in graph_def.node}
    memo = {}

    def reads_input(name):
        stack = [name]
        order = []
        while stack:
            current = stack.pop()
            if current in memo or current not in by_name:
                continue
            memo[current] = None  # in progress (also breaks while-loop cycles)
            order.append(current)
            stack.extend(_inputs(by_name[current]))
        for current in reversed(order):
            node = by_name[current]
            memo[current] = node.op == "Placeholder" or any(memo.get(i) for i in _inputs(node))
        return memo[name]
    return reads_input


def rank_outputs(graph_def):
    """Candidate outputs, best first: forward sinks that read an input, scored on op and name."""
    consumed = _data_consumed(graph_def)
    reads_input = _placeholder_ancestry(graph_def)
    candidates = []
    for node in graph_def.node:
        if node.name in consumed or node.op in _NO_OUTPUT_OPS or node.op in _NOT_OUTPUTS:
            continue
        if opsets.is_training_only(node.op) or node.op in opsets.V1_CONTROL_FLOW or _TRAINING_SCOPES.search(
                node.name):
            continue
        score, why = 0, []
        if reads_input(node.name):
            score += 4
            why.append("reads an input")
        if _LOSS_NAMES.search(node.name):
            score -= 3
            why.append("looks like a loss/metric")
        elif _OUTPUT_NAMES.search(node.name):
            score += 1
            why.append("output-like name")
        candidates.append(Candidate(node.name, node.op, score, ", ".join(why) or "sink"))
    return sorted(candidates, key=lambda c: -c.score)


def infer_outputs(graph_def):
    """(outputs, candidates): the chosen output node names, or [] when the top is ambiguous."""
    candidates = rank_outputs(graph_def)
    if not candidates:
        return [], candidates
    best = [c for c in candidates if c.score == candidates[0].score]
    return ([best[0].name] if len(best) == 1 else []), candidates
