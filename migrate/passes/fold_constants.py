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
from migrate.graph import add_const, make_const, names, needed_nodes, unique_name
from migrate.graph.edit import rewrite_inputs
from migrate.graph.ops import attr, is_stateful
from migrate.graph.view import parse_input, producer_of
from migrate.opsets import (FUNCTION_CALL_OPS, PLACEHOLDER_OPS, SHAPE_OPS, SHAPED_PLACEHOLDER_OPS as PLACEHOLDERS,
                            V1_CONTROL_FLOW)
from migrate.passes import base, numpy_eval

NAME = "fold_constants"
SUMMARY = "evaluate subgraphs fed by constants only (one session run) and replace them by Const nodes"

# Unsafe ops (ReadFile, ...) never run at optimize time: folding would bake a file's contents into the model.
NEVER_FOLDED_OPS = V1_CONTROL_FLOW | FUNCTION_CALL_OPS | PLACEHOLDER_OPS | frozenset(["NoOp"]) | opsets.UNSAFE_OPS
SMALL_BYTES = 1 << 20   # results up to this size are always worth folding
MAX_GROWTH = 4          # above it, a result may be at most this many times its largest constant source


def run(graph_def, context, in_place=False):
    return base.run_pass(NAME, _fold, graph_def, context, in_place)


def _fold(index, context, record):
    graph_def, nodes = index.graph_def, index.nodes
    shapes = _static_shape_reads(index)
    for name in shapes:
        make_const(nodes[name], *shapes[name], index=index)
    if shapes:
        record.note("Shape/Size/Rank of fully shaped placeholders made constant: {}".format(
            base.short_list(shapes)))
    analysis = _Analysis.of(index)
    wanted = _frontier(analysis, context, record)
    values = _evaluate(index, analysis, wanted, context, record) if wanted else {}
    if not values:
        if not shapes and not record.reason:  # _evaluate gives its own reason when it fails
            record.skip("nothing within the size limits; see notes" if wanted else
                        "no non-Const node computes from constants only", untouched=True)
        return
    reachability = base.Reachability(index)  # a placeholder whose Shape became a Const stays
    _replace(index, values, analysis)
    reachability.drop_orphans(graph_def, context)  # what only the folded nodes read


