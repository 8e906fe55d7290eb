"""An Estimator model_dir: custom model_fn from plain ops, trained a few steps.

An Estimator's model.ckpt-N.meta holds the TRAIN graph, whose features come from the input_fn. Legacy
input_fns read queues or tf.data, which nothing can feed; this one returns
`v1.placeholder_with_default(training data, name="x")`, so training runs unfed while the meta graph keeps a
feedable x:0. The model_fn names its prediction "scores". Goldens come from estimator.predict (its own
PREDICT graph); the build's self-check then restores the TRAIN meta graph, feeds x:0 and must get them back.
"""
import itertools
import os
import shutil
import tempfile

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


# ------------------------------------------------------------------------------------------ tf.Example serving

VOCAB = ["red", "green", "blue", "cyan", "magenta"]
EXPORT_SUBDIR = "saved_model"


def _example_columns(vocab_path):
    """x: 3 floats; color: a string from a vocabulary file (+1 OOV bucket) -> one-hot (indicator column)."""
    fc = v1().feature_column
    color = fc.categorical_column_with_vocabulary_file("color", vocab_path, vocabulary_size=len(VOCAB),
                                                       num_oov_buckets=1)
    return [fc.numeric_column("x", shape=[3]), fc.indicator_column(color)]


def _example_model_fn(columns):
    def model_fn(features, labels, mode):
        tf1 = v1()
        with tf1.variable_scope(tf1.get_variable_scope(), use_resource=False):
            return _scores_spec(tf1.feature_column.input_layer(features, columns), labels, mode, regression=True)
    return model_fn


def _scores_spec(net, labels, mode, regression=False):
    """8 relu -> scores[1]; PREDICT exports serving_default (predict) and, with `regression`, a regress
    signature; TRAIN minimizes the squared error with Adagrad."""
    tf1 = v1()
    hidden = dense(net, 8, "hidden", tf1.nn.relu)
    scores = tf1.identity(dense(hidden, 1, "out"), name="scores")
    if mode == tf1.estimator.ModeKeys.PREDICT:
        outputs = {"serving_default": tf1.estimator.export.PredictOutput({"scores": scores})}
        if regression:
            outputs["regression"] = tf1.estimator.export.RegressionOutput(scores)
        return tf1.estimator.EstimatorSpec(mode, predictions={"scores": scores}, export_outputs=outputs)
    loss = tf1.reduce_mean(tf1.square(scores - labels))
    train_op = tf1.train.AdagradOptimizer(0.3).minimize(loss, global_step=tf1.train.get_global_step())
    return tf1.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


def _serialized(x, colors):
    """tf.train.Example protos, as a serving client would send them."""
    tf = tfcompat.tf()
    protos = []
    for row, color in zip(x, colors):
        feature = {"x": tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in row])),
                   "color": tf.train.Feature(bytes_list=tf.train.BytesList(value=[color]))}
        protos.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return protos


def _write_vocab(directory):
    path = os.path.join(directory, "colors.txt")
    with open(path, "w") as handle:
        handle.write("\n".join(VOCAB) + "\n")
    return path


def _train_and_export(model_dir, work_dir, model_fn, spec, salt, golden_colors, color_shape):
    """Train an Estimator a few steps on x (3 floats) + color, predict the golden rows, export it for serving
    with build_parsing_serving_input_receiver_fn(spec) into model_dir/saved_model. Returns (golden serialized
    tf.Examples, golden scores)."""
    import numpy as np
    tf1 = v1()
    train_x = rng(salt).randn(BATCH, 3).astype("float32")
    train_colors = np.array([VOCAB[i % len(VOCAB)].encode() for i in range(BATCH)]).reshape([BATCH] + color_shape)
    train_y = (train_x[:, :1] + (np.arange(BATCH) % len(VOCAB))[:, None] * 0.5).astype("float32")
    golden_x = rng(salt + 1).randn(GOLDEN_ROWS, 3).astype("float32")
    examples = _serialized(golden_x, golden_colors)
    if any(e.endswith(b"\0") for e in examples):  # numpy 'S' arrays drop trailing NULs
        raise AssertionError("a golden tf.Example ends in a NUL byte; change the golden values")
    config = tf1.estimator.RunConfig(tf_random_seed=SEED, save_summary_steps=TRAIN_STEPS,
                                     log_step_count_steps=TRAIN_STEPS)
    estimator = tf1.estimator.Estimator(model_fn, config=config, model_dir=os.path.join(work_dir, "model_dir"))

    def train_input_fn():
        return {"x": tf1.constant(train_x), "color": tf1.constant(train_colors)}, tf1.constant(train_y)

    def predict_input_fn():
        colors = np.array(golden_colors).reshape([GOLDEN_ROWS] + color_shape)
        return {"x": tf1.constant(golden_x), "color": tf1.constant(colors)}

    with tfcompat.tf1_control_flow():
        estimator.train(train_input_fn, steps=TRAIN_STEPS)
        predictions = estimator.predict(predict_input_fn, yield_single_examples=False)
        scores = next(itertools.islice(predictions, 1))["scores"]
        predictions.close()
        receiver_fn = tf1.estimator.export.build_parsing_serving_input_receiver_fn(spec)
        exported = tfcompat.estimator_export(estimator, os.path.join(work_dir, "export"), receiver_fn)
    exported = exported.decode() if isinstance(exported, bytes) else exported
    shutil.copytree(exported, os.path.join(model_dir, EXPORT_SUBDIR))
    return examples, scores


