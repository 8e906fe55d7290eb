"""An ONNX file as an artifact: detected by its content, loaded, run with onnxruntime on the CPU."""
import os

import numpy as np

from migrate.errors import BadInput

KIND = "onnx"
# ModelProto field 1 (ir_version, varint): tag byte 0x08, then a small version number; onnx.save writes it first.
_IR_VERSION_TAG = b"\x08"
_MAX_IR_VERSION = 64
# ModelProto fields that follow ir_version: producer_name (2), producer_version (3), domain (4), model_version
# (5), doc_string (6), graph (7), opset_import (8): their tag bytes.
_NEXT_TAGS = (b"\x12", b"\x1a", b"\x22", b"\x28", b"\x32", b"\x3a", b"\x42")
SUFFIX = ".onnx"

# ONNX element types (TensorProto.DataType) as numpy dtype names; onnxruntime reports 'tensor(float)' etc.
_ORT_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
              "tensor(int8)": "int8", "tensor(int16)": "int16", "tensor(int32)": "int32", "tensor(int64)": "int64",
              "tensor(uint8)": "uint8", "tensor(uint16)": "uint16", "tensor(uint32)": "uint32",
              "tensor(uint64)": "uint64", "tensor(bool)": "bool", "tensor(string)": "string"}


def looks_like_onnx(path):
    """True when the file starts as a serialized ModelProto does (ir_version first, then another ModelProto
    field): content, not the extension. A GraphDef starts with node (0x0a) or versions (0x22)."""
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as handle:
        head = handle.read(3)
    return len(head) == 3 and head[:1] == _IR_VERSION_TAG and 0 < ord(head[1:2]) <= _MAX_IR_VERSION \
        and head[2:3] in _NEXT_TAGS


def claims_onnx(path):
    """An ONNX file by content, or a file named .onnx (then load() says what is wrong with it)."""
    return looks_like_onnx(path) or (os.path.isfile(path) and path.lower().endswith(SUFFIX))


class OnnxModel(object):
    """What verification needs of an ONNX model: path, kind, inputs/outputs {name: (dtype, dims)}, a run.
    graph_def is an empty GraphDef: the TF-side checks (safety, switches) find nothing to do in it."""

    kind = KIND

    def __init__(self, path, proto, input_specs, output_names):
        from tensorflow.core.framework import graph_pb2
        self.path = path
        self.proto = proto
        self.input_specs = input_specs      # {name: (dtype name, dims or None)}
        self.outputs = list(output_names)
        self.inputs = sorted(input_specs)
        self.graph_def = graph_pb2.GraphDef()
        self.signatures = {}
        self.assets = {}
        self.meta_graph = None
        self.checkpoint = None
        self.saved_model_dir = None
        self.producer = None
        self.tags = []
        self.provenance = ["loaded ONNX model " + path]
        self._session = None

    def session(self):
        if self._session is None:
            self._session = new_session(self.proto.SerializeToString(), self.path)
        return self._session

    def run(self, outputs, feeds):
        """{output: array} for feeds {name: array} (feeds this model has no input for are ignored)."""
        session = self.session()
        optional = session.get_overridable_initializers()  # inputs with a default
        wanted = dict((i.name, _ORT_TYPES.get(i.type)) for i in list(session.get_inputs()) + list(optional))
        given = {}
        for name, value in feeds.items():
            key = name if name in wanted else (name + ":0" if name + ":0" in wanted else None)
            if key is not None:
                array = np.asarray(value)
                dtype = wanted[key]
                if dtype == "string":
                    array = array.astype(object)
                elif dtype and array.dtype.name != dtype:
                    array = array.astype(dtype)
                given[key] = array
        missing = sorted(set(wanted) - set(given) - set(i.name for i in optional))
        if missing:
            raise BadInput("no value for ONNX input(s) {}".format(", ".join(missing)), self.path,
                           "pass --inputs-npz keyed by these names")
        try:
            values = session.run(list(outputs), given)
        except Exception as exc:
            raise BadInput("onnxruntime could not run the model: {}".format(_first(exc)), self.path,
                           "check that the inputs (--inputs-npz, --batch) fit its input shapes")
        return dict(zip(outputs, values))


def _first(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load(path):
    """OnnxModel from a file (ModelProto, checked by onnx.checker), or BadInput in one line."""
    from migrate import tfcompat
    if not looks_like_onnx(path):  # said in every env, the onnx extra or not
        with open(path, "rb") as handle:
            head = handle.read(8)
        raise BadInput("named .onnx but not an ONNX model (a serialized ModelProto starts with ir_version; this "
                       "starts with bytes {})".format(head.hex() if head else "nothing: the file is empty"), path,
                       "write it with onnx.save or `migrate onnx`")
    _, onnx, _ = tfcompat.require_onnx(path)
    try:
        proto = onnx.load(path)
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise BadInput("not a valid ONNX model: {}".format(_first(exc)), path,
                       "the file is damaged or truncated: write it again with `migrate onnx`")
    initializers = set(t.name for t in proto.graph.initializer)
    specs = {}
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dtype = tfcompat.onnx_np_dtype(tensor.elem_type)
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim] \
            if tensor.HasField("shape") else None
        name = np.dtype(dtype).name
        specs[value.name] = ("string" if name == "object" else name, dims)
    model = OnnxModel(path, proto, specs, [o.name for o in proto.graph.output])
    model.session()  # onnxruntime refuses what it cannot run now, in one line
    return model


def new_session(serialized, where):
    from migrate import tfcompat
    _, _, onnxruntime = tfcompat.require_onnx(where)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(serialized, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise BadInput("onnxruntime cannot load the model: {}".format(_first(exc)), where,
                       "try another --opset, or cut the graph with --outputs before the op it names")


def endpoint(model, outputs=None, partner=None):
    """A verify.Endpoint for an OnnxModel: inputs/outputs by ONNX name (tf2onnx keeps TF tensor names, so
    they pair with a TF side's tensors); --outputs or a partner's outputs narrow the outputs compared."""
    from migrate import verify
    from migrate.graph.names import tensor_name
    known = set(model.outputs)
    named = dict((o, o) for o in model.outputs)
    if outputs:
        named = {}
        for name in outputs:
            key = name if name in known else tensor_name(name)
            if key not in known:
                raise BadInput("the ONNX model has no output '{}' (outputs: {})".format(
                    name, ", ".join(sorted(known))), model.path, "name one of its outputs")
            named[key] = key
    return verify.Endpoint(model, dict((name, name) for name in model.input_specs), named,
                           dict(model.input_specs))
