"""`migrate verify` (two artifacts of any kinds on the same inputs) and `migrate onnx` (which checks its
ONNX model with it)."""
from migrate import artifacts, options as results, pipeline, safety, verify
from migrate.errors import BadInput
from migrate.freezing import rewrites
from migrate.verbs import common
from migrate.verbs.optimize import optimize


@common.taking_options
@common.memory_named
def verify_artifacts(a_path, b_path, outputs=None, signature=None, inputs_npz=None, batch=1, seed=0, rtol=1e-5,
                     atol=1e-5, allow_unsafe=False, set_values=None, input_at=None, input_shapes=None):
    """Run two artifacts of any kinds on the same inputs: ([Comparison], notes). Train/infer switches and
    --set values are fed to both sides (as freeze sets them); an input pipeline is cut as freeze cuts it.
    input_shapes: {tensor: dims} the inputs are generated with where A's graph leaves them unknown (`migrate
    onnx`: the shapes its conversion used, --static --input-shape)."""
    notes = []
    try:
        a = _endpoint(a_path, outputs, signature, input_at, notes.append)
    except BadInput:  # A's outputs ambiguous (an Estimator model_dir): B may record them
        ends = _borrowed(a_path, b_path, outputs, signature, input_at, notes)
        if ends is None:
            raise
    else:
        ends = [a, _endpoint(b_path, outputs, signature, input_at, notes.append, partner=a)]
        borrowed_notes = []
        if _inferred(a, outputs) and not verify.match_names(a.outputs, ends[1].outputs):  # inferred wrong
            borrowed = _borrowed(a_path, b_path, outputs, signature, input_at, borrowed_notes)
            ends, notes = (borrowed, borrowed_notes) if borrowed else (ends, notes)
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
        end.specs.update((tensor, (end.specs[tensor][0], dims)) for tensor, dims in (input_shapes or {}).items()
                         if tensor in end.specs and dims is not None)
    rows, pair_notes = verify.verify_pair(ends[0], ends[1], inputs_npz, batch, seed, rtol, atol,
                                          extra_feeds=dict((k + ":0", v) for k, v in switches.items()))
    if switches:
        notes.append("switches fed to both: " + ", ".join("{}={}".format(k, v) for k, v in sorted(switches.items())))
    return results.VerifyResult(rows, [n[len("note: "):] if n.startswith("note: ") else n for n in notes] +
                                pair_notes)


def _inferred(end, outputs):
    """True when the endpoint's outputs were inferred: no --outputs, no signature, none recorded."""
    return not outputs and end.signature is None and not (end.model.kind == "frozen_graph" and end.model.outputs)


def _borrowed(a_path, b_path, outputs, signature, input_at, notes):
    """[A, B] where A takes B's outputs: B a graph migrate wrote (its outputs recorded) or a model with one
    signature (or the --signature one); None when --outputs was given, B names none of its own, or A has not
    got them. notes: A's loading notes and the one saying where the outputs came from are added."""
    if outputs:  # the user's names: what fails with them is the user's to fix
        return None
    b_notes, a_notes = [], []
    try:
        b = _endpoint(b_path, None, signature, input_at, b_notes.append)
        if _inferred(b, outputs) or b.model.kind == "onnx":
            return None
        a = _endpoint(a_path, sorted(b.outputs), signature, input_at, a_notes.append, partner=b)
    except BadInput:
        return None
    notes.extend(a_notes + b_notes)
    notes.append("outputs from {}: {}".format("B's signature " + b.signature if b.signature else "B's record",
                                              ", ".join(sorted(b.outputs))))
    return [a, b]


def _endpoint(path, outputs, signature, input_at, progress, partner=None):
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
