"""The library entry points the CLI calls: load -> stage -> verify -> write, one function per verb."""
import os

from migrate import artifacts, freezing, io, opsets, options as results, pipeline, safety, tfcompat, verify
from migrate.freezing import outputs as freeze_outputs, rewrites
from migrate.freezing.streaming import target as stream_target
from migrate.graph import files as graph_files
from migrate.verification import compare as comparison, runners
from migrate.errors import MigrateError
from migrate.graph.names import node_name


def _quiet(message):
    pass


def _memory_named(function):
    """MemoryError (a model too big for the memory limit, ulimit -v) becomes the one line naming the source
    (the verb's first argument); everything written so far is removed by the atomic writers."""
    import functools

    @functools.wraps(function)
    def run(source, *args, **kwargs):
        try:
            return function(source, *args, **kwargs)
        except MemoryError:
            from migrate.errors import BadInput
            raise BadInput("out of memory (MemoryError) while working on it", source,
                           "raise the process's memory limit (ulimit -v) or use a machine with more memory")
    return run


def _taking_options(function):
    """The verb also takes `options=`: option records (options.ShapeOptions / TrtOptions / VerifyOptions, one or
    a tuple) standing for the keywords they name (options.keywords); keywords given as well are overridden."""
    import functools

    @functools.wraps(function)
    def run(*args, **kwargs):
        kwargs.update(results.keywords(kwargs.pop("options", None)))
        return function(*args, **kwargs)
    return run


@_taking_options
@_memory_named
def freeze(source, output, outputs=None, checkpoint=None, tag=None, signature=None, set_values=None, allow=None,
           deny=None, clear_devices=True, verify_result=True, inputs_npz=None, batch=1, seed=0, rtol=1e-5,
           atol=1e-5, force=False, allow_unsafe=False, progress=_quiet, input_at=None, **kwargs):
    """Freeze `source` into `output`; the frozen graph is verified against the original before it is written.

    The weights stream from the checkpoint into a temp file beside `output` one tensor at a time (freezing/streaming/)
    wherever that applies, else the session path freezes in memory (a note says why); either way the temp
    file becomes `output` only once verification passed."""
    verify_result = kwargs.pop("verify", verify_result)
    io.check_output_path(output, [source, checkpoint, inputs_npz], force, directory=False)
    model = artifacts.load(source, tag=tag, signature=signature, checkpoint=checkpoint)
    for note in model.provenance:
        if not note.startswith("loaded"):
            progress("note: " + note)
    progress("freezing {} ({})".format(model.path, model.kind))
    model, _ = pipeline.prepare_resolving(model, outputs, signature, input_at, progress)
    safety.check(model, freeze_outputs.resolve_outputs(model, outputs, signature)[0], allow_unsafe)
    with stream_target.Target(output, replace=force) as target:
        frozen, record = freezing.freeze(model, outputs=outputs, signature=signature, set_values=set_values,
                                           allow=allow, deny=deny, clear_devices=clear_devices, stream_to=target)
        _freeze_progress(record, progress, printed=model.provenance)
        if io.planted("freeze") and not isinstance(frozen, stream_target.StreamedModel):  # test-only (io.planted)
            frozen = frozen.derive(graph_def=io.planted_graph_def(frozen.graph_def))
        comparisons = None
        # A streamed graph never keeps variables (--allow/--deny take the session path): not parsed to look.
        left = [] if isinstance(frozen, stream_target.StreamedModel) else sorted(
            n.name for n in frozen.graph_def.node if n.op in opsets.FREEZABLE_VARIABLE_OPS)
        if left:  # --allow/--deny kept them: the graph needs their values at run time, so it cannot run alone
            progress("note: {} variable(s) stay variables (--allow/--deny): {}; verification skipped: the graph "
                     "needs their values at run time".format(len(left), ", ".join(left[:5])))
            verify_result = False
        if verify_result:
            signature_used = record.how_outputs[len("signature "):] if record.how_outputs.startswith(
                "signature") else None
            generated = []
            feeds = verify.feeds_for(model, record.outputs, inputs_npz, batch, seed,
                                     _fed_switches(model, record.switches, set_values), signature_used,
                                     notes=generated)
            for note in generated:
                progress("note: " + note)
            comparisons = runners.check_frozen(model, frozen, record.outputs, feeds, rtol, atol)
            verify.require_checked(comparisons, source, progress)
        if comparisons is None:  # unverified: still a graph TF imports (cheap check, no session run)
            if isinstance(frozen, stream_target.StreamedModel):
                graph_files.check_importable(output, path=frozen.file_path)
            else:
                graph_files.check_importable(output, graph_def=frozen.graph_def)
        if comparisons is None or verify.all_ok(comparisons):
            target.commit(frozen)
    return results.FreezeResult(model=frozen, record=record, comparisons=comparisons, nodes=record.nodes_after,
                                outputs=record.outputs)


