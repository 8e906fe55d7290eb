"""GraphDef helpers: names, the networkx view, orders, reachability, in-place edits."""
import pytest

from migrate import tfcompat
from migrate.errors import BadInput
from migrate.graph import (CONTROL, DATA, Splice, forwarding_splice, names, needed_nodes, remove_nodes,
                           splice_out, to_digraph, topological_order)
from migrate.graph.ops import attr, pure_nodes


def graph_def_of(build):
    api = tfcompat.v1()
    graph = api.Graph()
    with graph.as_default(), tfcompat.tf1_control_flow():
        build(api)
    return graph.as_graph_def()


def node(graph_def, name):
    return [n for n in graph_def.node if n.name == name][0]


def hand_made(*specs):
    """GraphDef from (name, op, [inputs]) without TF: structure only."""
    from tensorflow.core.framework import graph_pb2
    graph_def = graph_pb2.GraphDef()
    for name, op, inputs in specs:
        new = graph_def.node.add()
        new.name, new.op = name, op
        new.input.extend(inputs)
    return graph_def


def while_graph(api):
    x = api.placeholder(api.float32, [None], name="x")
    api.while_loop(lambda i, acc: i < 3, lambda i, acc: (i + 1, acc * 2.0), [api.constant(0), x], name="loop")


@pytest.mark.parametrize("given, node_part, tensor_part", [
    ("y", "y", "y:0"), ("y:0", "y", "y:0"), ("y:2", "y", "y:2"), ("^y", "y", None),
    ("scope/y:1", "scope/y", "scope/y:1"), ("a:b", "a:b", "a:b:0"),
])
def test_names(given, node_part, tensor_part):
    assert names.node_name(given) == node_part
    if tensor_part:
        assert names.tensor_name(given) == tensor_part
    else:
        with pytest.raises(ValueError):
            names.tensor_name(given)


def test_data_input_uses_tf_spelling():
    assert names.data_input("y:0") == "y"
    assert names.data_input("y:3") == "y:3"
    assert names.control_input("y:1") == "^y"


def test_digraph_marks_data_and_control_edges():
    graph_def = hand_made(("a", "Const", []), ("b", "Const", []), ("c", "Add", ["a", "a:0", "^b"]),
                          ("d", "Identity", ["c", "^c"]))
    graph = to_digraph(graph_def)
    assert graph["a"]["c"]["kind"] == DATA
    assert graph["b"]["c"]["kind"] == CONTROL
    assert graph["c"]["d"]["kind"] == DATA  # a data edge wins over a control edge between the same pair
    assert graph.nodes["c"]["op"] == "Add"


def test_topological_order_breaks_only_while_back_edges():
    graph_def = graph_def_of(while_graph)
    reversed_def = type(graph_def)()
    reversed_def.node.extend(reversed(list(graph_def.node)))
    order = topological_order(reversed_def)
    position = dict((name, index) for index, name in enumerate(order))
    graph = to_digraph(graph_def)
    ops = dict((n.name, n.op) for n in graph_def.node)
    back = [(a, b) for a, b in graph.edges() if ops[a] == "NextIteration"]
    assert back and all(ops[b] == "Merge" for _, b in back)
    assert sorted(order) == sorted(ops)
    assert all(position[a] < position[b] for a, b in graph.edges() if (a, b) not in back)


def test_topological_order_keeps_a_sorted_graph_as_is():
    graph_def = graph_def_of(while_graph)
    assert topological_order(graph_def) == [n.name for n in graph_def.node]


def test_cycle_outside_while_loops_is_bad_input():
    graph_def = hand_made(("a", "Add", ["b", "b"]), ("b", "Identity", ["a"]))
    with pytest.raises(BadInput) as caught:
        topological_order(graph_def)
    assert "a -> b -> a" in str(caught.value) or "b -> a -> b" in str(caught.value)


def test_needed_nodes_follow_control_edges_and_loops():
    graph_def = hand_made(("x", "Placeholder", []), ("side", "NoOp", []), ("unused", "Const", []),
                          ("y", "Identity", ["x", "^side"]))
    assert needed_nodes(graph_def, ["y:0"]) == {"x", "side", "y"}
    loop = graph_def_of(while_graph)
    exits = [n.name for n in loop.node if n.op == "Exit"]
    needed = needed_nodes(loop, exits[1:])
    assert any(node(loop, name).op == "NextIteration" for name in needed)
    with pytest.raises(BadInput):
        needed_nodes(graph_def, ["nope:0"])


