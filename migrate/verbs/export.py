"""`migrate export`: a SavedModel (tf2 or tf1) written, reloaded and compared signature by signature."""
import os

from migrate import artifacts, freezing, io, options as results, pipeline, safety, tfcompat, verify
from migrate.freezing import rewrites
from migrate.freezing.streaming import target as stream_target
from migrate.graph import files as graph_files
from migrate.verification import runners
from migrate.verbs import common


@common.taking_options
@common.memory_named
def export(source, output, fmt=None, outputs=None, tag=None, signature=None, checkpoint=None,
           verify_result=True, inputs_npz=None, batch=1, seed=0, rtol=1e-5, atol=1e-5, force=False,
           allow_unsafe=False, signatures=None, progress=common.quiet, set_values=None, input_at=None):
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
        frozen, _ = common.with_switches(model, set_values, progress)
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
            comparisons = check_signatures(model, signatures, target, output, inputs_npz, batch, seed, rtol, atol,
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


def check_signatures(model, signatures, directory, where, inputs_npz, batch, seed, rtol, atol, switches=None,
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
