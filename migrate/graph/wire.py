"""The protobuf wire format, read and written by hand where the generated classes cannot be used: a GraphDef
written node by node (a weight's tensor_content straight from its array), a Const's content read from a file
into an aligned array, a file parsed in chunks, the session bundle's `serving_signatures` (a proto TF does not
ship). One varint codec for all of them.

A serialized message is a sequence of fields: key = (field number << 3) | wire type, then a varint (type 0),
8 bytes (1), a varint length and that many bytes (2) or 4 bytes (5)."""

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5
MAX_VARINT_BYTES = 10

# GraphDef / NodeDef / AttrValue / TensorProto fields the hand-written paths use.
NODE_TAG = b"\x0a"          # GraphDef.node: field 1, wire type 2
ATTR_TAG = b"\x2a"          # NodeDef.attr: field 5, wire type 2 (a map entry: key 1, value 2)
VALUE_KEY = b"\x0a\x05value"
ENTRY_VALUE_TAG = b"\x12"
ATTR_TENSOR_TAG = b"\x42"   # AttrValue.tensor: field 8, wire type 2
CONTENT_TAG = b"\x22"       # TensorProto.tensor_content: field 4, wire type 2


class WireError(ValueError):
    """Bytes that are not a valid (or not a complete) field; str() says where."""


def encode_varint(value):
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def decode_varint(data, position=0):
    """(value, position after it) of the varint at `position`; WireError when it runs past the end of `data`
    or over 10 bytes."""
    result, shift, start = 0, 0, position
    while True:
        if position >= len(data) or position - start >= MAX_VARINT_BYTES:
            raise WireError("bad varint at byte {}".format(position))
        byte = data[position]
        byte = byte if isinstance(byte, int) else ord(byte)
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def read_varint(handle):
    """(value, its raw bytes) of the varint at a file's position; WireError at the end of the file."""
    raw = bytearray()
    while True:
        byte = handle.read(1)
        if not byte:
            raise WireError("file ends inside a varint")
        raw += byte
        if not bytearray(byte)[0] & 0x80 or len(raw) >= MAX_VARINT_BYTES:
            return decode_varint(raw)[0], bytes(raw)


def field_size(data, position=0):
    """Bytes of the whole field (key included) starting at `position`, or None for an invalid wire type or a
    key/length not complete in `data`."""
    try:
        key, at = decode_varint(data, position)
        wire = key & 7
        if wire == VARINT:
            return decode_varint(data, at)[1] - position
        if wire == FIXED64:
            return at + 8 - position
        if wire == FIXED32:
            return at + 4 - position
        if wire == LENGTH_DELIMITED:
            length, start = decode_varint(data, at)
            return start + length - position
    except WireError:
        return None
    return None


def field_number(data, position=0):
    return decode_varint(data, position)[0] >> 3


def length_delimited_fields(data):
    """Yield (field number, bytes) for the length-delimited fields of a serialized message (varint fields
    skipped); WireError for other wire types or a field running past the end."""
    position = 0
    while position < len(data):
        key, position = decode_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == LENGTH_DELIMITED:
            length, position = decode_varint(data, position)
            yield number, data[position:position + length]
            position += length
        elif wire_type == VARINT:
            _, position = decode_varint(data, position)
        else:
            raise WireError("unexpected wire type {}".format(wire_type))
        if position > len(data):
            raise WireError("field {} runs past the end of its message".format(number))


# ------------------------------------------------------------------------------------------ writing nodes

# Large bytes go to a file WRITE_PIECE_BYTES at a time. Linux sizes the page-cache folios a write() fills by
# the bytes it is given (up to 2 MiB); on a VM whose host takes back the guest's free 2 MiB blocks (virtio-balloon
# free page reporting), every fresh 2 MiB folio is a host fault on first touch, pieces this size come from
# the guest's smaller free blocks. Writing a new 1 GiB file in one call: 0.8-2.9 CPU s; in 64 KiB pieces:
# 0.3-0.6 (benchmarks/README.md, "Measured once"). Elsewhere it costs ~16k more write calls per GiB.
WRITE_PIECE_BYTES = 64 << 10


def write_bytes(handle, data):
    """handle.write(data), WRITE_PIECE_BYTES at a time when it is larger (a memoryview slice each: no copy)."""
    view = memoryview(data)
    if view.nbytes <= WRITE_PIECE_BYTES:
        handle.write(data)
        return
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    for start in range(0, len(view), WRITE_PIECE_BYTES):
        handle.write(view[start:start + WRITE_PIECE_BYTES])


