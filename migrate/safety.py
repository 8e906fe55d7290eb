"""Nothing from a model runs unasked: refuse to execute graphs whose needed part touches files, the network
or Python (opsets.UNSAFE_OPS) unless the user passed --allow-unsafe-ops.

What is checked is everything migrate would execute, not just what the outputs need: the model's own restore
op (a Saver's `save/restore_all` runs whatever it waits on), the table initializers, a SavedModel's main /
legacy init op, a frozen graph's `migrate_init_tables`, and the bodies of the library functions any of
those call. Exempt: checkpoint reads (Restore*) whose file name is the tensor migrate feeds with the
checkpoint the user named, and vocabulary files a SavedModel ships as assets (read only from its assets/,
compared on resolved paths). Both also inside functions, when the file name reaches the op through the call's
arguments: a table initialized in an `__initializer_*` function called with the asset (TF 2.x, TF Transform),
the RestoreV2 of a TF2 SavedModel's `__traced_restore` called with the checkpoint file name migrate feeds.
Assets count only when the file really lies inside the SavedModel: an asset that is a symlink to /etc/passwd
is refused, as freeze would embed its content and `export --format tf1` copy it.
Debug ops are safe while they print to the console; a PrintV2 whose output_stream is a file
(`tf.print(..., output_stream="file:///path")` appends to that file) is unsafe (opsets.writes_file).
"""
import os

from migrate import opsets
from migrate.errors import BadInput
from migrate.graph import needed_nodes, node_name
from migrate.graph.ops import called_functions
from migrate.opsets import (CALL_OPS, CHECKPOINT_READ_OPS, FILE_TABLE_INITIALIZERS, INIT_COLLECTIONS,
                            INIT_SIGNATURE, TABLE_INIT_NODE)



def _loader_roots(model):
    """(nodes the loader runs, checkpoint file-name nodes it feeds) for this model."""
    graph_def = model.graph_def
    roots, fed = [], set()
    meta = model.meta_graph
    if meta is not None:
        for key in INIT_COLLECTIONS:
            if key in meta.collection_def:
                roots.extend(node_name(name) for name in meta.collection_def[key].node_list.value)
        if INIT_SIGNATURE in meta.signature_def:
            roots.extend(node_name(info.name) for info in meta.signature_def[INIT_SIGNATURE].outputs.values())
    saver = meta is not None and meta.HasField("saver_def") and meta.saver_def.restore_op_name
    if saver or model.checkpoint:  # the saver_def's restore op, else the graph's own restore_all, fed the prefix
        restore, filename = opsets.restore_root(graph_def, meta), opsets.restore_filename(graph_def, meta)
        roots.extend([restore] if restore is not None else [])
        if filename is not None:
            fed.add(filename)
    roots.extend(n.name for n in graph_def.node if n.op in FILE_TABLE_INITIALIZERS or n.name == TABLE_INIT_NODE)
    return roots, fed


# What a file-reading op may read when migrate itself binds the file name: an asset of the model, or the
# checkpoint migrate feeds to the model's restore op.
ASSET, CHECKPOINT = "asset", "checkpoint"
_FILE_INPUT = dict([(op, (1, ASSET)) for op in FILE_TABLE_INITIALIZERS] +
                   [(op, (0, CHECKPOINT)) for op in CHECKPOINT_READ_OPS])


def _bound(name, inside, args):
    """What a function-body input `name` is bound to (ASSET / CHECKPOINT / None), through Identity ops."""
    for _ in range(16):
        base = name.lstrip("^").split(":")[0]
        if base in args:
            return args[base]
        node = inside.get(base)
        if node is None or node.op not in opsets.IDENTITY_OPS or not node.input:
            return None
        name = node.input[0]
    return None


def _call_bindings(node, function, bound_input):
    """{arg name: ASSET / CHECKPOINT} for the function a call node calls: each data input of a
    PartitionedCall / StatefulPartitionedCall (or a Defun-style op) bound to the arg at its position."""
    if node.op not in CALL_OPS and node.op != function.signature.name:
        return {}
    data = [name for name in node.input if not name.startswith("^")]
    bindings = {}
    for arg, name in zip(function.signature.input_arg, data):
        what = bound_input(name)
        if what is not None:
            bindings[arg.name] = what
    return bindings