def _freeze_progress(record, progress, printed=()):
    progress("outputs ({}): {}; {} variables -> constants; nodes {} -> {}{}".format(
        record.how_outputs, ", ".join(record.outputs), record.variables, record.nodes_before, record.nodes_after,
        "; switches " + ", ".join("{}={}".format(k, v) for k, v in sorted(record.switches.items()))
        if record.switches else ""))
    for note in record.notes:
        if not note.startswith("loaded") and note not in printed:  # the load's notes went out before
            progress("note: " + note)


def _fed_switches(reference, switches, set_values):
    """The switch values the unedited reference must be fed: every --set, and plain Placeholders."""
    values = rewrites.parse_set_values(set_values)
    return dict((k, v) for k, v in switches.items() if k in values or _is_placeholder(reference, k))


def _is_placeholder(model, name):
    return any(n.name == node_name(name) and n.op == "Placeholder" for n in model.graph_def.node)


DEMO_MODEL = "cnn_bn"


def demo(workdir, progress=_quiet):
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


def _frozen_source(source, outputs, tag, signature, checkpoint, progress, allow_unsafe=False, input_at=None,
                   set_values=None):
    """(frozen Model, output tensors, how): frozen graphs load as they are (outputs: --outputs, else recorded
    in the graph, else inferred), everything else is frozen first. An input pipeline the outputs read is cut
    (pipeline.prepare)."""
    from migrate import model as m
    model = artifacts.load(source, tag=tag, signature=signature, checkpoint=checkpoint)
    if model.kind != m.FROZEN_GRAPH:
        progress("{} is a {}: freezing it first".format(source, model.kind))
        model, _ = pipeline.prepare_resolving(model, outputs, signature, input_at, progress)
        safety.check(model, freeze_outputs.resolve_outputs(model, outputs, signature)[0], allow_unsafe)
        model, record = freezing.freeze(model, outputs=outputs, signature=signature, set_values=set_values)
        return model, record.outputs, record.how_outputs
    tensors, how = freeze_outputs.resolve_outputs(model, outputs)
    model, _ = pipeline.prepare(model, tensors, input_at, progress)
    return model, tensors, how


def _with_switches(model, set_values, progress):
    """(model to optimize, {switch: value}): train/infer switches and --set values made constants, as freeze
    does, on a copy (the model itself stays the verification reference)."""
    switches = rewrites.switch_values(model.graph_def, rewrites.parse_set_values(set_values))
    if not switches:
        return model, switches
    from tensorflow.core.framework import graph_pb2
    graph_def = graph_pb2.GraphDef()
    graph_def.CopyFrom(model.graph_def)
    rewrites.apply_switches(graph_def, switches)
    progress("switches set to constants (as freeze does): " + ", ".join(
        "{}={}".format(k, v) for k, v in sorted(switches.items())))
    return model.derive(graph_def=graph_def, note="switches " + ", ".join(
        "{}={}".format(k, v) for k, v in sorted(switches.items()))), switches


