"""GraphDef files read and written a node at a time: a binary graph written without ever holding its serialized
form, and read back with its large Consts (weights) as fed Placeholders, their values in aligned arrays; the
import check every graph written unverified gets (check_importable)."""
import os

from migrate import artifacts, tfcompat
from migrate.errors import BadInput, first_line
from migrate.graph import edit, wire
from migrate.graph.names import tensor_name


FED_CONST_BYTES = 1 << 20  # Consts above this are fed when a streamed file is read back for verification


def is_binary_graph_file(path):
    """True for a GraphDef file runners.run_file can read (binary; text files are parsed whole)."""
    return bool(path) and os.path.isfile(path) and not path.endswith(artifacts.TEXT_SUFFIXES) and \
        not artifacts.looks_like_text(open(path, "rb").read(256))


def write_graph_def(graph_def, path, text=None):
    """io.write_graph for a GraphDef in memory, binary files written node by node: the serialized graph
    never exists as one bytes object (1 GB more for a 1 GB graph). Attrs equal to their op's default are
    dropped first, as io.write_graph does. text (default: by the path's suffix): io.write_graph's way."""
    if text if text is not None else path.endswith(artifacts.TEXT_SUFFIXES):
        from google.protobuf import text_format
        edit.strip_default_attrs(graph_def)
        with open(path, "w") as handle:
            handle.write(text_format.MessageToString(graph_def))
        return
    edit.strip_default_attrs(graph_def)
    tail = type(graph_def)()
    if graph_def.HasField("versions"):  # only when set: CopyFrom of an unset one writes an empty field
        tail.versions.CopyFrom(graph_def.versions)
    if graph_def.HasField("library"):
        tail.library.CopyFrom(graph_def.library)
    with open(path, "wb") as handle:
        for node in graph_def.node:
            write_node(handle, node)
        handle.write(tail.SerializeToString(deterministic=True))


def write_node(handle, node, large=FED_CONST_BYTES):
    """One NodeDef as a GraphDef.node field, the bytes SerializeToString(deterministic=True) gives. A Const
    whose tensor_content is above `large` bytes is written as its NodeDef without the value attr, then that attr
    around the content read out of the protobuf once (wire.write_const_node): serializing the whole node holds
    the content twice more at once (protobuf's encoding buffer and the bytes copied from it; 128 MB for one
    64 MB weight, the peak of optimizing the 1.07 GB MLP). Nodes laid out otherwise are serialized whole."""
    layout = _const_parts(node, large)
    if layout is None:
        return wire.write_node(handle, node.SerializeToString(deterministic=True))
    head, tensor_head, content = layout
    return wire.write_const_node(handle, head, tensor_head, content, len(content))


# TensorProto fields a Const written by write_node may hold besides tensor_content (they precede it: 1, 2, 3).
_TENSOR_HEAD_FIELDS = ("dtype", "tensor_shape", "version_number", "tensor_content")


def _const_parts(node, large):
    """(NodeDef bytes without the value attr, TensorProto bytes without tensor_content, tensor_content) for a
    Const whose deterministic serialization is exactly head + value attr (the value attr sorts last, no NodeDef
    field after attr (5) is set, the tensor holds nothing but dtype/shape/version before its content); else
    None. Nothing large is copied to decide."""
    if node.op != "Const" or "value" not in node.attr or max(node.attr.keys()) != "value":
        return None
    value = node.attr["value"]
    if value.WhichOneof("value") != "tensor":
        return None
    tensor = value.tensor
    if not tfcompat.proto_fields_unset(node, lambda field: field.number <= 5) or \
            not tfcompat.proto_fields_unset(tensor, lambda field: field.name in _TENSOR_HEAD_FIELDS):
        return None
    content = tensor.tensor_content
    if len(content) <= large:
        return None
    head = type(node)()
    head.name, head.op, head.device = node.name, node.op, node.device
    head.input.extend(node.input)
    for key in node.attr:
        if key != "value":
            head.attr[key].CopyFrom(node.attr[key])
    tensor_head = type(tensor)()
    tensor_head.dtype, tensor_head.version_number = tensor.dtype, tensor.version_number
    if tensor.HasField("tensor_shape"):
        tensor_head.tensor_shape.CopyFrom(tensor.tensor_shape)
    return head.SerializeToString(deterministic=True), tensor_head.SerializeToString(deterministic=True), content


