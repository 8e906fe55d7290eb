"""`migrate inspect`: what an artifact is and what later stages must care about. Reads protobufs only."""
from collections import Counter

from migrate import artifacts, opsets, outputs, tfcompat
from migrate import model as m


def _dtype_name(enum_value):
    try:
        return tfcompat.tf().as_dtype(enum_value).name
    except (TypeError, ValueError):  # DT_INVALID or a number no DataType has (a corrupt graph)
        return "invalid({})".format(enum_value)


def _shape(shape_proto):
    if shape_proto.unknown_rank:
        return None
    return [d.size if d.size >= 0 else None for d in shape_proto.dim]


def _dtype_size(dtype_name):
    import numpy as np
    try:
        return np.dtype(dtype_name).itemsize
    except TypeError:
        return {"bfloat16": 2, "string": 0, "resource": 0, "variant": 0}.get(dtype_name, 0)


def placeholders(graph_def):
    found = []
    for node in graph_def.node:
        if node.op in opsets.PLACEHOLDER_OPS:
            attr = node.attr
            dtype = _dtype_name(attr["dtype"].type) if "dtype" in attr else None
            shape = _shape(attr["shape"].shape) if "shape" in attr else None
            found.append({"name": node.name, "op": node.op, "dtype": dtype, "shape": shape})
    return found


def op_histogram(graph_def):
    histogram = Counter(node.op for node in graph_def.node)
    for function in graph_def.library.function:  # ops inside functions run too
        histogram.update(node.op for node in function.node_def)
    return dict(histogram)


def variables_summary(model):
    """Count, bytes and dtypes of the weights, wherever they live."""
    if model.checkpoint:
        stored = artifacts.checkpoint_variables(model.checkpoint)
        total, dtypes = 0, Counter()
        for shape, dtype in stored.values():
            size = 1
            for dim in shape:
                size *= dim
            total += size * _dtype_size(dtype or "float32")
            dtypes[dtype or "unknown"] += 1
        return {"where": "checkpoint " + model.checkpoint, "count": len(stored), "bytes": total,
                "dtypes": dict(dtypes)}
    consts = [n for n in model.graph_def.node if n.op == "Const"]
    total = sum(_const_bytes(n) for n in consts)
    dtypes = Counter(_dtype_name(n.attr["dtype"].type) for n in consts if "dtype" in n.attr)
    return {"where": "constants in the graph", "count": len(consts), "bytes": total, "dtypes": dict(dtypes)}


def _const_bytes(node):
    tensor = node.attr["value"].tensor
    if tensor.tensor_content:
        return len(tensor.tensor_content)
    size = 1
    for dim in tensor.tensor_shape.dim:
        size *= max(dim.size, 0)
    return size * _dtype_size(_dtype_name(tensor.dtype))


def inspect(path, tag=None, checkpoint=None):
    """A JSON-ready dict of facts about the artifact at `path`."""
    model = artifacts.load(path, tag=tag, checkpoint=checkpoint)
    graph_def = model.graph_def
    histogram = op_histogram(graph_def)
    categories = opsets.categorize(histogram)
    writers = sorted(set("{} (to {})".format(n.op, opsets.writes_file(n)) for n in graph_def.node
                         if opsets.writes_file(n)))
    if writers:  # a debug op printing to a file is unsafe too (safety.py refuses to run it)
        categories["unsafe"] = sorted(set(categories["unsafe"]) | set(writers))
    ranked = outputs.rank_outputs(graph_def)
    report = {
        "path": path,
        "kind": model.kind,
        "resolved": model.path,
        "written_by_tf": model.producer,
        "graph_producer_version": graph_def.versions.producer,
        "tags": model.tags,
        "signatures": {name: {"method": sig.method, "inputs": sig.inputs, "outputs": sig.outputs}
                       for name, sig in sorted(model.signatures.items())},
        "placeholders": placeholders(graph_def),
        "likely_outputs": [{"name": c.name, "op": c.op, "score": c.score, "why": c.why} for c in ranked[:8]],
        "recorded": dict(zip(("inputs", "outputs"), outputs.recorded(graph_def))),  # by a graph migrate wrote
        "variables": variables_summary(model),
        "nodes": len(graph_def.node),
        "functions": len(graph_def.library.function),
        "op_histogram": dict(sorted(histogram.items(), key=lambda item: (-item[1], item[0]))),
        "care": dict(categories, unregistered=tfcompat.unregistered_ops(histogram)),
        "assets": model.assets,
        "notes": [p for p in model.provenance if not p.startswith("loaded")],
    }
    report["input_pipeline"] = input_pipeline(graph_def, [c.name for c in ranked
                                                          if c.op not in opsets.INPUT_PIPELINE_OPS][:1])
    if model.kind == m.SAVED_MODEL:
        report["saved_model_tag_sets"] = _tag_sets(model.path)
    return report


