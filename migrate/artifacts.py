"""Find out what kind of TF artifact a path is and load it into a Model (protobufs only; nothing runs).

Kinds: checkpoint (dir, prefix, .meta, .index; V1 SaveSlices or V2), graph + checkpoint (Estimator model_dir
graph.pbtxt), frozen graph (.pb/.pbtxt), TF1 SavedModel (also a folder of numbered versions), session bundle
(export.meta + export checkpoint). Every failure the user can fix is a BadInput naming the path.
"""
import glob
import os
import re

from migrate import model as m
from migrate import opsets, tfcompat
from migrate.errors import BadInput
from migrate.graph import wire

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
SESSION_BUNDLE_META = "export.meta"
GRAPH_SUFFIXES = (".pb", ".pbtxt", ".graphdef")
TEXT_SUFFIXES = (".pbtxt", ".txt", ".prototxt")
PROTOBUF_LIMIT = 2 ** 31 - 1


def _protos():
    tfcompat.tf()  # the first TF import goes through tfcompat, which quiets TF's logging before it loads
    from tensorflow.core.framework import graph_pb2
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
    return graph_pb2, meta_graph_pb2, saved_model_pb2


# ------------------------------------------------------------------------------------------ parsing

def require_file_or_dir(path, what="model"):
    """BadInput for a path that exists but is neither a regular file nor a directory (a named pipe, a device,
    a socket): opening one can block forever or read without end. Checked before anything opens it;
    symbolic links are judged by what they point at."""
    import stat
    try:
        mode = os.stat(path).st_mode
    except (IOError, OSError):
        return  # missing: the caller says so in its own words
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device" if (
            stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) else "a socket" if stat.S_ISSOCK(mode) else "a special file"
        raise BadInput("is {}, not a regular file or directory; migrate does not read it".format(kind), path,
                       "pass the {} file or directory itself".format(what))


def parse_proto(path, message):
    """Parse a binary or text protobuf file into `message`; BadInput on empty/corrupt/truncated files."""
    from google.protobuf import message as pb_message
    from google.protobuf import text_format
    if os.path.isdir(path):
        raise BadInput("is a directory, not a {} file".format(type(message).__name__), path,
                       "pass the file itself, or the directory as the model path")
    require_file_or_dir(path)
    try:
        size = os.path.getsize(path)
        if size > PROTOBUF_LIMIT:  # before reading: never pull gigabytes into memory to refuse them
            raise BadInput("file is {:.2f} GiB, over protobuf's 2 GiB limit".format(size / 2.0 ** 30), path,
                           "models this large must stay a checkpoint or SavedModel with variables")
        with open(path, "rb") as handle:
            if size > CHUNKED_PARSE_BYTES and not path.endswith(TEXT_SUFFIXES) and \
                    not looks_like_text(handle.read(256)):
                return _parse_in_chunks(handle, size, message, path)
            handle.seek(0)
            data = handle.read()
    except (IOError, OSError) as exc:
        raise BadInput("cannot read file: {}".format(exc.strerror or exc), path, "check the path and permissions")
    except MemoryError:
        raise _out_of_memory(path, size)
    if not data:
        raise BadInput("file is empty", path, "re-export or re-copy the model file")
    name = type(message).__name__
    if path.endswith(TEXT_SUFFIXES) or looks_like_text(data):
        try:
            text_format.Merge(data.decode("utf-8"), message)
            return message
        except RecursionError:  # a subclass of RuntimeError: said before the generic case below
            raise _too_deep(path, name)
        except (text_format.ParseError, UnicodeDecodeError) as exc:
            raise BadInput("not a valid text {}: {}".format(name, str(exc).splitlines()[0]), path,
                           "fix the syntax at the position given or re-export the file")
        except MemoryError:
            raise _out_of_memory(path, size)
    try:
        message.ParseFromString(data)
    except RecursionError:
        raise _too_deep(path, name)
    except (pb_message.DecodeError, RuntimeError, ValueError) as exc:
        raise BadInput("not a valid {} (corrupt or truncated: {})".format(name, exc), path,
                       "re-export or re-copy the file; a partial download is the usual cause")
    except MemoryError:
        raise _out_of_memory(path, size)
    return message


