"""Find out what kind of TF artifact a path is and load it into a Model (protobufs only; nothing runs).

Kinds: checkpoint (dir, prefix, .meta, .index; V1 SaveSlices or V2), graph + checkpoint (Estimator model_dir
graph.pbtxt), frozen graph (.pb/.pbtxt), TF1 SavedModel (also a folder of numbered versions), session bundle
(export.meta + export checkpoint). Every failure the user can fix is a BadInput naming the path.

Modules: parsing.py (protobuf files), checkpoints.py (checkpoint files), detection.py (what a path is), one
loader per source kind (graph_file.py: frozen graph or graph + checkpoint; meta_graph.py: checkpoint with its
meta graph, Estimator model_dirs; saved_model.py; session_bundle.py), signatures.py.
"""
import os

from migrate import model as m
from migrate.artifacts.checkpoints import (check_checkpoint_matches, checkpoint_variables, damaged_checkpoint,
                                           latest_checkpoint, open_checkpoint, read_tensor)
from migrate.artifacts.detection import detect
from migrate.artifacts.graph_file import load_graph
from migrate.artifacts.meta_graph import load_checkpoint
from migrate.artifacts.parsing import (PROTOBUF_LIMIT, TEXT_SUFFIXES, looks_like_text, parse_proto, read_graph_def,
                                       read_saved_model, require_file_or_dir)
from migrate.artifacts.saved_model import load_saved_model
from migrate.artifacts.session_bundle import load_session_bundle
from migrate.artifacts.signatures import choose_signature
from migrate.errors import BadInput
from migrate.graph.validate import check_graph_structure

__all__ = ["PROTOBUF_LIMIT", "TEXT_SUFFIXES", "check_checkpoint_matches", "checkpoint_variables", "choose_signature",
           "damaged_checkpoint", "detect", "latest_checkpoint", "load", "load_checkpoint", "load_graph",
           "load_saved_model", "load_session_bundle", "looks_like_text", "open_checkpoint", "parse_proto",
           "read_graph_def", "read_saved_model", "read_tensor", "require_file_or_dir"]


def load(path, tag=None, signature=None, checkpoint=None):
    """Load any supported artifact into a Model (no TF session is created)."""
    kind, resolved = detect(path)
    if checkpoint and kind != m.FROZEN_GRAPH:
        raise BadInput("--checkpoint applies to a graph .pb/.pbtxt only; this {} names its own weights".format(
            kind.replace("_", " ")), path, "drop --checkpoint, or pass the checkpoint prefix itself as the model")
    notes = []
    if resolved != path and kind == m.SAVED_MODEL and os.path.dirname(resolved) == path.rstrip(os.sep):
        notes.append("using the newest version directory {}".format(os.path.basename(resolved)))
    if kind == m.SAVED_MODEL:
        model = load_saved_model(resolved, tag, signature)
    elif kind == m.SESSION_BUNDLE:
        model = load_session_bundle(resolved)
    elif kind == m.CHECKPOINT:
        model = load_checkpoint(resolved, notes)
    else:
        model = load_graph(resolved, checkpoint)
    check_graph_structure(model.graph_def, model.path)
    model.provenance = [note for note in notes if note not in model.provenance] + model.provenance  # once each
    return model
