"""The registry of builders, the build loop, the on-disk self-check and manifest.json."""
import json
import os
import shutil
import time
from collections import OrderedDict

import numpy as np

from legacy_models import checkpoints, estimator, frozen_graphs, pipelines, savedmodels
from legacy_models.common import Skip, v1
from migrate import tfcompat

MODELS = OrderedDict([
    ("mlp", checkpoints.build_mlp),
    ("cnn_bn", checkpoints.build_cnn_bn),
    ("rnn", checkpoints.build_rnn),
    ("resource_vars", checkpoints.build_resource_vars),
    ("partitioned", checkpoints.build_partitioned),
    ("lookup", savedmodels.build_lookup),
    ("two_signatures", savedmodels.build_two_signatures),
    ("estimator", estimator.build_estimator),
    ("estimator_examples", estimator.build_estimator_examples),
    ("estimator_tft", estimator.build_estimator_tft),
    ("detection", frozen_graphs.build_detection),
    ("two_softmax", frozen_graphs.build_two_softmax),
    ("dropout", checkpoints.build_dropout),
    ("estimator_queue", pipelines.build_estimator_queue),
    ("dataset_iterator", pipelines.build_dataset_iterator),
    ("keras_dropout", pipelines.build_keras_dropout),
])

# Facts read from the graph on disk, so the manifest cannot claim what the artifact lacks. Not
# PlaceholderWithDefault: every Saver from TF 1.8 on makes one (save/filename), so builders claim their own.
OP_FEATURES = {
    "VariableV2": "ref_variables", "Variable": "ref_variables",
    "VarHandleOp": "resource_variables",
    "Switch": "switch_merge", "Merge": "switch_merge",
    "Enter": "tf1_while_loop", "Exit": "tf1_while_loop", "NextIteration": "tf1_while_loop",
    "If": "functional_control_flow", "StatelessIf": "functional_control_flow",
    "While": "functional_control_flow", "StatelessWhile": "functional_control_flow",
    "TensorArrayV3": "tensor_array",
    "Assert": "assert", "CheckNumerics": "check_numerics",
    "FusedBatchNorm": "fused_batch_norm", "FusedBatchNormV2": "fused_batch_norm",
    "FusedBatchNormV3": "fused_batch_norm",
    "AssignSub": "assign_sub",
    "HashTable": "hash_table", "HashTableV2": "hash_table",
    "NonMaxSuppressionV2": "non_max_suppression", "NonMaxSuppressionV3": "non_max_suppression",
    "RandomUniform": "random_ops",
    "ParseExample": "parse_example", "ParseExampleV2": "parse_example",
    "StatefulPartitionedCall": "function_calls", "PartitionedCall": "function_calls",
}

MANIFEST = "manifest.json"
GOLDEN = "golden.npz"


class UnknownModel(ValueError):
    """--only named a model the zoo does not have."""


class SelfCheckError(AssertionError):
    """The artifact on disk does not reproduce the goldens: the manifest would lie."""


