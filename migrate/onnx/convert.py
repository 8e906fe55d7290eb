"""tf2onnx on a frozen graph: the ONNX-prep step, the conversion with its failures made one line, and the
TensorRT calibration cache renamed to the ONNX tensor names."""
import contextlib
import logging
import re

from migrate import opsets, tfcompat
from migrate.errors import BadInput
from migrate.graph.names import node_name

PREP_NAME = "onnx_prep"
_FAILED_NODE = re.compile(r"Failed to convert node '([^']+)'")
_PASS1_NODE = re.compile(r'convert failed for name: "([^"]+)"')
_UNSUPPORTED = re.compile(r"Tensorflow op \[([^:\]]+): ([^\]]+)\] is not supported")
_ASSERTION = re.compile(r"make_sure failure: (.*)")
_DESCRIBED = re.compile(r"OP=([^\n\\]+)(?:\n|\\n)Name=([^\n\\]+)")  # tf2onnx's dump of a node it failed on


class ConversionFailed(BadInput):
    """tf2onnx could not convert the graph: one line naming the node and op, and what to try."""


def graph_inputs(graph_def, outputs):
    """The tensors the ONNX model takes: every placeholder the outputs need, PlaceholderWithDefault included (a
    train/infer switch is a constant by now; what is left is an input with a default, as an Estimator's)."""
    from migrate.graph import view
    needed = view.needed_nodes(view.to_digraph(graph_def), [node_name(o) for o in outputs])
    return sorted(node.name + ":0" for node in graph_def.node
                  if node.op in opsets.PLACEHOLDER_OPS and node.name in needed)


def prep(graph_def, inputs=()):
    """(the GraphDef tf2onnx gets, {attr or op change: count}) on a copy: private attrs other than
    ONNX_KEPT_PRIVATE_ATTRS removed (`_class`, `_migrate_outputs`, a `shape {}` or `func {}` valued attr...):
    no kernel reads them, so what runs is unchanged, and tf2onnx 1.17 fails on some of them ("'' is not an
    accepted attribute value"); a PlaceholderWithDefault among `inputs` becomes a Placeholder (tf2onnx would
    keep its default and give the ONNX model no input for it)."""
    from tensorflow.core.framework import graph_pb2
    prepared = graph_pb2.GraphDef()
    prepared.CopyFrom(graph_def)
    dropped = {}
    fed = set(node_name(name) for name in inputs)
    for node in prepared.node:
        if node.op == "PlaceholderWithDefault" and node.name in fed:
            node.op = "Placeholder"
            del node.input[:]
            dropped["PlaceholderWithDefault->Placeholder"] = dropped.get(
                "PlaceholderWithDefault->Placeholder", 0) + 1
        for key in [k for k in node.attr if k.startswith("_") and k not in opsets.ONNX_KEPT_PRIVATE_ATTRS]:
            del node.attr[key]
            dropped[key] = dropped.get(key, 0) + 1
    return prepared, dropped


def keep_defaults(proto, graph_def, inputs):
    """[input names] given their TF default back: an input that was a PlaceholderWithDefault of a constant
    gets an initializer of the same name, ONNX's input-with-a-default (onnxruntime uses it unless fed)."""
    tf2onnx, onnx, _ = tfcompat.require_onnx()
    nodes = dict((node.name, node) for node in graph_def.node)
    present = set(v.name for v in proto.graph.input) - set(t.name for t in proto.graph.initializer)
    kept = []
    for name in inputs:
        node = nodes.get(node_name(name))
        if node is None or node.op != "PlaceholderWithDefault" or name not in present or not node.input:
            continue
        source = nodes.get(node_name(node.input[0]))
        if source is None or source.op != "Const":
            continue
        value = tfcompat.tf().make_ndarray(source.attr["value"].tensor)
        proto.graph.initializer.extend([onnx.numpy_helper.from_array(value, name)])
        kept.append(name)
    return kept


class _Captured(logging.Handler):
    def __init__(self):
        logging.Handler.__init__(self, logging.WARNING)
        self.lines = []

    def emit(self, record):
        try:
            self.lines.append(record.getMessage())
        except Exception:  # a record whose args do not format: its template still says something
            self.lines.append(str(record.msg))


@contextlib.contextmanager
def _tf2onnx_log():
    """tf2onnx's log records captured (what it could not convert) instead of printed: migrate prints one line."""
    logger = logging.getLogger("tf2onnx")
    captured = _Captured()
    saved = (list(logger.handlers), logger.propagate, logger.level)
    logger.handlers = [captured]
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield captured
    finally:
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])


def to_onnx(graph_def, inputs, outputs, opset, where):
    """ModelProto from tf2onnx.convert.from_graph_def (tf2onnx makes its own tf.Graph; the default graph is
    untouched). A node tf2onnx leaves unconverted (it keeps going and writes the TF op into the ONNX graph) or an
    exception is ConversionFailed naming the node and op."""
    tf2onnx, onnx, _ = tfcompat.require_onnx(where)
    ops = dict((node.name, node.op) for node in graph_def.node)
    with _tf2onnx_log() as log, tfcompat.quiet_native_stderr():
        try:
            proto, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=list(inputs),
                                                      output_names=list(outputs), opset=opset)
        except Exception as exc:
            lines = log.lines + _dtype_nodes(graph_def, exc)
            raise _failure(lines, ops, opset, where, "{}: {}".format(type(exc).__name__, _first(exc)))
    left = [(n.name, n.op_type) for n in proto.graph.node if not onnx.defs.has(n.op_type, n.domain or "")]
    if left:
        raise _failure(log.lines, ops, opset, where, None, left)
    return proto


