"""`migrate plan`: what TF-TRT would do with a frozen graph, computed without a GPU or TensorRT.

plan(graph_def, outputs, options) -> a JSON-able dict: per node whether the chosen TF-TRT generation would take
it and why not (classify.py), the segments its segmenter would form (segment.py, TF's own algorithm), each
engine's bindings and shapes, coverage by nodes and by FLOPs (shapes.py), and the blockers ranked by what they
cost, with a suggestion each. to_text(plan) is the readable form, summary_line(plan) the one line `optimize`
prints where TensorRT is missing. Converter tables: tables.py (op knowledge, see migrate/opsets.py).
"""
import time
from collections import Counter, OrderedDict

from migrate import gcpause, opsets, tfcompat
from migrate.errors import BadInput
from migrate.graph.view import loop_back_edges, topological_order, to_digraph
from migrate.planning import classify, segment, shapes as shapes_mod, tables

WHERE = "--tf-trt"
PRECISIONS = ("FP32", "FP16", "INT8")
DEFAULT_OPTIONS = {
    "tf_trt": None,               # TF version ('1.13', '2.15.1') or generation name; None: the installed TF's
    "precision": "FP32",
    "minimum_segment_size": 3,
    "dynamic": False,             # 1.x: is_dynamic_op (engines at run time); 2.x: dynamic shape (explicit batch)
    "deny_ops": (),
    "max_batch": None,
}
NON_COMPUTE_OPS = tables.NON_COMPUTE_OPS
# TF version range shown for a generation: "2.x" for the open-ended v2 table.


def generation_for(text):
    """The generation table for a --tf-trt value: a TF version ('1.13', '2.15.1') or a generation name."""
    if text is None:
        return tables.for_version(tfcompat.version())
    text = str(text).strip()
    if text in tables.GENERATIONS:
        return tables.GENERATIONS[text]
    try:
        version = tfcompat.parse_version(text)
    except (ValueError, TypeError, AttributeError):
        version = None
    found = tables.for_version(version) if version else None
    if found is None:
        raise BadInput("'{}' is not a TF version with TF-TRT (1.7 or later) nor a generation name".format(text),
                       WHERE, "give a TF version such as 1.13, 1.15 or 2.15, or one of: " + ", ".join(
                           tables.GENERATIONS))
    return found


def plan(graph_def, outputs, options=None):
    """The plan of a frozen GraphDef whose fetched tensors are `outputs` ('y' or 'y:0'); see DEFAULT_OPTIONS."""
    with gcpause.paused():  # a few small objects per node, none freed until the plan returns
        return _plan(graph_def, outputs, options)


def _plan(graph_def, outputs, options):
    started = time.time()
    opts = dict(DEFAULT_OPTIONS)
    opts.update(dict((k, v) for k, v in (options or {}).items() if v is not None))
    if opts["precision"] not in PRECISIONS:
        raise BadInput("precision {} is not one of {}".format(opts["precision"], ", ".join(PRECISIONS)),
                       "--precision", "use FP32, FP16 or INT8")
    if int(opts["minimum_segment_size"]) < 1:
        raise BadInput("minimum_segment_size must be >= 1", "--minimum-segment-size", "give 1 or more")
    generation = generation_for(opts["tf_trt"])
    opts["deny_ops"] = frozenset(opts["deny_ops"] or ())
    view = to_digraph(graph_def)
    order = topological_order(view)  # BadInput on a cycle that is not a while loop
    nodes = OrderedDict((node.name, node) for node in graph_def.node)
    shapes = shapes_mod.infer(graph_def, order)
    dynamic = bool(opts["dynamic"])
    implicit = generation["implicit_batch"] == "always" or not dynamic
    ctx = classify.Context(nodes, shapes, implicit)
    output_nodes = set(t.split(":")[0] if not t.startswith("^") else t[1:] for t in outputs)
    frames = classify.loop_frames(graph_def, order)
    decisions = OrderedDict((name, classify.decide(node, generation, ctx, opts, output_nodes, frames))
                            for name, node in nodes.items())
    segments, dropped = _segment(graph_def, nodes, decisions, generation, ctx, opts, view)
    batch = int(opts["max_batch"] or 1)
    flops = dict((name, shapes_mod.flops(node, shapes, batch)) for name, node in nodes.items())
    built_ahead = not dynamic and generation["api"] != "TrtGraphConverterV2"
    readers = {}
    for name, node in nodes.items():
        for tensor in node.input:
            producer, port = _parse(tensor)
            if port >= 0:
                readers.setdefault(producer, []).append((name, port))
    engines = [_engine(index, members, nodes, readers, shapes, flops, built_ahead)
               for index, members in enumerate(segments)]
    result = _report(generation, opts, implicit, built_ahead, nodes, decisions, engines, dropped, flops, frames)
    result["seconds"] = round(time.time() - started, 3)
    return result


