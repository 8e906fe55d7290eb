"""Helpers every builder shares: a private graph + session, seeded data, training, saving, input specs."""
import contextlib
import os

import numpy as np

from migrate import tfcompat

SEED = 1234
BATCH = 16  # rows of training data
GOLDEN_ROWS = 5  # rows of golden inputs


class Skip(Exception):
    """The running TensorFlow cannot build this model; the message says why (goes to manifest `skipped`)."""


class Built(object):
    """What a builder made: the manifest entry (without name/golden) and the golden arrays."""

    def __init__(self, entry, golden_inputs, golden_outputs):
        self.entry = entry
        self.golden_inputs = golden_inputs
        self.golden_outputs = golden_outputs


def v1():
    return tfcompat.v1()


def rng(salt):
    """A seeded numpy generator; `salt` separates training data from golden inputs."""
    return np.random.RandomState(SEED + salt)


@contextlib.contextmanager
def graph_session(use_resource=False):
    """A fresh Graph + Session, TF1 control flow, seeded, with ref variables unless asked otherwise.

    Re-entering the root variable scope with use_resource=False makes every get_variable (global_step,
    optimizer slots, RNN cells) a legacy ref variable even under TF 2.x, where resource is the default.
    """
    tf1 = v1()
    graph = tfcompat.tf().Graph()
    with graph.as_default(), tfcompat.tf1_control_flow():
        tf1.set_random_seed(SEED)
        with tf1.variable_scope(tf1.get_variable_scope(), use_resource=use_resource):
            with tf1.Session(graph=graph) as sess:
                yield sess


def dense(inputs, units, name, activation=None):
    """A fully connected layer from plain ops (tf.layers breaks under Keras 3)."""
    tf1 = v1()
    with tf1.variable_scope(name):
        kernel = tf1.get_variable("kernel", [static_dim(inputs.shape[-1]), units],
                                  initializer=tf1.glorot_uniform_initializer())
        bias = tf1.get_variable("bias", [units], initializer=tf1.random_normal_initializer(stddev=0.1))
        out = tf1.nn.bias_add(tf1.matmul(inputs, kernel), bias)
        return activation(out) if activation is not None else out


def global_step():
    return v1().train.get_or_create_global_step()


def train_and_save(sess, train_op, feed, model_dir, steps=(2, 6), relative_paths=True):
    """Run the optimizer and save model.ckpt-<step> at each step count in `steps`, like a training job.

    Returns the prefix of the last checkpoint. Two saves make the `checkpoint` file list an older one too,
    so a tool must really pick the latest. relative_paths=False is the plain Saver default: the `checkpoint`
    file then holds absolute paths, which go stale when the directory moves.
    """
    tf1 = v1()
    saver = tf1.train.Saver(max_to_keep=5, save_relative_paths=relative_paths)
    prefix = os.path.join(model_dir, "model.ckpt")
    done = 0
    path = None
    for target in steps:
        for _ in range(target - done):
            sess.run(train_op, feed)
        done = target
        path = saver.save(sess, prefix, global_step=global_step())
    return path


def train(sess, train_op, feed, steps=6):
    for _ in range(steps):
        sess.run(train_op, feed)


def input_specs(tensors):
    """{'x:0': {'dtype': 'float32', 'shape': [None, 8]}} for the manifest."""
    specs = {}
    for tensor in tensors:
        specs[tensor.name] = {"dtype": tensor.dtype.base_dtype.name, "shape": _shape(tensor)}
    return specs


def _shape(tensor):
    shape = tensor.shape
    if shape.ndims is None:
        return None
    return [static_dim(d) for d in shape]


def static_dim(dim):
    value = getattr(dim, "value", dim)  # TF 1.x Dimension vs TF 2.x int/None
    return int(value) if value is not None else None


def run_golden(sess, inputs, outputs, golden_inputs):
    """Output arrays keyed by tensor name, computed by the running TF with the golden feed."""
    feed = dict((t, golden_inputs[t.name]) for t in inputs)
    values = sess.run(list(outputs), feed)
    return dict((t.name, np.asarray(v)) for t, v in zip(outputs, values))


def checkpoint_entry(name, prefix, inputs, outputs, features, **extra):
    """Manifest entry of a checkpoint-directory model."""
    entry = {"kind": "checkpoint", "path": name,
             "checkpoint": "{}/{}".format(name, os.path.basename(prefix)),
             "inputs": input_specs(inputs), "outputs": [t.name for t in outputs],
             "signature": None, "features": list(features)}
    entry.update(extra)
    return entry
