"""`migrate freeze`: variables -> constants, streamed into a temp file, verified, then committed."""
from migrate import artifacts, freezing, io, opsets, options as results, pipeline, safety, verify
from migrate.freezing import outputs as freeze_outputs
from migrate.freezing.streaming import target as stream_target
from migrate.graph import files as graph_files
from migrate.verification import runners
from migrate.verbs import common


@common.taking_options
@common.memory_named
def freeze(source, output, outputs=None, checkpoint=None, tag=None, signature=None, set_values=None, allow=None,
           deny=None, clear_devices=True, verify_result=True, inputs_npz=None, batch=1, seed=0, rtol=1e-5,
           atol=1e-5, force=False, allow_unsafe=False, progress=common.quiet, input_at=None, **kwargs):
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
                                     common.fed_switches(model, record.switches, set_values), signature_used,
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
