"""`migrate onnx`: SRC -> optimized frozen graph (verified) -> ONNX-prep -> tf2onnx -> onnxruntime run compared
with the TF source on the same inputs -> model.onnx written atomically only when every output matches."""
import os
import shutil
import tempfile
from collections import namedtuple

from migrate import artifacts, io, tfcompat, verify
from migrate.errors import BadInput, MigrateError
from migrate.onnx import convert

CALIBRATION_CACHE = "calibration.cache"
# The api verbs `migrate onnx` is made of, handed in by migrate.api (which imports this module).
Verbs = namedtuple("Verbs", ["optimize", "verify_artifacts"])
ATTRIBUTION_LIMIT = 64 << 20  # bytes of GraphDef: above it the un-optimized graph is not converted a second time


def _quiet(message):
    pass


def check_opset(opset):
    if opset is None:
        return tfcompat.ONNX_DEFAULT_OPSET
    if not 7 <= opset <= tfcompat.ONNX_MAX_OPSET:
        raise BadInput("--opset {} is outside what tf2onnx writes (7-{})".format(opset, tfcompat.ONNX_MAX_OPSET),
                       None, "pick an opset TensorRT's parser takes, e.g. 13 or 17")
    return opset


def calibration_cache_path(output):
    return os.path.join(os.path.dirname(os.path.abspath(output)), CALIBRATION_CACHE)


def export_onnx(source, output, opset=None, outputs=None, passes=None, static=False, max_batch=None,
                input_shapes=None, calib_cache=None, inputs_npz=None, batch=1, seed=0, rtol=1e-4, atol=1e-5,
                force=False, allow_unsafe=False, set_values=None, input_at=None, signature=None, tag=None,
                checkpoint=None, progress=_quiet, verbs=None):
    """api.onnx: SRC -> model.onnx (see the module). With --checkpoint the ONNX model is checked against the
    optimized graph (itself checked against the source): `migrate verify` takes no --checkpoint.
    verbs: Verbs(optimize, verify_artifacts), the api functions this one is made of (api passes them: migrate.api
    imports this module, so this module does not import it)."""
    tfcompat.require_onnx(source)  # before any work: one line saying what is missing
    opset = check_opset(opset)
    io.check_output_path(output, [source, checkpoint, inputs_npz, calib_cache], force, directory=False)
    cache = convert.read_calibration_cache(calib_cache) if calib_cache else None
    cache_path = calibration_cache_path(output) if calib_cache else None
    if cache_path:
        io.check_output_path(cache_path, [source, inputs_npz, calib_cache], force, directory=False)
    work = tempfile.mkdtemp(prefix="migrate-onnx-")
    try:
        progress("[1/3] optimize: graph passes, verified against the source")
        optimized_path = os.path.join(work, "optimized.pb")
        result = verbs.optimize(source, optimized_path, passes=passes, static=static, max_batch=max_batch,
                              input_shapes=input_shapes, outputs=outputs, inputs_npz=inputs_npz, batch=batch,
                              seed=seed, rtol=rtol, atol=atol, allow_unsafe=allow_unsafe, signature=signature,
                              tag=tag, checkpoint=checkpoint, progress=_indent(progress), set_values=set_values,
                              input_at=input_at)
        if result["comparisons"] is not None and not verify.all_ok(result["comparisons"]):
            progress(verify.format_rows(result["comparisons"]))
            verify.require_ok(result["comparisons"], source, "optimize changed the outputs: {}",
                              "see the errors above; nothing was written")
        onnx_temp = os.path.join(work, "model.onnx")
        reference = optimized_path if checkpoint else source
        done = onnx_from_optimized(reference, optimized_path, result["outputs"], onnx_temp, opset, output,
                                   records=result["records"], progress=progress, steps=("[2/3]", "[3/3]"),
                                   signature=signature, inputs_npz=inputs_npz,
                                   batch=max_batch if static and max_batch else batch, seed=seed, rtol=rtol,
                                   atol=atol, allow_unsafe=allow_unsafe, set_values=set_values, input_at=input_at,
                                   verbs=verbs)
        proto = done["proto"]
        renamed = None
        if cache:
            text, kept, lost = convert.rename_calibration_cache(cache[0], cache[1], proto)
            if not kept:
                raise BadInput("no tensor of the calibration cache is in the ONNX model (first: {})".format(
                    cache[1][0][0]), calib_cache, "calibrate this model with `migrate calibrate`")
            renamed = {"path": cache_path, "kept": len(kept), "renamed": sum(1 for a, b in kept if a != b),
                       "lost": lost}
        with io.atomic_file(output, replace=force) as temp:
            shutil.copyfile(onnx_temp, temp)
            if renamed:
                with io.atomic_file(cache_path, replace=force) as cache_temp:
                    with open(cache_temp, "w") as handle:
                        handle.write(text)
        done.pop("proto")
        done.update(records=result["records"], passes=result["passes"], nodes=result["nodes"],
                    calibration=renamed, against="the optimized graph" if checkpoint else "the source")
        return done
    except MigrateError as exc:  # a step run on a file in the work dir names what the user gave instead
        if exc.where and os.path.abspath(exc.where).startswith(work + os.sep):
            exc.relocate(source if isinstance(exc, BadInput) else output)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def onnx_from_optimized(source, optimized_path, tensors, onnx_path, opset, output, records=(), progress=_quiet,
                        steps=("", ""), signature=None, inputs_npz=None, batch=1, seed=0, rtol=1e-4, atol=1e-5,
                        allow_unsafe=False, set_values=None, input_at=None, verbs=None):
    """optimized frozen graph file -> onnx_prep -> tf2onnx -> onnx_path, then onnxruntime on it against the TF
    `source` (api.verify_artifacts: what `migrate verify SRC model.onnx` does). VerificationFailed (exit 1,
    naming `output`) on a mismatch, NotVerified when nothing was checked. records: the optimize passes' records
    (which of them made the graph convertible); verbs: as export_onnx takes them. Returns a dict with the
    ModelProto under "proto"."""
    graph_def = artifacts.read_graph_def(optimized_path)
    inputs = convert.graph_inputs(graph_def, tensors)
    prepared, dropped = convert.prep(graph_def, inputs)
    progress("{} tf2onnx (opset {}): inputs {}; outputs {}".format(steps[0], opset, ", ".join(inputs),
                                                                    ", ".join(tensors)).strip())
    if dropped:
        progress("  {}: {}".format(convert.PREP_NAME, ", ".join(
            "{} x{}".format(k, v) for k, v in sorted(dropped.items()))))
    proto = convert.to_onnx(prepared, inputs, tensors, opset, source)
    del prepared
    defaults = convert.keep_defaults(proto, graph_def, inputs)
    if defaults:
        progress("  inputs with a default (ONNX initializer of the same name, used unless fed): " +
                 ", ".join(defaults))
    attribution = _attribution(source, records, inputs, tensors, opset)
    if attribution:
        progress("  " + attribution)
    with open(onnx_path, "wb") as handle:
        handle.write(proto.SerializeToString())
    progress("{} verify: onnxruntime (CPU) vs the TF source, same inputs".format(steps[1]).strip())
    shapes = dict((tensor, dims) for tensor, (_, dims) in verify.input_specs(graph_def, tensors).items())
    rows, notes = verbs.verify_artifacts(source, onnx_path, outputs=tensors, signature=signature,
                                       inputs_npz=inputs_npz, batch=batch, seed=seed, rtol=rtol, atol=atol,
                                       allow_unsafe=allow_unsafe, set_values=set_values, input_at=input_at,
                                       input_shapes=shapes)  # the shapes the conversion used (--static ...)
    for note in notes:
        progress("  note: " + note)
    progress(verify.format_rows(rows))
    verify.require_ok(rows, output, "the ONNX model differs from the source: {}",
                      "see the errors above; nothing was written; try another --opset")
    verify.require_checked(rows, source)
    return {"proto": proto, "outputs": list(tensors), "inputs": inputs, "opset": opset, "comparisons": rows,
            "prep_dropped": dropped, "defaults": defaults, "attribution": attribution,
            "onnx_nodes": len(proto.graph.node)}