@_taking_options
@_memory_named
def optimize(source, output, passes=None, static=False, max_batch=None, input_shapes=None, outputs=None,
             tag=None, signature=None, checkpoint=None, trt=None, verify_result=True, inputs_npz=None, batch=1,
             seed=0, rtol=1e-4, atol=1e-5, force=False, allow_unsafe=False, keep_inputs=(), progress=_quiet,
             input_aliases=None, input_at=None, set_values=None):
    """Graph passes (+ TF-TRT when `trt` options are given) on a frozen graph; verified, written atomically.
    keep_inputs: tensors that must stay feedable (a signature's inputs that are not placeholders);
    input_aliases: {npz key: tensor} the source's signature keys, for an --inputs-npz keyed by them."""
    from migrate import model as m
    from migrate import passes as passes_mod
    from migrate.passes import set_static_shapes
    io.check_output_path(output, [source, checkpoint, inputs_npz, (trt or {}).get("calib_data")], force,
                         directory=False)
    model, output_tensors, how = _frozen_source(source, outputs, tag, signature, checkpoint, progress,
                                                allow_unsafe, input_at, set_values)
    progress("outputs ({}): {}".format(how, ", ".join(output_tensors)))
    reference = model
    model, switches = _with_switches(model, set_values, progress)
    edited = model is not reference or pipeline.was_cut(model)
    safety.check(model, output_tensors, allow_unsafe)  # fold_constants runs constant subgraphs even unverified
    if verify_result or trt is not None:
        from migrate.session import check_attrs_known, check_ops_known
        check_ops_known(model.graph_def, model.path)
        if model.kind == m.FROZEN_GRAPH:
            check_attrs_known(model.graph_def, model.path)
    inputs = sorted(set(n.name + ":0" for n in model.graph_def.node if n.op == "Placeholder") | set(keep_inputs) |
                    set(model.inputs))
    names = passes_mod.parse_pass_list(passes) if passes else list(passes_mod.DEFAULT_PASSES)
    if static and set_static_shapes.NAME not in names:
        names.insert(0, set_static_shapes.NAME)
    options = {"static": static, "max_batch": max_batch, "input_shapes": input_shapes or {}}
    from migrate.session import TABLE_INIT_NODE
    keep = [TABLE_INIT_NODE] if any(n.name == TABLE_INIT_NODE for n in model.graph_def.node) else []
    context = passes_mod.PassContext(outputs=output_tensors + keep, inputs=inputs, options=options)
    nodes_before = len(model.graph_def.node)
    # A binary frozen source file can be verified file against file (runners.check_files): then the passes edit
    # the loaded GraphDef itself (a copy of a 1 GB graph is 1 GB more) and weights are read once each. With
    # TF-TRT too: whatever the converter returned is written, and that file is what runs against the source.
    # Not when switches were set or the input pipeline cut: the source file is not the reference then.
    files_verify = model.kind == m.FROZEN_GRAPH and graph_files.is_binary_graph_file(model.path) \
        and not output.endswith(artifacts.TEXT_SUFFIXES) and not edited
    source_path = model.path
    graph_def, records = passes_mod.run_pipeline(model.graph_def, names, context,
                                                 checked=model.kind == m.FROZEN_GRAPH,
                                                 in_place=files_verify or model is not reference)
    for record in records:
        progress(_pass_line(record))
    optimized = model.derive(graph_def=graph_def, outputs=output_tensors, inputs=inputs,
                             note="optimized with passes " + ",".join(names))
    trt_outcome = None
    if trt is not None and context.oversized:  # TF-TRT's Grappler folds constant subgraphs whatever their size
        from migrate.session import too_big
        raise too_big(*(context.oversized[0] + (source,)), runs="TF-TRT's constant folding",
                      fix="pass --no-trt")
    trt_plan = None
    if trt is not None:
        trt_outcome, optimized = _run_tftrt(optimized, output_tensors, trt, progress)
        if not trt_outcome.converted:
            trt_plan = _plan_beside_trt(optimized.graph_def, output_tensors, trt, progress)
    from migrate import outputs as output_discovery
    output_discovery.record(optimized.graph_def, inputs, output_tensors)
    nodes_after = len(optimized.graph_def.node)
    with stream_target.Target(output, replace=force) as target:
        written = io.planted_graph_def(optimized.graph_def) if io.planted("optimize") else optimized.graph_def
        graph_files.write_graph_def(written, target.path, target.text)  # node by node, no bytes copy
        del written
        # (after writing: TF's import, which input_specs may run, adds default attrs to the GraphDef it reads)
        feeds = verify.feeds_for(optimized, output_tensors, inputs_npz, max_batch or batch, seed,
                                 _fed_switches(reference, switches, set_values),
                                 aliases=input_aliases) if verify_result else None
        if files_verify:  # the result is in its file now: its GraphDef goes before both files run
            optimized = stream_target.streamed_from(optimized, target.path)
            model = reference = graph_def = None
        comparisons = None
        if verify_result and files_verify:
            comparisons = runners.check_files(source_path, target.path, output_tensors, feeds, rtol, atol, output)
        elif verify_result:  # the file as written runs (not the GraphDef in memory), against the source model
            comparisons = comparison.compare(verify.run_model(reference, output_tensors, feeds), _run_written(
                target, optimized, output_tensors, verify.plain(feeds)), rtol, atol)
        if verify_result:
            verify.require_checked(comparisons, source, progress)
        elif files_verify:  # unverified: still a graph TF imports (cheap check, no session run), read from
            graph_files.check_importable(output, path=target.path)  # the file (the GraphDef is gone)
        else:
            graph_files.check_importable(output, graph_def=optimized.graph_def)
        if comparisons is None or verify.all_ok(comparisons):
            target.commit(optimized if files_verify else None)
    return results.OptimizeResult(model=optimized, records=records, trt=trt_outcome, comparisons=comparisons,
                                  outputs=output_tensors, how_outputs=how, nodes_before=nodes_before,
                                  nodes=nodes_after, passes=names, trt_plan=trt_plan)