def read_back(path, fed_bytes=FED_CONST_BYTES, values=True, reuse=None):
    """(GraphDef with every Const above fed_bytes turned into a Placeholder, {tensor: value of that Const})
    from a binary GraphDef file, read one field at a time. A large Const's tensor_content is read from the
    file straight into a 64-byte aligned array (TF feeds such arrays without copying them).

    reuse: {tensor: array} read from another file before (the other side of a file-against-file check),
    emptied as this file is read. A large Const of the same name, dtype and shape whose tensor_content is, byte
    for byte, that array's bytes gets that array itself: compared through a small buffer, nothing allocated.
    The value is then exactly what reading it would give (every byte compared), so a run fed it is the run of
    this file. At the first Const that does not match, every array left in `reuse` is let go before anything
    is allocated: memory never holds more than this file's weights (plus one compare buffer)."""
    from tensorflow.core.framework import graph_pb2, node_def_pb2
    graph_def = graph_pb2.GraphDef()
    rest = bytearray()
    weights = {}
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        while handle.tell() < size:
            key, head = _read_varint(handle, path)
            number, wire_type = key >> 3, key & 7
            if wire_type == wire.VARINT:
                _, value_bytes = _read_varint(handle, path)
                rest += head + value_bytes
                continue
            if wire_type != wire.LENGTH_DELIMITED:
                raise BadInput("unexpected wire type {} in a GraphDef".format(wire_type), path, "freeze again")
            length, length_bytes = _read_varint(handle, path)
            start = handle.tell()
            if start + length > size:
                raise BadInput("frozen graph file is truncated", path, "freeze again")
            weight = _read_weight(handle, start, length, values, reuse) if number == 1 and length > fed_bytes \
                else None
            if weight is not None:
                name, dtype, value = weight
                node = graph_def.node.add()
                node.name, node.op = name, "Placeholder"
                node.attr["dtype"].type = dtype
                node.attr["shape"].shape.CopyFrom(tfcompat.v1().TensorShape(value.shape).as_proto())
                weights[tensor_name(name)] = value
                continue
            handle.seek(start)
            payload = handle.read(length)
            if number == 1:
                graph_def.node.extend([node_def_pb2.NodeDef.FromString(payload)])
            else:
                rest += head + length_bytes + payload
    graph_def.MergeFromString(bytes(rest))
    if reuse is not None:
        reuse.clear()  # arrays this file did not hold
    return graph_def, weights


def split_weights(graph_def, fed_bytes=FED_CONST_BYTES, values=True):
    """read_back for a GraphDef in memory: (a new GraphDef with every Const whose tensor_content is above
    fed_bytes turned into a Placeholder, {tensor: value of that Const}). The input is not changed; small nodes
    are copied into the new GraphDef, each large value is decoded once (values=False: not at all, {})."""
    from tensorflow.core.framework import graph_pb2
    structure = graph_pb2.GraphDef()
    weights = {}
    for node in graph_def.node:
        if _is_fed_const(node, fed_bytes):
            value = edit.const_value(node) if values else None
            placeholder = structure.node.add()
            placeholder.name, placeholder.op = node.name, "Placeholder"
            placeholder.attr["dtype"].type = node.attr["dtype"].type
            placeholder.attr["shape"].shape.CopyFrom(node.attr["value"].tensor.tensor_shape)
            if values:
                weights[tensor_name(node.name)] = value
        else:
            structure.node.add().CopyFrom(node)
    structure.library.CopyFrom(graph_def.library)
    structure.versions.CopyFrom(graph_def.versions)
    return structure, weights


MAP_POPULATE = 0x8000  # Linux's mmap flag (Python 3.10+ names it mmap.MAP_POPULATE): fault every page in at once


def aligned_buffer(count):
    """A writable uint8 array of `count` bytes, 64-byte aligned (TF feeds such arrays without copying them).

    On Linux: an anonymous private mapping made with MAP_POPULATE, page aligned, its pages faulted in by one
    call. numpy's own allocation of a large array asks for transparent huge pages (madvise); on a machine whose
    memory is mostly page cache the kernel compacts memory to find them, and reading a 1.07 GB frozen graph's
    weights into such arrays took 1.9 CPU s where this takes 0.4 (benchmarks, README Performance). The mapping
    is unmapped when the array (its base) is freed. Elsewhere: a numpy array, aligned by hand."""
    import mmap
    import sys
    import numpy as np
    if sys.platform.startswith("linux"):
        try:
            memory = mmap.mmap(-1, count, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_POPULATE,
                               prot=mmap.PROT_READ | mmap.PROT_WRITE)
            return np.frombuffer(memory, np.uint8)
        except (OSError, ValueError, OverflowError):
            pass  # (a mapping limit reached): numpy's allocation below
    raw = np.empty(count + 64, np.uint8)
    shift = (-raw.ctypes.data) % 64
    return raw[shift:shift + count]


