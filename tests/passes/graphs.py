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


_FROZEN = {}  # (zoo, model) -> (GraphDef bytes, outputs, inputs): each zoo model frozen once per test run


def zoo_frozen(zoo_model):
    """(frozen GraphDef, output tensors, placeholder tensors) of a zoo model, as `migrate optimize` gets them."""
    from tensorflow.core.framework import graph_pb2
    from migrate.verbs import common
    key = (zoo_model.zoo, zoo_model.name)
    if key not in _FROZEN:
        model, outputs, _ = common.frozen_source(zoo_model.path, list(zoo_model.outputs), None, None, None,
                                                 lambda *args: None)
        inputs = sorted(set(n.name + ":0" for n in model.graph_def.node if n.op == "Placeholder") |
                        set(model.inputs))
        _FROZEN[key] = (model.graph_def.SerializeToString(), outputs, inputs)
    data, outputs, inputs = _FROZEN[key]
    graph_def = graph_pb2.GraphDef()
    graph_def.ParseFromString(data)
    return graph_def, outputs, inputs


def assert_shared_index_changes_nothing(pass_name, zoo_model):
    """Runs the default pipeline on a zoo model with one node index for all passes (as run_pipeline does: built
    once, kept up to date by the edit helpers). Where `pass_name` runs, it also runs on a copy of the graph it
    is handed with an index of its own, built fresh from that graph (what every pass did before the index was
    shared): both must give the same bytes and the same record, and after the pass the shared index must still
    describe the graph exactly. Returns the records of `pass_name` ([] for a model this TF refuses)."""
    import re
    from migrate.errors import BadInput
    from migrate.graph.index import NodeIndex
    from tests.conftest import ATTRS_LACKING, expected_unknown_ops
    unknown = [op for op in expected_unknown_ops(zoo_model) if op != ATTRS_LACKING]
    try:
        graph_def, outputs, inputs = zoo_frozen(zoo_model)
    except BadInput as exc:  # written by a newer TF: refused before any pass runs, naming the ops it lacks
        if not unknown or not re.search("ops not registered in TF .*" + unknown[0], str(exc)):
            raise
        return []
    shared = PassContext(outputs, inputs)
    shared.index = NodeIndex(graph_def)
    checked = []
    for name in passes.DEFAULT_PASSES:
        if name == pass_name:
            alone, alone_record = passes.REGISTRY[name].run(graph_def, PassContext(outputs, inputs))  # a copy
        graph_def, record = passes.REGISTRY[name].run(graph_def, shared, in_place=True)
        shared.index.check()
        if name == pass_name:
            assert graph_def.SerializeToString(deterministic=True) == alone.SerializeToString(deterministic=True)
            assert _without_time(record) == _without_time(alone_record)
            checked.append(record)
    assert checked, "{} is not in the default pipeline".format(pass_name)
    return checked


def _without_time(record):
    found = record.to_dict()
    found.pop("seconds")
    return found
