"""Where a streaming freeze writes: the frozen GraphDef written node by node, each weight's tensor_content
straight from its array (graph/wire.py), into a temp file renamed into place on commit (Target); the Model
that reads its GraphDef back from that file (StreamedModel)."""
import os

from migrate import artifacts, io, progress, tfcompat
from migrate import model as m
from migrate.freezing.streaming.reader import CheckpointTensors
from migrate.graph import wire
from migrate.graph.names import tensor_name


def write_frozen(plan, path, text=False, keep=None):
    """Write the plan's GraphDef to path, each weight read from the checkpoint when its node comes (the next
    one read on a thread meanwhile, see _tensors). Returns the bytes written. keep: a dict given
    {tensor: array read from the checkpoint} for the weights written as their raw bytes (binary files), for
    the verification to reuse where the file holds them byte for byte (graph_files.read_back)."""
    reader = artifacts.open_checkpoint(plan.checkpoint)
    tail = type(plan.graph_def)()
    tail.versions.CopyFrom(plan.graph_def.versions)
    tail.library.CopyFrom(plan.graph_def.library)
    order = [node.name for node in plan.graph_def.node if node.name in plan.weights]
    planted = io.planted_weight(dict((name, (tfcompat.v1().as_dtype(plan.weights[name][1]).name,
                                             _nbytes(plan.weights[name]))) for name in order)) \
        if io.planted("freeze") else None  # test-only (io.planted)
    tensors = CheckpointTensors(reader, [(plan.weights[name][0], _nbytes(plan.weights[name])) for name in order],
                       plan.checkpoint)
    written = 0
    try:
        with open(path, "w" if text else "wb") as handle, progress.task("streaming weights", sum(
                _nbytes(plan.weights[name]) for name in order)) as advance:
            for node in plan.graph_def.node:
                if node.name in plan.weights:
                    dtype = plan.weights[node.name][1]
                    value = tensors.next()
                    if keep is not None and not text and _raw_bytes_ok(value, dtype):
                        keep[tensor_name(node.name)] = value  # the checkpoint's array (a planted one differs)
                    if node.name == planted:
                        value = io.plant_value(value)
                    written += (_write_text_weight if text else _write_weight)(handle, node, value, dtype)
                    del value
                    tensors.done()
                    advance(_nbytes(plan.weights[node.name]))
                elif text:
                    written += _write_text_node(handle, node)
                else:
                    written += wire.write_node(handle, node.SerializeToString(deterministic=True))
            if text:
                from google.protobuf import text_format
                handle.write(text_format.MessageToString(tail))
            else:
                handle.write(tail.SerializeToString(deterministic=True))
    finally:
        tensors.close()
    return written


def _nbytes(spec):
    _, dtype, dims = spec
    count = 1
    for dim in dims:
        count *= dim
    return count * max(tfcompat.v1().as_dtype(dtype).size, 1)


def _tensor_head(value, dtype):
    """TensorProto with dtype and shape only, serialized."""
    from tensorflow.core.framework import tensor_pb2
    head = tensor_pb2.TensorProto()
    head.dtype = dtype
    head.tensor_shape.SetInParent()
    for size in value.shape:
        head.tensor_shape.dim.add().size = size
    return head.SerializeToString()


def _raw_bytes_ok(value, dtype):
    """True when tensor_content may be the array's own bytes (numbers of the dtype's size, little-endian)."""
    import numpy as np
    value = np.asarray(value)
    tf = tfcompat.v1()
    tf_dtype = tf.as_dtype(dtype)
    if tf_dtype.name in ("string", "resource", "variant") or value.dtype.kind in "OSU":
        return False
    little = value.dtype.byteorder == "<" or (value.dtype.byteorder in ("=", "|") and np.little_endian)
    return little and value.dtype.itemsize == tf_dtype.size


def _write_weight(handle, node, value, dtype):
    """NodeDef `node` (a Const without value) + its value attr, tensor_content straight from the array."""
    import numpy as np
    if not _raw_bytes_ok(value, dtype):
        full = type(node)()
        full.CopyFrom(node)
        tf = tfcompat.v1()
        full.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype=tf.as_dtype(dtype)))
        return wire.write_node(handle, full.SerializeToString(deterministic=True))
    value = np.asarray(value)  # the reader gives numpy scalars for 0-d tensors
    if not value.flags.c_contiguous:
        value = value.copy(order="C")  # (np.ascontiguousarray would make a 0-d value 1-d)
    content = memoryview(value.reshape(-1).view(np.uint8)) if value.size else b""
    return wire.write_const_node(handle, node.SerializeToString(deterministic=True), _tensor_head(value, dtype),
                                 content, value.nbytes)


