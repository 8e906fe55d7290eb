"""Benchmark models, written into a temp dir (scripts, not tests).

  mlp    a TF1 checkpoint (tf.compat.v1 Saver, V2 format, .meta beside it) of an MLP: `layers` dense layers of
         width x width float32 (16 x 4096 x 4096 = 1.07 GB of weights), input `x` [None, width], output `output`.
  chain  a frozen GraphDef of tiny tensors, written with protobuf directly (building 1M ops through TF's Python
         API would take minutes): x [None, 4] -> blocks of (Const a, Const b, Mul(a, b), AddV2(h, mul),
         Identity, CheckNumerics) -> Identity `output`. nodes = 6 * blocks + 2 (120,002 = 20,000 blocks).
         Each block gives the passes something to do: a foldable Mul, an Identity, a debug op.

python -m benchmarks.models mlp OUT_DIR [--layers 16 --width 4096]
python -m benchmarks.models chain OUT.pb --nodes 120002
"""
import argparse
import os
import sys
import time


def build_mlp(directory, layers=16, width=4096, seed=0):
    """Write OUT_DIR/model.ckpt(.index/.data/.meta); returns the checkpoint prefix."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    v1 = tf.compat.v1 if hasattr(tf, "compat") and hasattr(tf.compat, "v1") else tf
    if not os.path.isdir(directory):
        os.makedirs(directory)
    graph = v1.Graph()
    with graph.as_default():
        v1.set_random_seed(seed)
        x = v1.placeholder(v1.float32, [None, width], name="x")
        h = x
        for index in range(layers):
            with v1.variable_scope("dense_{}".format(index)):
                kernel = v1.get_variable("kernel", [width, width], v1.float32,
                                         v1.random_normal_initializer(stddev=1.0 / np.sqrt(width)))
                bias = v1.get_variable("bias", [width], v1.float32, v1.constant_initializer(0.01))
                h = v1.nn.bias_add(v1.matmul(h, kernel), bias)
                if index < layers - 1:
                    h = v1.nn.relu(h)
        v1.identity(h, name="output")
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as session:
            for variable in v1.global_variables():  # one at a time: never two copies of all weights
                session.run(variable.initializer)
            prefix = saver.save(session, os.path.join(directory, "model.ckpt"))
    return prefix


def chain_graph_def(nodes=120002, width=4):
    """A GraphDef with `nodes` nodes (rounded down to 6 * blocks + 2) of scalar/[?, width] float tensors."""
    from tensorflow.core.framework import graph_pb2, node_def_pb2, types_pb2
    blocks = max(1, -(-(nodes - 2) // 6))  # at least `nodes` nodes
    graph_def = graph_pb2.GraphDef()
    graph_def.versions.producer = 27  # a TF 1.x producer: these graphs stand for legacy frozen models
    x = graph_def.node.add()
    x.name, x.op = "x", "Placeholder"
    x.attr["dtype"].type = types_pb2.DT_FLOAT
    x.attr["shape"].shape.dim.add().size = -1
    x.attr["shape"].shape.dim.add().size = width

    def const(name, value):
        node = node_def_pb2.NodeDef()
        node.name, node.op = name, "Const"
        node.attr["dtype"].type = types_pb2.DT_FLOAT
        tensor = node.attr["value"].tensor
        tensor.dtype = types_pb2.DT_FLOAT
        tensor.tensor_shape.SetInParent()
        tensor.float_val.append(value)
        return node

    def op(name, op_type, inputs, **attrs):
        node = node_def_pb2.NodeDef()
        node.name, node.op = name, op_type
        node.input.extend(inputs)
        node.attr["T"].type = types_pb2.DT_FLOAT
        for key, value in attrs.items():
            node.attr[key].s = value
        return node

    previous = "x"
    for index in range(blocks):
        scope = "b{}/".format(index)
        graph_def.node.extend([
            const(scope + "a", 1.0 + (index % 7) * 1e-3),
            const(scope + "b", 1e-3 * ((index % 13) - 6)),
            op(scope + "mul", "Mul", [scope + "a", scope + "b"]),
            op(scope + "add", "AddV2", [previous, scope + "mul"]),
            op(scope + "id", "Identity", [scope + "add"]),
            op(scope + "check", "CheckNumerics", [scope + "id"], message=b"block " + str(index).encode()),
        ])
        previous = scope + "check"
    graph_def.node.extend([op("output", "Identity", [previous])])
    return graph_def


def build_chain(path, nodes=120002):
    graph_def = chain_graph_def(nodes)
    with open(path, "wb") as handle:
        handle.write(graph_def.SerializeToString())
    return len(graph_def.node)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["mlp", "chain"])
    parser.add_argument("out")
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--nodes", type=int, default=120002)
    args = parser.parse_args(argv)
    started = time.time()
    if args.kind == "mlp":
        what = build_mlp(args.out, args.layers, args.width)
    else:
        what = "{} nodes".format(build_chain(args.out, args.nodes))
    sys.stdout.write("built {} {} in {:.1f}s\n".format(args.kind, what, time.time() - started))


if __name__ == "__main__":
    main()
