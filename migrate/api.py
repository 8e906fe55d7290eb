"""The library entry points the CLI calls: load -> stage -> verify -> write, one function per verb."""
from migrate import artifacts, freeze as freeze_mod, io, verify
from migrate.graph.names import node_name


def _quiet(message):
    pass


def freeze(source, output, outputs=None, checkpoint=None, tag=None, signature=None, set_values=None, allow=None,
           deny=None, clear_devices=True, verify_result=True, inputs_npz=None, batch=1, seed=0, rtol=1e-5,
           atol=1e-5, force=False, progress=_quiet, **kwargs):
    """Freeze `source` into `output`; the frozen graph is verified against the original before it is written."""
    verify_result = kwargs.pop("verify", verify_result)
    io.check_output_path(output, [source], force)
    model = artifacts.load(source, tag=tag, signature=signature, checkpoint=checkpoint)
    for note in model.provenance:
        if not note.startswith("loaded"):
            progress("note: " + note)
    progress("freezing {} ({})".format(model.path, model.kind))
    frozen, record = freeze_mod.freeze(model, outputs=outputs, signature=signature, set_values=set_values,
                                       allow=allow, deny=deny, clear_devices=clear_devices)
    progress("outputs ({}): {}; {} variables -> constants; nodes {} -> {}{}".format(
        record.how_outputs, ", ".join(record.outputs), record.variables, record.nodes_before, record.nodes_after,
        "; switches " + ", ".join("{}={}".format(k, v) for k, v in sorted(record.switches.items()))
        if record.switches else ""))
    for note in record.notes:
        if not note.startswith("loaded"):
            progress("note: " + note)
    comparisons = None
    if verify_result:
        values = freeze_mod.parse_set_values(set_values)
        signature_used = record.how_outputs[len("signature "):] if record.how_outputs.startswith("signature") \
            else None
        feeds = verify.feeds_for(model, record.outputs, inputs_npz, batch, seed,
                                 dict((k, v) for k, v in record.switches.items()
                                      if k in values or _is_placeholder(model, k)), signature_used)
        comparisons = verify.check_pair(model, frozen, record.outputs, feeds, rtol, atol)
    if comparisons is None or all(row.ok for row in comparisons):
        io.write_graph(frozen.graph_def, output)
    return {"model": frozen, "record": record, "comparisons": comparisons, "nodes": len(frozen.graph_def.node),
            "outputs": record.outputs}


def _is_placeholder(model, name):
    return any(n.name == node_name(name) and n.op == "Placeholder" for n in model.graph_def.node)


DEMO_MODEL = "cnn_bn"


def demo(workdir, progress=_quiet):
    """Build a zoo model with the running TF, then inspect and freeze it and check it against its goldens."""
    import os
    import numpy as np
    from legacy_models import zoo
    from migrate import inspect_model
    zoo_dir = os.path.join(workdir, "zoo")
    progress("building zoo model '{}' with this TensorFlow into {}".format(DEMO_MODEL, zoo_dir))
    manifest = zoo.build(zoo_dir, only=[DEMO_MODEL], log=lambda message: progress("  " + message))
    entry = manifest["models"][0]
    source = os.path.join(zoo_dir, entry["path"])
    progress(inspect_model.to_text(inspect_model.inspect(source)))
    frozen_path = os.path.join(workdir, "frozen.pb")
    golden_path = os.path.join(zoo_dir, entry["golden"])
    result = freeze(source, frozen_path, outputs=entry["outputs"], inputs_npz=golden_path, progress=progress)
    with np.load(golden_path) as golden:
        feeds = dict((name, golden[name]) for name in entry["inputs"])
        actual = verify.run_model(artifacts.load(frozen_path), entry["outputs"], feeds)
        rows = verify.compare(dict((name, golden[name]) for name in entry["outputs"]), actual)
    return dict(result, golden_comparisons=rows, frozen_path=frozen_path, golden_tf=manifest["tf_version"])
