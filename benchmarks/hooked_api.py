"""The api.freeze the streaming hook proposes (benchmarks only: migrate/api.py is not ours to edit).

`install()` replaces migrate.api.freeze with `freeze` below, so `python -m benchmarks.jobs migrate-cli --stream
freeze ...` measures the real CLI as it would run once the lead applies the change. The body is api.freeze as
of this writing with three changes, each marked `# STREAM`:
  1. the frozen graph goes to a stream.Target (a temp file beside the output) via freeze(..., stream_to=...)
  2. verification uses stream.check_pair (verify.check_pair for an in-memory result); a streamed graph never
     keeps variables (--allow/--deny take the session path), so it is not parsed to look for them
  3. target.commit(frozen) replaces io.write_graph (renames the streamed file / writes the in-memory graph);
     "nodes" comes from the record, so the streamed GraphDef is never parsed just to count nodes.
"""
from migrate import api, artifacts, freeze as freeze_mod, io, safety, stream, verify


def freeze(source, output, outputs=None, checkpoint=None, tag=None, signature=None, set_values=None, allow=None,
           deny=None, clear_devices=True, verify_result=True, inputs_npz=None, batch=1, seed=0, rtol=1e-5,
           atol=1e-5, force=False, allow_unsafe=False, progress=api._quiet, **kwargs):
    """Freeze `source` into `output`; the frozen graph is verified against the original before it is written."""
    verify_result = kwargs.pop("verify", verify_result)
    io.check_output_path(output, [source], force)
    model = artifacts.load(source, tag=tag, signature=signature, checkpoint=checkpoint)
    for note in model.provenance:
        if not note.startswith("loaded"):
            progress("note: " + note)
    progress("freezing {} ({})".format(model.path, model.kind))
    safety.check(model, freeze_mod.resolve_outputs(model, outputs, signature)[0], allow_unsafe)
    with stream.Target(output) as target:                                                       # STREAM 1
        frozen, record = freeze_mod.freeze(model, outputs=outputs, signature=signature, set_values=set_values,
                                           allow=allow, deny=deny, clear_devices=clear_devices,
                                           stream_to=target)                                      # STREAM 1
        progress("outputs ({}): {}; {} variables -> constants; nodes {} -> {}{}".format(
            record.how_outputs, ", ".join(record.outputs), record.variables, record.nodes_before,
            record.nodes_after, "; switches " + ", ".join("{}={}".format(k, v) for k, v in
                                                          sorted(record.switches.items()))
            if record.switches else ""))
        for note in record.notes:
            if not note.startswith("loaded"):
                progress("note: " + note)
        comparisons = None
        left = [] if isinstance(frozen, stream.StreamedModel) else sorted(                      # STREAM 2
            n.name for n in frozen.graph_def.node if n.op in ("VariableV2", "Variable", "VarHandleOp"))
        if left:  # --allow/--deny kept them: the graph needs their values at run time, so it cannot run alone
            progress("note: {} variable(s) stay variables (--allow/--deny): {}; verification skipped: the graph "
                     "needs their values at run time".format(len(left), ", ".join(left[:5])))
            verify_result = False
        if verify_result:
            values = freeze_mod.parse_set_values(set_values)
            signature_used = record.how_outputs[len("signature "):] if record.how_outputs.startswith(
                "signature") else None
            feeds = verify.feeds_for(model, record.outputs, inputs_npz, batch, seed,
                                     dict((k, v) for k, v in record.switches.items()
                                          if k in values or api._is_placeholder(model, k)), signature_used)
            comparisons = stream.check_pair(model, frozen, record.outputs, feeds, rtol, atol)    # STREAM 2
        if comparisons is None or all(row.ok for row in comparisons):
            target.commit(frozen)                                                                 # STREAM 3
    return {"model": frozen, "record": record, "comparisons": comparisons, "nodes": record.nodes_after,
            "outputs": record.outputs}                                                            # STREAM 3