CHUNKED_PARSE_BYTES = 256 << 20  # binary files above this are parsed a run of whole fields at a time
CHUNK_BYTES = 64 << 20


def _parse_in_chunks(handle, size, message, path):
    """message.ParseFromString for a large binary file without its bytes in memory whole beside the parsed
    message (a 524 MB frozen graph: 1.05 GB at once): runs of whole top-level fields, each at most CHUNK_BYTES
    or one field, are merged in turn (merging repeated fields appends, as one parse would)."""
    from google.protobuf import message as pb_message
    position = 0
    try:
        while position < size:
            handle.seek(position)
            chunk = handle.read(min(CHUNK_BYTES, size - position))
            end = _whole_fields(chunk)
            if end == 0:  # one field longer than a chunk: read exactly that field
                total = wire.field_size(chunk)
                if total is None or position + total > size:
                    raise pb_message.DecodeError("truncated field at byte {}".format(position))
                chunk += handle.read(total - len(chunk))
                end = total
            elif end < 0:
                raise pb_message.DecodeError("invalid field at byte {}".format(position - end - 1))
            message.MergeFromString(chunk[:end] if end < len(chunk) else chunk)
            position += end
    except (pb_message.DecodeError, RuntimeError, ValueError) as exc:
        raise BadInput("not a valid {} (corrupt or truncated: {})".format(type(message).__name__, exc), path,
                       "re-export or re-copy the file; a partial download is the usual cause")
    return message


def _whole_fields(data):
    """End of the last whole top-level field in `data` (0: not even the first; -(position + 1): an invalid
    field there)."""
    position = 0
    while position < len(data):
        size = wire.field_size(data, position)
        if size is not None and wire.field_number(data, position) == 0:
            # field 0 does not exist in protobuf: zeros are not a message (and a file of them would take
            # this loop two bytes at a time through gigabytes)
            return -(position + 1)
        if size is None:
            key_wire = data[position] & 7 if isinstance(data[position], int) else ord(data[position]) & 7
            return -(position + 1) if key_wire not in (0, 1, 2, 5) else position
        if position + size > len(data):
            return position
        position += size
    return position


def _too_deep(path, name):
    return BadInput("not a valid {}: messages nested deeper than the parser's recursion limit".format(name), path,
                    "a GraphDef nests a few levels at most; this file is corrupt or hostile")


def _out_of_memory(path, size):
    return BadInput("out of memory reading this {:.1f} MiB file (MemoryError)".format(size / 2.0 ** 20), path,
                    "raise the process's memory limit (ulimit -v) or use a machine with more memory")


def looks_like_text(data):
    head = data[:256]
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return False
    return bool(re.match(r"\s*(node|versions|library|meta_info_def|graph_def|saved_model_schema_version|meta_graphs)"
                         r"\s*[{:]", text))


def read_graph_def(path):
    graph_pb2, meta_graph_pb2, _ = _protos()
    graph_def = parse_proto(path, graph_pb2.GraphDef())
    if not graph_def.node or not all(node.name and node.op for node in graph_def.node):
        # A MetaGraphDef saved as .pb parses as a GraphDef of nonsense nodes: try that before giving up.
        if path.endswith(".pb") and not path.endswith(TEXT_SUFFIXES):
            meta = meta_graph_pb2.MetaGraphDef()
            try:
                meta.ParseFromString(open(path, "rb").read())
                if meta.graph_def.node and all(n.name and n.op for n in meta.graph_def.node):
                    return meta.graph_def
            except Exception:
                pass
        raise BadInput("not a TensorFlow GraphDef (no valid nodes)", path,
                       "pass a frozen graph, a SavedModel directory or a checkpoint")
    return graph_def


