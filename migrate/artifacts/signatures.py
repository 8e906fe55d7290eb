"""Signatures of a meta graph (SignatureDefs) as Model signatures, and choosing one by name."""
from migrate import model as m
from migrate import tfcompat
from migrate.errors import BadInput


def choose_signature(model, name):
    if name not in model.signatures:
        raise BadInput("no signature '{}' (available: {})".format(name, ", ".join(sorted(model.signatures)) or
                                                                    "none"), model.path,
                       "pass one of them with --signature")
    sig = model.signatures[name]
    model.inputs = sorted(sig.inputs.values())
    model.outputs = sorted(sig.outputs.values())
    return sig


def signatures_from_meta(meta):
    signatures = {}
    tf = tfcompat.tf()
    for name, sig in meta.signature_def.items():
        specs = {}
        for info in sig.inputs.values():
            shape = info.tensor_shape
            dims = None if shape.unknown_rank else [d.size if d.size >= 0 else None for d in shape.dim]
            specs[info.name] = (tf.as_dtype(info.dtype).name, dims)
        signatures[name] = m.Signature(name, {k: v.name for k, v in sig.inputs.items() if v.name},
                                       {k: v.name for k, v in sig.outputs.items() if v.name}, sig.method_name,
                                       specs)
    return signatures