def _example_entry(name, signatures, features, examples, scores):
    import numpy as np
    entry = {"kind": "saved_model", "path": "{}/{}".format(name, EXPORT_SUBDIR), "tags": ["serve"],
             "inputs": {"input_example_tensor:0": {"dtype": "string", "shape": [None]}},
             "outputs": ["scores:0"], "signature": "serving_default", "signatures": signatures,
             "features": features}
    return Built(entry, {"input_example_tensor:0": np.array(examples)}, {"scores:0": scores})


PREDICT_SIGNATURE = {"method_name": "tensorflow/serving/predict", "inputs": {"examples": "input_example_tensor:0"},
                     "outputs": {"scores": "scores:0"}}


def build_estimator_examples(model_dir, name):
    """An Estimator exported for TF Serving the usual way: export_savedmodel with
    build_parsing_serving_input_receiver_fn. The SavedModel takes `input_example_tensor` (serialized
    tf.Example), parses x (3 floats) and color (a string looked up in a vocabulary file, an asset) with
    ParseExample, and has signatures serving_default (predict: examples -> scores) and regression."""
    if not tfcompat.has_estimator():
        raise Skip("TF {} has no tf.estimator (removed in TF 2.16)".format(tfcompat.version_string()))
    source = tempfile.mkdtemp(prefix="legacy_vocab_")
    try:
        columns = _example_columns(_write_vocab(source))
        spec = v1().feature_column.make_parse_example_spec(columns)
        golden_colors = [b"blue", b"red", b"purple", b"cyan", b"red"][:GOLDEN_ROWS]  # purple: out of vocabulary
        examples, scores = _train_and_export(model_dir, source, _example_model_fn(columns), spec, 81,
                                             golden_colors, [])
    finally:
        shutil.rmtree(source)
    signatures = {"serving_default": PREDICT_SIGNATURE,
                  "regression": {"method_name": "tensorflow/serving/regress",
                                 "inputs": {"inputs": "input_example_tensor:0"}, "outputs": {"outputs": "scores:0"}}}
    return _example_entry(name, signatures, ["estimator", "export_savedmodel", "parse_example", "tf_example_input",
                                             "categorical_column_with_vocabulary_file", "indicator_column",
                                             "asset_file"], examples, scores)


# ------------------------------------------------------------------------------------------ TF 2.x: tables in functions

def _save_transform(directory, vocab_path):
    """A TF2 SavedModel like TF Transform's transform_fn: color words -> vocabulary ids through a
    StaticHashTable initialized from a vocabulary asset (a tf.function `__initializer`)."""
    tf = tfcompat.tf()

    class Transform(tf.Module):
        def __init__(self):
            super(Transform, self).__init__()
            initializer = tf.lookup.TextFileInitializer(vocab_path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                                        tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)
            self.table = tf.lookup.StaticHashTable(initializer, default_value=-1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, colors):
            return self.table.lookup(colors)

    tf.saved_model.save(Transform(), directory)


def _tft_model_fn(transform_dir, keep):
    def model_fn(features, labels, mode):
        tf1 = v1()
        transform = tfcompat.tf().saved_model.load(transform_dir)  # in this TF1 graph: calls of its functions
        keep.append(transform)
        ids = transform(tf1.reshape(features["color"], [-1]))
        net = tf1.concat([features["x"], tf1.one_hot(ids, len(VOCAB))], axis=1)
        with tf1.variable_scope(tf1.get_variable_scope(), use_resource=False):
            return _scores_spec(net, labels, mode)
    return model_fn


def build_estimator_tft(model_dir, name):
    """What TF 2.x Estimator + TF Transform exports look like (a TF1-format SavedModel): the model_fn loads a
    TF2 transform SavedModel into its graph, so the vocabulary table is created and initialized inside
    functions (StatefulPartitionedCall to `__creator` / `__initializer` functions, the asset passed as an
    argument) and looked up inside another; serving parses tf.Example with ParseExampleV2."""
    if not tfcompat.is_tf2() or not tfcompat.has_estimator():
        raise Skip("TF {}: tables initialized inside functions come from TF 2.x (tf.saved_model.save of a "
                   "tf.Module, loaded into an Estimator's graph); needs TF 2.0-2.15".format(
                       tfcompat.version_string()))
    tf1 = v1()
    source = tempfile.mkdtemp(prefix="legacy_tft_")
    try:
        vocab_path = _write_vocab(source)
        transform_dir = os.path.join(source, "transform_fn")
        _save_transform(transform_dir, vocab_path)
        os.remove(vocab_path)  # the transform's own copy in its assets/ is what must be read
        spec = {"x": tf1.io.FixedLenFeature([3], tf1.float32),
                "color": tf1.io.FixedLenFeature([1], tf1.string, default_value="")}
        golden_colors = [b"green", b"magenta", b"purple", b"red", b"blue"][:GOLDEN_ROWS]
        examples, scores = _train_and_export(model_dir, source, _tft_model_fn(transform_dir, []), spec, 91,
                                             golden_colors, [1])
    finally:
        shutil.rmtree(source)
    return _example_entry(name, {"serving_default": PREDICT_SIGNATURE},
                          ["estimator", "export_saved_model", "parse_example", "tf_example_input",
                           "tables_in_functions", "tf_transform_style", "asset_file"], examples, scores)