def read_meta_graph(path):
    _, meta_graph_pb2, _ = _protos()
    meta = parse_proto(path, meta_graph_pb2.MetaGraphDef())
    if not meta.graph_def.node:
        raise BadInput("meta graph holds no graph", path, "re-export the .meta file")
    return meta


def read_saved_model(directory):
    _, _, saved_model_pb2 = _protos()
    for name in SAVED_MODEL_FILES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            saved = parse_proto(path, saved_model_pb2.SavedModel())
            if not saved.meta_graphs:
                raise BadInput("SavedModel has no meta graphs", path, "re-export the SavedModel")
            return saved, path
    raise BadInput("no saved_model.pb in directory", directory, "pass the SavedModel's version directory")


def _fixed(args):
    """How many tensors a list of OpDef args stands for, or None when one is variadic (N, list(type))."""
    if any(arg.number_attr or arg.type_list_attr for arg in args):
        return None
    return len(args)


def output_count(node):
    """How many outputs `node` has by its op's OpDef (variadic ones counted from the node's attrs), or None
    when this TF does not know the op."""
    op_def = tfcompat.op_def(node.op)
    if op_def is None:
        return None
    count = 0
    for arg in op_def.output_arg:
        if arg.number_attr:
            count += node.attr[arg.number_attr].i if arg.number_attr in node.attr else 0
        elif arg.type_list_attr:
            count += len(node.attr[arg.type_list_attr].list.type) if arg.type_list_attr in node.attr else 0
        else:
            count += 1
    return count


def _arity_problem(graph_def):
    """The first node whose data inputs do not fit its op (count, or an output index its producer lacks), as
    text, or None. Ops this TF does not know, and variadic inputs/outputs, are not judged."""
    return _structure_problems(graph_def)[2]


def _op_specs():
    """op -> (inputs it takes or None, [(attr, has default, AttrValue field, attr type)], outputs or None),
    or None for an op this TF does not know; looked up once per op type."""
    specs = {}

    def spec(op):
        if op not in specs:
            op_def = tfcompat.op_def(op)
            specs[op] = None if op_def is None else (
                _fixed(op_def.input_arg),
                [(a.name, a.HasField("default_value"), "list" if a.type.startswith("list(") else
                  _ATTR_FIELDS.get(a.type), a.type) for a in op_def.attr],
                _fixed(op_def.output_arg))
        return specs[op]
    return spec


# DataType -> bytes per element, for the dtypes tensor_content is written for.
_ITEM_BYTES = {1: 4, 2: 8, 3: 4, 4: 1, 5: 2, 6: 1, 8: 8, 9: 8, 10: 1, 14: 2, 17: 2, 18: 16, 19: 2, 22: 4, 23: 8}


def _const_problem(node):
    """A Const whose tensor_content does not hold what its shape and dtype need (TF refuses it at run time,
    logging `E... tensor.cc] Input size was ...`), as text, or None."""
    tensor = node.attr["value"].tensor
    content = tensor.tensor_content
    item = _ITEM_BYTES.get(tensor.dtype)
    if not content or item is None or tensor.tensor_shape.unknown_rank:
        return None
    count = 1
    for dim in tensor.tensor_shape.dim:
        count *= dim.size
    if len(content) == count * item:
        return None
    return "node '{}' (Const) holds {} bytes of tensor_content, its shape {} {} needs {}".format(
        node.name, len(content), [dim.size for dim in tensor.tensor_shape.dim],
        tfcompat.tf().as_dtype(tensor.dtype).name, count * item)