@_taking_options
def plan(source, tf_trt=None, trt=None, static=False, max_batch=None, input_shapes=None, deny_ops=(), passes=None,
         outputs=None, tag=None, signature=None, checkpoint=None, allow_unsafe=False, input_at=None,
         set_values=None, progress=_quiet):
    """What TF-TRT would do with SOURCE (planning.plan), on the graph optimize would hand it: frozen first when
    needed, switches set, then the passes (default: optimize's; passes='none': the graph as it is). trt: the
    {option: value} of a TrtOptions (options=), of which precision, minimum_segment_size and dynamic matter.
    Returns PlanResult(plan, graph_def, outputs)."""
    from migrate import model as m
    from migrate import passes as passes_mod
    from migrate import planning
    from migrate.passes import set_static_shapes
    generation = planning.generation_for(tf_trt)  # a bad --tf-trt fails before any loading
    trt = dict(trt or {})
    model, output_tensors, how = _frozen_source(source, outputs, tag, signature, checkpoint, progress,
                                                allow_unsafe, input_at, set_values)
    progress("outputs ({}): {}".format(how, ", ".join(output_tensors)))
    model, _ = _with_switches(model, set_values, progress)
    names = [] if passes == "none" else (passes_mod.parse_pass_list(passes) if passes else
                                         list(passes_mod.DEFAULT_PASSES))
    if static and set_static_shapes.NAME not in names:
        names.insert(0, set_static_shapes.NAME)
    if static and max_batch is None:
        max_batch = 1
    if any(name != set_static_shapes.NAME for name in names):
        safety.check(model, output_tensors, allow_unsafe)  # fold_constants runs constant subgraphs
    inputs = sorted(set(n.name + ":0" for n in model.graph_def.node if n.op == "Placeholder") | set(model.inputs))
    context = passes_mod.PassContext(outputs=output_tensors, inputs=inputs, options={
        "static": static, "max_batch": max_batch, "input_shapes": input_shapes or {}})
    graph_def, records = passes_mod.run_pipeline(model.graph_def, names, context,
                                                 checked=model.kind == m.FROZEN_GRAPH)
    for record in records:
        progress(_pass_line(record))
    result = planning.plan(graph_def, output_tensors, {
        "tf_trt": generation["name"], "precision": trt.get("precision"),
        "minimum_segment_size": trt.get("minimum_segment_size"), "dynamic": trt.get("dynamic"),
        "deny_ops": deny_ops, "max_batch": max_batch})
    result["source"] = source
    result["passes"] = names
    return results.PlanResult(plan=result, graph_def=graph_def, outputs=output_tensors)


def _plan_beside_trt(graph_def, output_tensors, trt, progress):
    """optimize without TensorRT engines: what TF-TRT would have built (planning.summary_line), or why no
    plan could be made (a plan never fails the optimize it explains)."""
    from migrate import planning
    try:
        result = planning.plan(graph_def, output_tensors, {
            "precision": trt.get("precision"), "minimum_segment_size": trt.get("minimum_segment_size"),
            "dynamic": trt.get("dynamic"), "max_batch": trt.get("max_batch")})
    except MigrateError as exc:
        progress("TF-TRT plan: not made ({})".format(exc.line()))
        return None
    progress(planning.summary_line(result))
    return result


def _run_written(target, model, outputs, feeds):
    """{output: array} from the graph file just written at target.path (binary: run_file; text: parsed)."""
    if not target.text:
        return runners.run_file(target.path, outputs, feeds, model.path)
    from tensorflow.core.framework import graph_pb2
    written = model.derive(graph_def=artifacts.parse_proto(target.path, graph_pb2.GraphDef()))
    return verify.run_model(written, outputs, feeds)