def _write_text_node(handle, node):
    from google.protobuf import text_format
    body = text_format.MessageToString(node, indent=2)
    handle.write("node {\n" + body + "}\n")
    return len(body)


def _write_text_weight(handle, node, value, dtype):
    full = type(node)()
    full.CopyFrom(node)
    tf = tfcompat.v1()
    full.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype=tf.as_dtype(dtype)))
    return _write_text_node(handle, full)


class StreamedModel(m.Model):
    """A frozen Model whose GraphDef lives in the file the streaming freeze wrote: parsed when first asked
    for (verification), dropped again by release(). `file_path` follows the file when Target.commit moves it."""

    def __init__(self, file_path, text, *args, **kwargs):
        self.file_path = file_path
        self.text = text
        self._graph_def = None
        m.Model.__init__(self, *args, **kwargs)

    @property
    def graph_def(self):
        if self._graph_def is None and self.file_path is not None:
            from tensorflow.core.framework import graph_pb2
            self._graph_def = artifacts.parse_proto(self.file_path, graph_pb2.GraphDef())
        return self._graph_def

    @graph_def.setter
    def graph_def(self, value):
        self._graph_def = value

    def release(self):
        """Forget the parsed GraphDef (the file stays); the next use parses it again."""
        self._graph_def = None

    def derive(self, **changes):
        fields = dict((k, v) for k, v in self.__dict__.items() if k not in ("file_path", "text", "_graph_def"))
        plain = m.Model(fields.pop("kind"), fields.pop("path"), self.graph_def, **fields)
        return plain.derive(**changes)


def streamed_from(model, file_path, text=False):
    """The Model `model` is, its GraphDef left to the file it was written to (parsed again only if asked)."""
    fields = dict((k, v) for k, v in model.__dict__.items()
                  if k not in ("kind", "path", "graph_def", "file_path", "text", "_graph_def"))
    return StreamedModel(file_path, text, model.kind, model.path, None, **fields)


class Target(object):
    """Where a frozen graph is written: a temp file beside `output`, renamed to it by commit(), removed by
    close() otherwise (also on errors and SIGTERM, like io.atomic_file). Use as a context manager:

        with Target(output) as target:
            frozen, record = freezing.freeze(model, ..., stream_to=target)
            ... verify ...
            if ok:
                target.commit(frozen)      # streamed: rename; in memory: write frozen.graph_def
    """

    def __init__(self, output, replace=True):
        self.output = output
        self.replace = replace  # False (no --force): never replace a file that appeared at output meanwhile
        self.text = output.endswith(artifacts.TEXT_SUFFIXES)
        self.path = io.temp_file_beside(output)
        self.committed = False
        # {tensor: array} a streaming freeze read from the checkpoint and wrote, kept when set to {} before it
        # (a verified freeze to a binary file): the candidate run reuses them where the file holds their bytes
        self.weights = None
        self._unwind = None

    def __enter__(self):
        self._unwind = io.terminate_unwinds()
        self._unwind.__enter__()
        return self

    def __exit__(self, kind, value, trace):
        try:
            self.close()
        finally:
            if self._unwind is not None:
                self._unwind.__exit__(kind, value, trace)
        if isinstance(value, (IOError, OSError)):  # disk full, permissions: the one line io.atomic_file gives
            raise io.write_error(value, self.output)
        return False

    def commit(self, frozen=None):
        """Put the graph at `output`: the file at `path` (streamed, or written with write_graph_def; frozen
        None or a StreamedModel of it) is renamed into place; an in-memory GraphDef (the session path ran)
        is written by io.write_graph, and the unused temp file removed."""
        if frozen is None:
            io.rename_into_place(self.path, self.output, self.replace)
        elif isinstance(frozen, StreamedModel) and frozen.file_path == self.path:
            io.rename_into_place(self.path, self.output, self.replace)
            frozen.file_path = self.output
        else:
            io.write_graph(frozen.graph_def, self.output, self.replace)
            self.close()
        self.committed = True

    def close(self):
        if not self.committed and os.path.exists(self.path):
            os.remove(self.path)