def _node_problem(node, data, spec, producers, valid_types):
    """What is wrong with one node's inputs and attrs for its op (see _arity_problem), or None.
    (Runs once per node on graphs of a million nodes: plain loops, no generators.)"""
    if node.op == "Const" and "value" in node.attr:
        problem = _const_problem(node)
        if problem:
            return problem
    info = spec(node.op)
    if info is not None:
        wanted, attr_specs, _ = info
        if wanted is not None and len(data) != wanted:
            return "node '{}' ({}) has {} data input(s), {} takes {}".format(node.name, node.op, len(data), node.op,
                                                                           wanted)
        attrs = node.attr if attr_specs else None
        for name, has_default, kind, attr_type in attr_specs:
            if name not in attrs:
                if not has_default:
                    return "node '{}' ({}) lacks attr '{}'".format(node.name, node.op, name)
                continue
            value = attrs[name]
            if kind and value.WhichOneof("value") not in (kind, "placeholder"):
                return "node '{}' ({}) has attr '{}' of the wrong kind (want {})".format(
                    node.name, node.op, name, attr_type)
            if attr_type == "type":
                bad = value.type not in valid_types
            elif attr_type == "list(type)":
                bad = not valid_types.issuperset(value.list.type)
            elif attr_type == "tensor":
                bad = value.tensor.dtype not in valid_types
            else:
                continue
            if bad:
                return "node '{}' ({}) has an invalid dtype in attr '{}'".format(node.name, node.op, name)
    for name in data:
        if ":" in name:
            producer, _, index = name.partition(":")
            if index and not index.isdigit():
                return "node '{}' has a malformed input name '{}'".format(node.name, name)
        else:
            producer, index = name, ""
        producer_info = spec(producers.get(producer, ""))
        count = producer_info[2] if producer_info is not None else None
        if count is not None and int(index or 0) >= count:
            return "node '{}' reads '{}', but {} ({}) has {} output(s)".format(
                node.name, name, producer, producers[producer], count)
    return None


def _structure_problems(graph_def):
    """One sweep after the name index: (first dangling (node, input) or None, how many dangle, first arity
    problem or None, whether every input names an earlier node apart from while-loop back edges).
    Graphs of a million nodes are checked in seconds: what each op wants is looked up once per op type."""
    from tensorflow.core.framework import types_pb2
    valid_types = set(types_pb2.DataType.values()) - set([types_pb2.DT_INVALID])
    spec = _op_specs()
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
            problem = _node_problem(node, data, spec, producers, valid_types)
    return first_dangling, dangling, problem, in_order


# AttrValue field holding each OpDef attr type (list(...) types: `list`).
_ATTR_FIELDS = {"tensor": "tensor", "type": "type", "shape": "shape", "int": "i", "float": "f", "bool": "b",
                "string": "s", "func": "func"}


def check_graph_structure(graph_def, where):
    """BadInput naming `where` for a GraphDef nothing can run (TF itself would fail later, with a less clear
    message): two nodes of one name, an input naming a node that is not there, an input count or output
    index its op does not have, a cycle that is not a v1 while loop."""
    from migrate.graph.view import acyclic
    seen = set()
    for node in graph_def.node:
        if node.name in seen:
            raise BadInput("two nodes are named '{}'".format(node.name), where,
                           "the GraphDef is malformed; re-export it")
        seen.add(node.name)
    first_dangling, dangling, problem, in_order = _structure_problems(graph_def)
    if first_dangling is not None:
        node, input_name = first_dangling
        raise BadInput("node '{}' reads '{}', which is not in the graph ({} such input(s))".format(
            node, input_name, dangling), where, "the GraphDef is incomplete; re-export it")
    if problem:
        raise BadInput(problem, where, "the GraphDef is malformed; re-export it")
    if in_order:
        return  # producers come first (loop back edges aside): no cycle, without building the full view
    try:
        acyclic(graph_def)
    except BadInput as exc:
        raise BadInput(exc.what, where, exc.fix)


# ------------------------------------------------------------------------------------------ checkpoints

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
        candidates = [local] if os.path.isabs(name) or not _inside(directory, name) else [
            os.path.join(directory, name), local]
        prefixes.append(next((c for c in candidates if checkpoint_exists(c)), local))
    # model_checkpoint_path is the first line, all_model_checkpoint_paths follow oldest to newest.
    return prefixes[1:] + prefixes[:1] if prefixes else []


