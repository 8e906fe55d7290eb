"""Builders of TF1 SavedModels written with v1.saved_model.builder.SavedModelBuilder (tag "serve")."""
import os
import shutil
import tempfile

import numpy as np

from legacy_models.common import (BATCH, GOLDEN_ROWS, Built, dense, global_step, graph_session, input_specs, rng,
                                  run_golden, train, v1)
from migrate import tfcompat

EXPORT_SUBDIR = "saved_model"
VOCAB = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran"]


def _signature(inputs, outputs):
    """A predict SignatureDef and its manifest description ({key: tensor name})."""
    tf1 = v1()
    signature = tf1.saved_model.signature_def_utils.predict_signature_def(inputs=inputs, outputs=outputs)
    described = {"method_name": signature.method_name,
                 "inputs": dict((k, t.name) for k, t in inputs.items()),
                 "outputs": dict((k, t.name) for k, t in outputs.items())}
    return signature, described


def _export(sess, export_dir, signatures, **init_ops):
    """SavedModelBuilder with the graph's asset files; init_ops is legacy_init_op= or main_op=."""
    tf1 = v1()
    builder = tf1.saved_model.builder.SavedModelBuilder(export_dir)
    builder.add_meta_graph_and_variables(
        sess, [tf1.saved_model.tag_constants.SERVING], signature_def_map=signatures,
        assets_collection=tf1.get_collection(tf1.GraphKeys.ASSET_FILEPATHS), **init_ops)
    builder.save()


def _main_op():
    """main_op without variable initialization.

    v1.saved_model.main_op.main_op() also runs global_variables_initializer in TF 1.x, and the loader runs
    main_op AFTER restoring, so it would reset every trained weight (main_op_with_restore exists for that).
    """
    tf1 = v1()
    return tf1.group(tf1.local_variables_initializer(), tf1.tables_initializer(), name="main_op")


def _entry(name, inputs, signatures, features, default):
    outputs = sorted(set(t for s in signatures.values() for t in s["outputs"].values()))
    return {"kind": "saved_model", "path": "{}/{}".format(name, EXPORT_SUBDIR), "tags": ["serve"],
            "inputs": input_specs(inputs), "outputs": outputs, "signature": default,
            "signatures": signatures, "features": list(features)}


def _vocab_table(vocab_path):
    """words -> line number in vocab_path, len(VOCAB) for unknown words (the OOV row of the embedding)."""
    api = tfcompat.lookup_api()
    tf1 = v1()
    initializer = api.TextFileInitializer(vocab_path, tf1.string, api.TextFileIndex.WHOLE_LINE,
                                          tf1.int64, api.TextFileIndex.LINE_NUMBER)
    return api.HashTable(initializer, default_value=len(VOCAB))


def build_lookup(model_dir, name):
    """words[None] string -> vocabulary-file table -> embedding -> scores[2]; the vocabulary is an asset.

    The vocabulary is written to a temporary directory that is deleted after export, so loading the
    SavedModel only works if the asset was really copied into saved_model/assets and remapped on load.
    """
    tf1 = v1()
    train_words = np.array([w.encode() for w in VOCAB + ["zebra", "the"]] * 2)
    train_y = rng(51).randn(len(train_words), 2).astype("float32")
    golden = {"words:0": np.array([b"cat", b"unknown", b"mat", b"the", b"ran"])}
    source = tempfile.mkdtemp(prefix="legacy_vocab_")
    try:
        vocab_path = os.path.join(source, "vocab.txt")
        with open(vocab_path, "w") as handle:
            handle.write("\n".join(VOCAB) + "\n")
        with graph_session() as sess:
            words = tf1.placeholder(tf1.string, [None], name="words")
            ids = tf1.identity(_vocab_table(vocab_path).lookup(words), name="ids")
            table = tf1.get_variable("embedding", [len(VOCAB) + 1, 4],
                                     initializer=tf1.random_normal_initializer(stddev=0.5))
            scores = tf1.identity(dense(tf1.nn.embedding_lookup(table, ids), 2, "head"), name="scores")
            loss = tf1.reduce_mean(tf1.square(scores - train_y))
            train_op = tf1.train.GradientDescentOptimizer(0.1).minimize(loss, global_step=global_step())
            sess.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
            train(sess, train_op, {words: train_words})
            outputs = run_golden(sess, [words], [ids, scores], golden)
            signature, described = _signature({"words": words}, {"ids": ids, "scores": scores})
            _export(sess, os.path.join(model_dir, EXPORT_SUBDIR), {"serving_default": signature},
                    legacy_init_op=tf1.group(tf1.tables_initializer(), name="legacy_init_op"))
    finally:
        shutil.rmtree(source)
    entry = _entry(name, [words], {"serving_default": described},
                   ["hash_table_from_vocabulary_file", "asset_file", "legacy_init_op", "string_input",
                    "embedding_lookup", "global_step"], "serving_default")
    return Built(entry, golden, outputs)


def build_two_signatures(model_dir, name):
    """x[None, 6] -> 8 relu -> logits[3]; signatures serving_default (probabilities) and scores (logits,
    hidden); main_op instead of legacy_init_op; RMSProp slots are saved in variables/ too."""
    tf1 = v1()
    train_x = rng(61).randn(BATCH, 6).astype("float32")
    train_labels = train_x[:, :3].argmax(axis=1)
    golden = {"x:0": rng(62).randn(GOLDEN_ROWS, 6).astype("float32")}
    with graph_session() as sess:
        x = tf1.placeholder(tf1.float32, [None, 6], name="x")
        labels = tf1.placeholder(tf1.int64, [None], name="labels")
        hidden = tf1.identity(dense(x, 8, "layer1", tf1.nn.relu), name="hidden")
        logits = tf1.identity(dense(hidden, 3, "out"), name="logits")
        probs = tf1.nn.softmax(logits, name="probabilities")
        loss = tf1.reduce_mean(tf1.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        train_op = tf1.train.RMSPropOptimizer(0.01).minimize(loss, global_step=global_step())
        sess.run(tf1.global_variables_initializer())
        train(sess, train_op, {x: train_x, labels: train_labels})
        outputs = run_golden(sess, [x], [probs, logits, hidden], golden)
        default, default_described = _signature({"x": x}, {"probabilities": probs})
        scores, scores_described = _signature({"x": x}, {"logits": logits, "hidden": hidden})
        _export(sess, os.path.join(model_dir, EXPORT_SUBDIR), {"serving_default": default, "scores": scores},
                main_op=_main_op())
    entry = _entry(name, [x], {"serving_default": default_described, "scores": scores_described},
                   ["multiple_signatures", "main_op", "global_step", "optimizer_slots:RMSProp"],
                   "serving_default")
    return Built(entry, golden, outputs)
