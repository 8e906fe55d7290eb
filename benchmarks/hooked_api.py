"""The api.freeze the streaming hook proposes (benchmarks only: migrate/api.py is not ours to edit).

`install()` replaces migrate.api.freeze with `freeze` below, so `python -m benchmarks.jobs migrate-cli --stream
freeze ...` measures the real CLI as it would run once the lead applies the change. The body is api.freeze as
of this writing with three changes, each marked `# STREAM`:
  1. the frozen graph goes to a stream.Target (a temp file beside the output) via freeze(..., stream_to=...)
  2. verification uses stream.check_pair (verify.check_pair for an in-memory result)
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


def install():
    api.freeze = freeze