def _inside(directory, relative):
    """True when `relative` joined to `directory` stays inside it (no absolute path, no ../ escape)."""
    base = os.path.normpath(os.path.abspath(directory))
    joined = os.path.normpath(os.path.join(base, relative))
    return not os.path.isabs(relative) and joined.startswith(base + os.sep)


def _present_parts(prefix):
    """Basenames of the files of checkpoint `prefix` that are there (to say what is missing)."""
    return sorted(os.path.basename(p) for p in glob.glob(glob.escape(prefix) + ".*") + glob.glob(
        glob.escape(prefix) + "-?????-of-?????") if os.path.isfile(p))


def _present_prefixes(directory):
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
    present = _present_prefixes(directory)
    if not present:
        if named:
            partial = _present_parts(named[-1])
            raise BadInput("the `checkpoint` file names {} but {}".format(
                os.path.basename(named[-1]), "its .index is missing (present: {})".format(", ".join(partial))
                if partial else "no checkpoint files are there"), directory,
                "copy the .index/.data files or pass a prefix")
        return None
    if named:
        notes.append("checkpoint file names {} which is missing; using the newest present: {}".format(
            os.path.basename(named[-1]), os.path.basename(present[-1])))
    return present[-1]


def _v1_sharded_pattern(prefix):
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
    prefix = _v1_sharded_pattern(prefix)
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


# ------------------------------------------------------------------------------------------ detection

def detect(path):
    """(kind, resolved path) for a user-given path; BadInput when it is no TF artifact."""
    if not os.path.exists(path):
        if checkpoint_exists(path) or os.path.isfile(path + ".meta"):
            return m.CHECKPOINT, path
        raise BadInput("no such file or directory", path, "check the path")
    require_file_or_dir(path)
    if os.path.isdir(path):
        return _detect_dir(path)
    base = os.path.basename(path)
    if base in SAVED_MODEL_FILES:
        return m.SAVED_MODEL, os.path.dirname(path) or "."
    if base.endswith(".meta"):
        return (m.SESSION_BUNDLE if base == SESSION_BUNDLE_META else m.CHECKPOINT), path[:-len(".meta")]
    if base.endswith(".index") or re.search(r"\.data-\d{5}-of-\d{5}$", base):
        return m.CHECKPOINT, re.sub(r"(\.index|\.data-\d{5}-of-\d{5})$", "", path)
    if base == "export" and os.path.isfile(os.path.join(os.path.dirname(path), SESSION_BUNDLE_META)):
        return m.SESSION_BUNDLE, path
    if os.path.isfile(path + ".meta"):  # V1 checkpoint file model.ckpt beside model.ckpt.meta
        return m.CHECKPOINT, path
    return m.FROZEN_GRAPH, path  # graph file: whether it holds variables is decided once parsed


def _detect_dir(path):
    if any(os.path.isfile(os.path.join(path, name)) for name in SAVED_MODEL_FILES):
        return m.SAVED_MODEL, path
    if os.path.isfile(os.path.join(path, SESSION_BUNDLE_META)):
        return m.SESSION_BUNDLE, os.path.join(path, "export")
    versions = [d for d in os.listdir(path) if d.isdigit() and os.path.isdir(os.path.join(path, d))]
    if versions:  # TF Serving layout: model_base/<version>/...
        newest = os.path.join(path, max(versions, key=int))
        kind, resolved = _detect_dir(newest)
        return kind, resolved
    if os.path.isfile(os.path.join(path, "checkpoint")) or _present_prefixes(path):
        return m.CHECKPOINT, path
    graphs = [f for f in os.listdir(path) if f.endswith(GRAPH_SUFFIXES)]
    if len(graphs) == 1:
        return m.FROZEN_GRAPH, os.path.join(path, graphs[0])
    if graphs:
        raise BadInput("directory holds {} graph files ({})".format(len(graphs), ", ".join(sorted(graphs))), path,
                       "pass one of them")
    raise BadInput("directory holds no TF artifact (no saved_model.pb, checkpoint, .meta or graph file)", path,
                   "pass a checkpoint dir or prefix, a frozen .pb/.pbtxt or a SavedModel directory")


