"""Models whose graphs read their inputs the way TF1 training jobs did, and a frozen Keras graph.

estimator_queue   an Estimator model_dir trained with tf.estimator.inputs.numpy_input_fn: the TRAIN meta graph
                  reads features from a RandomShuffleQueue through QueueDequeueManyV2 (nothing to feed)
dataset_iterator  a checkpoint whose graph reads (features, labels) from a tf.data one-shot Iterator GetNext
keras_dropout     a frozen graph (TF's own graph_util.convert_variables_to_constants) of a tf.keras classifier
                  with Dropout: keras_learning_phase (PlaceholderWithDefault False) drives a tf.cond

The manifest's inputs are the tensors where data enters the model (a dequeue's or GetNext's component);
goldens are computed in inference mode (estimator.predict on its own PREDICT graph; the others with the
learning phase False) and the self-check feeds those tensors after restoring from disk.
"""
import itertools
import os

import numpy as np

from legacy_models.common import (BATCH, GOLDEN_ROWS, SEED, Built, Skip, checkpoint_entry, dense, global_step,
                                  graph_session, rng, run_golden, train_and_save, v1)
from legacy_models.estimator import _model_fn as estimator_model_fn  # the same model_fn, fed by a queue
from migrate import tfcompat

ESTIMATOR_SUBDIR = "model_dir"
TRAIN_STEPS = 6


def _numpy_input_fn():
    tf1 = v1()
    inputs = getattr(getattr(tf1.estimator, "inputs", None), "numpy_input_fn", None)
    if inputs is None:
        raise Skip("TF {} has no tf.estimator.inputs.numpy_input_fn".format(tfcompat.version_string()))
    return inputs


def _dequeue_tensor(meta_path, component):
    """Name of the dequeue component the TRAIN graph's model reads (found in the meta graph on disk)."""
    from tensorflow.core.protobuf import meta_graph_pb2
    meta = meta_graph_pb2.MetaGraphDef()
    with open(meta_path, "rb") as handle:
        meta.ParseFromString(handle.read())
    names = [n.name for n in meta.graph_def.node if n.op.startswith("QueueDequeue")]
    if len(names) != 1:
        raise AssertionError("expected one dequeue in {}, found {}".format(meta_path, names))
    return "{}:{}".format(names[0], component)


def build_estimator_queue(model_dir, name):
    if not tfcompat.has_estimator():
        raise Skip("TF {} has no tf.estimator (removed in TF 2.16)".format(tfcompat.version_string()))
    tf1 = v1()
    numpy_input_fn = _numpy_input_fn()
    train_x = rng(81).randn(BATCH, 4).astype("float32")
    train_y = train_x[:, :1] * 2.0 - train_x[:, 1:2]
    golden_x = rng(82).randn(GOLDEN_ROWS, 4).astype("float32")
    config = tf1.estimator.RunConfig(tf_random_seed=SEED, save_summary_steps=TRAIN_STEPS,
                                     log_step_count_steps=TRAIN_STEPS)
    estimator = tf1.estimator.Estimator(estimator_model_fn, model_dir=os.path.join(model_dir, ESTIMATOR_SUBDIR),
                                        config=config)
    with tfcompat.tf1_control_flow():
        # batch_size = GOLDEN_ROWS: QueueDequeueManyV2's outputs have that static batch (feeding them in the
        # self-check must fit); migrate's placeholders leave the batch open.
        estimator.train(numpy_input_fn({"x": train_x}, train_y, batch_size=GOLDEN_ROWS, num_epochs=None,
                                       shuffle=True),
                        steps=TRAIN_STEPS)
        predict_fn = numpy_input_fn({"x": golden_x}, batch_size=GOLDEN_ROWS, num_epochs=1, shuffle=False)
        scores = next(itertools.islice(estimator.predict(predict_fn, yield_single_examples=False), 1))["scores"]
    prefix = estimator.latest_checkpoint()
    # numpy_input_fn enqueues (row index, x, y): the model reads component 1.
    x_tensor = _dequeue_tensor(prefix + ".meta", 1)
    entry = {"kind": "estimator", "path": "{}/{}".format(name, ESTIMATOR_SUBDIR),
             "checkpoint": "{}/{}/{}".format(name, ESTIMATOR_SUBDIR, os.path.basename(prefix)),
             "inputs": {x_tensor: {"dtype": "float32", "shape": [GOLDEN_ROWS, 4]}}, "outputs": ["scores:0"],
             "signature": None, "meta_graph_mode": "train",
             "features": ["estimator", "numpy_input_fn", "input_queue", "graph_pbtxt", "v2_checkpoint",
                          "global_step", "optimizer_slots:Adagrad"]}
    return Built(entry, {x_tensor: golden_x}, {"scores:0": np.asarray(scores)})


