"""Checkpoint files (V1 SaveSlices or V2): finding the newest, checking every shard is there, reading tensors
(a damaged shard is BadInput naming the checkpoint), and checking a graph's variables against what is stored."""
import glob
import os
import re

from migrate import opsets, tfcompat
from migrate.artifacts.parsing import require_file_or_dir
from migrate.errors import BadInput


def checkpoint_exists(prefix):
    """True if a V2 (prefix.index) or V1 (prefix file or prefix-?????-of-?????) checkpoint is there."""
    return (os.path.isfile(prefix + ".index") or (os.path.isfile(prefix) and not prefix.endswith(".meta"))
            or bool(glob.glob(prefix + "-?????-of-?????")))


def _state_file_prefixes(directory):
    """Checkpoint prefixes named by a `checkpoint` state file, newest last."""
    path = os.path.join(directory, "checkpoint")
    if not os.path.isfile(path):
        return []
    names = re.findall(r'model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', open(path, "rb").read().decode("utf-8",
                                                                                                      "replace"))
    prefixes = []
    for name in names:
        # Only files in this directory count: an absolute path written on the training machine rarely exists
        # here, and when it does (a copied model_dir) it is another model than the one given.
        local = os.path.join(directory, os.path.basename(name))
        candidates = [local] if os.path.isabs(name) or not is_inside(directory, name) else [
            os.path.join(directory, name), local]
        prefixes.append(next((c for c in candidates if checkpoint_exists(c)), local))
    # model_checkpoint_path is the first line, all_model_checkpoint_paths follow oldest to newest.
    return prefixes[1:] + prefixes[:1] if prefixes else []


def is_inside(directory, relative):
    """True when `relative` joined to `directory` stays inside it (no absolute path, no ../ escape)."""
    base = os.path.normpath(os.path.abspath(directory))
    joined = os.path.normpath(os.path.join(base, relative))
    return not os.path.isabs(relative) and joined.startswith(base + os.sep)


def present_parts(prefix):
    """Basenames of the files of checkpoint `prefix` that are there (to say what is missing)."""
    return sorted(os.path.basename(p) for p in glob.glob(glob.escape(prefix) + ".*") + glob.glob(
        glob.escape(prefix) + "-?????-of-?????") if os.path.isfile(p))


def present_prefixes(directory):
    """Checkpoint prefixes present in a directory, newest (highest step, then mtime) last."""
    found = set()
    for path in glob.glob(os.path.join(directory, "*.index")):
        found.add(path[:-len(".index")])
    for path in glob.glob(os.path.join(directory, "*.meta")):
        prefix = path[:-len(".meta")]
        if checkpoint_exists(prefix):
            found.add(prefix)

    def key(prefix):
        step = re.search(r"-(\d+)$", prefix)
        return (int(step.group(1)) if step else -1, _mtime(prefix))
    return sorted(found, key=key)


def _mtime(prefix):
    for path in (prefix + ".index", prefix, prefix + ".meta"):
        if os.path.exists(path):
            return os.path.getmtime(path)
    return 0


def latest_checkpoint(directory, notes):
    """The prefix the `checkpoint` file names; when its files are gone, the newest one present (noted)."""
    named = _state_file_prefixes(directory)
    if named and checkpoint_exists(named[-1]):
        return named[-1]
    present = present_prefixes(directory)
    if not present:
        if named:
            partial = present_parts(named[-1])
            raise BadInput("the `checkpoint` file names {} but {}".format(
                os.path.basename(named[-1]), "its .index is missing (present: {})".format(", ".join(partial))
                if partial else "no checkpoint files are there"), directory,
                "copy the .index/.data files or pass a prefix")
        return None
    if named:
        notes.append("checkpoint file names {} which is missing; using the newest present: {}".format(
            os.path.basename(named[-1]), os.path.basename(present[-1])))
    return present[-1]


def reader_prefix(prefix):
    """The prefix TF's readers and Saver.restore take: a V1 sharded checkpoint (PREFIX-NNNNN-of-NNNNN, no
    PREFIX file and no PREFIX.index) as its glob pattern, any other prefix unchanged."""
    shards = glob.glob(prefix + "-?????-of-?????")
    if shards and not os.path.isfile(prefix) and not os.path.isfile(prefix + ".index"):
        return prefix + "-?????-of-" + shards[0][-5:]
    return prefix


def missing_data_shards(prefix):
    """Names of the .data-NNNNN-of-NNNNN files a V2 checkpoint lacks ([] when complete or not V2). The
    reader opens the .index alone and fails only when a variable is read: check before anything runs."""
    if not os.path.isfile(prefix + ".index"):
        return []
    shards = glob.glob(glob.escape(prefix) + ".data-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]")
    if not shards:
        return [os.path.basename(prefix) + ".data-00000-of-NNNNN"]
    total = max(int(shard[-5:]) for shard in shards)
    expected = ["{}.data-{:05d}-of-{:05d}".format(prefix, index, total) for index in range(total)]
    return [os.path.basename(name) for name in expected if name not in shards]


