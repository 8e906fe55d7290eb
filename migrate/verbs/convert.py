"""`migrate convert` (freeze -> optimize -> export -> verify into one directory) and `migrate demo` (a zoo model
built with the running TF, converted, checked against the outputs TF computed when it wrote it)."""
import os

from migrate import artifacts, io, options as results, pipeline, tfcompat, verify
from migrate.freezing import outputs as freeze_outputs, rewrites
from migrate.graph import files as graph_files
from migrate.verification import compare as comparison, runners
from migrate.errors import MigrateError
from migrate.verbs import common
from migrate.verbs.export import check_signatures, export
from migrate.verbs.freeze import freeze
from migrate.verbs.optimize import optimize
from migrate.verbs.verify import onnx_verbs


@common.taking_options
@common.memory_named
def convert(source, out_dir, outputs=None, tag=None, signature=None, checkpoint=None, passes=None, static=False,
            max_batch=None, input_shapes=None, trt=None, fmt=None, inputs_npz=None, batch=1, seed=0, rtol=1e-4,
            atol=1e-5, force=False, allow_unsafe=False, progress=common.quiet, set_values=None, input_at=None,
            onnx_opset=None):
    """freeze -> optimize -> export -> verify into out_dir (frozen.pb, optimized.pb, saved_model/, report.json);
    onnx_opset: also model.onnx (migrate/onnx), checked with onnxruntime against the source."""
    import time
    if onnx_opset is not None:
        from migrate.onnx import export as onnx_export
        tfcompat.require_onnx(source)
        onnx_export.check_opset(onnx_opset)
    io.check_output_path(out_dir, [source, checkpoint, inputs_npz, (trt or {}).get("calib_data")], force,
                         directory=True)
    started = time.time()
    source_model = artifacts.load(source, tag=tag, signature=signature, checkpoint=checkpoint)
    sigs = dict((n, s) for n, s in source_model.signatures.items() if s.outputs and s.inputs)
    if signature:
        sigs = dict((n, s) for n, s in sigs.items() if n == signature)
    if outputs:
        sigs = {}
    keep_outputs = sorted(set(t for s in sigs.values() for t in s.outputs.values())) or outputs
    keep_inputs = sorted(set(t for s in sigs.values() for t in s.inputs.values()))
    with io.atomic_dir(out_dir, replace=force, source=source) as temp:
        io.planted_stall(source)  # test-only (MIGRATE_TEST_HANG / MIGRATE_TEST_CRASH): no effect unless set
        try:
            return _convert_steps(source, source_model, out_dir, temp, sigs, keep_outputs, keep_inputs, tag,
                                  checkpoint, passes, static, max_batch, input_shapes, trt, fmt, inputs_npz, batch,
                                  seed, rtol, atol, allow_unsafe, progress, started, set_values, input_at,
                                  onnx_opset)
        except MigrateError as exc:
            raise _outside_temp(exc, temp, source, out_dir)


def _outside_temp(exc, temp, source, out_dir):
    """Each convert step reads and writes files in OUT_DIR's temp directory, which is gone once the error is
    shown: an error naming one names the source instead when the input is at fault, else OUT_DIR."""
    from migrate.errors import BadInput
    where = os.path.abspath(exc.where) if exc.where else ""
    if not (where == temp or where.startswith(temp + os.sep)):
        return exc
    input_fault = isinstance(exc, BadInput) and not exc.what.startswith("cannot write output")
    return exc.relocate(source if input_fault else out_dir)