def build(out_dir, only=None, log=print):
    """Build the selected models into out_dir, write manifest.json, return the manifest dict."""
    names = select(only)
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir)
    models, skipped = [], []
    for name in names:
        started = time.time()
        model_dir = _fresh_dir(out_dir, name)
        try:
            built = MODELS[name](model_dir, name)
        except Skip as exc:
            shutil.rmtree(model_dir)
            skipped.append({"name": name, "reason": str(exc)})
            log("skipped {}: {}".format(name, exc))
            continue
        models.append(_finish(out_dir, name, built))
        log("built {} ({}) in {:.1f}s".format(name, built.entry["kind"], time.time() - started))
    manifest = {"tf_version": tfcompat.version_string(), "python": tfcompat.python_version(),
                "models": models, "skipped": skipped}
    with open(os.path.join(out_dir, MANIFEST), "w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return manifest


def select(only):
    """Model names in registry order; `only` is None, a list or 'a,b'."""
    if not only:
        return list(MODELS)
    wanted = only.split(",") if isinstance(only, str) else list(only)
    wanted = [n.strip() for n in wanted if n.strip()]
    unknown = [n for n in wanted if n not in MODELS]
    if unknown:
        raise UnknownModel("unknown model(s) {}; known: {}".format(", ".join(unknown), ", ".join(MODELS)))
    return [n for n in MODELS if n in wanted]


def _fresh_dir(out_dir, name):
    """OUT_DIR/<name>, emptied: SavedModelBuilder refuses an existing directory, stale checkpoints mislead."""
    model_dir = os.path.join(out_dir, name)
    if os.path.exists(model_dir):
        shutil.rmtree(model_dir)
    os.makedirs(model_dir)
    return model_dir


def _finish(out_dir, name, built):
    """Write golden.npz, check the artifact against it, complete the manifest entry."""
    entry = dict(built.entry)
    entry["name"] = name
    entry["golden"] = "{}/{}".format(name, GOLDEN)
    entry["tf_version"] = tfcompat.version_string()
    arrays = dict(built.golden_inputs)
    arrays.update(built.golden_outputs)
    np.savez(os.path.join(out_dir, entry["golden"]), **arrays)
    op_types = self_check(out_dir, entry)
    detected = set(OP_FEATURES[t] for t in op_types if t in OP_FEATURES)
    entry["features"] = sorted(set(entry["features"]) | detected | _checkpoint_state_features(out_dir, entry))
    return entry


def _checkpoint_state_features(out_dir, entry):
    """Whether the `checkpoint` file holds absolute paths (stale once the directory moves) or relative ones."""
    if entry["kind"] in ("saved_model", "frozen_graph"):
        return set()
    with open(os.path.join(out_dir, entry["path"], "checkpoint")) as handle:
        paths = [line.split(":", 1)[1].strip().strip('"') for line in handle if ":" in line]
    absolute = any(os.path.isabs(p) for p in paths)
    return {"checkpoint_state_absolute_paths" if absolute else "checkpoint_state_relative_paths"}


def load_golden(out_dir, entry):
    with np.load(os.path.join(out_dir, entry["golden"])) as data:
        return dict((key, data[key]) for key in data.files)


def self_check(out_dir, entry):
    """Run the artifact from disk in a fresh Graph on the golden inputs; raise SelfCheckError on mismatch.

    Returns the set of op types in the loaded graph.
    """
    golden = load_golden(out_dir, entry)
    feed = dict((name, golden[name]) for name in entry["inputs"])
    path = os.path.join(out_dir, entry["path"])
    runner = {"saved_model": _run_saved_model, "frozen_graph": _run_frozen_graph}.get(entry["kind"], _run_checkpoint)
    values, op_types = runner(path, entry, feed)
    for name, value in zip(entry["outputs"], values):
        compare(entry["name"], name, golden[name], value)
    return op_types


def _run_checkpoint(model_dir, entry, feed):
    """import_meta_graph + restore of the latest checkpoint, as a freeze tool would."""
    tf1 = v1()
    prefix = tf1.train.latest_checkpoint(model_dir)
    if prefix is None or not entry["checkpoint"].endswith(os.path.basename(prefix)):
        raise SelfCheckError("{}: latest checkpoint {} is not {}".format(
            entry["name"], prefix, entry["checkpoint"]))
    graph = tfcompat.tf().Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        saver = tf1.train.import_meta_graph(prefix + ".meta")
        saver.restore(sess, prefix)
        values = sess.run(entry["outputs"], feed)
        return values, set(op.type for op in graph.get_operations())


def _run_frozen_graph(path, entry, feed):
    """A fresh Graph, import_graph_def of the file, as a user of a frozen graph would."""
    tf1 = v1()
    graph_def = tf1.GraphDef()
    with open(path, "rb") as handle:
        graph_def.ParseFromString(handle.read())
    graph = tfcompat.tf().Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        tf1.import_graph_def(graph_def, name="")
        values = sess.run(entry["outputs"], feed)
        return values, set(op.type for op in graph.get_operations())


def _run_saved_model(export_dir, entry, feed):
    """loader.load (which remaps assets and runs the init op), then check the signatures on disk."""
    tf1 = v1()
    graph = tfcompat.tf().Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        meta_graph = tf1.saved_model.loader.load(sess, entry["tags"], export_dir)
        _check_signatures(entry, meta_graph)
        values = sess.run(entry["outputs"], feed)
        return values, set(op.type for op in graph.get_operations())


def _check_signatures(entry, meta_graph):
    for key, described in entry["signatures"].items():
        if key not in meta_graph.signature_def:
            raise SelfCheckError("{}: signature {} missing".format(entry["name"], key))
        written = meta_graph.signature_def[key]
        for side in ("inputs", "outputs"):
            on_disk = dict((k, v.name) for k, v in getattr(written, side).items())
            if on_disk != described[side]:
                raise SelfCheckError("{}: signature {} {} are {}, manifest says {}".format(
                    entry["name"], key, side, on_disk, described[side]))


def compare(model, tensor, expected, actual):
    actual = np.asarray(actual)
    if expected.shape != actual.shape:
        raise SelfCheckError("{} {}: shape {} != golden {}".format(model, tensor, actual.shape, expected.shape))
    if expected.dtype.kind in "fc":
        ok = np.allclose(actual, expected, rtol=1e-5, atol=1e-6)
    else:
        ok = np.array_equal(actual, expected)
    if not ok:
        diff = np.max(np.abs(actual.astype("float64") - expected.astype("float64")))
        raise SelfCheckError("{} {}: differs from golden (max abs diff {})".format(model, tensor, diff))
