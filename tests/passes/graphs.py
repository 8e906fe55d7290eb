"""What the pass tests share: small graphs built with the installed TF (TF1 control flow on every TF), a
pass runner, and the check that a graph computes the same numbers before and after (isolated sessions,
seeded inputs)."""
from collections import Counter

import numpy as np

from migrate import passes, tfcompat
from migrate.passes import PassContext

api = tfcompat.v1()


def build(body):
    """GraphDef of what body() builds in a fresh graph (TF1 control flow on every TF)."""
    graph = api.Graph()
    with graph.as_default(), tfcompat.tf1_control_flow():
        body()
    return graph.as_graph_def()


def run_graph(graph_def, feeds, fetches):
    graph = api.Graph()
    with graph.as_default():
        api.import_graph_def(graph_def, name="")
    with api.Session(graph=graph) as session:
        return session.run(fetches, feeds)


def assert_same_numbers(before, after, feeds, fetches, rtol=1e-6, atol=1e-6):
    expected = run_graph(before, feeds, fetches)
    got = run_graph(after, feeds, fetches)
    for name, want, have in zip(fetches, expected, got):
        np.testing.assert_allclose(have, want, rtol=rtol, atol=atol, err_msg=name)
    return expected


def ops(graph_def):
    return Counter(node.op for node in graph_def.node)


def node(graph_def, name):
    found = [n for n in graph_def.node if n.name == name]
    assert found, "no node {}".format(name)
    return found[0]


def has_node(graph_def, name):
    return any(n.name == name for n in graph_def.node)


def run_pass(name, graph_def, outputs, inputs=(), **options):
    new, record = passes.REGISTRY[name].run(graph_def, PassContext(outputs, inputs, options))
    assert record.name == name
    return new, record


def seeded(shape, seed=0):
    return np.random.RandomState(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


def debug_graph():
    x = api.placeholder(api.float32, [None, 3], name="x")
    guard = api.Assert(api.reduce_all(x > -100.0), [x], name="check")  # data-dependent: an AssertGuard cond
    with api.control_dependencies([guard]):
        y = api.identity(x * 2.0, name="y")
    positive = api.assert_positive(x + 100.0, name="positive")
    checked = api.check_numerics(y, "y is bad", name="checked")
    printed = api.Print(checked, [checked], "y=", name="printed")
    plain = api.Assert(api.reduce_all(x < 1e6), ["x too big"], name="plain")  # string data: no guard
    controls = [positive, plain]
    if hasattr(api, "print"):  # PrintV2 from TF 1.13
        controls.append(api.print(x, name="print_v2"))
    one = api.constant(1.0, name="one")
    with api.control_dependencies(controls):
        api.add(printed, one, name="out")


def identity_graph():
    x = api.placeholder(api.float32, [None, 4], name="x")
    chain = api.identity(api.identity(x, name="a"), name="b")
    relu = api.nn.relu(chain, name="relu")
    stopped = api.stop_gradient(relu, name="stopped")
    marker = api.constant(1.0, name="marker")
    with api.control_dependencies([marker]):
        guarded = api.identity(stopped, name="guarded")
    tripled = api.multiply(guarded, 3.0, name="tripled")
    api.identity(api.identity(tripled, name="o1"), name="out")


def cond_graph():
    x = api.placeholder(api.float32, [None, 4], name="x")
    picked = api.cond(api.reduce_sum(x) > 0.0, lambda: api.identity(x * 2.0), lambda: api.identity(x - 1.0))
    api.identity(picked, name="out")


def while_graph():
    x = api.placeholder(api.float32, [None, 4], name="x")
    weights = api.constant(seeded([4, 4], seed=3), name="w")
    read = api.identity(weights, name="w/read")
    limit = api.add(api.constant(1), api.constant(2), name="limit")  # foldable, outside the loop

    def body(i, acc):
        step = api.identity(api.matmul(acc, read) * 0.5, name="step")
        return i + 1, api.nn.relu(step + api.constant(0.1))

    _, result = api.while_loop(lambda i, acc: i < limit, body, [api.constant(0), x], name="loop")
    api.identity(result, name="out")


def static_graph():
    x = api.placeholder(api.float32, [None, 4, None], name="x")
    batch = api.cast(api.shape(x)[0], api.float32)
    api.multiply(x, batch, name="out")