def write_node(handle, payload):
    """A serialized NodeDef as one GraphDef.node field."""
    handle.write(NODE_TAG + encode_varint(len(payload)))
    write_bytes(handle, payload)
    return len(payload)


def write_const_node(handle, head, tensor_head, content, nbytes):
    """A Const NodeDef as one GraphDef.node field: `head` (the serialized NodeDef without its value attr),
    then the value attr holding `tensor_head` (a TensorProto with dtype and shape only) and `content`
    (nbytes of tensor_content, written as given: never copied into a protobuf). Returns the node's length."""
    tensor_len = len(tensor_head) + (1 + len(encode_varint(nbytes)) + nbytes if nbytes else 0)
    attr_len = 1 + len(encode_varint(tensor_len)) + tensor_len
    entry_len = len(VALUE_KEY) + 1 + len(encode_varint(attr_len)) + attr_len
    node_len = len(head) + 1 + len(encode_varint(entry_len)) + entry_len
    handle.write(b"".join([NODE_TAG, encode_varint(node_len), head, ATTR_TAG, encode_varint(entry_len), VALUE_KEY,
                           ENTRY_VALUE_TAG, encode_varint(attr_len), ATTR_TENSOR_TAG, encode_varint(tensor_len),
                           tensor_head]))
    if nbytes:
        handle.write(CONTENT_TAG + encode_varint(nbytes))
        write_bytes(handle, content)
    return node_len


# ------------------------------------------------------------------------------------------ reading Consts

def const_layout(head):
    """(name, dtype enum, dims, offset, length of tensor_content) of a serialized Const NodeDef whose name,
    op and value tensor's dtype/shape come before the content within `head` (its first bytes); else None."""
    try:
        return _const_layout(head)
    except WireError:  # a key or length past the end of `head`: not laid out that way
        return None


def _const_layout(head):
    name = op = None
    position, end = 0, len(head)
    while position < end:
        key, position = decode_varint(head, position)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            _, position = decode_varint(head, position)
            continue
        if wire != LENGTH_DELIMITED:
            return None
        length, position = decode_varint(head, position)
        if number == 1:
            name = bytes(head[position:position + length]).decode("utf-8")
        elif number == 2:
            op = bytes(head[position:position + length]).decode("utf-8")
        elif number == 5 and head[position:position + 7] == VALUE_KEY:
            found = _tensor_content(head, position + 7)
            if found is None or name is None or op != "Const":
                return None
            return (name,) + found
        position += length
        if position > end:
            return None
    return None


def _tensor_content(head, position):
    """Inside the value entry of NodeDef.attr (after its key): (dtype, dims, offset, length) of the content."""
    if head[position:position + 1] != ENTRY_VALUE_TAG:  # entry.value: AttrValue
        return None
    _, position = decode_varint(head, position + 1)
    if head[position:position + 1] != ATTR_TENSOR_TAG:  # AttrValue.tensor: TensorProto
        return None
    _, position = decode_varint(head, position + 1)
    dtype, dims = None, None
    while position < len(head):
        key, position = decode_varint(head, position)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, position = decode_varint(head, position)
            if number == 1:
                dtype = value
            continue
        if wire != LENGTH_DELIMITED:
            return None
        length, position = decode_varint(head, position)
        if number == 2:
            dims = shape_dims(head[position:position + length])
        elif number == 4:
            if dtype is None or dims is None:
                return None
            return dtype, dims, position, length
        position += length
    return None


def shape_dims(data):
    """TensorShapeProto bytes -> [sizes] (None when the rank is unknown)."""
    dims, position = [], 0
    while position < len(data):
        key, position = decode_varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, position = decode_varint(data, position)
            if number == 3 and value:  # unknown_rank
                return None
            continue
        length, position = decode_varint(data, position)
        if number == 2:  # Dim {size = 1, name = 2}
            size, inner = 0, position
            while inner < position + length:
                dim_key, inner = decode_varint(data, inner)
                if dim_key & 7 == VARINT:
                    value, inner = decode_varint(data, inner)
                    if dim_key >> 3 == 1:
                        size = value
                else:
                    skip, inner = decode_varint(data, inner)
                    inner += skip
            dims.append(size)
        position += length
    return dims