def _run_tftrt(model, output_tensors, trt, progress):
    """TF-TRT on the surgery result; with require_trt, no engines is TensorRTUnavailable (exit 3)."""
    from migrate import tftrt
    from migrate.errors import TensorRTUnavailable
    options = dict(trt)
    require = options.pop("require_trt", False)
    options["calib_feeds"] = _calibration_feeds(options.pop("calib_data", None))
    converted, outcome = tftrt.convert(model.graph_def, output_tensors, options)
    progress("TF-TRT [{} {} {}]: {} TRTEngineOp(s); {} ({:.1f}s)".format(
        outcome.generation, "via" if outcome.attempted else "not attempted:", outcome.api_call, outcome.engines,
        outcome.reason, outcome.seconds))
    if require and not outcome.converted:
        raise TensorRTUnavailable("--require-trt: no TensorRT engines were built: " + outcome.reason, model.path,
                                  "run on a machine with a GPU, TensorRT and a TF built with TensorRT")
    if not outcome.converted:
        progress("writing the graph-surgery result without TensorRT engines")
        return outcome, model
    return outcome, model.derive(graph_def=converted, note="TF-TRT: {} engines".format(outcome.engines))


def _calibration_feeds(path):
    """[{tensor: array}] from an .npz or a folder of .npz files (one batch each), or None."""
    from migrate.calibration import data
    return data.load_all(path)


def _pass_line(record):
    changes = ", ".join("-{} {}".format(n, op) for op, n in sorted(record.removed.items()))
    added = ", ".join("+{} {}".format(n, op) for op, n in sorted(record.added.items()))
    notes = "; ".join(record.notes[:3]) + (" ..." if len(record.notes) > 3 else "")
    detail = "; ".join(part for part in (changes, added) if part) or notes or record.reason or "no change"
    return "  {:18} {:>6} -> {:<6} nodes  {:.3f}s  {}".format(record.name, record.nodes_before, record.nodes_after,
                                                             record.seconds, detail)


@_taking_options
@_memory_named
def export(source, output, fmt=None, outputs=None, tag=None, signature=None, checkpoint=None,
           verify_result=True, inputs_npz=None, batch=1, seed=0, rtol=1e-5, atol=1e-5, force=False,
           allow_unsafe=False, signatures=None, progress=_quiet, set_values=None, input_at=None):
    """Write a SavedModel (format tf2 or tf1, see savedmodel.py); reload it and compare every signature."""
    from migrate import model as m
    from migrate import savedmodel
    from migrate.errors import BadInput
    fmt = fmt or savedmodel.default_format()
    savedmodel.check_format(fmt)
    io.check_output_path(output, [source, checkpoint, inputs_npz], force, directory=True)
    model = artifacts.load(source, tag=tag, signature=signature, checkpoint=checkpoint)
    if set_values and fmt == "tf1":
        raise BadInput("--set with --format tf1: a TF1 SavedModel keeps the graph as it is", source,
                       "export --format tf2, or freeze with --set first and export the frozen graph")
    if not signatures and (outputs or not model.signatures):
        model, _ = pipeline.prepare_resolving(model, outputs, None, input_at, progress)
    fed_switches = rewrites.switch_values(model.graph_def, rewrites.parse_set_values(set_values)) \
        if set_values else {}
    signatures = signatures or savedmodel.export_signatures(model, outputs)
    if signature:
        signatures = {signature: signatures[signature]} if signature in signatures else signatures
    for sig in signatures.values():
        safety.check(model, list(sig.outputs.values()), allow_unsafe)
    from migrate.session import check_attrs_known, check_ops_known
    check_ops_known(model.graph_def, model.path)  # before TF imports it to write the SavedModel
    if model.kind == m.FROZEN_GRAPH:
        check_attrs_known(model.graph_def, model.path)
    frozen = model
    # A binary frozen graph file: the weights are read from the file when written and when
    # verified (graph_files.read_back / runners.run_file); the parsed GraphDef is swapped for its structure (weights as
    # Placeholders, values not kept), which is all the signatures and the feeds need. Not when --set or a cut
    # input pipeline edited the graph: the file is not what is exported then.
    graph_file = model.path if model.kind == m.FROZEN_GRAPH and graph_files.is_binary_graph_file(model.path) \
        and not set_values and not pipeline.was_cut(model) else None
    if graph_file:
        frozen = model = model.derive(graph_def=graph_files.split_weights(model.graph_def, values=False)[0])
    elif set_values and model.kind == m.FROZEN_GRAPH:
        frozen, _ = _with_switches(model, set_values, progress)
    with io.atomic_dir(output, replace=force, source=source) as temp:
        target = os.path.join(temp, "model")
        if fmt == "tf2" and model.kind != m.FROZEN_GRAPH:
            progress("freezing {} ({}) for a TF2 SavedModel".format(model.path, model.kind))
            _write_tf2_frozen_first(model, target, signatures, temp, set_values)
        elif fmt == "tf2":
            savedmodel.write_tf2(frozen, target, signatures, graph_file)
        else:
            try:
                savedmodel.write_tf1(model, target, signatures, graph_file)
            except savedmodel.SaverUnsupported as exc:
                progress("note: TF {}'s SavedModel builder cannot save these variables ({}); exporting the "
                         "frozen graph instead".format(tfcompat.version_string(), exc))
                import shutil
                shutil.rmtree(target, ignore_errors=True)
                outputs_needed = sorted(set(t for sig in signatures.values() for t in sig.outputs.values()))
                frozen, _ = freezing.freeze(model, outputs=outputs_needed)
                savedmodel.write_tf1(frozen, target, signatures)
        comparisons = {}
        if verify_result:
            generated = []
            comparisons = _check_signatures(model, signatures, target, output, inputs_npz, batch, seed, rtol, atol,
                                            fed_switches, graph_file, generated)
            for note in sorted(set(generated)):
                progress("note: " + note)
            for name, rows in sorted(comparisons.items()):
                progress("signature {} (reloaded SavedModel vs source, same inputs):".format(name))
                progress(verify.format_rows(rows))
            verify.require_signatures_ok(comparisons, "reloaded SavedModel differs from the source in signature(s) ",
                                         output, source)
        _move_contents(target, temp)
        progress("wrote {} SavedModel with signatures {}".format(fmt, ", ".join(sorted(signatures))))
    return results.ExportResult(comparisons=comparisons, signatures=sorted(signatures), format=fmt, written=True)


