"""Reports: JSON-ready dicts of what a stage did, written atomically."""
import json

from migrate import io


def comparisons_dict(rows):
    return [{"output": r.output, "shape": list(r.shape) if not isinstance(r.shape, str) else r.shape,
             "dtype": r.dtype, "max_abs_err": r.max_abs, "max_rel_err": r.max_rel, "mismatch": r.mismatch,
             "ok": r.ok, "checked": r.checked, "status": _status(r), "reason": r.reason} for r in rows or []]


def _status(row):
    """'ok' (compared, within tolerance), 'mismatch', or 'not checked' (empty / constant: proves nothing)."""
    from migrate.verification.compare import status
    return status(row).lower()


def optimize_report(source, output, result):
    trt = result.trt
    return {
        "source": source,
        "output": output,
        "outputs": result.outputs,
        "nodes_before": result.nodes_before,
        "nodes_after": result.nodes,
        "passes": [record.to_dict() for record in result.records],
        "tf_trt": dict(trt._asdict()) if trt is not None else None,
        "tf_trt_plan": _plan_summary(result.trt_plan),
        "verification": comparisons_dict(result.comparisons),
    }


def _plan_summary(plan):
    """The plan beside a TF-TRT outcome without engines: engines, coverage, blockers (no per-node table)."""
    if plan is None:
        return None
    return dict((key, plan[key]) for key in ("tf_trt", "engines", "coverage", "blockers", "mode", "precision"))


def write_json(data, path):
    with io.atomic_file(path) as temp:
        with open(temp, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=str)
            handle.write("\n")


def convert_summary(source, out_dir, source_model, steps, optimize_result, seconds):
    trt = optimize_result.trt
    return {
        "source": {"path": source, "kind": source_model.kind, "written_by_tf": source_model.producer,
                   "signatures": sorted(source_model.signatures)},
        "output": {"dir": out_dir, "frozen": "frozen.pb", "optimized": "optimized.pb", "saved_model": "saved_model",
                   "format": steps["export"]["format"]},
        "nodes": {"source": len(source_model.graph_def.node), "frozen": steps["freeze"].get("nodes"),
                  "optimized": optimize_result.nodes},
        "tf_trt": dict(trt._asdict()) if trt is not None else "not requested (--no-trt)",
        "tf_trt_plan": _plan_summary(optimize_result.trt_plan),
        "steps": steps,
        "seconds": round(seconds, 2),
    }


def convert_text(summary):
    """The short human summary `migrate convert` ends with."""
    trt = summary["tf_trt"]
    trt_line = trt if isinstance(trt, str) else "{} TRTEngineOp(s){} {} ({})".format(
        trt["engines"], " via" if trt.get("attempted", True) else "; not attempted:", trt["api_call"], trt["reason"])
    worst = []
    for name, rows in sorted(summary["steps"]["verify"].items()):
        for row in rows:
            worst.append("{}/{} max_abs_err={}".format(
                name, row["output"], "n/a" if row["max_abs_err"] is None else "{:.3g}".format(row["max_abs_err"])))
    nodes = summary["nodes"]
    return "\n".join([
        "in:  {} ({}, written by TF {})".format(summary["source"]["path"], summary["source"]["kind"],
                                                summary["source"]["written_by_tf"] or "unknown"),
        "out: {}/{{frozen.pb, optimized.pb, saved_model/ ({}), {}report.json}}".format(
            summary["output"]["dir"], summary["output"]["format"],
            "model.onnx (opset {}), ".format(summary["steps"]["onnx"]["opset"]) if "onnx" in summary["steps"]
            else ""),
        "nodes: {} -> frozen {} -> optimized {}".format(nodes["source"], nodes["frozen"], nodes["optimized"]),
        "TF-TRT: " + trt_line,
        "max error vs source: " + "; ".join(worst),
        "took {:.1f}s".format(summary["seconds"]),
    ])