def _indent(progress):
    return lambda message: progress("  " + message.replace("\n", "\n  "))


def _attribution(source, records, inputs, tensors, opset):
    """Which steps made the graph convertible: the source's own frozen graph (when SRC is one, up to
    ATTRIBUTION_LIMIT bytes) goes through tf2onnx as it is; when that fails, the passes that changed something
    and the ONNX-prep step are what made the difference. None when SRC is not a frozen graph file."""
    from migrate import model as m
    if not os.path.isfile(source) or os.path.getsize(source) > ATTRIBUTION_LIMIT:
        return None
    try:
        raw = artifacts.load(source)
    except BadInput:
        return None
    if raw.kind != m.FROZEN_GRAPH:
        return None
    known = set(node.name for node in raw.graph_def.node)
    from migrate.graph.names import node_name
    if any(node_name(t) not in known for t in list(inputs) + list(tensors)):
        return "the frozen source has not got the same inputs/outputs (inputs cut, switches set): " \
               "not converted as it is"
    try:
        convert.to_onnx(raw.graph_def, inputs, tensors, opset, source)
    except BadInput as exc:
        failed = exc.what
    else:
        return "the frozen source converts as it is too (the passes only made it smaller)"
    prepared, dropped = convert.prep(raw.graph_def, inputs)
    try:
        convert.to_onnx(prepared, inputs, tensors, opset, source)
    except BadInput:
        changed = [r.name for r in records if r.nodes_before != r.nodes_after or r.removed or r.added]
        return "made convertible by passes {} (+ {}): the frozen source as it is does not convert ({})".format(
            ", ".join(changed) or "(none changed the graph)", convert.PREP_NAME, failed)
    return "made convertible by {} (removed {}): the frozen source as it is does not convert ({})".format(
        convert.PREP_NAME, ", ".join(sorted(dropped)), failed)