def _check_signatures(model, signatures, directory, where, inputs_npz, batch, seed, rtol, atol, switches=None,
                      graph_file=None, notes=None):
    """{signature: [Comparison]}: every signature of the SavedModel at `directory` against its source on the
    same feeds: `model` in its own session with the {node: value} switches fed, or (graph_file) that frozen
    graph file with its weights fed. `where`: what an error of the SavedModel's run names."""
    results = {}
    for name, sig in sorted(signatures.items()):
        feeds = verify.feeds_for_signature(model, sig, inputs_npz, batch, seed, notes)
        outputs = sorted(sig.outputs.values())
        reference = runners.GraphFileRunner(graph_file, outputs) if graph_file else runners.SessionRunner(
            model, outputs, dict((k + ":0", v) for k, v in (switches or {}).items()))
        results[name] = runners.check(reference, _Exported(directory, sig, where), feeds, rtol, atol)
    return results


class _Exported(runners.SignatureRunner):
    """The SavedModel just written: the source ran on these feeds, so a TF error here is the export's fault."""

    def __init__(self, directory, sig, where):
        super(_Exported, self).__init__(directory, sig)
        self.where = where

    def run(self, feeds):
        from migrate.errors import VerificationFailed, first_line
        try:
            return runners.run_signature(self.directory, self.sig, feeds)
        except tfcompat.tf().errors.OpError as exc:
            raise VerificationFailed("the exported SavedModel fails where the source runs: " + first_line(exc),
                                     self.where, "nothing was written; report it")


def _write_tf2_frozen_first(model, target, signatures, temp, set_values=None):
    """tf2 export of a model with variables: frozen first, streamed into a temp file in the output's temp dir
    where that applies (the weights go from the checkpoint to that file and from it to the SavedModel's
    variables, each in memory once), else frozen in memory (the session path)."""
    from migrate import savedmodel
    outputs = sorted(set(t for sig in signatures.values() for t in sig.outputs.values()))
    with stream_target.Target(os.path.join(temp, "frozen.pb")) as frozen_file:  # never committed: removed on exit
        frozen, _ = freezing.freeze(model, outputs=outputs, set_values=set_values, stream_to=frozen_file)
        streamed = isinstance(frozen, stream_target.StreamedModel) and not frozen.text and frozen.file_path
        savedmodel.write_tf2(frozen, target, signatures, frozen.file_path if streamed else None)


def _move_contents(source_dir, target_dir):
    import shutil
    for name in os.listdir(source_dir):
        shutil.move(os.path.join(source_dir, name), os.path.join(target_dir, name))
    os.rmdir(source_dir)


@_taking_options
@_memory_named
def onnx(source, output, **kwargs):
    """SRC -> optimized frozen graph -> tf2onnx -> onnxruntime checked against the source -> model.onnx
    (migrate/onnx/export.py; needs the onnx extra)."""
    from migrate.onnx import export as onnx_export
    return onnx_export.export_onnx(source, output, verbs=_onnx_verbs(), **kwargs)