def _segment(graph_def, nodes, decisions, generation, ctx, opts, view):
    names, edges = segment.graph_edges(OrderedDict((name, node.input) for name, node in nodes.items()))
    candidate = [False, False] + [decisions[name].convertible for name in nodes]
    ops = [None, None] + [node.op for node in nodes.values()]
    is_const = [op == "Const" for op in ops]
    validators = generation["edge_validators"]

    def output_ok(edge):  # OutputEdgeValidator: a Const never feeds TF from inside an engine
        return not is_const[edge[0]]

    def input_ok(edge):  # InputEdgeValidator: what ValidateTensorProperties says of the input tensor
        src, port = edge[0], edge[1]
        dtype = ctx.shapes.dtype("{}:{}".format(names[src], port))
        if dtype is not None and dtype not in generation["tensor_dtypes"]:
            return False
        shape = ctx.shapes.of((names[src], port))
        if shape is None:
            return False
        return is_const[src] or len(shape) >= 2

    counts = [True, True] + [generation["counts_noops"] or node.op not in tables.NOOP_OPS
                             for node in nodes.values()]
    batch_sizes = None
    if generation["batch_size_clusters"] and ctx.implicit_batch:
        batch_sizes = [None, None] + [classify.batch_size(node, ctx) for node in nodes.values()]
    found, dropped = segment.segment_graph(
        names, edges, candidate, input_ok=input_ok if validators is True else None,
        output_ok=output_ok if validators else None,
        minimum_segment_size=int(opts["minimum_segment_size"]), counts=counts, batch_sizes=batch_sizes,
        max_engines=generation["max_engines"], is_const=is_const, has_cycles=bool(loop_back_edges(view)))
    return ([[names[i] for i in members] for members in found],
            [([names[i] for i in members], why) for members, why in dropped])


_parse = segment.parse_tensor


def _engine(index, members, nodes, readers, shapes, flops, built_ahead):
    """One segment: its nodes, ops, bindings (tensors crossing its border, Const inputs excluded: TF-TRT copies
    them into the engine) with their shapes, FLOPs, and whether its engine can be built at conversion time."""
    inside = set(members)
    inputs, outputs = OrderedDict(), OrderedDict()
    for name in members:
        for tensor in nodes[name].input:
            producer, port = _parse(tensor)
            if port < 0 or producer in inside or producer not in nodes or nodes[producer].op == "Const":
                continue
            key = "{}:{}".format(producer, port)
            inputs[key] = shapes.of((producer, port))
    for name in members:
        for reader, port in readers.get(name, ()):
            if reader not in inside:
                outputs["{}:{}".format(name, port)] = shapes.of((name, port))
    ops = Counter(nodes[name].op for name in members)
    own = [flops[name] for name in members]
    problem = None
    if built_ahead:
        for tensor, shape in inputs.items():
            if shape is None or any(d < 0 for d in shape[1:]):
                problem = ("binding {} has shape {}: a static engine (built at conversion, is_dynamic_op=False) "
                           "needs every non-batch dim".format(tensor, _show(shape)))
                break
    return OrderedDict([
        ("index", index), ("nodes", list(members)), ("size", len(members)),
        ("ops", OrderedDict(sorted(ops.items(), key=lambda item: (-item[1], item[0])))),
        ("inputs", [OrderedDict([("tensor", t), ("shape", s)]) for t, s in inputs.items()]),
        ("outputs", [OrderedDict([("tensor", t), ("shape", s)]) for t, s in outputs.items()]),
        ("flops", sum(f for f in own if f)), ("flops_unknown", sum(1 for f in own if f is None)),
        ("buildable", problem is None), ("problem", problem)])


