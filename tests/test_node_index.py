"""The node index the passes share (migrate/graph/index.py): after every edit helper it must describe the
GraphDef exactly as a fresh sweep would (NodeIndex.check), and the NodeDef references it holds must survive
removing and reordering other nodes in every protobuf backend."""
import numpy as np
import pytest
from tensorflow.core.framework import graph_pb2  # noqa: F401 (TF imported here, not inside a strategy: it seeds random)

from migrate.graph import Splice, edit, names
from migrate.graph.index import NodeIndex
from tests.conftest import hypothesis_settings, require_module
from tests.test_graph import hand_made

hypothesis = require_module("hypothesis")
st = hypothesis.strategies
SETTINGS = hypothesis_settings()

OPS = ["Identity", "AddV2", "NoOp", "Mul"]


@st.composite
def graphs(draw):
    """A small DAG GraphDef: Consts first, then ops reading earlier nodes (data inputs, some at output 1,
    and control inputs); written in that order, or shuffled (then some inputs name later nodes)."""
    specs = []
    count = draw(st.integers(2, 12))
    for position in range(count):
        name = "n{}".format(position)
        if position < 2 or (position < 4 and draw(st.booleans())):
            specs.append((name, "Const", []))
            continue
        op = draw(st.sampled_from(OPS))
        earlier = ["n{}".format(i) for i in range(position)]
        data = draw(st.lists(st.sampled_from(earlier), min_size=0 if op == "NoOp" else 1, max_size=3))
        controls = draw(st.lists(st.sampled_from(earlier), max_size=2, unique=True))
        specs.append((name, op, [i if not draw(st.booleans()) else i + ":1" for i in data] +
                      ["^" + i for i in controls]))
    if draw(st.booleans()):
        specs = [specs[i] for i in draw(st.permutations(range(count)))]
    return hand_made(*specs)


def _names(index):
    return sorted(index.nodes)


def _edit(draw, graph_def, index):
    """One edit helper, chosen and parametrized by hypothesis, applied with the index. Returns its name."""
    existing = _names(index)
    kind = draw(st.sampled_from(["remove", "set_inputs", "set_op", "make_const", "add_const", "splice",
                                 "keep_only", "drop_unreachable", "reorder"]))
    if kind == "remove" and existing:
        edit.remove_nodes(graph_def, draw(st.lists(st.sampled_from(existing + ["absent"]), max_size=3)), index)
    elif kind == "set_inputs" and existing:
        node = index.nodes[draw(st.sampled_from(existing))]
        data = draw(st.lists(st.sampled_from(existing), max_size=3))
        controls = draw(st.lists(st.sampled_from(existing), max_size=2))
        edit.set_inputs(node, data, controls, index)
    elif kind == "set_op" and existing:
        edit.set_op(index.nodes[draw(st.sampled_from(existing))], draw(st.sampled_from(OPS + ["Const"])), index)
    elif kind == "make_const" and existing:
        value = np.array(draw(st.floats(-4, 4, width=32)), dtype=np.float32)
        edit.make_const(index.nodes[draw(st.sampled_from(existing))], value, np.float32, index)
    elif kind == "add_const":
        name = edit.unique_name(graph_def, "added", set(index.nodes))
        edit.add_const(graph_def, name, np.zeros([2], np.float32), np.float32, index=index)
    elif kind == "splice" and existing:
        # Splice out nodes as remove_identity and strip_debug do (output 0 forwards to data input 0).
        chosen = draw(st.lists(st.sampled_from(existing), max_size=2, unique=True))
        splices = {}
        for name in chosen:
            node = index.nodes[name]
            data = [i for i in node.input if not names.is_control(i)]
            splices[name] = edit.forwarding_splice(node) if data else Splice({}, [], [])
        try:
            edit.splice_out(graph_def, splices, index=index)
        except ValueError:  # a reader reads an output the splice has no replacement for: nothing was removed
            kind = "splice refused"  # (the readers rewritten before that went through the index too)
    elif kind == "keep_only":
        edit.keep_only(graph_def, draw(st.lists(st.sampled_from(existing + ["absent"]), max_size=6)), index)
    elif kind == "drop_unreachable" and existing:
        edit.drop_unreachable(graph_def, draw(st.lists(st.sampled_from(existing), min_size=1, max_size=2)), index)
    elif kind == "reorder":
        graph_def.node.sort(key=lambda node: node.name, reverse=draw(st.booleans()))
        index.reordered()
        index.unsorted = True  # reordered() is for topological sorts only; this order may not be one
    return kind


