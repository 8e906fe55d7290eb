"""A checkpoint with its meta graph (a directory, a prefix, a .meta or .index file; Estimator model_dirs too)."""
import os

from migrate import model as m
from migrate.artifacts.checkpoints import checkpoint_exists, latest_checkpoint, open_checkpoint, present_parts
from migrate.artifacts.graph_file import load_graph
from migrate.artifacts.parsing import read_meta_graph
from migrate.artifacts.signatures import signatures_from_meta
from migrate.errors import BadInput


def load_checkpoint(path, notes):
    prefix = latest_checkpoint(path, notes) if os.path.isdir(path) else path
    if prefix is None:
        raise BadInput("no checkpoint in directory", path, "pass a directory with .index/.data or .meta files")
    meta_path = prefix + ".meta"
    if not os.path.isfile(meta_path):
        directory = os.path.dirname(prefix)
        graphs = [os.path.join(directory, g) for g in ("graph.pbtxt", "graph.pb") if
                  os.path.isfile(os.path.join(directory, g))]
        if graphs:  # Estimator model_dirs keep only the first .meta; graph.pbtxt describes them all
            return load_graph(graphs[0], prefix)
        raise BadInput("checkpoint has no meta graph ({} is missing)".format(os.path.basename(meta_path)), prefix,
                       "pass the graph with `GRAPH.pbtxt --checkpoint PREFIX`")
    if not checkpoint_exists(prefix):
        partial = [name for name in present_parts(prefix) if not name.endswith(".meta")]
        raise BadInput("meta graph found but checkpoint data is missing ({})".format(
            "no .index file; present: " + ", ".join(partial) if partial else "no .index or data file"), prefix,
            "copy the .index and .data files beside the .meta")
    meta = read_meta_graph(meta_path)
    open_checkpoint(prefix)
    return m.Model(m.CHECKPOINT, prefix, meta.graph_def, meta_graph=meta, checkpoint=prefix,
                   signatures=signatures_from_meta(meta), producer=meta.meta_info_def.tensorflow_version or None,
                   tags=list(meta.meta_info_def.tags), provenance=notes + ["loaded checkpoint " + prefix])