def _frozen_source(source, outputs, tag, signature, checkpoint, progress, allow_unsafe=False):
    """api._frozen_source, with the output check on a set of names (STREAM 4: a dict of a million NodeDefs
    costs ~2 s, mostly keeping their Python wrappers alive)."""
    from migrate import model as m
    model = artifacts.load(source, tag=tag, signature=signature, checkpoint=checkpoint)
    if model.kind == m.FROZEN_GRAPH and outputs:
        known = set(node.name for node in model.graph_def.node)                                  # STREAM 4
        return model, [freeze_mod._checked_tensor(name, known, source) for name in outputs]
    return api._frozen_source(source, outputs, tag, signature, checkpoint, progress, allow_unsafe)


def optimize(source, output, passes=None, static=False, max_batch=None, input_shapes=None, outputs=None,
             tag=None, signature=None, checkpoint=None, trt=None, verify_result=True, inputs_npz=None, batch=1,
             seed=0, rtol=1e-4, atol=1e-5, force=False, allow_unsafe=False, keep_inputs=(), progress=api._quiet):
    """api.optimize with the STREAM changes: a binary frozen source is optimized in place (no copy) and
    verified file against file (stream.check_files: weights fed, read once each); the result is written node
    by node into a temp file that is renamed into place; the structural check of load is not repeated."""
    from migrate import model as m
    from migrate import passes as passes_mod
    from migrate.passes import set_static_shapes
    io.check_output_path(output, [source], force)
    model, output_tensors = _frozen_source(source, outputs, tag, signature, checkpoint, progress, allow_unsafe)
    safety.check(model, output_tensors, allow_unsafe)  # fold_constants runs constant subgraphs even unverified
    if verify_result or trt is not None:
        from migrate.session import check_ops_known
        check_ops_known(model.graph_def, model.path)
    inputs = sorted(set(n.name + ":0" for n in model.graph_def.node if n.op == "Placeholder") | set(keep_inputs))
    names = passes_mod.parse_pass_list(passes) if passes else list(passes_mod.DEFAULT_PASSES)
    if static and set_static_shapes.NAME not in names:
        names.insert(0, set_static_shapes.NAME)
    options = {"static": static, "max_batch": max_batch, "input_shapes": input_shapes or {}}
    from migrate.session import TABLE_INIT_NODE
    keep = [TABLE_INIT_NODE] if any(n.name == TABLE_INIT_NODE for n in model.graph_def.node) else []
    context = passes_mod.PassContext(outputs=output_tensors + keep, inputs=inputs, options=options)
    loaded = model.kind == m.FROZEN_GRAPH                                                         # STREAM 5
    from_file = trt is None and loaded and stream.is_binary_graph_file(model.path)               # STREAM 5
    nodes_before = len(model.graph_def.node)
    graph_def, records = passes_mod.run_pipeline(model.graph_def, names, context, checked=loaded,
                                                 in_place=from_file)                             # STREAM 5
    for record in records:
        progress(api._pass_line(record))
    optimized = model.derive(graph_def=graph_def, outputs=output_tensors, inputs=inputs,
                             note="optimized with passes " + ",".join(names))
    trt_outcome = None
    if trt is not None:
        trt_outcome, optimized = api._run_tftrt(optimized, output_tensors, trt, progress)
    with stream.Target(output) as target:                                                       # STREAM 6
        stream.write_graph_def(optimized.graph_def, target.path, target.text)                    # STREAM 6
        comparisons = None
        if verify_result:
            feeds = verify.feeds_for(optimized, output_tensors, inputs_npz, max_batch or batch, seed)
            if from_file and not target.text:                                                   # STREAM 7
                comparisons = stream.check_files(model.path, target.path, output_tensors, feeds, rtol, atol)
            else:
                comparisons = verify.check_pair(model, optimized, output_tensors, feeds, rtol, atol)
        if comparisons is None or all(row.ok for row in comparisons):
            target.commit()                                                                       # STREAM 6
    return {"model": optimized, "records": records, "trt": trt_outcome, "comparisons": comparisons,
            "outputs": output_tensors, "nodes_before": nodes_before,
            "nodes": len(optimized.graph_def.node), "passes": names}


def install():
    api.freeze = freeze
    api.optimize = optimize