@SETTINGS
@hypothesis.given(graphs(), st.data())
def test_the_index_stays_the_graph_after_every_edit_helper(graph_def, data):
    index = NodeIndex(graph_def)
    index.check()
    done = []
    for _ in range(data.draw(st.integers(1, 6))):
        done.append(_edit(data.draw, graph_def, index))
        index.check()  # AssertionError naming what differs from a fresh sweep
    assert len(index) == len(graph_def.node)
    assert set(index.nodes) == set(node.name for node in graph_def.node)


@SETTINGS
@hypothesis.given(graphs())
def test_orphans_are_the_nodes_that_lost_their_last_reader(graph_def):
    index = NodeIndex(graph_def)
    read_before = set(name for name in index.nodes if index.readers.get(name))
    doomed = set(name for name in index.nodes if index.ops[name] != "Const")
    edit.remove_nodes(graph_def, doomed, index)
    still_read = set(node_name for node in graph_def.node for node_name in map(names.node_name, node.input))
    assert index.take_orphans() == (read_before - doomed) - still_read
    assert index.take_orphans() == set()


def test_a_pass_counts_what_the_index_saw_change():
    """run_pass takes its removed/added counts from the index: an op change counts in both directions, a
    removed node once, a new one once."""
    from migrate.passes import PassContext, base
    graph_def = hand_made(("a", "Const", []), ("b", "Identity", ["a"]), ("c", "AddV2", ["b", "a"]))

    def body(index, context, record):
        edit.splice_out(index.graph_def, {"b": edit.forwarding_splice(index.nodes["b"])}, index=index)
        edit.make_const(index.nodes["c"], np.float32(1.0), np.float32, index)
        edit.add_const(index.graph_def, "d", np.ones([2], np.float32), np.float32, index=index)

    after, record = base.run_pass("demo", body, graph_def, PassContext(["c:0"]))
    assert dict(record.removed) == {"Identity": 1, "AddV2": 1}
    assert dict(record.added) == {"Const": 2}
    assert (record.nodes_before, record.nodes_after) == (3, 3)
    assert [node.name for node in after.node] == ["a", "c", "d"]
    assert len(graph_def.node) == 3 and graph_def.node[1].op == "Identity"  # the caller's graph is untouched


def test_node_references_survive_removal_and_sorting():
    """What the index relies on, in this env's protobuf backend (upb, cpp or python): removing other nodes
    (sort the doomed to the end, cut the tail) and sorting the repeated field move NodeDefs, never copy them."""
    graph_def = hand_made(*[("n{}".format(position), "Const", []) for position in range(10)])
    index = NodeIndex(graph_def)
    kept = index.nodes["n7"]
    edit.remove_nodes(graph_def, {"n2", "n5"}, index)
    kept.op = "Identity"
    graph_def.node.sort(key=lambda node: node.name, reverse=True)
    kept.input.append("n1")
    found = [node for node in graph_def.node if node.name == "n7"]
    assert [(node.op, list(node.input)) for node in found] == [("Identity", ["n1"])]


@pytest.mark.parametrize("inputs, unsorted", [(["a"], False), (["c"], True), (["^c"], True), (["gone"], False)])
def test_the_index_knows_when_a_node_reads_a_later_one(inputs, unsorted):
    graph_def = hand_made(("a", "Const", []), ("b", "Identity", []), ("c", "Const", []))
    index = NodeIndex(graph_def)
    assert not index.unsorted
    edit.rewrite_inputs(index.nodes["b"], inputs, index)
    assert index.unsorted == unsorted
    index.check()