def open_checkpoint(prefix):
    """A checkpoint reader; BadInput when files are missing or corrupt."""
    prefix = reader_prefix(prefix)
    for part in [prefix] + glob.glob(glob.escape(prefix) + ".*") + glob.glob(glob.escape(prefix) + "-*-of-*"):
        require_file_or_dir(part, "checkpoint")  # TF's reader would block on a named pipe
    missing = missing_data_shards(prefix)
    if missing:
        raise BadInput("checkpoint data shard(s) missing: {}".format(", ".join(missing[:3]) + (
            " and {} more".format(len(missing) - 3) if len(missing) > 3 else "")), prefix,
            "copy every .index and .data-NNNNN-of-NNNNN file of this checkpoint")
    try:
        return tfcompat.checkpoint_reader(prefix)
    except Exception as exc:  # NotFoundError / DataLossError / OpError depending on the TF version
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        missing = [p for p in glob.glob(prefix + ".data-*")] if os.path.isfile(prefix + ".index") else None
        fix = "copy every .index and .data-NNNNN-of-NNNNN file of this checkpoint"
        if missing == []:
            message = "checkpoint data shards (.data-*) are missing"
        raise BadInput("cannot read checkpoint: {}".format(message), prefix, fix)


def damaged_checkpoint(prefix, exc, name=None):
    """BadInput for a checkpoint whose data cannot be read back (a truncated .data shard: 'Read less bytes
    than requested'; a flipped bit: 'Checksum does not match'), naming the checkpoint, never a temp path."""
    line = tfcompat.damaged_checkpoint_line(exc)
    return BadInput("checkpoint data is damaged{}: {}".format(
        " (reading variable '{}')".format(name) if name else "", line), prefix,
        "the .data-NNNNN-of-NNNNN file is truncated or corrupt; re-copy the checkpoint from its source")


def read_tensor(reader, key, prefix):
    """reader.get_tensor(key); a damaged checkpoint is BadInput naming `prefix`."""
    try:
        return reader.get_tensor(key)
    except MemoryError:
        raise
    except Exception as exc:  # OutOfRangeError / DataLossError / OpError, whatever this TF raises
        if tfcompat.is_damaged_checkpoint_error(exc):
            raise damaged_checkpoint(prefix, exc, key)
        raise


def checkpoint_variables(prefix):
    """{name: (shape list, dtype name)} of everything stored in a checkpoint."""
    reader = open_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = tfcompat.checkpoint_dtypes(reader)
    return {name: (list(shape), dtypes[name].name if name in dtypes else None) for name, shape in shapes.items()}


def _saved_variables(meta_graph, graph_def):
    """{variable node: (dims, dtype)} the model's Saver restores: the `variables` collection when the meta
    graph has one (local variables such as metrics are not saved), else every variable node."""
    from tensorflow.core.framework import variable_pb2
    wanted = None
    if meta_graph is not None and "variables" in meta_graph.collection_def:
        wanted = set()
        for raw in meta_graph.collection_def["variables"].bytes_list.value:
            var = variable_pb2.VariableDef()
            var.ParseFromString(raw)
            if not var.HasField("save_slice_info_def"):
                wanted.add(var.variable_name.split(":")[0])
    tf = tfcompat.tf()
    found = {}
    for node in graph_def.node:
        if node.op in opsets.FREEZABLE_VARIABLE_OPS and (wanted is None or node.name in wanted):
            if re.search(r"/part_\d+$", node.name):
                continue  # partitions are checked by the restore itself (the key is the full variable)
            shape = node.attr["shape"].shape
            dims = None if shape.unknown_rank else [d.size for d in shape.dim]
            found[node.name] = (dims, tf.as_dtype(node.attr["dtype"].type).name)
    return found


def _restored_keys(graph_def):
    """Checkpoint keys the graph's own restore ops read (tensor_names consts of Restore* ops), or None."""
    by_name = dict((node.name, node) for node in graph_def.node)
    keys = set()
    readers = [n for n in graph_def.node if n.op in opsets.CHECKPOINT_READ_OPS]
    for reader in readers:
        source = by_name.get(reader.input[1].split(":")[0]) if len(reader.input) > 1 else None
        if source is None or source.op != "Const":
            return None
        keys.update(tfcompat.v1().make_ndarray(source.attr["value"].tensor).reshape(-1).tolist())
    return set(k.decode("utf-8") if isinstance(k, bytes) else k for k in keys) if readers else None


def check_checkpoint_matches(model):
    """BadInput naming the first variable the checkpoint lacks or stores with another shape/dtype."""
    stored = checkpoint_variables(model.checkpoint)
    variables = _saved_variables(model.meta_graph, model.graph_def)
    restored = _restored_keys(model.graph_def)
    if restored is not None:
        variables = dict((name, spec) for name, spec in variables.items() if name in restored)
        for key in sorted(restored - set(variables)):
            variables[key] = (None, None)
    for name, (dims, dtype) in sorted(variables.items()):
        if name not in stored:
            raise BadInput("variable '{}' ({} {}) is not found in checkpoint".format(name, dtype, dims),
                           model.checkpoint, "pass the checkpoint written with this graph")
        stored_dims, stored_dtype = stored[name]
        if dims is not None and dims and list(stored_dims) != list(dims):
            raise BadInput("variable '{}': graph wants shape {}, checkpoint has {}".format(name, dims, stored_dims),
                           model.checkpoint, "pass the checkpoint written with this graph")
        if stored_dtype and dtype and stored_dtype != dtype:
            raise BadInput("variable '{}': graph wants {}, checkpoint has {}".format(name, dtype, stored_dtype),
                           model.checkpoint, "pass the checkpoint written with this graph")
