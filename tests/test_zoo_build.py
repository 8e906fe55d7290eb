"""The legacy model zoo builds in the running TF, and its artifacts reproduce their goldens from disk."""
import json
import os

import numpy as np
import pytest

from legacy_models import zoo
from legacy_models.__main__ import main
from migrate import tfcompat

ALWAYS = ["mlp", "cnn_bn", "rnn", "resource_vars", "partitioned", "lookup", "two_signatures"]
AFTER_ESTIMATOR = ["detection", "two_softmax", "dropout"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp("zoo"))
    manifest = zoo.build(out_dir, log=lambda *args: None)
    return out_dir, manifest


def _entries(manifest, kinds):
    return [e for e in manifest["models"] if e["kind"] in kinds]


def _golden(out_dir, entry):
    with np.load(os.path.join(out_dir, entry["golden"])) as data:
        return dict((key, data[key]) for key in data.files)


def _assert_matches(golden, names, values):
    for name, value in zip(names, values):
        expected = golden[name]
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(value, expected, err_msg=name)


def test_manifest_lists_the_models_this_tf_supports(built):
    out_dir, manifest = built
    estimators = ["estimator", "estimator_examples"] if tfcompat.has_estimator() else []
    if tfcompat.has_estimator() and tfcompat.is_tf2():
        estimators.append("estimator_tft")  # tables in functions: TF 2.x writes them
    queues = ["estimator_queue"] if tfcompat.has_estimator() else []
    queues.append("dataset_iterator")
    if tfcompat.version() < (2, 0, 0):
        queues.append("keras_dropout")  # a TF 1.x Keras graph
    expected = ALWAYS + estimators + AFTER_ESTIMATOR + queues
    assert [e["name"] for e in manifest["models"]] == expected
    assert [s["name"] for s in manifest["skipped"]] == [
        name for name in ["estimator", "estimator_examples", "estimator_tft", "estimator_queue", "keras_dropout"]
        if name not in expected]
    assert manifest["tf_version"] == tfcompat.version_string()
    with open(os.path.join(out_dir, "manifest.json")) as handle:
        assert json.load(handle) == json.loads(json.dumps(manifest))


def test_goldens_hold_the_named_inputs_and_outputs(built):
    out_dir, manifest = built
    for entry in manifest["models"]:
        golden = _golden(out_dir, entry)
        assert sorted(golden) == sorted(list(entry["inputs"]) + entry["outputs"]), entry["name"]
        for name, spec in entry["inputs"].items():
            assert golden[name].ndim == len(spec["shape"]), name


def test_checkpoints_restored_from_meta_reproduce_goldens(built):
    out_dir, manifest = built
    tf1 = tfcompat.v1()
    for entry in _entries(manifest, ("checkpoint", "estimator")):
        golden = _golden(out_dir, entry)
        prefix = os.path.join(out_dir, entry["checkpoint"])
        graph = tfcompat.tf().Graph()
        with graph.as_default(), tf1.Session(graph=graph) as sess:
            tf1.train.import_meta_graph(prefix + ".meta").restore(sess, prefix)
            values = sess.run(entry["outputs"], dict((n, golden[n]) for n in entry["inputs"]))
        _assert_matches(golden, entry["outputs"], values)


def test_saved_models_load_and_reproduce_goldens(built):
    out_dir, manifest = built
    tf1 = tfcompat.v1()
    for entry in _entries(manifest, ("saved_model",)):
        golden = _golden(out_dir, entry)
        graph = tfcompat.tf().Graph()
        with graph.as_default(), tf1.Session(graph=graph) as sess:
            meta_graph = tf1.saved_model.loader.load(sess, ["serve"], os.path.join(out_dir, entry["path"]))
            assert sorted(meta_graph.signature_def) == sorted(entry["signatures"])
            values = sess.run(entry["outputs"], dict((n, golden[n]) for n in entry["inputs"]))
        _assert_matches(golden, entry["outputs"], values)


def test_features_match_the_graphs(built):
    _, manifest = built
    features = dict((e["name"], set(e["features"])) for e in manifest["models"])
    assert "ref_variables" in features["mlp"]
    assert {"resource_variables"} <= features["resource_vars"] and "ref_variables" not in features["resource_vars"]
    assert {"assert", "check_numerics", "switch_merge", "assign_sub", "fused_batch_norm"} <= features["cnn_bn"]
    assert {"tf1_while_loop", "tensor_array"} <= features["rnn"]
    assert not any("functional_control_flow" in f for f in features.values())
    assert {"hash_table", "asset_file"} <= features["lookup"]
    assert {"frozen_graph", "non_max_suppression", "tf1_while_loop", "multi_output"} <= features["detection"]
    assert {"frozen_graph", "two_softmax_sinks"} <= features["two_softmax"]
    assert {"dropout", "random_ops", "ref_variables"} <= features["dropout"]


def test_checkpoints_hold_slots_global_step_and_partitions(built):
    out_dir, manifest = built
    entries = dict((e["name"], e) for e in manifest["models"])

    def shapes(name):
        reader = tfcompat.checkpoint_reader(os.path.join(out_dir, entries[name]["checkpoint"]))
        return reader.get_variable_to_shape_map()

    mlp = shapes("mlp")
    assert "global_step" in mlp and "hidden/kernel/Momentum" in mlp
    assert shapes("partitioned")["embedding"] == [30, 6]  # saved as slices of one logical variable
    assert os.path.isfile(os.path.join(out_dir, "lookup", "saved_model", "assets", "vocab.txt"))


def test_cli_builds_only_the_named_models(tmp_path):
    assert main(["build", str(tmp_path), "--only", "mlp"]) == 0
    with open(str(tmp_path / "manifest.json")) as handle:
        assert [e["name"] for e in json.load(handle)["models"]] == ["mlp"]
    assert main(["build", str(tmp_path), "--only", "nope"]) == 2
