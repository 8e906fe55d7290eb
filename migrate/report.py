"""Reports: JSON-ready dicts of what a stage did, written atomically."""
import json

from migrate import io


def comparisons_dict(rows):
    return [{"output": r.output, "shape": list(r.shape) if not isinstance(r.shape, str) else r.shape,
             "dtype": r.dtype, "max_abs_err": r.max_abs, "max_rel_err": r.max_rel, "mismatch": r.mismatch,
             "ok": r.ok} for r in rows or []]


def optimize_report(source, output, result):
    trt = result.get("trt")
    return {
        "source": source,
        "output": output,
        "outputs": result["outputs"],
        "nodes_before": result["nodes_before"],
        "nodes_after": result["nodes"],
        "passes": [record.to_dict() for record in result["records"]],
        "tf_trt": dict(trt._asdict()) if trt is not None else None,
        "verification": comparisons_dict(result["comparisons"]),
    }


def write_json(data, path):
    with io.atomic_file(path) as temp:
        with open(temp, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=str)
            handle.write("\n")