def _show(shape):
    if shape is None:
        return "<unknown rank>"
    return "[" + ",".join("?" if d < 0 else str(d) for d in shape) + "]"


def _pct(part, whole):
    return round(100.0 * part / whole, 1) if whole else None


def _report(generation, opts, implicit, built_ahead, nodes, decisions, engines, dropped, flops, frames):
    compute = [name for name, node in nodes.items() if node.op not in NON_COMPUTE_OPS]
    in_engines = set()
    for engine in engines:
        if engine["buildable"]:
            in_engines.update(engine["nodes"])
    covered = [name for name in compute if name in in_engines]
    known_flops = [flops[name] for name in compute if flops[name] is not None]
    total_flops = sum(known_flops)
    engine_flops = sum(flops[name] or 0 for name in covered)
    built = [e for e in engines if e["buildable"]]
    result = OrderedDict([
        ("tf_trt", generation["name"]),
        ("api", generation["api"]),
        ("tf_versions", [".".join(str(p) for p in v) for v in generation["tf_versions"]]),
        ("precision", opts["precision"]),
        ("minimum_segment_size", int(opts["minimum_segment_size"])),
        ("mode", "implicit batch" if implicit else "explicit batch (dynamic shape)"),
        ("engines_built", "at conversion (static)" if built_ahead else "at run time / build()"),
        ("engines", len(built)),
        ("segments", engines),
        ("dropped_segments", [OrderedDict([("nodes", members), ("size", len(members)), ("why", why)])
                              for members, why in dropped]),
        ("coverage", OrderedDict([
            ("nodes", _pct(len(covered), len(compute))), ("compute_nodes", len(compute)),
            ("nodes_in_engines", len(covered)),
            ("flops", _pct(engine_flops, total_flops)), ("flops_total", total_flops),
            ("flops_in_engines", engine_flops),
            ("flops_unknown_nodes", sum(1 for name in compute if flops[name] is None))])),
        ("convertible_nodes", sum(1 for d in decisions.values() if d.convertible)),
        ("blockers", _blockers(generation, opts, nodes, decisions, engines, dropped, flops, frames)),
        ("nodes", OrderedDict((name, OrderedDict([
            ("op", nodes[name].op), ("convertible", d.convertible), ("reason", d.code),
            ("why", d.message)])) for name, d in decisions.items())),
        ("table", OrderedDict([("summary", generation["summary"]), ("segmenter", generation["segment_source"]),
                               ("not_modelled", generation["not_modelled"])])),
    ])
    segment_of = {}
    for engine in engines:
        for name in engine["nodes"]:
            segment_of[name] = engine["index"]
    for name, entry in result["nodes"].items():
        entry["segment"] = segment_of.get(name)
    return result


def _blockers(generation, opts, nodes, decisions, engines, dropped, flops, frames):
    """[{kind, op, nodes, flops, examples, why, suggestion}] most costly first (FLOPs, then nodes)."""
    groups = OrderedDict()

    def add(key, name, why, suggestion):
        group = groups.setdefault(key, {"kind": key[0], "op": key[1], "nodes": 0, "flops": 0, "examples": [],
                                        "why": why, "suggestion": suggestion})
        group["nodes"] += 1
        group["flops"] += flops.get(name) or 0
        if len(group["examples"]) < 3:
            group["examples"].append(name)

    for name, decision in decisions.items():
        if decision.convertible or decision.code == "input":
            continue
        op = nodes[name].op
        if decision.code == "output" and not flops.get(name):
            continue
        if decision.code == "while_loop":
            key = ("while_loop", "frame " + frames[name])
        elif decision.code in ("shape", "dynamic_shape"):
            key = (decision.code, op)
        else:
            key = (decision.code, op)
        add(key, name, decision.message, _suggest(decision, op, generation, opts))
    small = [len(members) for members, why in dropped if "largest" not in why]
    smallest = min(small) if small else 1
    for members, why in dropped:
        kind = "max_engines" if "largest" in why else "small_segment"
        suggestion = _suggest_dropped(kind, smallest, opts)
        for name in members:
            add((kind, ""), name, why, suggestion)
    for engine in engines:
        if not engine["buildable"]:
            for name in engine["nodes"]:
                add(("static_build", ""), name, engine["problem"],
                    "give static shapes (--static --max-batch N --input-shape NAME:dims) or build engines at "
                    "run time (--dynamic)")
    ranked = sorted(groups.values(), key=lambda g: (-g["flops"], -g["nodes"], g["kind"], g["op"]))
    return [OrderedDict([(k, g[k]) for k in ("kind", "op", "nodes", "flops", "examples", "why", "suggestion")])
            for g in ranked]


