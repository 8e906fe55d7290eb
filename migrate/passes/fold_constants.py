"""fold_constants: replace what is computed from constants alone by the constants it computes.

Why our own evaluation and not Grappler (tf_optimizer.OptimizeGraph with constfold only): its Python entry
point changed signature across our TF range (RewriterConfig in 1.x, ConfigProto in 2.x), its constant
folding also rewrites arithmetic and renames/adds nodes ('ConstantFolding/...') differently per version,
and it cannot tell us why something was not folded. Ours behaves the same on TF 1.7 and 2.21:
- foldable: a Const, or a stateless, known, non-control-flow, non-function op whose inputs (data and
  control) are all foldable. Placeholders, v1 control flow and stateful ops stop it; a Const inside a cond
  branch or while frame hangs on its pivot by a control edge, so it is not foldable and frames stay intact.
- evaluated: only the frontier (foldable tensors read by non-foldable nodes or requested as outputs), in
  ONE session.run over an isolated tf.Graph that holds only the foldable subgraph, not the whole model
  (one run per tensor only when that run fails, so a subgraph that errors is kept and the rest folds).
- size: a result above options fold_max_bytes, or above 1 MiB and 4x its largest constant source
  (zeros/ones/Fill of big shapes), stays computed at run time: folding it would bloat the model file.
- names: a node whose readers all read output 0 becomes a Const under its own name (outputs survive);
  other outputs get new Const nodes '<node>/folded_output_<k>'.
- shapes: Shape/Size/Rank of a Placeholder whose shape is fully defined (set_static_shapes) become Consts
  first, so `tf.shape(x)[0]` arithmetic folds; shapes of other tensors are not inferred here.
"""
from collections import defaultdict

import numpy as np

from migrate import opsets, tfcompat
from migrate.graph import (add_const, make_const, names, needed_nodes, node_map, remove_nodes, to_digraph,
                           unique_name)
from migrate.graph.ops import attr, is_stateful
from migrate.graph.view import loop_back_edges, parse_input, topological_sort
from migrate.opsets import (FUNCTION_CALL_OPS, MERGE_OPS, NEXT_ITERATION_OPS, PLACEHOLDER_OPS, SHAPE_OPS,
                            SHAPED_PLACEHOLDER_OPS as PLACEHOLDERS, V1_CONTROL_FLOW)
from migrate.passes import base, numpy_eval

NAME = "fold_constants"
SUMMARY = "evaluate subgraphs fed by constants only (one session run) and replace them by Const nodes"

# Unsafe ops (ReadFile, ...) never run at optimize time: folding would bake a file's contents into the model.
NEVER_FOLDED_OPS = V1_CONTROL_FLOW | FUNCTION_CALL_OPS | PLACEHOLDER_OPS | frozenset(["NoOp"]) | opsets.UNSAFE_OPS
SMALL_BYTES = 1 << 20   # results up to this size are always worth folding
MAX_GROWTH = 4          # above it, a result may be at most this many times its largest constant source


def run(graph_def, context, in_place=False):
    return base.run_pass(NAME, _fold, graph_def, context, in_place)


def _fold(graph_def, context, record):
    nodes = node_map(graph_def)
    shapes = _static_shape_reads(graph_def, nodes)
    for name in shapes:
        make_const(nodes[name], *shapes[name])
    if shapes:
        record.note("Shape/Size/Rank of fully shaped placeholders made constant: {}".format(
            base.short_list(shapes)))
    # Graphs in topological order (what TF writes) are analysed in one sweep; others through the full view.
    analysis = _Analysis.in_order(graph_def, nodes) or _Analysis.from_view(graph_def)
    wanted = _frontier(analysis, context, record)
    values = _evaluate(graph_def, analysis, nodes, wanted, context, record) if wanted else {}
    if not values:
        if not shapes and not record.reason:  # _evaluate gives its own reason when it fails
            record.skip("nothing within the size limits; see notes" if wanted else
                        "no non-Const node computes from constants only", untouched=True)
        return
    reachability = base.Reachability(graph_def, analysis.graph) if analysis.graph is not None or \
        analysis.loops else None
    released = _replace(graph_def, nodes, values, analysis)
    if reachability is not None:
        reachability.drop_orphans(graph_def, context)
    else:
        _drop_released(graph_def, nodes, analysis.readers, released, context.protected_nodes())