# ------------------------------------------------------------------------------------------ loading

def load(path, tag=None, signature=None, checkpoint=None):
    """Load any supported artifact into a Model (no TF session is created)."""
    kind, resolved = detect(path)
    if checkpoint and kind != m.FROZEN_GRAPH:
        raise BadInput("--checkpoint applies to a graph .pb/.pbtxt only; this {} names its own weights".format(
            kind.replace("_", " ")), path, "drop --checkpoint, or pass the checkpoint prefix itself as the model")
    notes = []
    if resolved != path and kind == m.SAVED_MODEL and os.path.dirname(resolved) == path.rstrip(os.sep):
        notes.append("using the newest version directory {}".format(os.path.basename(resolved)))
    if kind == m.SAVED_MODEL:
        model = load_saved_model(resolved, tag, signature)
    elif kind == m.SESSION_BUNDLE:
        model = load_session_bundle(resolved)
    elif kind == m.CHECKPOINT:
        model = load_checkpoint(resolved, notes)
    else:
        model = load_graph(resolved, checkpoint)
    check_graph_structure(model.graph_def, model.path)
    model.provenance = [note for note in notes if note not in model.provenance] + model.provenance  # once each
    return model


def load_graph(path, checkpoint=None):
    graph_def = read_graph_def(path)
    has_variables = any(node.op in opsets.FREEZABLE_VARIABLE_OPS for node in graph_def.node)
    if not has_variables:
        from migrate import freeze, outputs
        inputs, recorded = outputs.recorded(graph_def)
        notes = [freeze.RECORDED_NOTE + ", ".join(recorded)] if recorded else []  # resolve_outputs reads it
        return m.Model(m.FROZEN_GRAPH, path, graph_def, inputs=inputs, outputs=recorded,
                       provenance=["loaded frozen graph " + path] + notes)
    prefix = checkpoint or latest_checkpoint(os.path.dirname(os.path.abspath(path)), [])
    if not prefix:
        raise BadInput("graph holds variables but no checkpoint was found beside it", path,
                       "pass --checkpoint PREFIX")
    if os.path.isdir(prefix):
        directory, prefix = prefix, latest_checkpoint(prefix, [])
        if not prefix:
            raise BadInput("no checkpoint in directory", directory, "pass a checkpoint prefix with --checkpoint")
    open_checkpoint(prefix)
    return m.Model(m.GRAPH_WITH_CHECKPOINT, path, graph_def, checkpoint=prefix,
                   provenance=["loaded graph {} with checkpoint {}".format(path, prefix)])


def load_checkpoint(path, notes):
    prefix = latest_checkpoint(path, notes) if os.path.isdir(path) else path
    if prefix is None:
        raise BadInput("no checkpoint in directory", path, "pass a directory with .index/.data or .meta files")
    meta_path = prefix + ".meta"
    if not os.path.isfile(meta_path):
        directory = os.path.dirname(prefix)
        graphs = [os.path.join(directory, g) for g in ("graph.pbtxt", "graph.pb") if
                  os.path.isfile(os.path.join(directory, g))]
        if graphs:  # Estimator model_dirs keep only the first .meta; graph.pbtxt describes them all
            return load_graph(graphs[0], prefix)
        raise BadInput("checkpoint has no meta graph ({} is missing)".format(os.path.basename(meta_path)), prefix,
                       "pass the graph with `GRAPH.pbtxt --checkpoint PREFIX`")
    if not checkpoint_exists(prefix):
        partial = [name for name in _present_parts(prefix) if not name.endswith(".meta")]
        raise BadInput("meta graph found but checkpoint data is missing ({})".format(
            "no .index file; present: " + ", ".join(partial) if partial else "no .index or data file"), prefix,
            "copy the .index and .data files beside the .meta")
    meta = read_meta_graph(meta_path)
    open_checkpoint(prefix)
    return m.Model(m.CHECKPOINT, prefix, meta.graph_def, meta_graph=meta, checkpoint=prefix,
                   signatures=signatures_from_meta(meta), producer=meta.meta_info_def.tensorflow_version or None,
                   tags=list(meta.meta_info_def.tags), provenance=notes + ["loaded checkpoint " + prefix])


