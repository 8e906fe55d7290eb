"""`migrate calibrate`: stream calibration batches through a frozen graph, keep a histogram per quantizable tensor,
derive INT8 ranges (entropy / minmax / percentile), simulate INT8 in the graph to measure what it costs, and
write calibration.cache, dynamic_ranges.json and report.json."""
import json
import os
import time

import numpy as np

from migrate import opsets, tfcompat
from migrate.calibration import cache, data, histogram, simulate
from migrate.calibration import collect as statistics
from migrate.errors import BadInput
from migrate.graph.names import node_name, tensor_name

METHOD_CHOICES = histogram.METHODS + ("all",)
SENSITIVE_TOP = 10
_FLOAT = 1  # types_pb2.DT_FLOAT


def check_options(method, percentile, trt_version):
    """BadInput for options that are wrong before anything is loaded."""
    if method not in METHOD_CHOICES:
        raise BadInput("unknown method {!r}".format(method), "--method", "use one of " + ", ".join(METHOD_CHOICES))
    if not 0 < percentile <= 100:
        raise BadInput("percentile {} is not in (0, 100]".format(percentile), "--percentile", "e.g. 99.99")
    if cache.parse_version(trt_version) is None:
        raise BadInput("'{}' is not a TensorRT version MAJOR.MINOR[.PATCH] (5 <= MAJOR <= 99)".format(trt_version),
                       "--trt-version", "pass the version of the TensorRT that will read the cache, e.g. 10.14.1")


def calibrated_tensors(graph_def, outputs):
    """Output 0 of every float32 quantizable op (opsets.QUANTIZABLE_OPS) and float32 input the outputs need,
    in graph order."""
    from migrate.graph import view
    needed = view.needed_nodes(graph_def, [node_name(o) for o in outputs])
    conditional = in_control_flow(graph_def)
    tensors = []
    for node in graph_def.node:
        if node.name not in needed or node.name in conditional:
            continue
        if node.op in opsets.CALIBRATED_INPUT_OPS:
            dtype = node.attr["dtype"].type
        elif node.op in opsets.QUANTIZABLE_OPS:
            dtype = node.attr["T"].type
        else:
            continue
        if dtype == _FLOAT:
            tensors.append(tensor_name(node.name))
    return tensors


def in_control_flow(graph_def):
    """Names of the nodes inside v1 control flow: reached from a Switch or Enter without passing a Merge or
    Exit (cond branches, while bodies). A fetch there has no value when the branch is not taken, or one per
    iteration: they are not calibrated (TF-TRT leaves such segments in TF as well)."""
    consumers = {}
    for node in graph_def.node:
        for name in node.input:
            consumers.setdefault(node_name(name), []).append(node)
    ops = dict((node.name, node.op) for node in graph_def.node)
    pending = [node.name for node in graph_def.node if node.op in opsets.CONTROL_FLOW_ENTRY_OPS]
    inside = set()
    while pending:
        name = pending.pop()
        for consumer in consumers.get(name, ()):
            if consumer.name in inside or ops[consumer.name] in opsets.CONTROL_FLOW_EXIT_OPS:
                continue
            inside.add(consumer.name)
            pending.append(consumer.name)
    return inside


def collect(model, tensors, files, specs, progress):
    """({tensor: AbsHistogram}, seconds in session runs, seconds merging): one batch in memory at a time, and
    of it only the histograms leave TF (collect.statistics_graph)."""
    from migrate.session import Restored
    hists = dict((t, histogram.AbsHistogram()) for t in tensors)
    graph_def, names = statistics.statistics_graph(model.graph_def, tensors)
    wanted = statistics.fetches(names)
    run_seconds = merge_seconds = 0.0
    with Restored(model.derive(graph_def=graph_def, note="calibration statistics")) as restored:
        for number, name in enumerate(files, 1):
            feeds = data.read_batch(name, specs)
            started = time.time()
            values = restored.run(wanted, dict(feeds, **statistics.amax_feeds(names, hists)))
            ran = time.time()
            redo = statistics.merge(names, hists, values)
            if redo:  # NaN/Inf among these tensors' values: counted from the values themselves
                raw = restored.run(redo, feeds)
                for tensor in redo:
                    hists[tensor].add(raw[tensor])
                raw = None
            run_seconds += ran - started
            merge_seconds += time.time() - ran
            progress("calibration batch {}/{}: {} ({:.2f} s)".format(number, len(files), os.path.basename(name),
                                                                     time.time() - started))
    return hists, run_seconds, merge_seconds