class _Analysis(object):
    """What fold_constants needs to know about a graph before it edits it.

    foldable   names of foldable nodes
    consts     the foldable Consts
    order      foldable non-Const nodes, producers first (numpy evaluates them in this order)
    frontier   tensors of foldable non-Const nodes that non-foldable nodes read ('n:0')
    indices    {foldable non-Const node: output indices its readers read}
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

    @classmethod
    def of(cls, index):
        """Walks forward from the Consts through their readers (Kahn's algorithm: a node is foldable once
        all its producers are): only the constant part of the graph and its border are visited. While-loop
        back edges need no special case: they join v1 control flow ops, which never fold."""
        nodes, ops, readers = index.nodes, index.ops, index.readers
        seeds = [name for name in index.by_op.get("Const", ()) if not nodes[name].input]
        foldable, order, consts = set(seeds), [], set(seeds)
        left = {}  # candidate -> how many of its distinct producers are not known foldable yet (-1: never)
        may_fold = {"Const": True}  # op -> whether a node of that op can fold (asked once per op)
        todo = list(seeds)
        while todo:
            name = todo.pop()
            for reader in readers.get(name, ()):
                count = left.get(reader)
                if count is None:
                    count = -1
                    op = ops[reader]
                    folds = may_fold.get(op)
                    if folds is None:
                        folds = may_fold[op] = op not in NEVER_FOLDED_OPS and not is_stateful(op)
                    if folds:
                        count = len(set([i if ":" not in i and i[:1] != "^" else producer_of(i)
                                         for i in nodes[reader].input]))
                if count > 0:
                    count -= 1
                    if count == 0:
                        foldable.add(reader)
                        todo.append(reader)
                        if ops[reader] != "Const":
                            order.append(reader)
                        else:
                            consts.add(reader)
                left[reader] = count
        frontier, indices = set(), {}
        for name in order:
            read = indices[name] = set()
            for reader in readers.get(name, ()):
                outside = reader not in foldable
                for input_name in nodes[reader].input:
                    if input_name == name:  # output 0, spelled as TF spells it
                        output = 0
                    else:
                        producer, output = parse_input(input_name)
                        if producer != name or output < 0:
                            continue
                    read.add(output)
                    if outside:
                        frontier.add("{}:{}".format(name, output))
        return cls(foldable=foldable, consts=consts, order=order, frontier=frontier, indices=indices)


def _static_shape_reads(index):
    """{node: (value, dtype)} for Shape/Size/Rank nodes reading a placeholder whose shape is fully defined
    (after set_static_shapes, typically `tf.shape(x)[0]`): known without running anything."""
    found, nodes = {}, index.nodes
    for node in index.of_ops(SHAPE_OPS):
        if len(node.input) != 1 or names.is_control(node.input[0]):
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


def _evaluate(index, analysis, wanted, context, record):
    """{tensor: (value, dtype)} for the wanted tensors within the size limits: what numpy computes exactly
    as TF would (numpy_eval), the rest from one session.run.

    Sizes are checked before running when the static shape is known. Otherwise (TF 1.7 infers fewer
    shapes) after: computing it costs what one run of the model costs anyway.
    """
    api = tfcompat.v1()
    nodes = index.nodes
    source_bytes = _LargestSource(analysis, index)
    computed = numpy_eval.evaluate_all(analysis.order, nodes, analysis.foldable, context.options["fold_max_bytes"],
                                       index.ops)
    values = {}
    left = set()
    dtypes = {}  # numpy dtype -> TF DType (as_dtype per tensor adds up on big graphs)
    for tensor in sorted(wanted):
        producer = tensor[:-2] if tensor[-2:] == ":0" else None  # wanted tensors are spelled 'node:k'
        if producer in computed:
            value = computed[producer]
            dtype = dtypes.get(value.dtype)
            if dtype is None:
                dtype = dtypes[value.dtype] = api.as_dtype(value.dtype)
            if _fits(tensor, dtype, _value_bytes(value, dtype), source_bytes, context, record):
                values[tensor] = (value, dtype)
        else:
            left.add(tensor)
    if left:
        values.update(_evaluate_in_tf(index, left, source_bytes, context, record))
    return values


def _evaluate_in_tf(index, wanted, source_bytes, context, record):
    api = tfcompat.v1()
    producers = set(names.node_name(tensor) for tensor in wanted)
    subgraph = _subgraph_def(index.graph_def, index.nodes, needed_nodes(index, producers))
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

    def __init__(self, analysis, index):
        self.analysis, self.index, self.nodes, self.memo = analysis, index, index.nodes, {}

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
            producers = list(self.index.predecessors(current))
            pending = [p for p in producers if p in self.analysis.foldable and p not in self.memo]
            if pending:
                stack.extend(pending)
                continue
            self.memo[current] = max([0] + [self.memo[p] for p in producers if p in self.memo])
            stack.pop()
        return self.memo[name]


def _fits(tensor_name, dtype, size, source_bytes, context, record):
    """Whether a result of `size` bytes (None: not known yet) may become a Const; notes why not."""
    if dtype.name in ("resource", "variant"):  # never a ref: nothing downstream of a variable is foldable
        record.note("kept '{}': a {} tensor cannot be a Const".format(tensor_name, dtype.name))
        return False
    if size is None:
        return True
    cap = context.options["fold_max_bytes"]
    if size <= cap and size <= SMALL_BYTES:
        return True  # small results always fold: no need to look for their largest source
    source = source_bytes.get(names.node_name(tensor_name), 0)
    if size > cap or size > MAX_GROWTH * source:
        record.note("kept '{}': folding makes a {} constant from {} of constants (limits: {} cap, "
                    "{}x growth above {})".format(tensor_name, _bytes(size), _bytes(source), _bytes(cap),
                                                  MAX_GROWTH, _bytes(SMALL_BYTES)))
        return False
    return True


def _replace(index, values, analysis):
    """Write the constants: in place (same name) when every reader reads output 0, else as new nodes."""
    graph_def, nodes = index.graph_def, index.nodes
    by_node = defaultdict(dict)
    for tensor, value in values.items():  # tensors are spelled 'node:k'
        name, _, output = tensor.rpartition(":")
        by_node[name][int(output)] = value
    renamed = {}
    taken = None
    indices = analysis.indices
    only_first = frozenset([0])
    for name, outputs in sorted(by_node.items()):
        if 0 in outputs and indices.get(name, only_first) <= only_first:
            value, dtype = outputs[0]
            make_const(nodes[name], value, dtype, index)
            continue
        if taken is None:
            taken = set(nodes)
        for output, (value, dtype) in sorted(outputs.items()):
            new_name = unique_name(graph_def, "{}/folded_output_{}".format(name, output), taken)
            taken.add(new_name)
            add_const(graph_def, new_name, value, dtype, device=nodes[name].device, index=index)
            renamed["{}:{}".format(name, output)] = new_name
    if renamed:
        _redirect(index, renamed)


def _redirect(index, renamed):
    """Point readers of renamed tensors at their new Consts."""
    producers = set(names.node_name(tensor) for tensor in renamed)
    for reader in set(reader for name in producers for reader in index.readers.get(name, ())):
        node = index.nodes[reader]
        inputs = [renamed.get(names.tensor_name(i), i) if not names.is_control(i) else i for i in node.input]
        if inputs != list(node.input):
            rewrite_inputs(node, inputs, index)


def _bytes(count):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return "{:.0f} {}".format(count, unit) if unit == "B" else "{:.1f} {}".format(count, unit)
        count /= 1024.0


def _first_line(exc):
    from migrate.errors import first_line
    return first_line(exc)