def test_remove_nodes_keeps_order_and_other_nodes_intact():
    graph_def = hand_made(*[("n{}".format(i), "Const", []) for i in range(10)])
    node(graph_def, "n7").attr["value"].tensor.tensor_content = b"\x01" * 1000
    assert remove_nodes(graph_def, {"n2", "n5", "n9", "absent"}) == 3
    assert [n.name for n in graph_def.node] == ["n0", "n1", "n3", "n4", "n6", "n7", "n8"]
    assert node(graph_def, "n7").attr["value"].tensor.tensor_content == b"\x01" * 1000


def test_splice_out_follows_chains_and_moves_control_deps():
    graph_def = hand_made(("x", "Placeholder", []), ("dep", "NoOp", []), ("dep2", "NoOp", []),
                          ("id1", "Identity", ["x", "^dep"]), ("id2", "Identity", ["id1"]),
                          ("user", "Neg", ["id2"]), ("waiter", "NoOp", ["^id2"]),
                          ("group", "NoOp", ["^dep2"]), ("after_group", "Neg", ["x", "^group"]))
    splices = dict((name, forwarding_splice(node(graph_def, name))) for name in ("id1", "id2", "group"))
    splice_out(graph_def, splices)
    assert list(node(graph_def, "user").input) == ["x", "^dep"]
    assert sorted(node(graph_def, "waiter").input) == ["^dep", "^x"]
    assert list(node(graph_def, "after_group").input) == ["x", "^dep2"]
    assert not set(splices) & set(n.name for n in graph_def.node)


def test_splice_without_forward_for_a_read_output_raises():
    graph_def = hand_made(("x", "Placeholder", []), ("p", "Print", ["x"]), ("user", "Neg", ["p:1"]))
    with pytest.raises(ValueError):
        splice_out(graph_def, {"p": Splice({0: "x:0"}, [], [])})


def test_pure_nodes_exclude_stateful_ancestry():
    graph_def = hand_made(("x", "Placeholder", []), ("v", "VariableV2", []), ("a", "Identity", ["x"]),
                          ("b", "Identity", ["v"]), ("c", "NoOp", ["^a"]), ("d", "NoOp", ["^b"]))
    node(graph_def, "v").attr["dtype"].type = 1
    assert pure_nodes(graph_def) == {"x", "a", "c"}


def test_attr_falls_back_to_op_default_without_inserting():
    graph_def = hand_made(("bn", "FusedBatchNorm", []))
    bn = node(graph_def, "bn")
    assert attr(bn, "is_training").b is True
    assert abs(attr(bn, "epsilon").f - 1e-4) < 1e-9
    assert "is_training" not in bn.attr and "epsilon" not in bn.attr


def test_splice_out_handles_long_chains_without_recursion():
    count = 5000
    specs = [("x", "Placeholder", []), ("n0", "NoOp", ["^x"]), ("i0", "Identity", ["x"])]
    for i in range(1, count):
        specs += [("n{}".format(i), "NoOp", ["^n{}".format(i - 1)]),
                  ("i{}".format(i), "Identity", ["i{}".format(i - 1)])]
    specs += [("user", "Neg", ["i{}".format(count - 1), "^n{}".format(count - 1)])]
    graph_def = hand_made(*specs)
    splices = dict((n.name, forwarding_splice(n)) for n in graph_def.node if n.op in ("NoOp", "Identity"))
    splice_out(graph_def, splices)
    assert [n.name for n in graph_def.node] == ["x", "user"]
    assert list(node(graph_def, "user").input) == ["x"]  # '^x' is implied by the data input


def test_splice_out_refuses_a_cycle_of_removed_nodes():
    graph_def = hand_made(("a", "Identity", ["b"]), ("b", "Identity", ["a"]), ("user", "Neg", ["a"]))
    splices = dict((name, forwarding_splice(node(graph_def, name))) for name in ("a", "b"))
    with pytest.raises(BadInput):
        splice_out(graph_def, splices)
