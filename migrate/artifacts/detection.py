"""What kind of artifact a path is (kind, resolved path): by file name, by what a directory holds."""
import os
import re

from migrate import model as m
from migrate.artifacts.checkpoints import checkpoint_exists, present_prefixes
from migrate.artifacts.parsing import GRAPH_SUFFIXES, SAVED_MODEL_FILES, SESSION_BUNDLE_META, require_file_or_dir
from migrate.errors import BadInput


def detect(path):
    """(kind, resolved path) for a user-given path; BadInput when it is no TF artifact."""
    if not os.path.exists(path):
        if checkpoint_exists(path) or os.path.isfile(path + ".meta"):
            return m.CHECKPOINT, path
        raise BadInput("no such file or directory", path, "check the path")
    require_file_or_dir(path)
    if os.path.isdir(path):
        return _detect_dir(path)
    base = os.path.basename(path)
    if base in SAVED_MODEL_FILES:
        return m.SAVED_MODEL, os.path.dirname(path) or "."
    if base.endswith(".meta"):
        return (m.SESSION_BUNDLE if base == SESSION_BUNDLE_META else m.CHECKPOINT), path[:-len(".meta")]
    if base.endswith(".index") or re.search(r"\.data-\d{5}-of-\d{5}$", base):
        return m.CHECKPOINT, re.sub(r"(\.index|\.data-\d{5}-of-\d{5})$", "", path)
    if base == "export" and os.path.isfile(os.path.join(os.path.dirname(path), SESSION_BUNDLE_META)):
        return m.SESSION_BUNDLE, path
    if os.path.isfile(path + ".meta"):  # V1 checkpoint file model.ckpt beside model.ckpt.meta
        return m.CHECKPOINT, path
    return m.FROZEN_GRAPH, path  # graph file: whether it holds variables is decided once parsed


def _detect_dir(path):
    if any(os.path.isfile(os.path.join(path, name)) for name in SAVED_MODEL_FILES):
        return m.SAVED_MODEL, path
    if os.path.isfile(os.path.join(path, SESSION_BUNDLE_META)):
        return m.SESSION_BUNDLE, os.path.join(path, "export")
    versions = [d for d in os.listdir(path) if d.isdigit() and os.path.isdir(os.path.join(path, d))]
    if versions:  # TF Serving layout: model_base/<version>/...
        newest = os.path.join(path, max(versions, key=int))
        kind, resolved = _detect_dir(newest)
        return kind, resolved
    if os.path.isfile(os.path.join(path, "checkpoint")) or present_prefixes(path):
        return m.CHECKPOINT, path
    graphs = [f for f in os.listdir(path) if f.endswith(GRAPH_SUFFIXES)]
    if len(graphs) == 1:
        return m.FROZEN_GRAPH, os.path.join(path, graphs[0])
    if graphs:
        raise BadInput("directory holds {} graph files ({})".format(len(graphs), ", ".join(sorted(graphs))), path,
                       "pass one of them")
    raise BadInput("directory holds no TF artifact (no saved_model.pb, checkpoint, .meta or graph file)", path,
                   "pass a checkpoint dir or prefix, a frozen .pb/.pbtxt or a SavedModel directory")
