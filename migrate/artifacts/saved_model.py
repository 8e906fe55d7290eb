"""A TF1 SavedModel directory (also a folder of numbered versions): its meta graph for the tags, signatures,
assets and variables."""
import os

from migrate import model as m
from migrate import opsets, tfcompat
from migrate.artifacts.checkpoints import checkpoint_exists, is_inside
from migrate.artifacts.parsing import protos, read_saved_model
from migrate.artifacts.signatures import choose_signature, signatures_from_meta
from migrate.errors import BadInput


def load_saved_model(directory, tag=None, signature=None):
    saved, path = read_saved_model(directory)
    meta = _pick_meta_graph(saved, tag, path)
    signatures = signatures_from_meta(meta)
    variables = os.path.join(directory, "variables", "variables")
    has_variables = any(node.op in opsets.FREEZABLE_VARIABLE_OPS for node in meta.graph_def.node)
    if has_variables and not checkpoint_exists(variables):
        raise BadInput("SavedModel graph has variables but variables/ holds no checkpoint", directory,
                       "copy the SavedModel's variables/ directory too")
    model = m.Model(m.SAVED_MODEL, directory, meta.graph_def, meta_graph=meta,
                    checkpoint=variables if has_variables else None, signatures=signatures,
                    producer=meta.meta_info_def.tensorflow_version or None, tags=list(meta.meta_info_def.tags),
                    assets=_assets(directory, meta), saved_model_dir=directory,
                    provenance=["loaded SavedModel {} (tags {})".format(directory, ",".join(
                        meta.meta_info_def.tags))])
    if signature is not None:
        choose_signature(model, signature)
    return model


def _pick_meta_graph(saved, tag, path):
    available = [",".join(mg.meta_info_def.tags) for mg in saved.meta_graphs]
    if tag is None:
        serve = [mg for mg in saved.meta_graphs if "serve" in mg.meta_info_def.tags]
        return (serve or list(saved.meta_graphs))[0]
    wanted = set(t.strip() for t in tag.split(","))
    for mg in saved.meta_graphs:
        if set(mg.meta_info_def.tags) == wanted:
            return mg
    raise BadInput("no meta graph with tags '{}' (available: {})".format(tag, "; ".join(available)), path,
                   "pass one of the available tag sets with --tag")


def _assets(directory, meta):
    """{tensor name: asset file path}: from asset_file_def (TF >= 1.15) or the saved_model_assets collection."""
    _, meta_graph_pb2, _ = protos()
    asset_dir = os.path.join(directory, "assets")
    defs = tfcompat.asset_file_defs(meta)
    if "saved_model_assets" in meta.collection_def:
        for packed in meta.collection_def["saved_model_assets"].any_list.value:
            asset = meta_graph_pb2.AssetFileDef()
            asset.ParseFromString(packed.value)
            defs.append(asset)
    for asset in defs:  # TF's loader feeds join(assets/, filename): an absolute or ../ name reads any file
        if not is_inside(asset_dir, asset.filename):
            raise BadInput("asset '{}' points outside the SavedModel's assets/ directory".format(asset.filename),
                           directory, "re-export the SavedModel with its asset files inside assets/")
    return {asset.tensor_info.name: os.path.join(asset_dir, asset.filename) for asset in defs}