def load_saved_model(directory, tag=None, signature=None):
    saved, path = read_saved_model(directory)
    meta = _pick_meta_graph(saved, tag, path)
    signatures = signatures_from_meta(meta)
    variables = os.path.join(directory, "variables", "variables")
    has_variables = any(node.op in opsets.FREEZABLE_VARIABLE_OPS for node in meta.graph_def.node)
    if has_variables and not checkpoint_exists(variables):
        raise BadInput("SavedModel graph has variables but variables/ holds no checkpoint", directory,
                       "copy the SavedModel's variables/ directory too")
    model = m.Model(m.SAVED_MODEL, directory, meta.graph_def, meta_graph=meta,
                    checkpoint=variables if has_variables else None, signatures=signatures,
                    producer=meta.meta_info_def.tensorflow_version or None, tags=list(meta.meta_info_def.tags),
                    assets=_assets(directory, meta), saved_model_dir=directory,
                    provenance=["loaded SavedModel {} (tags {})".format(directory, ",".join(
                        meta.meta_info_def.tags))])
    if signature is not None:
        choose_signature(model, signature)
    return model


def _pick_meta_graph(saved, tag, path):
    available = [",".join(mg.meta_info_def.tags) for mg in saved.meta_graphs]
    if tag is None:
        serve = [mg for mg in saved.meta_graphs if "serve" in mg.meta_info_def.tags]
        return (serve or list(saved.meta_graphs))[0]
    wanted = set(t.strip() for t in tag.split(","))
    for mg in saved.meta_graphs:
        if set(mg.meta_info_def.tags) == wanted:
            return mg
    raise BadInput("no meta graph with tags '{}' (available: {})".format(tag, "; ".join(available)), path,
                   "pass one of the available tag sets with --tag")


def _assets(directory, meta):
    """{tensor name: asset file path}: from asset_file_def (TF >= 1.15) or the saved_model_assets collection."""
    _, meta_graph_pb2, _ = _protos()
    asset_dir = os.path.join(directory, "assets")
    defs = tfcompat.asset_file_defs(meta)
    if "saved_model_assets" in meta.collection_def:
        for packed in meta.collection_def["saved_model_assets"].any_list.value:
            asset = meta_graph_pb2.AssetFileDef()
            asset.ParseFromString(packed.value)
            defs.append(asset)
    for asset in defs:  # TF's loader feeds join(assets/, filename): an absolute or ../ name reads any file
        if not _inside(asset_dir, asset.filename):
            raise BadInput("asset '{}' points outside the SavedModel's assets/ directory".format(asset.filename),
                           directory, "re-export the SavedModel with its asset files inside assets/")
    return {asset.tensor_info.name: os.path.join(asset_dir, asset.filename) for asset in defs}


def choose_signature(model, name):
    if name not in model.signatures:
        raise BadInput("no signature '{}' (available: {})".format(name, ", ".join(sorted(model.signatures)) or
                                                                    "none"), model.path,
                       "pass one of them with --signature")
    sig = model.signatures[name]
    model.inputs = sorted(sig.inputs.values())
    model.outputs = sorted(sig.outputs.values())
    return sig


