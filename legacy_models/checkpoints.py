"""Builders of checkpoint-directory models: graph + a few training steps + tf.train.Saver (V2 format).

Each builder makes its graph in its own tf.Graph, trains a few steps so the checkpoint holds optimizer slots
and global_step like a real training job, computes goldens, and saves model.ckpt-2 and model.ckpt-6.
"""
import numpy as np

from legacy_models.common import (BATCH, GOLDEN_ROWS, Built, checkpoint_entry, dense, global_step,
                                  graph_session, rng, run_golden, train_and_save, v1, static_dim)
from migrate import tfcompat


def _classes(x, classes, salt):
    """Labels a model can learn: argmax of a fixed random projection of the flattened input."""
    flat = x.reshape(len(x), -1)
    return (flat.dot(rng(salt).randn(flat.shape[1], classes))).argmax(axis=1)


def _classifier_head(features, classes):
    tf1 = v1()
    logits = tf1.identity(dense(features, classes, "logits_dense"), name="logits")
    return logits, tf1.nn.softmax(logits, name="probabilities")


def _xent(labels, logits):
    tf1 = v1()
    return tf1.reduce_mean(tf1.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def build_mlp(model_dir, name):
    """x[None, 8] -> 16 relu -> logits[3] + softmax; ref variables, Momentum slots."""
    tf1 = v1()
    train_x = rng(1).randn(BATCH, 8).astype("float32")
    golden = {"x:0": rng(2).randn(GOLDEN_ROWS, 8).astype("float32")}
    with graph_session() as sess:
        x = tf1.placeholder(tf1.float32, [None, 8], name="x")
        labels = tf1.placeholder(tf1.int64, [None], name="labels")
        # use_resource=False spelled out: this model exists to carry legacy VariableV2 ref variables.
        with tf1.variable_scope("hidden"):
            kernel = tf1.get_variable("kernel", [8, 16], use_resource=False,
                                      initializer=tf1.glorot_uniform_initializer())
            bias = tf1.get_variable("bias", [16], use_resource=False,
                                    initializer=tf1.random_normal_initializer(stddev=0.1))
        hidden = tf1.nn.relu(tf1.matmul(x, kernel) + bias)
        logits, probs = _classifier_head(hidden, 3)
        optimizer = tf1.train.MomentumOptimizer(0.1, momentum=0.9)
        train_op = optimizer.minimize(_xent(labels, logits), global_step=global_step())
        sess.run(tf1.global_variables_initializer())
        # The plain Saver default, as most legacy training scripts had it: absolute paths in `checkpoint`.
        prefix = train_and_save(sess, train_op, {x: train_x, labels: _classes(train_x, 3, 3)}, model_dir,
                                relative_paths=False)
        outputs = run_golden(sess, [x], [logits, probs], golden)
        entry = checkpoint_entry(name, prefix, [x], [logits, probs],
                                 ["ref_variables", "v2_checkpoint", "global_step", "optimizer_slots:Momentum"])
    return Built(entry, golden, outputs)


def _assert_finite(x):
    """v1.Assert with a tensor in its data: TF wraps it in a cond, so the graph holds Switch -> Assert."""
    tf1 = v1()
    finite = tf1.reduce_all(tf1.is_finite(x))
    check = tf1.Assert(finite, ["input x has non-finite values; min:", tf1.reduce_min(x)], name="x_finite")
    with tf1.control_dependencies([check]):
        return tf1.identity(x, name="x_checked")


def _batch_norm(h, is_training, decay=0.5):
    """tf.contrib.layers.batch_norm(fused=True) as legacy code built it: tf.cond on is_training, batch
    statistics + AssignSub moving-average updates in the training branch, moving statistics otherwise."""
    tf1 = v1()
    channels = static_dim(h.shape[-1])
    with tf1.variable_scope("batch_norm"):
        gamma = tf1.get_variable("gamma", [channels], initializer=tf1.random_uniform_initializer(0.5, 1.5))
        beta = tf1.get_variable("beta", [channels], initializer=tf1.random_normal_initializer(stddev=0.1))
        moving_mean = tf1.get_variable("moving_mean", [channels], trainable=False,
                                       initializer=tf1.zeros_initializer())
        moving_var = tf1.get_variable("moving_variance", [channels], trainable=False,
                                      initializer=tf1.ones_initializer())

        def training():
            y, mean, var = tf1.nn.fused_batch_norm(h, gamma, beta, epsilon=1e-3, is_training=True)
            updates = [tf1.assign_sub(moving_mean, (moving_mean - mean) * (1 - decay)),
                       tf1.assign_sub(moving_var, (moving_var - var) * (1 - decay))]
            with tf1.control_dependencies(updates):
                return tf1.identity(y)

        def inference():
            y, _, _ = tf1.nn.fused_batch_norm(h, gamma, beta, moving_mean, moving_var, epsilon=1e-3,
                                              is_training=False)
            return y

        return tf1.cond(is_training, training, inference)


def build_cnn_bn(model_dir, name):
    """x[None, 8, 8, 3] NHWC -> Assert -> conv 3x3x4 -> batch norm (cond) -> relu -> check_numerics -> pool
    -> logits[3]; RMSProp slots. is_training defaults to False, so goldens use the moving statistics."""
    tf1 = v1()
    train_x = rng(11).randn(BATCH, 8, 8, 3).astype("float32")
    golden = {"x:0": rng(12).randn(GOLDEN_ROWS, 8, 8, 3).astype("float32")}
    with graph_session() as sess:
        x = tf1.placeholder(tf1.float32, [None, 8, 8, 3], name="x")
        labels = tf1.placeholder(tf1.int64, [None], name="labels")
        is_training = tf1.placeholder_with_default(False, [], name="is_training")
        kernel = tf1.get_variable("conv1/kernel", [3, 3, 3, 4], initializer=tf1.glorot_uniform_initializer())
        conv = tf1.nn.conv2d(_assert_finite(x), kernel, strides=[1, 1, 1, 1], padding="SAME")
        act = tf1.nn.relu(_batch_norm(conv, is_training))
        act = tf1.check_numerics(act, "conv1 activation has NaN/Inf", name="conv1_numerics")
        pooled = tf1.nn.max_pool(act, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="VALID")
        logits, probs = _classifier_head(tf1.reshape(pooled, [-1, 4 * 4 * 4]), 3)
        optimizer = tf1.train.RMSPropOptimizer(0.01)
        train_op = optimizer.minimize(_xent(labels, logits), global_step=global_step())
        sess.run(tf1.global_variables_initializer())
        feed = {x: train_x, labels: _classes(train_x, 3, 13), is_training: True}
        prefix = train_and_save(sess, train_op, feed, model_dir)
        outputs = run_golden(sess, [x], [logits, probs], golden)
        entry = checkpoint_entry(name, prefix, [x], [logits, probs],
                                 ["batch_norm", "is_training_switch", "placeholder_with_default",
                                  "moving_average_updates", "conv2d", "v2_checkpoint", "global_step",
                                  "optimizer_slots:RMSProp"],
                                 optional_inputs={"is_training:0": {"dtype": "bool", "shape": [],
                                                                    "default": False}})
    return Built(entry, golden, outputs)


def _while_rnn(x, units):
    """A tanh RNN over time written with v1.while_loop + TensorArray, for builds without tf.nn.rnn_cell."""
    tf1 = v1()
    steps, width = static_dim(x.shape[1]), static_dim(x.shape[2])
    with tf1.variable_scope("rnn"):
        w = tf1.get_variable("input_kernel", [width, units], initializer=tf1.glorot_uniform_initializer())
        u = tf1.get_variable("recurrent_kernel", [units, units], initializer=tf1.glorot_uniform_initializer())
        b = tf1.get_variable("bias", [units], initializer=tf1.random_normal_initializer(stddev=0.1))
        inputs = tf1.TensorArray(tf1.float32, size=steps).unstack(tf1.transpose(x, [1, 0, 2]))
        h0 = tf1.zeros(tf1.stack([tf1.shape(x)[0], units]))

        def body(t, h):
            return t + 1, tf1.tanh(tf1.matmul(inputs.read(t), w) + tf1.matmul(h, u) + b)

        _, state = tf1.while_loop(lambda t, h: t < steps, body, [tf1.constant(0), h0])
    return state


def _rnn_state(x, units):
    """(final state, features): dynamic_rnn with a GRUCell where tf.nn.rnn_cell exists, else by hand."""
    tf1 = v1()
    cells = tfcompat.rnn_cells()
    if cells is None:
        return _while_rnn(x, units), ["hand_written_while_loop_rnn"]
    _, state = tf1.nn.dynamic_rnn(cells.GRUCell(units), x, dtype=tf1.float32, scope="rnn")
    return state, ["dynamic_rnn", "gru_cell"]


def build_rnn(model_dir, name):
    """x[None, 5, 4] -> RNN(6) final state -> y[2]; Adam slots."""
    tf1 = v1()
    train_x = rng(21).randn(BATCH, 5, 4).astype("float32")
    train_y = rng(22).randn(BATCH, 2).astype("float32")
    golden = {"x:0": rng(23).randn(GOLDEN_ROWS, 5, 4).astype("float32")}
    with graph_session() as sess:
        x = tf1.placeholder(tf1.float32, [None, 5, 4], name="x")
        target = tf1.placeholder(tf1.float32, [None, 2], name="target")
        state, features = _rnn_state(x, 6)
        y = tf1.identity(dense(state, 2, "head"), name="y")
        loss = tf1.reduce_mean(tf1.square(y - target))
        train_op = tf1.train.AdamOptimizer(0.05).minimize(loss, global_step=global_step())
        sess.run(tf1.global_variables_initializer())
        prefix = train_and_save(sess, train_op, {x: train_x, target: train_y}, model_dir)
        outputs = run_golden(sess, [x], [y], golden)
        entry = checkpoint_entry(name, prefix, [x], [y], features + [
            "v2_checkpoint", "global_step", "optimizer_slots:Adam"])
    return Built(entry, golden, outputs)


def build_resource_vars(model_dir, name):
    """x[None, 5] -> 8 tanh -> y[1] with resource variables (VarHandleOp/ReadVariableOp); Adam slots."""
    tf1 = v1()
    train_x = rng(31).randn(BATCH, 5).astype("float32")
    train_y = rng(32).randn(BATCH, 1).astype("float32")
    golden = {"x:0": rng(33).randn(GOLDEN_ROWS, 5).astype("float32")}
    with graph_session(use_resource=True) as sess:
        x = tf1.placeholder(tf1.float32, [None, 5], name="x")
        target = tf1.placeholder(tf1.float32, [None, 1], name="target")
        hidden = dense(x, 8, "hidden", tf1.tanh)
        y = tf1.identity(dense(hidden, 1, "out"), name="y")
        loss = tf1.reduce_mean(tf1.square(y - target))
        train_op = tf1.train.AdamOptimizer(0.05).minimize(loss, global_step=global_step())
        sess.run(tf1.global_variables_initializer())
        prefix = train_and_save(sess, train_op, {x: train_x, target: train_y}, model_dir)
        outputs = run_golden(sess, [x], [y], golden)
        entry = checkpoint_entry(name, prefix, [x], [y],
                                 ["v2_checkpoint", "global_step", "optimizer_slots:Adam"])
    return Built(entry, golden, outputs)


def build_partitioned(model_dir, name):
    """ids[None, 4] -> embedding [30, 6] in 3 partitions -> mean -> logits[3]; Adagrad slots (sparse)."""
    tf1 = v1()
    train_ids = rng(41).randint(0, 30, size=(BATCH, 4)).astype("int64")
    golden = {"ids:0": rng(42).randint(0, 30, size=(GOLDEN_ROWS, 4)).astype("int64")}
    with graph_session() as sess:
        ids = tf1.placeholder(tf1.int64, [None, 4], name="ids")
        labels = tf1.placeholder(tf1.int64, [None], name="labels")
        table = tf1.get_variable("embedding", [30, 6], partitioner=tf1.fixed_size_partitioner(3),
                                 initializer=tf1.random_normal_initializer(stddev=0.5))
        # "div" keeps row i of the logical [30, 6] variable at row i of the concatenated partitions.
        vectors = tf1.nn.embedding_lookup(table, ids, partition_strategy="div")
        logits, probs = _classifier_head(tf1.reduce_mean(vectors, axis=1), 3)
        optimizer = tf1.train.AdagradOptimizer(0.5)
        train_op = optimizer.minimize(_xent(labels, logits), global_step=global_step())
        sess.run(tf1.global_variables_initializer())
        feed = {ids: train_ids, labels: train_ids.sum(axis=1) % 3}
        prefix = train_and_save(sess, train_op, feed, model_dir)
        outputs = run_golden(sess, [ids], [logits, probs], golden)
        entry = checkpoint_entry(name, prefix, [ids], [logits, probs],
                                 ["partitioned_variable", "embedding_lookup", "v2_checkpoint", "global_step",
                                  "optimizer_slots:Adagrad"],
                                 partitioned_variables={"embedding": {"shape": [30, 6], "partitions": 3}})
    return Built(entry, golden, outputs)


def build_dropout(model_dir, name):
    """x[None, 8] -> 16 relu -> dropout(keep_prob) -> logits[3] -> softmax; Adam slots. keep_prob is a plain
    scalar placeholder, as legacy training scripts fed it (1.0 at inference): the goldens use 1.0."""
    tf1 = v1()
    train_x = rng(121).randn(BATCH, 8).astype("float32")
    golden = {"x:0": rng(122).randn(GOLDEN_ROWS, 8).astype("float32"), "keep_prob:0": np.float32(1.0)}
    with graph_session() as sess:
        x = tf1.placeholder(tf1.float32, [None, 8], name="x")
        labels = tf1.placeholder(tf1.int64, [None], name="labels")
        keep_prob = tf1.placeholder(tf1.float32, [], name="keep_prob")
        hidden = dense(x, 16, "hidden", tf1.nn.relu)
        dropped = tf1.nn.dropout(hidden, keep_prob=keep_prob)
        logits, probs = _classifier_head(dropped, 3)
        train_op = tf1.train.AdamOptimizer(0.05).minimize(_xent(labels, logits), global_step=global_step())
        sess.run(tf1.global_variables_initializer())
        prefix = train_and_save(sess, train_op, {x: train_x, labels: _classes(train_x, 3, 123), keep_prob: 0.5},
                                model_dir)
        outputs = run_golden(sess, [x, keep_prob], [probs], golden)
        entry = checkpoint_entry(name, prefix, [x, keep_prob], [probs],
                                 ["dropout", "keep_prob_placeholder", "v2_checkpoint", "global_step",
                                  "optimizer_slots:Adam"])
    return Built(entry, golden, outputs)