def compute_ranges(hists, methods, percentile):
    """{method: {tensor: amax}}."""
    return dict((method, dict((t, histogram.amax_for(method, h, percentile)) for t, h in hists.items()))
                for method in methods)


def warnings_for(hists):
    found = []
    for tensor, hist in hists.items():
        if hist.non_finite:
            found.append({"kind": "non_finite_activations", "tensor": tensor,
                          "message": "{} NaN/Inf value(s) left out of its histogram".format(hist.non_finite)})
        if 0 < hist.count < histogram.BINS:
            found.append({"kind": "few_samples", "tensor": tensor,
                          "message": "only {} value(s) seen, fewer than the {} histogram bins: the entropy and "
                                     "percentile ranges are rough; calibrate on more batches".format(
                                         hist.count, histogram.BINS)})
        if hist.amax == 0:
            found.append({"kind": "constant_zero", "tensor": tensor,
                          "message": "every value is 0 (amax 0): no INT8 scale; left out of the cache and "
                                     "not quantized in the simulation"})
    return found


def evaluate(model, tensors, outputs, ranges, files, specs, sensitivity, progress):
    """({method: {output: ErrorStats}}, recommended method, why, [(tensor, score)] most sensitive first) of
    simulated INT8 against FP32 (the same graph with every switch off). Sensitivity: each tensor quantized
    alone with the recommended method's range, on the first eval batch."""
    from migrate.session import Restored
    graph_def, switches = simulate.quantized_graph(model.graph_def, tensors, outputs)
    stats = dict((method, dict((o, simulate.ErrorStats()) for o in outputs)) for method in ranges)
    with Restored(model.derive(graph_def=graph_def, note="simulated INT8")) as restored:
        for number, name in enumerate(files, 1):
            feeds = data.read_batch(name, specs)
            reference = restored.run(outputs, feeds)
            for method, method_ranges in sorted(ranges.items()):
                quantized = restored.run(outputs, dict(feeds, **simulate.switch_feeds(switches, method_ranges)))
                for output in outputs:
                    stats[method][output].add(reference[output], quantized[output])
            progress("simulated INT8 batch {}/{}: {}".format(number, len(files), os.path.basename(name)))
        best, why = recommend(stats)
        sensitive = []
        if sensitivity:
            feeds = data.read_batch(files[0], specs)
            sensitive = _sensitivity(restored, outputs, feeds, restored.run(outputs, feeds), switches, ranges[best],
                                     progress)
    return stats, best, why, sensitive


def _sensitivity(restored, outputs, feeds, reference, switches, method_ranges, progress):
    """[(tensor, score)] of each tensor quantized alone (first eval batch), largest first."""
    scores = []
    candidates = [t for t in sorted(switches) if method_ranges.get(t, 0) > 0]
    progress("sensitivity: {} tensor(s) quantized one at a time".format(len(candidates)))
    for tensor in candidates:
        quantized = restored.run(outputs, dict(feeds, **simulate.switch_feeds(switches, method_ranges, tensor)))
        stats = dict((o, simulate.ErrorStats()) for o in outputs)
        for output in outputs:
            stats[output].add(reference[output], quantized[output])
        scores.append((tensor, simulate.score(stats)))
    scores.sort(key=lambda item: (-item[1], item[0]))
    return scores[:SENSITIVE_TOP]


def recommend(stats):
    """(method, why): the smallest mean relative error over the outputs; top-1 agreement breaks ties."""
    def key(method):
        tops = [s.to_dict()["top1_agreement"] for s in stats[method].values()]
        tops = [t for t in tops if t is not None]
        return (simulate.score(stats[method]), -(min(tops) if tops else 1.0), histogram.METHODS.index(method))
    ordered = sorted(stats, key=key)
    best = ordered[0]
    if len(ordered) == 1:
        return best, "the one method computed (mean |INT8 - FP32| / mean |FP32| over the outputs {:.4g}); " \
                     "--method all compares the three".format(simulate.score(stats[best]))
    why = "smallest simulated INT8 error: mean |INT8 - FP32| / mean |FP32| over the outputs {:.4g}".format(
        simulate.score(stats[best]))
    if len(ordered) > 1:
        why += " (" + ", ".join("{} {:.4g}".format(m, simulate.score(stats[m])) for m in ordered[1:]) + ")"
    return best, why