def _suggest(decision, op, generation, opts):
    code = decision.code
    if code == "output":
        return ("TF-TRT never puts a fetched node in an engine: fetch a tf.identity of it instead, so {} "
                "can join the engine".format(op))
    if code == "deny_ops":
        return "drop {} from --deny-ops".format(op)
    if code == "while_loop":
        return ("v1 while loops (tf.while_loop / dynamic_rnn in TF1) stay in TensorFlow: unroll the loop "
                "(static_rnn, a Python loop) or export with control flow v2, then only its body ops need "
                "converters")
    if code == "no_converter":
        if op in opsets.DEBUG_OPS:
            return "a debug op in the hot path: remove it (migrate optimize's strip_debug pass does)"
        if op in opsets.V1_CONTROL_FLOW:
            return "v1 control flow: resolve the cond (freeze with a constant predicate; resolve_switches pass)"
        hint = tables.REPLACEMENTS.get(op)
        later = classify.later_generation(op, generation)
        parts = [hint] if hint else []
        if later:
            parts.append("{} converts {}: plan with --tf-trt {}".format(later, op, later.split()[-1]))
        return "; ".join(parts) or "no TF-TRT version converts {}: keep it out of the hot path".format(op)
    if code == "dtype":
        return "compute in float32/float16 (cast at the border) or keep this int math outside the hot path"
    if code in ("shape", "dynamic_shape"):
        if generation["api"] == "TrtGraphConverterV2" and not opts.get("dynamic"):
            return ("give static shapes (--static --max-batch N --input-shape NAME:dims) or plan dynamic-shape "
                    "mode (--dynamic, explicit batch)")
        return "give static shapes: --static --max-batch N --input-shape NAME:dims"
    if code == "int8_only":
        return "plan/convert with --precision INT8 (calibration data), or remove the fake-quant ops"
    if code == "attribute":
        if "is_training" in decision.message:
            return "freeze with is_training False (migrate freeze sets train/infer switches)"
        if "batch" in decision.message:
            return "keep dim 0 as the batch dim in this op, or plan dynamic-shape mode (--dynamic, TF 2.x)"
        if "constant" in decision.message:
            return "make that input a constant: freeze the model (and fold constants) before TF-TRT"
        return "change the attribute the converter rejects (see why)"
    return ""


def _suggest_dropped(kind, smallest, opts):
    if kind == "max_engines":
        return ("too many small engines: raise --minimum-segment-size so fewer, larger segments form, or set "
                "TF_TRT_MAX_ALLOWED_ENGINES")
    return "lower --minimum-segment-size to {} (now {}) if these small engines are worth their launch cost".format(
        max(1, smallest), opts["minimum_segment_size"])


# --------------------------------------------------------------------------------------------------- output

def summary_line(result, top=3):
    """'with TensorRT, TF-TRT <gen> would build N engines covering X% of FLOPs; blockers: ...'"""
    blockers = ["{} {} ({} node{})".format(b["kind"], b["op"], b["nodes"], "" if b["nodes"] == 1 else "s").replace(
        "  ", " ") for b in result["blockers"][:top]]
    return "with TensorRT, TF-TRT {} would build {}; blockers: {}".format(
        result["tf_trt"], engines_line(result), ", ".join(blockers) or "none")


def engines_line(result):
    """'N engines covering X% of FLOPs (Y% of nodes)' of a plan (or of report.json's tf_trt_plan)."""
    coverage = result["coverage"]
    flops = "{}% of FLOPs".format(coverage["flops"]) if coverage["flops"] is not None else "unknown FLOPs"
    return "{} engine{} covering {} ({}% of nodes)".format(
        result["engines"], "" if result["engines"] == 1 else "s", flops,
        coverage["nodes"] if coverage["nodes"] is not None else 0)


