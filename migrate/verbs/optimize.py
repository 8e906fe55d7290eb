"""`migrate optimize` (graph passes + TF-TRT, verified file against file where it can) and `migrate plan`
(what TF-TRT would do with the graph optimize hands it)."""
from migrate import artifacts, io, options as results, pipeline, safety, verify
from migrate.freezing.streaming import target as stream_target
from migrate.graph import files as graph_files
from migrate.verification import compare as comparison, runners
from migrate.errors import MigrateError
from migrate.verbs import common


@common.taking_options
@common.memory_named
def optimize(source, output, passes=None, static=False, max_batch=None, input_shapes=None, outputs=None,
             tag=None, signature=None, checkpoint=None, trt=None, verify_result=True, inputs_npz=None, batch=1,
             seed=0, rtol=1e-4, atol=1e-5, force=False, allow_unsafe=False, keep_inputs=(), progress=common.quiet,
             input_aliases=None, input_at=None, set_values=None):
    """Graph passes (+ TF-TRT when `trt` options are given) on a frozen graph; verified, written atomically.
    keep_inputs: tensors that must stay feedable (a signature's inputs that are not placeholders);
    input_aliases: {npz key: tensor} the source's signature keys, for an --inputs-npz keyed by them."""
    from migrate import model as m
    from migrate import passes as passes_mod
    from migrate.passes import set_static_shapes
    io.check_output_path(output, [source, checkpoint, inputs_npz, (trt or {}).get("calib_data")], force,
                         directory=False)
    model, output_tensors, how = common.frozen_source(source, outputs, tag, signature, checkpoint, progress,
                                                allow_unsafe, input_at, set_values)
    progress("outputs ({}): {}".format(how, ", ".join(output_tensors)))
    reference = model
    model, switches = common.with_switches(model, set_values, progress)
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
        progress(common.pass_line(record))
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
                                 common.fed_switches(reference, switches, set_values),
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


@common.taking_options
def plan(source, tf_trt=None, trt=None, static=False, max_batch=None, input_shapes=None, deny_ops=(), passes=None,
         outputs=None, tag=None, signature=None, checkpoint=None, allow_unsafe=False, input_at=None,
         set_values=None, progress=common.quiet):
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
    model, output_tensors, how = common.frozen_source(source, outputs, tag, signature, checkpoint, progress,
                                                allow_unsafe, input_at, set_values)
    progress("outputs ({}): {}".format(how, ", ".join(output_tensors)))
    model, _ = common.with_switches(model, set_values, progress)
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
        progress(common.pass_line(record))
    result = planning.plan(graph_def, output_tensors, {
        "tf_trt": generation["name"], "precision": trt.get("precision"),
        "minimum_segment_size": trt.get("minimum_segment_size"), "dynamic": trt.get("dynamic"),
        "deny_ops": deny_ops, "max_batch": max_batch})
    result["source"] = source
    result["passes"] = names
    return results.PlanResult(plan=result, graph_def=graph_def, outputs=output_tensors)