def _dtype_nodes(graph_def, exc):
    """tf2onnx's KeyError on a dtype it has no ONNX type for ('tf.qint32'): the nodes with an attr of that dtype,
    as the log lines _failure reads ("Failed to convert node 'X'")."""
    match = re.match(r"^'?tf\.(\w+)'?$", str(exc).strip()) if isinstance(exc, KeyError) else None
    if not match:
        return []
    try:
        enum = tfcompat.tf().as_dtype(match.group(1)).as_datatype_enum
    except (TypeError, ValueError, AttributeError):
        return []
    return ["Failed to convert node '{}'".format(node.name) for node in graph_def.node
            if any(value.type == enum or enum in value.list.type for value in node.attr.values())][:1]


def _first(exc):
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__


def _failure(lines, ops, opset, where, error, left=()):
    """ConversionFailed: the first node tf2onnx names (its log, else the nodes left as TF ops), its op, why."""
    named = []
    reasons = {}
    described_ops = {}
    for line in lines:
        for pattern in (_FAILED_NODE, _PASS1_NODE, _UNSUPPORTED):
            match = pattern.search(line)
            if match and match.group(1) not in named:
                named.append(match.group(1))
        described = _DESCRIBED.search(line)
        if described:
            described_ops[described.group(2).strip()] = described.group(1)
        assertion = _ASSERTION.search(line)
        if assertion and named:
            reasons.setdefault(named[-1], assertion.group(1).strip())
    for name, _ in left:
        if name not in named:
            named.append(name)
    ops = dict(ops)
    ops.update((name, op) for name, op in list(left) + list(described_ops.items()) if name not in ops)
    others = sorted(set(ops.get(node_name(n), "?") for n in named[1:]) - {ops.get(named[0]) if named else None})
    if named:
        first = named[0]
        what = "tf2onnx (opset {}) cannot convert node '{}' (op {})".format(opset, first, ops.get(first, "?"))
        if len(named) > 1:
            what += " and {} more node(s){}".format(len(named) - 1, " (ops {})".format(", ".join(others))
                                                    if others else "")
        reason = reasons.get(first) or error
        if reason:
            what += ": " + reason
    else:
        what = "tf2onnx (opset {}) failed: {}".format(opset, error)
    other = tfcompat.ONNX_DEFAULT_OPSET if opset != tfcompat.ONNX_DEFAULT_OPSET else tfcompat.ONNX_MAX_OPSET
    return ConversionFailed(what, where, "try --opset {}, or cut it out of the graph: --outputs ending before "
                                         "it, or --input-at feeding the graph after it; --passes chooses the "
                                         "graph passes run first".format(other))


# ------------------------------------------------------------------------------- TensorRT calibration cache

def read_calibration_cache(path):
    """(header, [(tensor name, hex scale)]) of a TensorRT text calibration cache (`TRT-<ver>-<Calibrator>`
    header, then `name: hex` lines), or BadInput naming the line."""
    from migrate import artifacts
    artifacts.require_file_or_dir(path, "calibration cache")
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
    except (IOError, OSError, UnicodeDecodeError) as exc:
        raise BadInput("cannot read calibration cache: {}".format(exc), path,
                       "write it with `migrate calibrate`")
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if not lines or not lines[0].startswith("TRT-"):
        raise BadInput("not a TensorRT calibration cache (the first line must be TRT-<version>-<calibrator>)",
                       path, "write it with `migrate calibrate`")
    entries = []
    for number, line in enumerate(lines[1:], 2):
        name, sep, value = line.rpartition(":")
        value = value.strip()
        if not sep or not name.strip() or not re.match(r"^[0-9a-fA-F]{1,16}$", value):
            raise BadInput("line {} is not 'tensor: hexscale': {!r}".format(number, line[:80]), path,
                           "write it with `migrate calibrate`")
        entries.append((name.strip(), value))
    if not entries:
        raise BadInput("calibration cache holds no tensor scales", path, "write it with `migrate calibrate`")
    return lines[0], entries


def onnx_tensor_names(proto):
    """Every tensor name of an ONNX graph: inputs, outputs, initializers, node outputs."""
    graph = proto.graph
    names = set(v.name for v in graph.input) | set(v.name for v in graph.output)
    names.update(t.name for t in graph.initializer)
    for node in graph.node:
        names.update(o for o in node.output if o)
    return names


def rename_calibration_cache(header, entries, proto):
    """(cache text keyed by ONNX tensor names, [(tf name, onnx name)], [tf names with no ONNX tensor]).
    tf2onnx keeps a TF tensor's name for the ONNX tensor holding its value ('conv/Relu:0'); a cache may name
    tensors as 'node:0' or 'node'. A TF tensor tf2onnx fused away (BiasAdd into Conv) or folded has no ONNX
    tensor: left out (TensorRT then calibrates nothing for it: that layer runs on the scales it has)."""
    known = onnx_tensor_names(proto)
    kept, lost, seen = [], [], set()
    lines = [header]
    for name, value in entries:
        candidates = [name] + ([name + ":0"] if ":" not in name else [node_name(name)] if name.endswith(":0")
                               else [])
        target = next((c for c in candidates if c in known), None)
        if target is None:
            lost.append(name)
            continue
        if target in seen:
            continue
        seen.add(target)
        kept.append((name, target))
        lines.append("{}: {}".format(target, value))
    return "\n".join(lines) + "\n", kept, lost