class _Analysis(object):
    """What fold_constants needs to know about a graph before it edits it.

    foldable   names of foldable nodes
    order      foldable non-Const nodes, producers first (numpy evaluates them in this order)
    producers  {foldable node: names it reads (data and control)}
    frontier   tensors of foldable non-Const nodes that non-foldable nodes read ('n:0')
    indices    {foldable non-Const node: output indices its readers read}
    readers    {node: how many inputs name it} (None when from_view: Reachability then drops orphans)
    loops      the graph has while loops (orphans are then found by reachability, cycles included)
    graph      the DiGraph when from_view, else None
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

    @classmethod
    def in_order(cls, graph_def, nodes):
        """One sweep; None when some input names a later node (not a while-loop back edge)."""
        foldable, consts, order, producers_of = set(), set(), [], {}
        frontier, indices, readers, seen, loops = set(), defaultdict(set), {}, set(), False
        for node in graph_def.node:
            name, op = node.name, node.op
            loops = loops or op in NEXT_ITERATION_OPS
            producers, data, all_foldable = [], [], True
            for input_name in node.input:
                if input_name[:1] == "^":
                    producer, index = input_name[1:], -1
                elif ":" in input_name:
                    producer, index = parse_input(input_name)
                else:
                    producer, index = input_name, 0
                if producer not in seen and producer in nodes and not (
                        op in MERGE_OPS and nodes[producer].op in NEXT_ITERATION_OPS):
                    return None
                readers[producer] = readers.get(producer, 0) + 1
                if producer not in foldable:
                    all_foldable = False
                elif index >= 0 and producer not in consts:
                    indices[producer].add(index)
                    data.append("{}:{}".format(producer, index))
                producers.append(producer)
            seen.add(name)
            if all_foldable and (op == "Const" or (producers and op not in NEVER_FOLDED_OPS and
                                                   not is_stateful(op))):
                foldable.add(name)
                producers_of[name] = producers
                if op == "Const":
                    consts.add(name)
                else:
                    order.append(name)
            else:
                frontier.update(data)
        return cls(foldable=foldable, consts=consts, order=order, producers=producers_of, frontier=frontier,
                   indices=indices, readers=readers, loops=loops, graph=None)

    @classmethod
    def from_view(cls, graph_def):
        graph = to_digraph(graph_def)
        foldable, order = _foldable_nodes(graph)
        consts = set(name for name in foldable if graph.nodes[name]["op"] == "Const")
        frontier = set()
        for node in graph_def.node:
            if node.name in foldable:
                continue
            for input_name in node.input:
                producer, index = parse_input(input_name)
                if index >= 0 and producer in foldable and producer not in consts:
                    frontier.add("{}:{}".format(producer, index))
        producers = dict((name, list(graph.predecessors(name))) for name in foldable)
        evaluated = [name for name in order if name in foldable and name not in consts]
        return cls(foldable=foldable, consts=consts, order=evaluated, producers=producers, frontier=frontier,
                   indices=_read_indices(graph_def, set(evaluated)), readers=None, loops=True, graph=graph)


def _static_shape_reads(graph_def, nodes):
    """{node: (value, dtype)} for Shape/Size/Rank nodes reading a placeholder whose shape is fully defined
    (after set_static_shapes, typically `tf.shape(x)[0]`): known without running anything."""
    found = {}
    for node in graph_def.node:
        if node.op not in SHAPE_OPS or len(node.input) != 1 or names.is_control(node.input[0]):
            continue
        placeholder = nodes.get(names.node_name(node.input[0]))
        shape = attr(placeholder, "shape") if placeholder is not None and placeholder.op in PLACEHOLDERS else None
        if shape is None or shape.shape.unknown_rank or any(dim.size < 0 for dim in shape.shape.dim):
            continue
        dims = [dim.size for dim in shape.shape.dim]
        value = {"Shape": dims, "Size": int(np.prod(dims)), "Rank": len(dims)}[node.op]
        dtype = tfcompat.v1().as_dtype(attr(node, "out_type").type) if node.op != "Rank" else tfcompat.v1().int32
        found[node.name] = (np.array(value, dtype=dtype.as_numpy_dtype), dtype)
    return found


def _foldable_nodes(graph):
    """(foldable node names, every node in a topological order). While-loop back edges only join v1
    control flow ops, which never fold, so they need no special case here."""
    back = set(loop_back_edges(graph))
    order = topological_sort(graph, back)  # BadInput on a cycle that is not a while loop
    foldable = set()
    nodes = graph.nodes
    for name in order:
        op = nodes[name]["op"]
        if op == "Const" or (graph.in_degree(name) and op not in NEVER_FOLDED_OPS and not is_stateful(op)):
            for producer in graph.predecessors(name):
                if producer not in foldable:
                    break
            else:
                foldable.add(name)
    return foldable, order


def _frontier(analysis, context, record):
    """Tensor names worth evaluating: foldable non-Const tensors that non-foldable nodes read, or that are
    requested outputs."""
    wanted = set(analysis.frontier)
    excluded = set()
    for output in context.outputs:
        producer = names.node_name(output)
        if producer in analysis.foldable and producer not in analysis.consts:
            if names.output_index(output) == 0:
                wanted.add(output)
            else:
                record.note("kept '{}': a Const cannot keep the name of output {}".format(producer, output))
                excluded.add(producer)
    return set(tensor for tensor in wanted if names.node_name(tensor) not in excluded)


def _evaluate(graph_def, analysis, nodes, wanted, context, record):
    """{tensor: (value, dtype)} for the wanted tensors within the size limits: what numpy computes exactly
    as TF would (numpy_eval), the rest from one session.run.

    Sizes are checked before running when the static shape is known. Otherwise (TF 1.7 infers fewer
    shapes) after: computing it costs what one run of the model costs anyway.
    """
    api = tfcompat.v1()
    source_bytes = _LargestSource(analysis, nodes)
    computed = numpy_eval.evaluate_all(analysis.order, nodes, analysis.foldable, context.options["fold_max_bytes"])
    values = {}
    left = set()
    for tensor in sorted(wanted):
        producer = names.node_name(tensor)
        if producer in computed and names.output_index(tensor) == 0:
            value = computed[producer]
            dtype = api.as_dtype(value.dtype)
            if _fits(tensor, dtype, _value_bytes(value, dtype), source_bytes, context, record):
                values[tensor] = (value, dtype)
        else:
            left.add(tensor)
    if left:
        values.update(_evaluate_in_tf(graph_def, nodes, left, source_bytes, context, record))
    return values


def _evaluate_in_tf(graph_def, nodes, wanted, source_bytes, context, record):
    api = tfcompat.v1()
    producers = set(names.node_name(tensor) for tensor in wanted)
    subgraph = _subgraph_def(graph_def, nodes, needed_nodes(graph_def, producers))
    with api.Graph().as_default() as tf_graph:
        try:
            api.import_graph_def(subgraph, name="")
        except Exception as exc:  # an op this TF cannot build from the GraphDef
            record.skip("could not import the constant subgraph: {}".format(_first_line(exc)))
            return {}
        tensors = dict((tensor, tf_graph.get_tensor_by_name(tensor)) for tensor in sorted(wanted))
        chosen = [t for t in sorted(tensors)
                  if _fits(t, tensors[t].dtype.base_dtype, _static_bytes(tensors[t]), source_bytes, context, record)]
        chosen = _bounded(chosen, tf_graph, subgraph, record, context)
        if not chosen:
            return {}
        with api.Session(graph=tf_graph) as session:
            results = _run(session, [tensors[t] for t in chosen], record)
    values = {}
    for tensor, value in zip(chosen, results):
        if value is None:
            continue
        dtype = tensors[tensor].dtype.base_dtype
        if _static_bytes(tensors[tensor]) is not None or _fits(tensor, dtype, _value_bytes(value, dtype),
                                                               source_bytes, context, record):
            values[tensor] = (value, dtype)
    return values


def _bounded(chosen, tf_graph, subgraph, record, context):
    """The tensors of `chosen` whose computation keeps every intermediate within session.run_bound (a scalar
    Sum over a 1 G-element Fill would cost 4 GiB to fold); notes why the others are kept."""
    from migrate.session import oversized_tensors
    found = oversized_tensors(tf_graph)
    if not found:
        return chosen
    context.oversized.extend((t.name, t.op.type, size, bound) for t, size, bound in found)
    kept = []
    for tensor in chosen:
        needed = needed_nodes(subgraph, [names.node_name(tensor)])
        big = [(t, size, bound) for t, size, bound in found if t.op.name in needed]
        if big:
            t, size, bound = big[0]
            record.note("kept '{}': computing it needs '{}' of {} (over the {} bound: 2x the largest weight + "
                        "256 MiB)".format(tensor, t.name, _bytes(size), _bytes(bound)))
        else:
            kept.append(tensor)
    return kept


def _run(session, fetches, record):
    """All fetches in one run; if that fails (a constant subgraph that errors, e.g. an index out of
    range), each one alone, so one bad subgraph does not stop the others. None where it failed."""
    try:
        return session.run(fetches)
    except Exception:
        pass
    results = []
    for fetch in fetches:
        try:
            results.append(session.run(fetch))
        except Exception as exc:
            record.note("kept '{}': evaluating it failed: {}".format(fetch.name, _first_line(exc)))
            results.append(None)
    return results


def _static_bytes(tensor):
    if tensor.dtype.base_dtype.name == "string" or not tensor.shape.is_fully_defined():
        return None
    return tensor.shape.num_elements() * tensor.dtype.base_dtype.size


def _value_bytes(value, dtype):
    if dtype.name == "string":
        return sum(len(item) for item in np.asarray(value).reshape(-1))
    return np.asarray(value).nbytes


def _subgraph_def(graph_def, nodes, keep):
    """The nodes to evaluate, copied (only these constants are copied), runnable on any device."""
    subgraph = type(graph_def)()
    subgraph.versions.CopyFrom(graph_def.versions)
    for name in keep:
        node = subgraph.node.add()
        node.CopyFrom(nodes[name])
        node.device = ""
        if "_class" in node.attr:  # colocation with nodes left outside would fail the import
            del node.attr["_class"]
    return subgraph


class _LargestSource(object):
    """source.get(node, 0): size in bytes of the largest Const a foldable node computes from (by GraphDef
    size of the tensor), worked out for the nodes asked about only."""

    def __init__(self, analysis, nodes):
        self.analysis, self.nodes, self.memo = analysis, nodes, {}

    def get(self, name, default=0):
        if name not in self.analysis.foldable:
            return default
        stack = [name]
        while stack:  # iterative: constant chains can be long
            current = stack[-1]
            if current in self.memo:
                stack.pop()
                continue
            node = self.nodes[current]
            if node.op == "Const":
                self.memo[current] = node.attr["value"].tensor.ByteSize()
                stack.pop()
                continue
            pending = [p for p in self.analysis.producers.get(current, ()) if p in self.analysis.foldable and
                       p not in self.memo]
            if pending:
                stack.extend(pending)
                continue
            self.memo[current] = max([0] + [self.memo[p] for p in self.analysis.producers.get(current, ())
                                            if p in self.memo])
            stack.pop()
        return self.memo[name]


def _fits(tensor_name, dtype, size, source_bytes, context, record):
    """Whether a result of `size` bytes (None: not known yet) may become a Const; notes why not."""
    if dtype.name in ("resource", "variant"):  # never a ref: nothing downstream of a variable is foldable
        record.note("kept '{}': a {} tensor cannot be a Const".format(tensor_name, dtype.name))
        return False
    if size is None:
        return True
    source = source_bytes.get(names.node_name(tensor_name), 0)
    cap = context.options["fold_max_bytes"]
    if size > cap or (size > SMALL_BYTES and size > MAX_GROWTH * source):
        record.note("kept '{}': folding makes a {} constant from {} of constants (limits: {} cap, "
                    "{}x growth above {})".format(tensor_name, _bytes(size), _bytes(source), _bytes(cap),
                                                  MAX_GROWTH, _bytes(SMALL_BYTES)))
        return False
    return True


def _replace(graph_def, nodes, values, analysis):
    """Write the constants: in place (same name) when every reader reads output 0, else as new nodes.
    Returns the node names whose inputs were released (one entry per input that no longer reads them)."""
    by_node = defaultdict(dict)
    for tensor, value in values.items():
        by_node[names.node_name(tensor)][names.output_index(tensor)] = value
    renamed = {}
    released = []
    taken = set(nodes)
    for name, outputs in sorted(by_node.items()):
        if analysis.indices.get(name, set()) <= {0} and 0 in outputs:
            value, dtype = outputs[0]
            released.extend(names.node_name(i) for i in nodes[name].input)
            make_const(nodes[name], value, dtype)
            continue
        for index, (value, dtype) in sorted(outputs.items()):
            new_name = unique_name(graph_def, "{}/folded_output_{}".format(name, index), taken)
            taken.add(new_name)
            add_const(graph_def, new_name, value, dtype, device=nodes[name].device)
            renamed["{}:{}".format(name, index)] = new_name
    if renamed:
        released.extend(_redirect(graph_def, renamed))
    return released


def _drop_released(graph_def, nodes, readers, released, keep):
    """Remove the nodes that lost their last reader (counted before the edit) and are not in keep, then
    what only they read (graphs without while loops: no cycle can keep an orphan alive)."""
    doomed, todo = set(), []

    def release(name):
        if name in readers:
            readers[name] -= 1
            if readers[name] == 0 and name in nodes and name not in keep:
                todo.append(name)
    for name in released:
        release(name)
    while todo:
        name = todo.pop()
        if name in doomed:
            continue
        doomed.add(name)
        for input_name in nodes[name].input:
            release(names.node_name(input_name))
    remove_nodes(graph_def, doomed)


def _read_indices(graph_def, producers=None):
    """{node: output indices its readers read} (for the given producers only, when given)."""
    read = defaultdict(set)
    for node in graph_def.node:
        for input_name in node.input:
            if ":" not in input_name:
                if input_name[:1] != "^" and (producers is None or input_name in producers):
                    read[input_name].add(0)
                continue
            producer, index = parse_input(input_name)
            if index >= 0 and (producers is None or producer in producers):
                read[producer].add(index)
    return read


def _redirect(graph_def, renamed):
    """Point readers of renamed tensors at their new Consts; returns the producers they stopped reading."""
    released = []
    for node in graph_def.node:
        for position, input_name in enumerate(node.input):
            if not names.is_control(input_name) and names.tensor_name(input_name) in renamed:
                node.input[position] = renamed[names.tensor_name(input_name)]
                released.append(names.node_name(input_name))
    return released


def _bytes(count):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return "{:.0f} {}".format(count, unit) if unit == "B" else "{:.1f} {}".format(count, unit)
        count /= 1024.0


def _first_line(exc):
    from migrate.errors import first_line
    return first_line(exc)
