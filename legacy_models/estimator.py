"""An Estimator model_dir: custom model_fn from plain ops, trained a few steps.

An Estimator's model.ckpt-N.meta holds the TRAIN graph, whose features come from the input_fn. Legacy
input_fns read queues or tf.data, which nothing can feed; this one returns
`v1.placeholder_with_default(training data, name="x")`, so training runs unfed while the meta graph keeps a
feedable x:0. The model_fn names its prediction "scores". Goldens come from estimator.predict (its own
PREDICT graph); the build's self-check then restores the TRAIN meta graph, feeds x:0 and must get them back.
"""
import itertools
import os

from legacy_models.common import BATCH, GOLDEN_ROWS, SEED, Built, Skip, dense, rng, v1
from migrate import tfcompat

MODEL_SUBDIR = "model_dir"
TRAIN_STEPS = 6


def _input_fn(x, y=None):
    tf1 = v1()

    def input_fn():
        features = {"x": tf1.placeholder_with_default(x, [None, 4], name="x")}
        return features if y is None else (features, tf1.constant(y))
    return input_fn


def _model_fn(features, labels, mode):
    tf1 = v1()
    # Same legacy ref variables as the other models, also under TF 2.x where resource is the default.
    with tf1.variable_scope(tf1.get_variable_scope(), use_resource=False):
        hidden = dense(features["x"], 8, "hidden", tf1.nn.relu)
        scores = tf1.identity(dense(hidden, 1, "out"), name="scores")
        if mode == tf1.estimator.ModeKeys.PREDICT:
            return tf1.estimator.EstimatorSpec(mode, predictions={"scores": scores})
        loss = tf1.reduce_mean(tf1.square(scores - labels))
        train_op = tf1.train.AdagradOptimizer(0.3).minimize(loss, global_step=tf1.train.get_global_step())
        return tf1.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


def _predict_once(estimator, x):
    """One batch of predictions; the input never ends, so the generator is closed after the first run."""
    predictions = estimator.predict(_input_fn(x), yield_single_examples=False)
    try:
        return next(itertools.islice(predictions, 1))
    finally:
        predictions.close()


def build_estimator(model_dir, name):
    if not tfcompat.has_estimator():
        raise Skip("TF {} has no tf.estimator (removed in TF 2.16)".format(tfcompat.version_string()))
    tf1 = v1()
    train_x = rng(71).randn(BATCH, 4).astype("float32")
    train_y = train_x[:, :1] * 2.0 - train_x[:, 1:2]
    golden = {"x:0": rng(72).randn(GOLDEN_ROWS, 4).astype("float32")}
    config = tf1.estimator.RunConfig(tf_random_seed=SEED, save_summary_steps=TRAIN_STEPS,
                                     log_step_count_steps=TRAIN_STEPS)
    estimator = tf1.estimator.Estimator(_model_fn, model_dir=os.path.join(model_dir, MODEL_SUBDIR),
                                        config=config)
    with tfcompat.tf1_control_flow():
        estimator.train(_input_fn(train_x, train_y), steps=TRAIN_STEPS)
        outputs = {"scores:0": _predict_once(estimator, golden["x:0"])["scores"]}
    prefix = estimator.latest_checkpoint()
    entry = {"kind": "estimator", "path": "{}/{}".format(name, MODEL_SUBDIR),
             "checkpoint": "{}/{}/{}".format(name, MODEL_SUBDIR, os.path.basename(prefix)),
             "inputs": {"x:0": {"dtype": "float32", "shape": [None, 4]}}, "outputs": ["scores:0"],
             "signature": None, "meta_graph_mode": "train",
             "features": ["estimator", "custom_model_fn", "graph_pbtxt", "placeholder_with_default",
                          "v2_checkpoint", "global_step", "optimizer_slots:Adagrad"]}
    return Built(entry, golden, outputs)