def _read_weight(handle, start, length, values=True, reuse=None, head_size=1 << 16):
    """(name, dtype enum, array) for the Const NodeDef of `length` bytes at `start`, its tensor_content read
    into an aligned array (values=False: a zero-stride stand-in of that shape, nothing read; reuse: see
    read_back); None (file position undefined) when the node is not laid out that way."""
    import numpy as np
    handle.seek(start)
    head = handle.read(min(length, head_size))
    layout = wire.const_layout(head)
    if layout is None:
        return None
    name, dtype, dims, offset, count = layout
    np_dtype = np.dtype(tfcompat.v1().as_dtype(dtype).as_numpy_dtype)
    elements = 1
    for dim in dims:
        elements *= dim
    if offset + count > length or np_dtype.kind in "OSUV" or elements * np_dtype.itemsize != count:
        return None
    if not values:
        handle.seek(start + length)
        return name, dtype, np.lib.stride_tricks.as_strided(np.zeros(1, np_dtype), shape=dims,
                                                            strides=[0] * len(dims))
    have = min(len(head) - offset, count)
    if reuse:
        known = reuse.pop(tensor_name(name), None)
        if known is not None and _same_bytes(known, np_dtype, dims, head, offset, have, handle,
                                             start + offset + have, count):
            handle.seek(start + length)
            return name, dtype, known
        del known
        reuse.clear()  # one differs: the rest goes before this file's own arrays are allocated
    buffer = aligned_buffer(count)
    buffer[:have] = np.frombuffer(head, np.uint8, have, offset)
    if count > have:
        handle.seek(start + offset + have)
        if handle.readinto(memoryview(buffer)[have:]) != count - have:
            return None
    handle.seek(start + length)
    return name, dtype, buffer.view(np_dtype).reshape(dims)


COMPARE_BYTES = 4 << 20


def _same_bytes(array, np_dtype, dims, head, offset, have, handle, position, count):
    """True when `array` (dtype, shape, every byte) is the tensor_content whose first `have` bytes are in
    `head` at `offset` and the rest in the file at `position`, read COMPARE_BYTES at a time."""
    import numpy as np
    if array.dtype != np_dtype or list(array.shape) != list(dims) or array.nbytes != count or \
            not array.flags.c_contiguous:
        return False
    flat = array.reshape(-1).view(np.uint8)
    if not np.array_equal(flat[:have], np.frombuffer(head, np.uint8, have, offset)):
        return False
    chunk = bytearray(min(COMPARE_BYTES, count - have) or 1)
    view = np.frombuffer(chunk, np.uint8)
    handle.seek(position)
    done = have
    while done < count:
        size = min(len(chunk), count - done)
        if handle.readinto(memoryview(chunk)[:size]) != size or \
                not np.array_equal(flat[done:done + size], view[:size]):
            return False
        done += size
    return True


def _read_varint(handle, path):
    try:
        return wire.read_varint(handle)
    except wire.WireError:
        raise BadInput("frozen graph file is truncated", path, "freeze again")


# A binary graph file up to this size is imported by check_importable from its own bytes, weights and all.
IMPORT_FILE_BYTES = 64 << 20


def check_importable(where, graph_def=None, path=None):
    """The cheap check every graph written unverified gets: TF's import into a fresh Graph (its C API where
    tfcompat.run_import_path takes it, without Python Operations), no session run. A binary file up to
    IMPORT_FILE_BYTES is imported as it is written, from its bytes (parsed by protobuf's C code, never a node
    at a time in Python); above that, and for text files and a GraphDef in memory, large Consts are imported
    as Placeholders of their dtype/shape (a file is read without its weights, a GraphDef in memory is not
    copied with them: when it holds no large Const, it is imported itself). BadInput naming the node TF
    refused."""
    serialized = None
    if path is not None:
        if path.endswith(artifacts.TEXT_SUFFIXES):
            structure = split_weights(artifacts.read_graph_def(path), values=False)[0]
        elif os.path.getsize(path) <= IMPORT_FILE_BYTES:
            from tensorflow.core.framework import graph_pb2
            with open(path, "rb") as handle:
                serialized = handle.read()
            structure = graph_pb2.GraphDef.FromString(serialized)
        else:
            structure, _ = read_back(path, values=False)
    elif _holds_fed_const(graph_def, FED_CONST_BYTES):
        structure, _ = split_weights(graph_def, values=False)
    else:
        structure = graph_def
    try:
        tfcompat.import_for_run(tfcompat.v1().Graph(), structure, wrappers=False, serialized=serialized)
    except Exception as exc:
        if not isinstance(exc, (tfcompat.tf().errors.OpError, ValueError, KeyError, TypeError)):
            raise
        raise BadInput("the graph to write does not import into TF {}: {}".format(
            tfcompat.version_string(), first_line(exc)), where,
            "nothing was written; run without --no-verify to see more, or report it")


def _holds_fed_const(graph_def, fed_bytes):
    """True when split_weights would turn a Const of graph_def into a Placeholder."""
    return any(_is_fed_const(node, fed_bytes) for node in graph_def.node)


def _is_fed_const(node, fed_bytes):
    """A Const whose tensor_content is above fed_bytes: imported as a Placeholder fed its value."""
    return node.op == "Const" and len(node.attr["value"].tensor.tensor_content) > fed_bytes
