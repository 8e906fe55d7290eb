"""Input pipelines (queues, tf.data iterators) replaced by placeholders where they hand data to the model.

A TF1 training graph often reads its features from a queue (Estimator numpy_input_fn / pandas_input_fn,
tf.train.batch) or a tf.data Iterator: nothing outside can feed it, and running it outside the training job
blocks forever. `cut` turns the pipeline's boundary into placeholders:

  --input-at D:1,...   the tensors named; a dequeue / GetNext named there is replaced whole
  automatic            every dequeue / GetNext the outputs depend on (with a note)

A dequeue or GetNext node D is replaced whole: component 0 becomes Placeholder `D` (so `D:0` keeps its
name), component k > 0 Placeholder `D_k` (the name `D:k` also answers to, see verify.aliases). dtypes and
shapes come from the node (component_types; output_types/output_shapes) and its queue (shapes), with an open
batch dim for DequeueMany/UpTo. Any other tensor X:k named by --input-at gets Placeholder `X_k` (X itself when
it is X's only output), dtype and shape as TF infers them. Consumers are rewired; the pipeline itself stays in
the graph (training ops still read it) and freezing prunes it.
"""
from migrate import opsets, tfcompat
from migrate.errors import BadInput
from migrate.graph import edit, view
from migrate.graph.names import node_name, tensor_name

BOUNDARY_OPS = opsets.PIPELINE_BOUNDARY_OPS
CUT_NOTE = "loaded with its input pipeline cut at "  # provenance ('loaded' notes are not printed again)


def _output_index(name):
    name = name.lstrip("^")
    return int(name.rsplit(":", 1)[1]) if ":" in name else 0


def boundaries(graph_def, outputs):
    """Names of the dequeue / GetNext nodes the outputs depend on (data or control), in graph order."""
    if not any(op in BOUNDARY_OPS for op in set(node.op for node in graph_def.node)):
        return []  # no input pipeline at all (a frozen graph, the usual case): nothing to walk
    graph = view.to_digraph(graph_def)
    needed = view.needed_nodes(graph, [node_name(o) for o in outputs])
    return [n.name for n in graph_def.node if n.op in BOUNDARY_OPS and n.name in needed]


def feedable_inputs(graph_def, outputs):
    """Placeholders the outputs depend on."""
    graph = view.to_digraph(graph_def)
    needed = view.needed_nodes(graph, [node_name(o) for o in outputs])
    return [n.name for n in graph_def.node if n.op in opsets.PLACEHOLDER_OPS and n.name in needed]


def model_placeholders(graph_def):
    """Placeholders that feed what the input pipeline feeds (the model), not only the pipeline itself (an
    Estimator's enqueue_input/Placeholder) or the saver (save/filename)."""
    graph = view.to_digraph(graph_def)
    downstream = view.reachable(graph, [n.name for n in graph_def.node if n.op in BOUNDARY_OPS])
    found = []
    for node in graph_def.node:
        if node.op in opsets.PLACEHOLDER_OPS and \
                view.reachable(graph, [node.name]) & downstream:
            found.append(node.name)
    return found


def component_specs(graph_def, node):
    """[(dtype enum, dims or None)] for each output of a dequeue / GetNext node."""
    if node.op in opsets.GET_NEXT_OPS:
        types = list(node.attr["output_types"].list.type)
        shapes = [_dims(s) for s in node.attr["output_shapes"].list.shape]
    else:
        types = list(node.attr["component_types"].list.type)
        queue = edit.node_map(graph_def).get(node_name(node.input[0]))
        shapes = [_dims(s) for s in queue.attr["shapes"].list.shape] if queue is not None and \
            "shapes" in queue.attr else []
        if node.op in opsets.BATCHED_DEQUEUE_OPS:
            shapes = [None if dims is None else [None] + dims for dims in shapes]
    if len(shapes) != len(types):
        shapes = [None] * len(types)
    return list(zip(types, shapes))