def signatures_from_meta(meta):
    signatures = {}
    tf = tfcompat.tf()
    for name, sig in meta.signature_def.items():
        specs = {}
        for info in sig.inputs.values():
            shape = info.tensor_shape
            dims = None if shape.unknown_rank else [d.size if d.size >= 0 else None for d in shape.dim]
            specs[info.name] = (tf.as_dtype(info.dtype).name, dims)
        signatures[name] = m.Signature(name, {k: v.name for k, v in sig.inputs.items() if v.name},
                                       {k: v.name for k, v in sig.outputs.items() if v.name}, sig.method_name,
                                       specs)
    return signatures


def load_session_bundle(prefix):
    directory = os.path.dirname(prefix)
    meta = read_meta_graph(os.path.join(directory, SESSION_BUNDLE_META))
    if not checkpoint_exists(prefix):
        raise BadInput("session bundle has export.meta but no `export` checkpoint", directory,
                       "copy the export / export-NNNNN-of-NNNNN / export.index files")
    open_checkpoint(prefix)
    try:
        signatures = session_bundle_signatures(meta)
    except (ValueError, KeyError, IndexError, UnicodeDecodeError) as exc:
        raise BadInput("session bundle's serving_signatures collection is corrupt ({})".format(exc),
                       os.path.join(directory, SESSION_BUNDLE_META), "re-export the session bundle")
    return m.Model(m.SESSION_BUNDLE, directory, meta.graph_def, meta_graph=meta, checkpoint=prefix,
                   signatures=signatures, producer=meta.meta_info_def.tensorflow_version or None,
                   provenance=["loaded session bundle " + directory])


# Session bundles keep signatures in the `serving_signatures` collection as a packed tensorflow.serving.Signatures
# proto, a type TF itself does not ship. We read its few fields straight from the protobuf wire format (no
# dependency on tensorflow-serving-api; the dynamic-message API of protobuf differs between 3.x and 7.x).
def _binding(data):
    return dict(wire.length_delimited_fields(data)).get(1, b"").decode("utf-8")


def _decode_signature(data):
    """Signature{regression=1{input=1,output=2}, classification=2{input=1,classes=2,scores=3}, generic=3{map=1}}."""
    for number, body in wire.length_delimited_fields(data):
        fields = list(wire.length_delimited_fields(body))
        if number == 1:
            return {"input": _binding(dict(fields)[1])}, {"output": _binding(dict(fields)[2])}, "regression"
        if number == 2:
            names = {1: "input", 2: "classes", 3: "scores"}
            bound = {names[n]: _binding(b) for n, b in fields if n in names}
            return {"input": bound.pop("input", "")}, bound, "classification"
        if number == 3:
            mapping = {}
            for _, entry in fields:
                entry_fields = dict(wire.length_delimited_fields(entry))
                mapping[entry_fields.get(1, b"").decode("utf-8")] = _binding(entry_fields.get(2, b""))
            return mapping, {}, "generic"
    return {}, {}, "unknown"


def session_bundle_signatures(meta):
    collection = meta.collection_def.get("serving_signatures") if "serving_signatures" in meta.collection_def \
        else None
    if collection is None or not collection.any_list.value:
        return {}
    data = collection.any_list.value[0].value
    named, signatures = {}, {}
    for number, body in wire.length_delimited_fields(data):
        if number == 1:
            inputs, outputs, method = _decode_signature(body)
            signatures["default"] = m.Signature("default", inputs, outputs, method)
        elif number == 2:
            entry = dict(wire.length_delimited_fields(body))
            named[entry.get(1, b"").decode("utf-8")] = _decode_signature(entry.get(2, b""))
    if "inputs" in named and "outputs" in named:  # the generic input/output pair TF Serving turns into "predict"
        signatures["serving_default"] = m.Signature("serving_default", named["inputs"][0], named["outputs"][0],
                                                    "generic")
    for name, (inputs, outputs, method) in named.items():
        if name not in ("inputs", "outputs"):
            signatures[name] = m.Signature(name, inputs, outputs, method)
    return signatures


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