def _onnx_verbs():
    from migrate.onnx import export as onnx_export
    return onnx_export.Verbs(optimize=optimize, verify_artifacts=verify_artifacts)


@_taking_options
@_memory_named
def verify_artifacts(a_path, b_path, outputs=None, signature=None, inputs_npz=None, batch=1, seed=0, rtol=1e-5,
                     atol=1e-5, allow_unsafe=False, set_values=None, input_at=None):
    """Run two artifacts of any kinds on the same inputs: ([Comparison], notes). Train/infer switches and
    --set values are fed to both sides (as freeze sets them); an input pipeline is cut as freeze cuts it."""
    notes = []
    a = _endpoint(a_path, outputs, signature, input_at, notes.append)
    ends = [a, _endpoint(b_path, outputs, signature, input_at, notes.append, partner=a)]
    switches = {}
    asked = rewrites.parse_set_values(set_values)
    for end in ends:  # a --set node may exist on one side only (optimize made it a constant, then pruned it)
        if end.model.kind != "onnx":  # an ONNX side holds no TF ops (and its graph_def is empty)
            safety.check(end.model, list(end.outputs.values()), allow_unsafe)
        names = set(n.name for n in end.model.graph_def.node)
        switches.update(rewrites.switch_values(end.model.graph_def, dict(
            (k, v) for k, v in asked.items() if k in names)))
    if set(asked) - set(switches):
        rewrites.switch_values(ends[0].model.graph_def, asked)  # the error naming the node and close names
    for end in ends:
        end.drop_inputs(switches)
    rows, pair_notes = verify.verify_pair(ends[0], ends[1], inputs_npz, batch, seed, rtol, atol,
                                          extra_feeds=dict((k + ":0", v) for k, v in switches.items()))
    if switches:
        notes.append("switches fed to both: " + ", ".join("{}={}".format(k, v) for k, v in sorted(switches.items())))
    return results.VerifyResult(rows, [n[len("note: "):] if n.startswith("note: ") else n for n in notes] +
                                pair_notes)


def _endpoint(path, outputs, signature, input_at, progress, partner=None):
    from migrate.errors import BadInput
    from migrate.onnx import model as onnx_model
    if onnx_model.claims_onnx(path):  # by content: an ONNX ModelProto runs with onnxruntime
        return onnx_model.endpoint(onnx_model.load(path), outputs, partner)
    model = artifacts.load(path, signature=None)
    if not model.signatures and not outputs:  # outputs inferred on the graph with its input pipeline cut
        try:
            model, cuts = pipeline.prepare_resolving(model, outputs, signature, input_at, progress)
            if cuts:
                return verify.endpoint(model, outputs, signature, partner=partner)
        except BadInput:  # nothing to infer from alone: the partner's outputs may still name them
            pass
    end = verify.endpoint(model, outputs, signature, partner=partner)
    cut, cuts = pipeline.prepare(model, sorted(set(end.outputs.values())), input_at, progress)
    return verify.endpoint(cut, outputs, signature, partner=partner) if cuts else end