def _convert_steps(source, source_model, out_dir, temp, sigs, keep_outputs, keep_inputs, tag, checkpoint, passes,
                   static, max_batch, input_shapes, trt, fmt, inputs_npz, batch, seed, rtol, atol, allow_unsafe,
                   progress, started, set_values=None, input_at=None, onnx_opset=None):
    import time
    from migrate import model as m
    from migrate import report
    steps = {}
    frozen_path = os.path.join(temp, "frozen.pb")
    if source_model.kind == m.FROZEN_GRAPH:  # written again with its inputs and outputs recorded in it
        keep_outputs, how = freeze_outputs.resolve_outputs(source_model, keep_outputs)
        progress("[1/4] {} is already frozen; outputs ({}): {}".format(source, how, ", ".join(keep_outputs)))
        freeze_outputs.record_io(source_model.graph_def, source_model, keep_outputs, how)
        graph_files.write_graph_def(source_model.graph_def, frozen_path)
        steps["freeze"] = {"skipped": "already a frozen graph", "outputs": keep_outputs, "how_outputs": how,
                           "nodes": len(source_model.graph_def.node)}
    else:
        progress("[1/4] freeze: the {}'s variables into constants".format(source_model.kind))
        result = freeze(source, frozen_path, outputs=keep_outputs, tag=tag, checkpoint=checkpoint,
                        inputs_npz=inputs_npz, batch=batch, seed=seed, rtol=rtol, atol=atol,
                        allow_unsafe=allow_unsafe, progress=common.indent(progress), set_values=set_values,
                        input_at=input_at)
        common.require_ok(result.comparisons, "freeze", source, common.indent(progress))
        steps["freeze"] = {"outputs": result.outputs, "nodes": result.nodes,
                           "how_outputs": result.record.how_outputs,
                           "verification": report.comparisons_dict(result.comparisons)}
    progress("[2/4] optimize: graph passes{}".format("" if trt is None else " + TF-TRT"))
    optimized_path = os.path.join(temp, "optimized.pb")
    result = None  # the freeze step's Model is not needed any more
    # frozen.pb records its outputs: optimize and export read them from the file
    result = optimize(frozen_path, optimized_path, passes=passes, static=static, max_batch=max_batch,
                      input_shapes=input_shapes, trt=trt, inputs_npz=inputs_npz,
                      batch=batch, seed=seed, rtol=rtol, atol=atol, allow_unsafe=allow_unsafe,
                      keep_inputs=keep_inputs, progress=common.indent(progress),
                      input_aliases=verify.input_aliases(source_model), set_values=set_values,
                      input_at=input_at if source_model.kind == m.FROZEN_GRAPH else None)
    final_frozen, final_optimized = os.path.join(out_dir, "frozen.pb"), os.path.join(out_dir, "optimized.pb")
    common.require_ok(result.comparisons, "optimize", final_frozen, common.indent(progress))
    result = result._replace(model=None)  # the optimized GraphDef (the size of the model) is in optimized.pb: not kept in memory
    steps["optimize"] = report.optimize_report(final_frozen, final_optimized, result)  # paths as they will be
    progress("[3/4] export: SavedModel")
    saved_path = os.path.join(temp, "saved_model")
    exported = export(optimized_path, saved_path, fmt=fmt, signatures=sigs or None, verify_result=False,
                      allow_unsafe=allow_unsafe, progress=common.indent(progress))
    steps["export"] = {"format": exported.format, "signatures": exported.signatures}
    progress("[4/4] verify: source vs exported SavedModel, same inputs")
    if not sigs:  # the source runs as freeze ran it: its input pipeline cut, switches fed
        source_model, _ = pipeline.prepare(source_model, result.outputs, input_at)
    switches = common.fed_switches(source_model, rewrites.switch_values(
        source_model.graph_def, rewrites.parse_set_values(set_values)), set_values)
    final = _final_check(source_model, saved_path, sigs, result.outputs, inputs_npz, batch, seed, rtol,
                         atol, switches)
    for name, rows in sorted(final.items()):
        progress("  signature {}:".format(name))
        progress(verify.format_rows(rows))
    steps["verify"] = dict((name, report.comparisons_dict(rows)) for name, rows in final.items())
    if onnx_opset is not None:
        from migrate.onnx import export as onnx_export
        progress("[+] onnx: tf2onnx on optimized.pb, onnxruntime checked against the source")
        # verify takes no --checkpoint, and compares one signature: then the ONNX model is checked against
        # frozen.pb, which step 1 checked against the source
        direct = not checkpoint and len(sigs) <= 1
        reference = source if direct else frozen_path
        done = onnx_export.onnx_from_optimized(
            reference, optimized_path, result["outputs"], os.path.join(temp, "model.onnx"), onnx_opset, out_dir,
            records=result["records"], progress=common.indent(progress), inputs_npz=inputs_npz,
            signature=sorted(sigs)[0] if direct and sigs else None,
            batch=max_batch if static and max_batch else batch, seed=seed, rtol=rtol, atol=atol,
            allow_unsafe=allow_unsafe, set_values=set_values, input_at=input_at, verbs=onnx_verbs())
        steps["onnx"] = {"file": "model.onnx", "opset": done["opset"], "inputs": done["inputs"],
                         "outputs": done["outputs"], "onnx_nodes": done["onnx_nodes"],
                         "against": "source" if direct else "frozen.pb",
                         "verification": report.comparisons_dict(done["comparisons"])}
    summary = report.convert_summary(source, out_dir, source_model, steps, result, time.time() - started)
    report.write_json(summary, os.path.join(temp, "report.json"))
    verify.require_signatures_ok(final, "exported SavedModel differs from the source in ", out_dir, source)
    return results.ConvertResult(report=summary, out_dir=out_dir, verification=final)


