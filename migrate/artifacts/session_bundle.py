"""A session bundle (the pre-SavedModel export: export.meta + `export` checkpoint); its signatures are read
straight from the protobuf wire format (graph/wire.py)."""
import os

from migrate import model as m
from migrate.artifacts.checkpoints import checkpoint_exists, open_checkpoint
from migrate.artifacts.parsing import SESSION_BUNDLE_META, read_meta_graph
from migrate.errors import BadInput
from migrate.graph import wire


def load_session_bundle(prefix):
    directory = os.path.dirname(prefix)
    meta = read_meta_graph(os.path.join(directory, SESSION_BUNDLE_META))
    if not checkpoint_exists(prefix):
        raise BadInput("session bundle has export.meta but no `export` checkpoint", directory,
                       "copy the export / export-NNNNN-of-NNNNN / export.index files")
    open_checkpoint(prefix)
    try:
        signatures = session_bundle_signatures(meta)
    except (ValueError, KeyError, IndexError, UnicodeDecodeError) as exc:
        raise BadInput("session bundle's serving_signatures collection is corrupt ({})".format(exc),
                       os.path.join(directory, SESSION_BUNDLE_META), "re-export the session bundle")
    return m.Model(m.SESSION_BUNDLE, directory, meta.graph_def, meta_graph=meta, checkpoint=prefix,
                   signatures=signatures, producer=meta.meta_info_def.tensorflow_version or None,
                   provenance=["loaded session bundle " + directory])


# Session bundles keep signatures in the `serving_signatures` collection as a packed tensorflow.serving.Signatures
# proto, a type TF itself does not ship. We read its few fields straight from the protobuf wire format (no
# dependency on tensorflow-serving-api; the dynamic-message API of protobuf differs between 3.x and 7.x).
def _binding(data):
    return dict(wire.length_delimited_fields(data)).get(1, b"").decode("utf-8")


def _decode_signature(data):
    """Signature{regression=1{input=1,output=2}, classification=2{input=1,classes=2,scores=3}, generic=3{map=1}}."""
    for number, body in wire.length_delimited_fields(data):
        fields = list(wire.length_delimited_fields(body))
        if number == 1:
            return {"input": _binding(dict(fields)[1])}, {"output": _binding(dict(fields)[2])}, "regression"
        if number == 2:
            names = {1: "input", 2: "classes", 3: "scores"}
            bound = {names[n]: _binding(b) for n, b in fields if n in names}
            return {"input": bound.pop("input", "")}, bound, "classification"
        if number == 3:
            mapping = {}
            for _, entry in fields:
                entry_fields = dict(wire.length_delimited_fields(entry))
                mapping[entry_fields.get(1, b"").decode("utf-8")] = _binding(entry_fields.get(2, b""))
            return mapping, {}, "generic"
    return {}, {}, "unknown"


def session_bundle_signatures(meta):
    collection = meta.collection_def.get("serving_signatures") if "serving_signatures" in meta.collection_def \
        else None
    if collection is None or not collection.any_list.value:
        return {}
    data = collection.any_list.value[0].value
    named, signatures = {}, {}
    for number, body in wire.length_delimited_fields(data):
        if number == 1:
            inputs, outputs, method = _decode_signature(body)
            signatures["default"] = m.Signature("default", inputs, outputs, method)
        elif number == 2:
            entry = dict(wire.length_delimited_fields(body))
            named[entry.get(1, b"").decode("utf-8")] = _decode_signature(entry.get(2, b""))
    if "inputs" in named and "outputs" in named:  # the generic input/output pair TF Serving turns into "predict"
        signatures["serving_default"] = m.Signature("serving_default", named["inputs"][0], named["outputs"][0],
                                                    "generic")
    for name, (inputs, outputs, method) in named.items():
        if name not in ("inputs", "outputs"):
            signatures[name] = m.Signature(name, inputs, outputs, method)
    return signatures