def _flops_text(value):
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return "{:.1f}{}".format(value / size, unit)
    return str(int(value))


def to_text(result, max_rows=40):
    versions = result["tf_versions"]
    lines = ["TF-TRT {} ({}, TF {}), {}, {}, engines built {}, minimum_segment_size {}".format(
        result["tf_trt"], result["api"], "2.x" if versions[0].startswith("2.") else "-".join(
            [versions[0], versions[-1]] if len(versions) > 1 else versions),
        result["precision"], result["mode"], result["engines_built"], result["minimum_segment_size"])]
    coverage = result["coverage"]
    lines.append("{} engine(s); {}/{} compute nodes in engines ({}%); FLOPs in engines {}{}".format(
        result["engines"], coverage["nodes_in_engines"], coverage["compute_nodes"], coverage["nodes"] or 0,
        "{}% of {}".format(coverage["flops"], _flops_text(coverage["flops_total"]))
        if coverage["flops"] is not None else "unknown",
        " ({} nodes of unknown FLOPs)".format(coverage["flops_unknown_nodes"])
        if coverage["flops_unknown_nodes"] else ""))
    lines.append("")
    lines.append("{:>3}  {:>5}  {:>8}  {:40}  {}".format("#", "nodes", "FLOPs", "ops", "bindings (in -> out)"))
    for engine in result["segments"][:max_rows]:
        ops = ", ".join("{}x{}".format(n, op) for op, n in list(engine["ops"].items())[:4])
        if len(engine["ops"]) > 4:
            ops += ", ..."
        ins = " ".join("{}{}".format(b["tensor"], _show(b["shape"])) for b in engine["inputs"][:2])
        outs = " ".join("{}{}".format(b["tensor"], _show(b["shape"])) for b in engine["outputs"][:2])
        more = "" if len(engine["inputs"]) + len(engine["outputs"]) <= 4 else " ..."
        lines.append("{:>3}  {:>5}  {:>8}  {:40}  {} -> {}{}{}".format(
            engine["index"], engine["size"], _flops_text(engine["flops"]), ops[:40], ins or "-", outs or "-", more,
            "" if engine["buildable"] else "  NOT BUILT: " + engine["problem"]))
    if len(result["segments"]) > max_rows:
        lines.append("... {} more segments (--json lists all)".format(len(result["segments"]) - max_rows))
    if not result["segments"]:
        lines.append("  (no segment)")
    if result["dropped_segments"]:
        lines.append("dropped: {} segment(s) ({} nodes): {}".format(
            len(result["dropped_segments"]), sum(d["size"] for d in result["dropped_segments"]),
            result["dropped_segments"][0]["why"]))
    lines.append("")
    lines.append("blockers (most costly first):" if result["blockers"] else "blockers: none")
    for blocker in result["blockers"][:max_rows // 2]:
        lines.append("  {} {}: {} node(s), {} FLOPs, e.g. {}: {}".format(
            blocker["kind"], blocker["op"], blocker["nodes"], _flops_text(blocker["flops"]),
            ", ".join(blocker["examples"]), blocker["why"]).replace("  :", ":").replace(" :", ":"))
        lines.append("      -> " + blocker["suggestion"])
    return "\n".join(lines)


def to_dot(result, graph_def):
    """A graphviz DOT view of the graph: nodes coloured by segment, grey when not convertible."""
    palette = ["#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5"]
    lines = ["digraph plan {", "  node [shape=box, style=filled, fontsize=10];"]
    for name, entry in result["nodes"].items():
        color = palette[entry["segment"] % len(palette)] if entry["segment"] is not None else (
            "#ffffff" if entry["convertible"] else "#d9d9d9")
        label = "{}\\n{}".format(name, entry["op"])
        lines.append('  "{}" [label="{}", fillcolor="{}"];'.format(name, label, color))
    for node in graph_def.node:
        for tensor in node.input:
            producer, port = _parse(tensor)
            lines.append('  "{}" -> "{}"{};'.format(producer, node.name, " [style=dashed]" if port < 0 else ""))
    lines.append("}")
    return "\n".join(lines)