def _final_check(source_model, saved_path, sigs, outputs, inputs_npz, batch, seed, rtol, atol, switches=None):
    from migrate import savedmodel
    exported_sigs = sigs or savedmodel.export_signatures(source_model, outputs)
    if not sigs:  # a graph source: the export names the signature after the outputs
        exported_sigs = savedmodel.export_signatures(
            source_model.derive(inputs=sorted(verify.input_specs(source_model.graph_def, outputs))), outputs)
    return check_signatures(source_model, exported_sigs, saved_path, saved_path, inputs_npz, batch, seed, rtol,
                             atol, switches)


DEMO_MODEL = "cnn_bn"


def demo(workdir, progress=common.quiet):
    """Build a zoo model with the running TF, then `convert` it (freeze -> optimize -> export -> verify) and
    check the exported SavedModel against the outputs TF computed when it wrote the checkpoint."""
    import numpy as np
    from legacy_models import zoo
    from migrate import inspect_model, savedmodel
    zoo_dir = os.path.join(workdir, "zoo")
    progress("building zoo model '{}' with this TensorFlow into {}".format(DEMO_MODEL, zoo_dir))
    manifest = zoo.build(zoo_dir, only=[DEMO_MODEL], log=lambda message: progress("  " + message))
    entry = manifest["models"][0]
    source = os.path.join(zoo_dir, entry["path"])
    golden_path = os.path.join(zoo_dir, entry["golden"])
    progress(inspect_model.to_text(inspect_model.inspect(source)))
    out_dir = os.path.join(workdir, "converted")
    summary = convert(source, out_dir, outputs=entry["outputs"], inputs_npz=golden_path, static=True,
                      max_batch=5, trt={"max_batch": 5}, progress=progress)
    model = artifacts.load(source).derive(inputs=list(entry["inputs"]))
    rows = []
    with np.load(golden_path) as golden:
        feeds = dict((name, golden[name]) for name in entry["inputs"])
        for sig in savedmodel.export_signatures(model, entry["outputs"]).values():
            actual = runners.run_signature(os.path.join(out_dir, "saved_model"), sig, feeds)
            rows += comparison.compare(dict((t, golden[t]) for t in sig.outputs.values()), actual)
    return results.DemoResult(summary=summary.report, golden_comparisons=rows, out_dir=out_dir,
                              golden_tf=manifest["tf_version"])
