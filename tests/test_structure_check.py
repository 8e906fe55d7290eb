"""The load-time structure check (graph/validate) and the import check of graphs written unverified
(graph/files.check_importable) find what they found before they were made faster.

validate._structure_problems judges most nodes without _node_problem; here it is compared, on thousands of
randomly broken graphs, with the plain per-node sweep it replaced (REFERENCE below: every node through
_node_problem), which must give the same first dangling input, count, first problem and order verdict.
check_importable must refuse a graph TF refuses, read from a small file (its bytes), a large one (read back
without weights), and a GraphDef in memory."""
import random

import pytest

from migrate import opsets, tfcompat
from migrate.errors import BadInput
from migrate.graph import files, validate


def reference_problems(graph_def):
    """The sweep check_graph_structure made before: every node through _node_problem."""
    from tensorflow.core.framework import types_pb2
    valid_types = set(types_pb2.DataType.values()) - set([types_pb2.DT_INVALID])
    spec = validate._op_specs()
    position, producers = {}, {}
    for index, node in enumerate(graph_def.node):
        position[node.name] = index
        producers[node.name] = node.op
    first_dangling, dangling, problem, in_order = None, 0, None, True
    for index, node in enumerate(graph_def.node):
        data = []
        for input_name in node.input:
            control = input_name[:1] == "^"
            if not control:
                data.append(input_name)
            name = input_name[1:] if control else input_name
            colon = name.rfind(":")
            producer = name[:colon] if colon >= 0 and name[colon + 1:].isdigit() else name
            at = position.get(producer)
            if at is None:
                dangling += 1
                if first_dangling is None:
                    first_dangling = (node.name, input_name)
            elif in_order and at >= index and not (node.op in opsets.MERGE_OPS and
                                                   producers[producer] in opsets.NEXT_ITERATION_OPS):
                in_order = False
        if problem is None:
            problem = validate._node_problem(node, data, spec, producers, valid_types)
    return first_dangling, dangling, problem, in_order


def _sound_graph():
    """A small graph of real ops: Const, Placeholder, Mul, Identity, NoOp, Split (3 outputs), IdentityN,
    a v1 while loop's Merge/NextIteration, CheckNumerics."""
    tf = tfcompat.v1()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, 4], name="x")
        c = tf.constant([[1.0, 2.0, 3.0, 4.0]], name="c")
        m = tf.multiply(x, c, name="m")
        parts = tf.split(m, 2, axis=1, name="split")
        tf.identity(parts[1], name="second")
        tf.check_numerics(parts[0], "bad", name="checked")
        with tf.control_dependencies([m]):
            tf.no_op(name="after")
        i = tf.constant(0, name="i0")
        tf.while_loop(lambda v: v < 3, lambda v: v + 1, [i], name="loop")
        tf.constant(list(range(8)), tf.int32, name="ints")
    return graph.as_graph_def()


def _mutate(graph_def, rng):
    """One random breakage (or none) of the kinds check_graph_structure names."""
    from tensorflow.core.framework import types_pb2
    nodes = list(graph_def.node)
    node = rng.choice(nodes)
    names = [n.name for n in nodes]
    kind = rng.randrange(12)
    if kind == 0 and len(node.input):  # dangling, maybe with an index or as a control input
        node.input[rng.randrange(len(node.input))] = rng.choice(["nope", "nope:1", "^nope", "x:y", "x:", ":0"])
    elif kind == 1:  # an output index the producer may not have
        node.input.append("{}:{}".format(rng.choice(names), rng.randrange(4)))
    elif kind == 2:  # reads a node with no outputs, as data or control
        node.input.append(rng.choice(["after", "^after", "after:0"]))
    elif kind == 3 and len(node.attr):  # a required attr missing
        del node.attr[rng.choice(sorted(node.attr.keys()))]
    elif kind == 4 and len(node.attr):  # an attr of the wrong kind
        node.attr[rng.choice(sorted(node.attr.keys()))].i = 3
    elif kind == 5 and len(node.attr):  # an invalid dtype
        value = node.attr[rng.choice(sorted(node.attr.keys()))]
        if value.WhichOneof("value") == "type":
            value.type = types_pb2.DT_INVALID
        elif value.WhichOneof("value") == "tensor":
            value.tensor.dtype = types_pb2.DT_INVALID
    elif kind == 6 and node.op == "Const":  # tensor_content that does not fit the shape
        tensor = node.attr["value"].tensor
        tensor.tensor_content = b"\0" * rng.randrange(1, 40)
    elif kind == 7:  # a forward reference (order), or a cycle
        later = nodes[rng.randrange(len(nodes))]
        node.input.append(rng.choice([later.name, "^" + later.name]))
    elif kind == 8 and len(node.input):  # one input fewer
        del node.input[-1]
    elif kind == 9:  # a node named like a tensor, read as one
        extra = graph_def.node.add()
        extra.CopyFrom(rng.choice(nodes))
        extra.name = rng.choice(["c:0", "m:1", "odd:name"])
        node.input.append(extra.name)
    elif kind == 10 and node.op == "Const" and rng.random() < 0.5:  # a Const without its value
        del node.attr["value"]
    return graph_def


def test_fast_sweep_finds_what_every_node_through_node_problem_found():
    rng = random.Random(18)
    sound = _sound_graph()
    assert validate._structure_problems(sound) == reference_problems(sound) == (None, 0, None, True)
    found = set()
    for _ in range(1500):
        graph_def = type(sound)()
        graph_def.CopyFrom(sound)
        for _ in range(rng.randrange(1, 4)):
            _mutate(graph_def, rng)
        expected = reference_problems(graph_def)
        assert validate._structure_problems(graph_def) == expected, str(graph_def)[:2000]
        found.add((expected[0] is not None, expected[2] is not None, expected[3]))
    assert found >= set([(True, True, True), (False, True, True), (False, False, False), (True, False, True),
                         (False, True, False)])  # the mutations reached every kind of verdict


def _refused_graph():
    """A graph check_graph_structure accepts and TF's import refuses: Mul(T=float) reading an int32 Const."""
    tf = tfcompat.v1()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [2], name="x")
        tf.multiply(x, tf.constant([1.0, 2.0]), name="y")
        tf.constant([1, 2], tf.int32, name="ints")
    graph_def = graph.as_graph_def()
    for node in graph_def.node:
        if node.name == "y":
            node.input[1] = "ints"
    validate.check_graph_structure(graph_def, "here")  # the structure check lets it through
    return graph_def


@pytest.mark.parametrize("route", ["small file", "large file", "graph_def"])
def test_check_importable_refuses_what_tf_refuses(tmp_path, monkeypatch, route):
    graph_def = _refused_graph()
    path = str(tmp_path / "g.pb")
    files.write_graph_def(graph_def, path)
    if route == "large file":
        monkeypatch.setattr(files, "IMPORT_FILE_BYTES", 16)  # read back node by node, weights fed
    with pytest.raises(BadInput) as caught:
        if route == "graph_def":
            files.check_importable("out.pb", graph_def=graph_def)
        else:
            files.check_importable("out.pb", path=path)
    assert "does not import into TF" in str(caught.value) and "y" in str(caught.value)
    sound = _sound_graph()
    files.write_graph_def(sound, path)
    files.check_importable("out.pb", path=path)  # a sound graph passes every route
    files.check_importable("out.pb", graph_def=sound)
