"""`migrate verify` (two artifacts of any kinds on the same inputs) and `migrate onnx` (which checks its
ONNX model with it)."""
from migrate import artifacts, options as results, pipeline, safety, verify
from migrate.freezing import rewrites
from migrate.verbs import common
from migrate.verbs.optimize import optimize


@common.taking_options
@common.memory_named
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


@common.taking_options
@common.memory_named
def onnx(source, output, **kwargs):
    """SRC -> optimized frozen graph -> tf2onnx -> onnxruntime checked against the source -> model.onnx
    (migrate/onnx/export.py; needs the onnx extra)."""
    from migrate.onnx import export as onnx_export
    return onnx_export.export_onnx(source, output, verbs=onnx_verbs(), **kwargs)


def onnx_verbs():
    from migrate.onnx import export as onnx_export
    return onnx_export.Verbs(optimize=optimize, verify_artifacts=verify_artifacts)