def _one_shot_iterator(dataset):
    tf1 = v1()
    make = getattr(getattr(tf1, "data", None), "make_one_shot_iterator", None)  # TF >= 1.13
    return make(dataset) if make is not None else dataset.make_one_shot_iterator()


def build_dataset_iterator(model_dir, name):
    """tf.data pipeline -> GetNext -> 8 relu -> logits[3] + softmax; trained from the iterator, no feeds."""
    tf1 = v1()
    train_x = rng(91).randn(BATCH, 6).astype("float32")
    train_y = (train_x.dot(rng(92).randn(6, 3))).argmax(axis=1).astype("int64")
    golden = rng(93).randn(GOLDEN_ROWS, 6).astype("float32")
    with graph_session() as sess:
        dataset = tf1.data.Dataset.from_tensor_slices((train_x, train_y)).repeat().batch(4)
        features, labels = _one_shot_iterator(dataset).get_next()
        hidden = dense(features, 8, "hidden", tf1.nn.relu)
        logits = tf1.identity(dense(hidden, 3, "logits_dense"), name="logits")
        probs = tf1.nn.softmax(logits, name="probabilities")
        loss = tf1.reduce_mean(tf1.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        train_op = tf1.train.AdamOptimizer(0.05).minimize(loss, global_step=global_step())
        sess.run(tf1.global_variables_initializer())
        prefix = train_and_save(sess, train_op, None, model_dir)
        outputs = run_golden(sess, [features], [probs], {features.name: golden})
        entry = checkpoint_entry(name, prefix, [features], [probs],
                                 ["tf_data_iterator", "one_shot_iterator", "ref_variables", "v2_checkpoint",
                                  "global_step", "optimizer_slots:Adam"])
    return Built(entry, {features.name: golden}, outputs)


FROZEN_FILE = "frozen.pb"


def build_keras_dropout(model_dir, name):
    """tf.keras Dense(8, relu) -> Dropout(0.5) -> Dense(3, softmax), frozen by TF's graph_util."""
    tf1 = v1()
    keras = getattr(tfcompat.tf(), "keras", None)
    if keras is None or tfcompat.version() >= (2, 0, 0):
        raise Skip("TF {}: tf.keras builds no v1 learning-phase cond here (the artifact is a TF 1.x "
                   "Keras graph)".format(tfcompat.version_string()))
    golden_x = rng(101).randn(GOLDEN_ROWS, 4).astype("float32")
    with graph_session() as sess:
        keras.backend.set_session(sess)
        learning_phase = keras.backend.learning_phase()
        model = keras.models.Sequential([keras.layers.Dense(8, activation="relu", input_shape=(4,)),
                                         keras.layers.Dropout(0.5),
                                         keras.layers.Dense(3, activation="softmax")])
        sess.run(tf1.global_variables_initializer())
        frozen = tf1.graph_util.convert_variables_to_constants(sess, sess.graph.as_graph_def(),
                                                              [model.output.op.name])
        outputs = {model.output.name: sess.run(model.output, {model.input: golden_x, learning_phase: False})}
        inputs = {model.input.name: {"dtype": "float32", "shape": [None, 4]}}
        output_names = [model.output.name]
        golden = {model.input.name: golden_x}
        phase = learning_phase.op.name
    with open(os.path.join(model_dir, FROZEN_FILE), "wb") as handle:
        handle.write(frozen.SerializeToString())
    entry = {"kind": "frozen_graph", "path": "{}/{}".format(name, FROZEN_FILE), "inputs": inputs,
             "outputs": output_names, "signature": None, "learning_phase": phase,
             "features": ["frozen_graph", "keras", "dropout", "learning_phase", "frozen_by_graph_util"]}
    return Built(entry, golden, outputs)