@_taking_options
@_memory_named
def convert(source, out_dir, outputs=None, tag=None, signature=None, checkpoint=None, passes=None, static=False,
            max_batch=None, input_shapes=None, trt=None, fmt=None, inputs_npz=None, batch=1, seed=0, rtol=1e-4,
            atol=1e-5, force=False, allow_unsafe=False, progress=_quiet, set_values=None, input_at=None,
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
                        allow_unsafe=allow_unsafe, progress=_indent(progress), set_values=set_values,
                        input_at=input_at)
        _require_ok(result.comparisons, "freeze", source, _indent(progress))
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
                      keep_inputs=keep_inputs, progress=_indent(progress),
                      input_aliases=verify.input_aliases(source_model), set_values=set_values,
                      input_at=input_at if source_model.kind == m.FROZEN_GRAPH else None)
    final_frozen, final_optimized = os.path.join(out_dir, "frozen.pb"), os.path.join(out_dir, "optimized.pb")
    _require_ok(result.comparisons, "optimize", final_frozen, _indent(progress))
    result = result._replace(model=None)  # the optimized GraphDef (the size of the model) is in optimized.pb: not kept in memory
    steps["optimize"] = report.optimize_report(final_frozen, final_optimized, result)  # paths as they will be
    progress("[3/4] export: SavedModel")
    saved_path = os.path.join(temp, "saved_model")
    exported = export(optimized_path, saved_path, fmt=fmt, signatures=sigs or None, verify_result=False,
                      allow_unsafe=allow_unsafe, progress=_indent(progress))
    steps["export"] = {"format": exported.format, "signatures": exported.signatures}
    progress("[4/4] verify: source vs exported SavedModel, same inputs")
    if not sigs:  # the source runs as freeze ran it: its input pipeline cut, switches fed
        source_model, _ = pipeline.prepare(source_model, result.outputs, input_at)
    switches = _fed_switches(source_model, rewrites.switch_values(
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
            records=result["records"], progress=_indent(progress), inputs_npz=inputs_npz,
            signature=sorted(sigs)[0] if direct and sigs else None,
            batch=max_batch if static and max_batch else batch, seed=seed, rtol=rtol, atol=atol,
            allow_unsafe=allow_unsafe, set_values=set_values, input_at=input_at, verbs=_onnx_verbs())
        steps["onnx"] = {"file": "model.onnx", "opset": done["opset"], "inputs": done["inputs"],
                         "outputs": done["outputs"], "onnx_nodes": done["onnx_nodes"],
                         "against": "source" if direct else "frozen.pb",
                         "verification": report.comparisons_dict(done["comparisons"])}
    summary = report.convert_summary(source, out_dir, source_model, steps, result, time.time() - started)
    report.write_json(summary, os.path.join(temp, "report.json"))
    verify.require_signatures_ok(final, "exported SavedModel differs from the source in ", out_dir, source)
    return results.ConvertResult(report=summary, out_dir=out_dir, verification=final)


def _indent(progress):
    return lambda message: progress("  " + message.replace("\n", "\n  "))


def _require_ok(rows, step, where, progress=_quiet):
    if rows is not None and not verify.all_ok(rows):
        progress("{} vs its input, same inputs:".format(step))
        progress(verify.format_rows(rows))  # the errors the message points to
        verify.require_ok(rows, where, step + " changed the outputs: {}", "see the errors above; nothing was written")


def _final_check(source_model, saved_path, sigs, outputs, inputs_npz, batch, seed, rtol, atol, switches=None):
    from migrate import savedmodel
    exported_sigs = sigs or savedmodel.export_signatures(source_model, outputs)
    if not sigs:  # a graph source: the export names the signature after the outputs
        exported_sigs = savedmodel.export_signatures(
            source_model.derive(inputs=sorted(verify.input_specs(source_model.graph_def, outputs))), outputs)
    return _check_signatures(source_model, exported_sigs, saved_path, saved_path, inputs_npz, batch, seed, rtol,
                             atol, switches)


@_memory_named
def calibrate(source, out_dir, calib_data, method="entropy", percentile=None, batches=None, eval_data=None,
              trt_version=None, outputs=None, tag=None, signature=None, checkpoint=None, force=False,
              allow_unsafe=False, sensitivity=True, progress=_quiet, set_values=None, input_at=None):
    """INT8 ranges per tensor from calibration batches, the TensorRT cache, and simulated INT8 error, into
    out_dir (calibration.cache, dynamic_ranges.json, report.json); see migrate/calibration/run.py.
    Returns options.CalibrateResult (report, out_dir, recommended)."""
    from migrate import model as m
    from migrate.calibration import cache, histogram, run
    percentile = histogram.DEFAULT_PERCENTILE if percentile is None else percentile
    trt_version = trt_version or cache.DEFAULT_TRT_VERSION
    run.check_options(method, percentile, trt_version)
    io.check_output_path(out_dir, [source, checkpoint, calib_data, eval_data], force, directory=True)
    run.data.batch_files(calib_data)  # a missing or empty folder is refused before the model loads
    if eval_data:
        run.data.batch_files(eval_data)
    model, output_tensors, _ = _frozen_source(source, outputs, tag, signature, checkpoint, progress,
                                              allow_unsafe, input_at, set_values)
    if model.kind == m.FROZEN_GRAPH and set_values:
        model, _ = _with_switches(model, set_values, progress)
    safety.check(model, output_tensors, allow_unsafe)
    from migrate.session import check_attrs_known, check_ops_known
    check_ops_known(model.graph_def, model.path)
    if model.kind == m.FROZEN_GRAPH:
        check_attrs_known(model.graph_def, model.path)
    with io.atomic_dir(out_dir, replace=force, source=source) as temp:
        report = run.calibrate(model, output_tensors, temp, calib_data, method, percentile, batches, eval_data,
                               trt_version, sensitivity, progress, source)
    from migrate.options import CalibrateResult
    return CalibrateResult(report, out_dir, report["recommended"]["method"])