def _dims(shape_proto):
    return None if shape_proto.unknown_rank else [d.size if d.size >= 0 else None for d in shape_proto.dim]


def cut(graph_def, tensors, inferred_specs=None):
    """Put placeholders at `tensors` (see module doc), editing graph_def in place.

    inferred_specs: {tensor: (dtype enum, dims)} for tensors that are not a dequeue/GetNext output.
    Returns [(original tensor, placeholder tensor, dtype name, dims)]."""
    by_name = edit.node_map(graph_def)
    done, plan = [], {}
    for tensor in tensors:
        node = by_name[node_name(tensor)]
        if node.op in BOUNDARY_OPS:
            for index, spec in enumerate(component_specs(graph_def, node)):
                plan.setdefault(node.name, {})[index] = spec
        else:
            plan.setdefault(node.name, {})[_output_index(tensor_name(tensor))] = inferred_specs[tensor_name(tensor)]
    taken = set(by_name)
    renames = {}
    for name, components in sorted(plan.items()):
        node = by_name[name]
        whole = node.op in BOUNDARY_OPS or _single_output(node)
        for index, (dtype, dims) in sorted(components.items()):
            if whole and index == 0:
                target = node
                target.ClearField("input")
                target.ClearField("attr")
                target.device = ""
                placeholder = name
            else:
                placeholder = edit.unique_name(graph_def, "{}_{}".format(name, index), taken)
                taken.add(placeholder)
                target = graph_def.node.add()
                target.name = placeholder
            target.op = "Placeholder"
            target.attr["dtype"].type = dtype
            if dims is None:
                target.attr["shape"].shape.unknown_rank = True
            else:
                target.attr["shape"].shape.CopyFrom(tfcompat.tf().TensorShape(dims).as_proto())
            renames["{}:{}".format(name, index)] = placeholder
            done.append(("{}:{}".format(name, index), placeholder + ":0", tfcompat.tf().as_dtype(dtype).name, dims))
    _rewire(graph_def, renames)
    return done


def _single_output(node):
    op_def = tfcompat.op_def(node.op)
    return op_def is not None and len(op_def.output_arg) == 1 and not op_def.output_arg[0].number_attr and \
        not op_def.output_arg[0].type_list_attr


def _rewire(graph_def, renames):
    """Point every data input reading a renamed tensor at its placeholder."""
    for node in graph_def.node:
        for i, name in enumerate(node.input):
            if name.startswith("^"):
                continue
            key = "{}:{}".format(node_name(name), _output_index(name))
            if key in renames and not (renames[key] == node_name(name) and _output_index(name) == 0):
                node.input[i] = renames[key]


def prepare(model, outputs, input_at=None, progress=None):
    """(model, [(original, placeholder, dtype, dims)]): the model with its input pipeline cut where it meets
    the outputs; the same model when nothing reads one. Graphs holding variables are copied (they are
    small); a frozen graph is edited in place (it was loaded for this run)."""
    input_at = [tensor_name(t) for t in (input_at or [])]
    found = boundaries(model.graph_def, outputs) if not input_at else []
    if not input_at and not found:
        return model, []
    known = edit.node_map(model.graph_def)
    for tensor in input_at:
        if node_name(tensor) not in known:
            import difflib
            close = difflib.get_close_matches(node_name(tensor), list(known), n=5, cutoff=0.5)
            raise BadInput("--input-at names no node '{}'".format(node_name(tensor)), model.path,
                           "did you mean: {}?".format(", ".join(close)) if close else
                           "run `migrate inspect` to list the input pipeline")
    targets = input_at or [name + ":0" for name in found]
    inferred = None
    others = [t for t in targets if known[node_name(t)].op not in BOUNDARY_OPS]
    if others:
        from migrate import verify
        specs = verify.tensor_specs(model, others)
        inferred = dict((t, (tfcompat.tf().as_dtype(dtype).as_datatype_enum, dims))
                        for t, (dtype, dims) in specs.items())
    model = _copied(model)
    cuts = cut(model.graph_def, targets, inferred)
    left = boundaries(model.graph_def, outputs)
    if left:
        raise BadInput("the outputs still read the input pipeline at {} ({})".format(
            left[0], edit.node_map(model.graph_def)[left[0]].op), model.path,
            "add it to --input-at, e.g. --input-at {}".format(",".join(input_at + [suggest_input_at_name(left[0])])))
    used = set(feedable_inputs(model.graph_def, outputs))
    cuts = [c for c in cuts if node_name(c[1]) in used] or cuts
    _note(progress, "--input-at" if input_at else "automatically: the outputs read {}".format(", ".join(
        "{} ({})".format(n, _op_of(found, n, known)) for n in found)), cuts)
    inputs = sorted(set(model.inputs) | set(c[1] for c in cuts))
    return model.derive(inputs=inputs, note=CUT_NOTE + ", ".join(c[0] for c in cuts)), cuts