def calibrate(model, outputs, out_dir, calib_data, method="entropy", percentile=histogram.DEFAULT_PERCENTILE,
              batches=None, eval_data=None, trt_version=cache.DEFAULT_TRT_VERSION, sensitivity=True,
              progress=lambda message: None, source=None):
    """Everything `migrate calibrate` does once the model is a frozen graph; writes into out_dir (a temp dir
    the caller renames into place). Returns the report dict."""
    from migrate.verification.feeds import input_specs
    check_options(method, percentile, trt_version)
    methods = list(histogram.METHODS) if method == "all" else [method]
    files = data.batch_files(calib_data, batches)
    eval_files = data.batch_files(eval_data) if eval_data else files
    specs = input_specs(model.graph_def, outputs)
    tensors = calibrated_tensors(model.graph_def, outputs)
    if not tensors:
        raise BadInput("nothing to calibrate: no float32 input or output of a quantizable op ({}) feeds the "
                       "outputs".format(", ".join(sorted(opsets.QUANTIZABLE_OPS)[:6]) + ", ..."),
                       source or model.path, "check --outputs")
    progress("calibrating {} tensor(s) on {} batch(es) ({})".format(len(tensors), len(files), ", ".join(methods)))
    started = time.time()
    hists, run_seconds, stat_seconds = collect(model, tensors, files, specs, progress)
    ranges = compute_ranges(hists, methods, percentile)
    range_seconds = time.time() - started - run_seconds - stat_seconds
    warnings = warnings_for(hists)
    for kind in sorted(set(w["kind"] for w in warnings)):
        named = [w for w in warnings if w["kind"] == kind]
        progress("warning: {} ({} tensor(s): {}{}): {}".format(kind, len(named), ", ".join(
            w["tensor"] for w in named[:3]), " ..." if len(named) > 3 else "", named[0]["message"]))
    stats, best, why, sensitive = evaluate(model, tensors, outputs, ranges, eval_files, specs, sensitivity,
                                           progress)
    progress("recommended: {} ({})".format(best, why))
    written = _write(out_dir, tensors, ranges, best, methods, trt_version)
    report = {
        "source": source or model.path, "outputs": list(outputs), "tensorflow": tfcompat.version_string(),
        "calibration_data": calib_data, "batches": [os.path.basename(f) for f in files],
        "eval_data": eval_data or calib_data, "eval_batches": [os.path.basename(f) for f in eval_files],
        "methods": methods, "percentile": percentile, "trt_version": trt_version,
        "cache_header": cache.header(trt_version, best), "recommended": {"method": best, "why": why},
        "tensors": len(tensors), "quantizable_ops": sorted(opsets.QUANTIZABLE_OPS),
        "histogram_bins": histogram.BINS, "entropy_levels": histogram.LEVELS,
        "simulated_int8": dict((m, dict((o, s.to_dict()) for o, s in sorted(per.items())))
                               for m, per in stats.items()),
        "sensitive_tensors": [{"tensor": t, "relative_mean_err": s} for t, s in sensitive or []],
        "warnings": warnings, "files": written,
        "seconds": {"session_runs": run_seconds, "histograms": stat_seconds, "ranges": range_seconds},
    }
    _write_json(report, os.path.join(out_dir, "report.json"))
    return report


def _write(out_dir, tensors, ranges, best, methods, trt_version):
    written = []
    for method in methods:
        scales = [(t, histogram.scale(ranges[method][t])) for t in tensors if ranges[method][t] > 0]
        names = ["calibration.cache"] if method == best else []
        if len(methods) > 1:
            names.append("calibration.{}.cache".format(method))
        for name in names:
            with open(os.path.join(out_dir, name), "w") as handle:
                handle.write(cache.text(trt_version, method, scales))
            written.append(name)
    dynamic = dict((t, dict((m, ranges[m][t]) for m in methods)) for t in tensors)
    _write_json(dynamic, os.path.join(out_dir, "dynamic_ranges.json"))
    return sorted(written + ["dynamic_ranges.json", "report.json"])


def _write_json(content, path):
    with open(path, "w") as handle:
        json.dump(content, handle, indent=2, sort_keys=True, default=_plain)
        handle.write("\n")


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