def _unsafe_in_functions(calls, functions):
    """Unsafe ops inside the functions `calls` ([(function name, {arg: ASSET/CHECKPOINT})]) names and every
    function those call. A file-table initializer reading an arg bound to one of the model's assets, and a
    checkpoint read of the arg bound to the checkpoint migrate feeds, are what loading the model does."""
    found, seen, todo = [], set(), list(calls)
    while todo:
        name, args = todo.pop()
        key = (name, tuple(sorted(args.items())))
        if key in seen:
            continue
        seen.add(key)
        inside = dict((n.name, n) for n in functions[name].node_def)
        for inner in functions[name].node_def:
            if opsets.is_unsafe(inner):
                position, wanted = _FILE_INPUT.get(inner.op, (None, None))
                if position is None or len(inner.input) <= position or \
                        _bound(inner.input[position], inside, args) != wanted:
                    found.append("{}/{}".format(name, _label(inner)))
            for called in called_functions(inner, functions):
                todo.append((called, _call_bindings(inner, functions[called],
                                                    lambda input_name: _bound(input_name, inside, args))))
    return found


def own_assets(model):
    """Node names of the model's asset tensors whose file really lies inside the SavedModel's directory
    (compared on resolved paths: a symlink out of assets/ is not the model's own file)."""
    if not model.assets:
        return set()
    base = os.path.join(os.path.realpath(model.saved_model_dir or model.path), "assets")
    own = set()
    for tensor, path in model.assets.items():
        if path and os.path.realpath(path).startswith(base + os.sep):
            own.add(node_name(tensor))
    return own


def unsafe_nodes(model, outputs):
    """[(node, op)] of unsafe ops among the nodes migrate would execute for `outputs`."""
    graph_def = model.graph_def
    existing = set([node.name for node in graph_def.node])
    ops = set([node.op for node in graph_def.node])
    if not (ops & (opsets.UNSAFE_OPS | opsets.STREAM_DEBUG_OPS)) and not len(graph_def.library.function) and \
            all(node_name(o) in existing for o in outputs):
        return []  # no unsafe op anywhere (the usual case): no need to work out what would run
    loader_roots, fed = _loader_roots(model)
    roots = [node_name(o) for o in outputs] + [name for name in loader_roots if name in existing]
    needed = needed_nodes(graph_def, roots)
    assets = own_assets(model)
    functions = dict((f.signature.name, f) for f in graph_def.library.function)

    def bound_input(input_name):
        name = node_name(input_name)
        return ASSET if name in assets else (CHECKPOINT if name in fed else None)

    found = []
    for node in graph_def.node:
        if node.name not in needed:
            continue
        calls = [(name, _call_bindings(node, functions[name], bound_input))
                 for name in called_functions(node, functions)] if functions else []
        inside = _unsafe_in_functions(calls, functions) if calls else []
        if inside:
            found.append((node.name, "{} calling {}".format(node.op, ", ".join(sorted(set(inside))))))
        if not opsets.is_unsafe(node):
            continue
        if node.op in CHECKPOINT_READ_OPS and node.input and node_name(node.input[0]) in fed:
            continue  # reads the checkpoint the user named: migrate feeds that file name
        if node.op in FILE_TABLE_INITIALIZERS and len(node.input) > 1 and node_name(node.input[1]) in assets:
            continue  # reads the SavedModel's own asset file
        found.append((node.name, _label(node)))
    return found


def _label(node):
    stream = opsets.writes_file(node)
    return "{} writing to {}".format(node.op, stream) if stream else node.op


def escaping_assets(model):
    """[(asset file as the SavedModel names it, the real file it resolves to)] for every asset (the graph's
    asset_file_def / saved_model_assets, which the table initializers read) whose real path, symlinks
    resolved, lies outside the SavedModel directory."""
    if not model.assets or not model.saved_model_dir:
        return []
    root = os.path.realpath(model.saved_model_dir)
    found = []
    for _, path in sorted(model.assets.items()):
        real = os.path.realpath(path)
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            found.append((os.path.relpath(path, model.saved_model_dir), real))
    return found


def check(model, outputs, allow_unsafe=False):
    if allow_unsafe:
        return
    escaping = escaping_assets(model)
    if escaping:
        listing = ", ".join("{} -> {}".format(name, real) for name, real in escaping[:5])
        raise BadInput("asset file(s) resolve outside the SavedModel (symlinks): {}".format(listing), model.path,
                       "copy the files into the SavedModel's assets/ instead of linking them, or pass "
                       "--allow-unsafe-ops to read them anyway")
    found = unsafe_nodes(model, outputs)
    if found:
        listing = ", ".join("{} ({})".format(name, op) for name, op in found[:5])
        more = " and {} more".format(len(found) - 5) if len(found) > 5 else ""
        raise BadInput("graph would run ops that touch files, the network or Python: {}{}".format(listing, more),
                       model.path, "review them (`migrate inspect`), then pass --allow-unsafe-ops to run anyway")