def prepare_resolving(model, outputs, signature, input_at=None, progress=None):
    """prepare() for a caller whose outputs may still have to be inferred: with --outputs, a signature or
    --input-at they are resolved on the graph as it is; otherwise, when the graph has an input pipeline, the
    graph is cut at every dequeue/GetNext first and the outputs inferred on the cut graph (labels read from
    the pipeline then meet the model at a loss as a placeholder, the way output inference expects them)."""
    from migrate.freezing import outputs as freeze_outputs
    found = [n.name for n in model.graph_def.node if n.op in BOUNDARY_OPS]
    if outputs or signature or model.signatures or input_at or not found:
        return prepare(model, freeze_outputs.resolve_outputs(model, outputs, signature)[0], input_at, progress)
    cut_model = _copied(model)
    cuts = cut(cut_model.graph_def, [name + ":0" for name in found])
    tensors = freeze_outputs.resolve_outputs(cut_model, None)[0]
    used = set(feedable_inputs(cut_model.graph_def, tensors))
    cuts = [c for c in cuts if node_name(c[1]) in used]
    if not cuts:  # the inferred outputs do not read the pipeline: the graph as it was
        return model, []
    _note(progress, "automatically: the outputs read " + ", ".join(sorted(set(node_name(c[0]) for c in cuts))),
          cuts)
    inputs = sorted(set(model.inputs) | set(c[1] for c in cuts))
    return cut_model.derive(inputs=inputs, note=CUT_NOTE + ", ".join(c[0] for c in cuts)), cuts


def _note(progress, how, cuts):
    if progress is not None:
        progress("note: input pipeline replaced by placeholders ({}): {}".format(how, ", ".join(
            "{} -> {} {} {}".format(orig, ph, dtype, _show(dims)) for orig, ph, dtype, dims in cuts)))


def was_cut(model):
    return any(note.startswith(CUT_NOTE) for note in model.provenance)


def _show(dims):
    return "<unknown rank>" if dims is None else "[{}]".format(", ".join("?" if d is None else str(d) for d in dims))


def _op_of(found, name, known):
    return known[name].op if name in known else "?"


def _copied(model):
    from migrate import model as m
    if model.kind == m.FROZEN_GRAPH:
        return model.derive()
    if model.meta_graph is not None:
        from tensorflow.core.protobuf import meta_graph_pb2
        meta = meta_graph_pb2.MetaGraphDef()
        meta.CopyFrom(model.meta_graph)
        return model.derive(meta_graph=meta, graph_def=meta.graph_def)
    from tensorflow.core.framework import graph_pb2
    graph_def = graph_pb2.GraphDef()
    graph_def.CopyFrom(model.graph_def)
    return model.derive(graph_def=graph_def)


def suggest_input_at_name(node):
    return node + ":0"