def input_pipeline(graph_def, likely):
    """Where queues / iterators hand data to the model, and whether the likely output has anything to feed."""
    from migrate import pipeline
    by_name = dict((n.name, n) for n in graph_def.node)
    boundaries = []
    for node in graph_def.node:
        if node.op in pipeline.BOUNDARY_OPS:
            boundaries.append({"node": node.name, "op": node.op, "components": [
                {"tensor": "{}:{}".format(node.name, i), "dtype": _dtype_name(dtype), "shape": dims}
                for i, (dtype, dims) in enumerate(pipeline.component_specs(graph_def, node))]})
    reads = pipeline.boundaries(graph_def, likely) if likely and all(n in by_name for n in likely) else []
    return {"boundaries": boundaries, "likely_output_reads": reads,
            "no_feedable_inputs": bool(boundaries) and not pipeline.model_placeholders(graph_def)}


def _tag_sets(directory):
    saved, _ = artifacts.read_saved_model(directory)
    return [list(mg.meta_info_def.tags) for mg in saved.meta_graphs]


def to_text(report):
    """Human-readable summary of an inspect report."""
    lines = ["{}: {}".format(report["path"], report["kind"]) + (
        " (resolved to {})".format(report["resolved"]) if report["resolved"] != report["path"] else "")]
    lines.append("  written by TF {} (GraphDef producer {})".format(report["written_by_tf"] or "unknown",
                                                                    report["graph_producer_version"]))
    for note in report["notes"]:
        lines.append("  note: " + note)
    if report["tags"]:
        lines.append("  tags: " + ",".join(report["tags"]))
    for name, sig in report["signatures"].items():
        lines.append("  signature {} [{}]: {} -> {}".format(
            name, sig["method"], _mapping(sig["inputs"]), _mapping(sig["outputs"])))
    for ph in report["placeholders"]:
        lines.append("  input {} {} {}{}".format(ph["name"], ph["dtype"], ph["shape"],
                                                 " (with default)" if ph["op"] != "Placeholder" else ""))
    if report["recorded"]["outputs"]:
        lines.append("  recorded outputs: " + ", ".join(report["recorded"]["outputs"]))
    if report["likely_outputs"]:
        lines.append("  likely outputs: " + ", ".join(c["name"] for c in report["likely_outputs"][:5]))
    v = report["variables"]
    lines.append("  weights: {} tensors, {} bytes in {} ({})".format(
        v["count"], v["bytes"], v["where"], ", ".join("{} {}".format(n, d) for d, n in sorted(v["dtypes"].items()))))
    lines.append("  nodes: {}, functions: {}".format(report["nodes"], report["functions"]))
    top = list(report["op_histogram"].items())[:12]
    lines.append("  ops: " + ", ".join("{} {}".format(op, n) for op, n in top) + (
        ", ..." if len(report["op_histogram"]) > 12 else ""))
    for category, ops in sorted(report["care"].items()):
        if ops:
            lines.append("  care/{}: {}".format(category, ", ".join(ops)))
    lines.extend(_pipeline_lines(report.get("input_pipeline") or {}))
    return "\n".join(lines)


def _pipeline_lines(found):
    lines = []
    for boundary in found.get("boundaries", []):
        lines.append("  input pipeline: {} ({}) hands out {}".format(boundary["node"], boundary["op"], ", ".join(
            "{} {} {}".format(c["tensor"], c["dtype"], c["shape"]) for c in boundary["components"])))
    if found.get("no_feedable_inputs"):
        lines.append("  no feedable inputs: the model reads only its input pipeline; freeze/convert/export/verify put "
                     "placeholders at the dequeue/GetNext (or where --input-at TENSOR says)")
    return lines


def _mapping(mapping):
    return "{" + ", ".join("{}={}".format(k, v) for k, v in sorted(mapping.items())) + "}"
