"""Reading TF's protobuf files: size and depth limits, large binary files parsed a run of whole fields at a time,
text or binary by content."""
import os
import re

from migrate import tfcompat
from migrate.errors import BadInput
from migrate.graph import wire


SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


SESSION_BUNDLE_META = "export.meta"


GRAPH_SUFFIXES = (".pb", ".pbtxt", ".graphdef")


TEXT_SUFFIXES = (".pbtxt", ".txt", ".prototxt")


PROTOBUF_LIMIT = 2 ** 31 - 1


def protos():
    tfcompat.tf()  # the first TF import goes through tfcompat, which quiets TF's logging before it loads
    from tensorflow.core.framework import graph_pb2
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
    return graph_pb2, meta_graph_pb2, saved_model_pb2


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
    or one field, are merged in turn (merging repeated fields appends, as one parse would). The runs are read
    into one buffer, reused, and handed to protobuf as a view: a fresh bytes object per run, and its slice, were
    each a new 64 MB of memory the kernel had to fault in (1.07 GB frozen MLP: 2.45 -> 0.95 CPU s)."""
    from google.protobuf import message as pb_message
    buffer = memoryview(bytearray(min(CHUNK_BYTES, size)))
    position = 0
    try:
        while position < size:
            run = _read_at(handle, position, buffer[:min(CHUNK_BYTES, size - position)])
            end = _whole_fields(run)
            if end == 0:  # one field longer than a chunk (a weight): read exactly that field
                total = wire.field_size(run)
                if total is None or position + total > size:
                    raise pb_message.DecodeError("truncated field at byte {}".format(position))
                if total > len(buffer):
                    buffer = None  # let the old one go before the larger one is made
                    buffer = memoryview(bytearray(total))
                run, end = _read_at(handle, position, buffer[:total]), total
            elif end < 0:
                raise pb_message.DecodeError("invalid field at byte {}".format(position - end - 1))
            message.MergeFromString(run[:end])
            position += end
    except (pb_message.DecodeError, RuntimeError, ValueError) as exc:
        raise BadInput("not a valid {} (corrupt or truncated: {})".format(type(message).__name__, exc), path,
                       "re-export or re-copy the file; a partial download is the usual cause")
    return message


def _read_at(handle, position, view):
    """view filled from the file at `position` (a shorter view where the file ends sooner)."""
    handle.seek(position)
    filled = 0
    while filled < len(view):
        count = handle.readinto(view[filled:])
        if not count:
            break
        filled += count
    return view[:filled]


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
    graph_pb2, meta_graph_pb2, _ = protos()
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
    _, meta_graph_pb2, _ = protos()
    meta = parse_proto(path, meta_graph_pb2.MetaGraphDef())
    if not meta.graph_def.node:
        raise BadInput("meta graph holds no graph", path, "re-export the .meta file")
    return meta


def read_saved_model(directory):
    _, _, saved_model_pb2 = protos()
    for name in SAVED_MODEL_FILES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            saved = parse_proto(path, saved_model_pb2.SavedModel())
            if not saved.meta_graphs:
                raise BadInput("SavedModel has no meta graphs", path, "re-export the SavedModel")
            return saved, path
    raise BadInput("no saved_model.pb in directory", directory, "pass the SavedModel's version directory")
