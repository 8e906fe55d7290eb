"""TF-TRT converter tables per generation: which ops each TF-TRT version converts, for which dtypes, with which
attribute checks, and how its segmenter counts and limits segments. DATA, read from TensorFlow's own sources.

Every op entry carries `source`: the file (and, where the stored copy had one, the commit) it was read from.
Two kinds of provenance, said per entry, never mixed silently:
  READ      the list was read this session from the TF source named (segment.cc, convert_graph.cc's
            candidate_ops, convert_nodes.cc's RegisterValidatableOpConverters, ops/*.cc registrations)
  RECALLED  taken from the converter registrations of that release as we know them, NOT re-read this session
            (the stored source index holds one copy per path; we could not open every release's file)
Simplifications, said once here and in README "### plan":
  - a converter's full validation (broadcast feasibility, per-axis rules of StridedSlice, TopK's k, ...) is not
    replayed; the checks named in `checks` are (see migrate/planning/classify.py for each);
  - plugin ops (contrib's PluginFactoryTensorRT) are not modelled: none is registered by default;
  - TensorRT-version gates inside one TF release (e.g. `NV_TENSORRT_MAJOR > 3` in TF 1.9-1.11, TRT >= 8.2 for
    boolean ops in 2.x) assume the TensorRT that release was tested with.
"""
from collections import OrderedDict

FLOAT, HALF, INT32, INT8, BOOL = "float32", "float16", "int32", "int8", "bool"
FLOATS = (FLOAT, HALF)
WITH_INT32 = (FLOAT, HALF, INT32)
ANY = None  # no dtype check (Identity, Const's own dtype is checked as weights)

READ, RECALLED = "read", "recalled"

_C17 = ("tensorflow/contrib/tensorrt/convert/convert_graph.cc IsTensorRTCandidate candidate_ops "
        "(TF 1.7 layout: no plugin check)")
_C110 = ("tensorflow/contrib/tensorrt/convert/convert_graph.cc candidate_ops with `#if NV_TENSORRT_MAJOR > 3` "
         "(TF 1.9-1.11 layout)")
_C113_GRAPH = "tensorflow/contrib/tensorrt/convert/convert_graph.cc TrtCandidateSelector candidate_ops (TF 1.12-1.13)"
_C113_NODES = ("tensorflow/contrib/tensorrt/convert/convert_nodes.cc RegisterValidatableOpConverters + "
               "Converter::RegisterOpConverters @0346de68 (TF 1.13)")
_SEG_CONTRIB = "tensorflow/contrib/tensorrt/segment/segment.cc SegmentGraph @0107c915"
_V1_NODES = ("tensorflow/compiler/tf2tensorrt/convert/convert_nodes.cc RegisterValidatableOpConverters "
             "@00067a31 (first tf2tensorrt layout, TF 1.14 development)")
_V1_RECALLED = "tensorflow/compiler/tf2tensorrt/convert/convert_nodes.cc registrations of TF 1.14/1.15"
_V2_BINARY = "tensorflow/compiler/tf2tensorrt/convert/ops/binary_ops.cc @0a723e70 (TF 2.1x)"
_V2_UNARY = "tensorflow/compiler/tf2tensorrt/convert/ops/unary_ops.cc @01120ce3 (TF 2.1x)"
_V2_RECALLED = ("tensorflow/compiler/tf2tensorrt/convert/convert_nodes.cc + ops/*.cc "
                "REGISTER_DEFAULT_TRT_OP_CONVERTER of TF 2.12-2.17")
_SEG_V2 = "tensorflow/compiler/tf2tensorrt/segment/segment.cc SegmentGraph (TF 2.12+: batch-size clusters, max engines)"


def _entries(ops, dtypes, source, provenance, checks=(), **extra):
    entry = {"dtypes": dtypes, "source": source, "provenance": provenance, "checks": tuple(checks)}
    entry.update(extra)
    return OrderedDict((op, dict(entry)) for op in ops)


def _table(*parts):
    table = OrderedDict()
    for part in parts:
        table.update(part)
    return table


# Attribute / input checks by op family (implemented in classify.CHECKS).
CONV = ("filter_const", "conv_data_format", "conv_padding", "strides_nonspatial", "dilations_nonspatial")
DEPTHWISE = ("filter_const", "conv_data_format", "conv_padding", "strides_nonspatial", "dilations_nonspatial")
POOL = ("pool_padding", "conv_data_format", "ksize_nonspatial", "strides_nonspatial")
BN = ("bn_inference",)
BINARY = ("not_both_const",)
REDUCE = ("axes_const", "axes_not_batch")
CONCAT = ("axis_const", "axis_not_batch")
RESHAPE = ("shape_const", "reshape_keeps_batch")
TRANSPOSE = ("perm_const", "perm_keeps_batch")
SQUEEZE = ("squeeze_not_batch",)
EXPAND = ("axis_const", "axis_not_batch")
MATMUL_CONTRIB = ("matmul_b_const", "matmul_no_transpose_a")

_CONTRIB_17_OPS = ["Identity", "Snapshot", "Const", "Conv2D", "MaxPool", "BiasAdd", "Relu", "Add", "Mul", "Sub",
                   "Rsqrt", "Pad", "Mean", "AvgPool", "ConcatV2", "DepthwiseConv2dNative", "FusedBatchNorm",
                   "FusedBatchNormV2"]
_CONTRIB_110_MORE = ["Div", "RealDiv", "Reciprocal", "Exp", "Log", "Sqrt", "Abs", "Neg", "MatMul", "BatchMatMul",
                     "Softmax", "Minimum", "Maximum", "TopKV2", "Sum", "Prod", "Max", "Min"]
_CONTRIB_113_MORE = ["Sigmoid", "Tanh", "Transpose", "Reshape", "Relu6", "Square"]
_CONTRIB_113_NODES_ONLY = ["ExpandDims", "Squeeze", "StridedSlice"]
QUANTIZE_OPS = ["QuantizeAndDequantizeV2", "QuantizeAndDequantizeV3", "FakeQuantWithMinMaxVars",
                "FakeQuantWithMinMaxArgs"]


# The validator checks each op's converter runs, by op (FusedBatchNorm* and MatMul are handled in _checks_for).
_CHECKS_BY_OP = dict(
    [(op, CONV) for op in ("Conv2D", "Conv2DBackpropInput")] +
    [("DepthwiseConv2dNative", DEPTHWISE)] +
    [(op, POOL) for op in ("MaxPool", "AvgPool")] +
    [(op, BINARY) for op in ("Add", "AddV2", "Mul", "Sub", "Div", "RealDiv", "Minimum", "Maximum", "Pow",
                             "FloorDiv")] +
    [(op, REDUCE) for op in ("Mean", "Sum", "Prod", "Max", "Min")] +
    [("ConcatV2", CONCAT), ("Reshape", RESHAPE), ("Transpose", TRANSPOSE), ("Squeeze", SQUEEZE),
     ("ExpandDims", EXPAND)])


def _checks_for(op, matmul=MATMUL_CONTRIB):
    if op.startswith("FusedBatchNorm"):
        return BN
    if op == "MatMul":
        return matmul
    return _CHECKS_BY_OP.get(op, ())


def _family(ops, dtypes, source, provenance, matmul=MATMUL_CONTRIB, **extra):
    table = OrderedDict()
    for op in ops:
        table.update(_entries([op], ANY if op in ("Identity", "Snapshot", "StopGradient") else dtypes, source,
                              provenance, _checks_for(op, matmul), **extra))
    return table


# Shape/index ops take int32 in every generation that has them.
_INDEX_OPS = ("Const", "Reshape", "ConcatV2", "ExpandDims", "Squeeze", "StridedSlice", "Transpose", "Pack",
              "Slice", "GatherV2", "Unpack", "Split", "Shape", "Fill", "Range", "Tile", "Cast")


def _with_index_dtypes(table, dtypes):
    for op, entry in table.items():
        if op in _INDEX_OPS and entry["dtypes"] is not ANY:
            entry["dtypes"] = dtypes
    return table


# ---------------------------------------------------------------------------------------------- generations

CONTRIB_17 = {
    "name": "contrib-1.7",
    "api": "contrib",
    "tf_versions": ((1, 7), (1, 8)),
    "summary": "tf.contrib.tensorrt of TF 1.7/1.8: 18 candidate ops, no validation of inputs or attrs",
    "ops": _with_index_dtypes(_family(_CONTRIB_17_OPS, FLOATS, _C17, READ), WITH_INT32),
    # ConvertDType of TF 1.7: float, half, int8 only (int32 tensors have no TensorRT type there).
    "tensor_dtypes": (FLOAT, HALF, INT8),
    "validates_inputs": False,        # no TrtNodeValidator yet: any candidate op is taken, whatever its inputs
    "edge_validators": False,         # SegmentGraph(candidate_fn) only: no input/output edge validators
    "counts_noops": True,             # segment_nodes.size() < minimum_segment_size: Identity counts
    "implicit_batch": "always",
    "batch_size_clusters": False,
    "max_engines": None,
    "int8_only_ops": (),
    "segment_source": "tensorflow/contrib/tensorrt/segment/segment.cc of TF 1.7 (" + RECALLED + ": no Step 2)",
    "not_modelled": ["attribute validation did not exist: a candidate op the converter later rejects fails the "
                     "engine build at conversion (or run) time; migrate still applies no checks here"],
}

CONTRIB_110 = dict(CONTRIB_17, **{
    "name": "contrib-1.10",
    "tf_versions": ((1, 9), (1, 10), (1, 11)),
    "summary": "tf.contrib.tensorrt of TF 1.9-1.11: + MatMul, BatchMatMul, Softmax, reductions, unary math",
    "ops": _with_index_dtypes(_table(_family(_CONTRIB_17_OPS, FLOATS, _C110, READ),
                                     _family(_CONTRIB_110_MORE, FLOATS, _C110, READ)), WITH_INT32),
    "tensor_dtypes": (FLOAT, HALF, INT8),
    "segment_source": "tensorflow/contrib/tensorrt/segment/segment.cc of TF 1.9-1.11 (" + RECALLED + ")",
})

CONTRIB_113 = {
    "name": "contrib-1.13",
    "api": "contrib",
    "tf_versions": ((1, 12), (1, 13)),
    "summary": ("tf.contrib.tensorrt of TF 1.12/1.13: TrtCandidateSelector = candidate list + TrtNodeValidator "
                "(input tensor dtype/rank, per-op validators)"),
    "ops": _with_index_dtypes(_table(
        _family(_CONTRIB_17_OPS + _CONTRIB_110_MORE + _CONTRIB_113_MORE, WITH_INT32, _C113_GRAPH, READ),
        _family(_CONTRIB_113_NODES_ONLY, WITH_INT32, _C113_NODES, READ),
        _entries(QUANTIZE_OPS, FLOATS, _C113_GRAPH, READ, int8_only=True)), WITH_INT32),
    # ValidateTensorProperties -> ConvertDType of TF 1.13: float, half, int8, int32. No per-op dtype list yet:
    # an int32 Add passes validation in 1.13 (and in 1.14 it no longer does, see CONVERTER_V1).
    "tensor_dtypes": (FLOAT, HALF, INT8, INT32),
    "validates_inputs": True,
    "edge_validators": True,          # InputEdgeValidator (dtype/rank of the input), OutputEdgeValidator (no Const)
    "counts_noops": True,             # contrib segment.cc Step 3: segment_nodes.size() < minimum_segment_size
    "implicit_batch": "always",
    "batch_size_clusters": False,
    "max_engines": None,
    "int8_only_ops": tuple(QUANTIZE_OPS),
    "segment_source": _SEG_CONTRIB + " (" + READ + ")",
    "not_modelled": ["ExpandDims/Squeeze/StridedSlice have converters in 1.13's convert_nodes.cc; 1.12's "
                     "candidate_ops list ends at Square, so on 1.12 they are not candidates (not modelled "
                     "separately)"],
}

_V1_READ_OPS = ["BiasAdd", "ConcatV2", "Const", "Conv2D", "Conv2DBackpropInput", "DepthwiseConv2dNative",
                "ExpandDims", "LeakyRelu", "MatMul", "Pad", "Relu6", "Reshape", "Square", "Squeeze",
                "StridedSlice", "Transpose", "TopKV2", "Add", "Mul", "Sub", "Div", "RealDiv", "Maximum", "Minimum",
                "Relu", "Sigmoid", "Tanh", "AvgPool", "MaxPool", "FusedBatchNorm", "FusedBatchNormV2", "Identity",
                "Snapshot", "Rsqrt", "Reciprocal", "Exp", "Log", "Sqrt", "Abs", "Neg", "Sum", "Prod", "Max", "Min",
                "Mean", "Softmax", "BatchMatMul"]
_V1_RECALLED_OPS = ["Pack", "Slice", "GatherV2", "SquaredDifference", "Split", "Unpack", "ArgMax", "ArgMin",
                    "Pow", "Elu", "Selu", "Softsign", "Softplus", "FusedBatchNormV3", "Sin", "Cos", "Tan", "Sinh",
                    "Cosh", "Asin", "Acos", "Atan", "Asinh", "Acosh", "Atanh", "Ceil", "Floor", "DepthToSpace",
                    "SpaceToDepth", "ResizeBilinear", "ResizeNearestNeighbor", "StopGradient"]

CONVERTER_V1 = {
    "name": "converter-v1",
    "api": "TrtGraphConverter",
    "tf_versions": ((1, 14), (1, 15)),
    "summary": ("TrtGraphConverter of TF 1.14/1.15 (tensorflow/compiler/tf2tensorrt): one registry, every "
                "converter validatable, per-converter AllowDataTypes (float/half; int32 for shape ops)"),
    "ops": _with_index_dtypes(_table(
        _family(_V1_READ_OPS, FLOATS, _V1_NODES, READ, matmul=()),
        _family(_V1_RECALLED_OPS, FLOATS, _V1_RECALLED, RECALLED, matmul=()),
        _entries(QUANTIZE_OPS, FLOATS, _V1_NODES, READ, int8_only=True)), WITH_INT32),
    "tensor_dtypes": (FLOAT, HALF, INT8, INT32),
    "validates_inputs": True,
    "edge_validators": True,
    "counts_noops": True,
    "implicit_batch": "always",
    "batch_size_clusters": False,
    "max_engines": None,
    "int8_only_ops": tuple(QUANTIZE_OPS),
    "segment_source": ("tensorflow/compiler/tf2tensorrt/segment/segment.cc of TF 1.14/1.15 (" + RECALLED +
                       ": the contrib algorithm moved; Identity still counted)"),
    "not_modelled": ["ops beyond the first tf2tensorrt registry (marked recalled) come from our knowledge of "
                     "1.14/1.15, not re-read; 1.14 may lack some of them (FusedBatchNormV3 is 1.15+)"],
}

_V2_BINARY_OPS = ["Add", "AddV2", "Mul", "Sub", "Div", "FloorDiv", "RealDiv", "Minimum", "Maximum", "Pow"]
_V2_UNARY_OPS = ["Neg", "Exp", "Log", "Sqrt", "Abs", "Reciprocal", "Sin", "Cos", "Tan", "Sinh", "Cosh", "Asin",
                 "Acos", "Atan", "Asinh", "Acosh", "Atanh", "Ceil", "Floor", "Erf", "Rsqrt", "Round", "Sign"]
_V2_FLOAT_OPS = ["BiasAdd", "Conv2D", "Conv2DBackpropInput", "Conv3D", "Conv3DBackpropInputV2",
                 "DepthwiseConv2dNative", "MatMul", "BatchMatMul", "BatchMatMulV2", "Relu", "Relu6", "LeakyRelu",
                 "Sigmoid", "Tanh", "Elu", "Selu", "Softsign", "Softplus", "AvgPool", "MaxPool", "AvgPool3D",
                 "MaxPool3D", "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "Mean", "Sum", "Prod",
                 "Max", "Min", "Softmax", "LogSoftmax", "Square", "SquaredDifference", "Pad", "TopKV2", "ArgMax",
                 "ArgMin", "ResizeBilinear", "ResizeNearestNeighbor", "DepthToSpace", "SpaceToDepth",
                 "ClipByValue", "CombinedNonMaxSuppression", "Einsum", "FusedConv2DBiasActivation", "Select",
                 "SelectV2", "ZerosLike", "OnesLike", "Identity", "Snapshot", "StopGradient", "IdentityN"]
_V2_INDEX_OPS = ["Const", "ConcatV2", "ExpandDims", "Reshape", "Squeeze", "StridedSlice", "Transpose", "Pack",
                 "Slice", "GatherV2", "Unpack", "Split", "Shape", "Fill", "Range", "Tile", "Cast"]

CONVERTER_V2 = {
    "name": "converter-v2",
    "api": "TrtGraphConverterV2",
    "tf_versions": ((2, 0), (2, 99)),
    "summary": ("TrtGraphConverterV2 of TF 2.x (tables read from the 2.12-2.17 family): op converters "
                "registered per ops/*.cc, int32 for binary ops, implicit batch unless dynamic shape"),
    "ops": _table(
        _family(_V2_BINARY_OPS, WITH_INT32, _V2_BINARY, READ, matmul=()),
        _entries(["LogicalOr", "LogicalAnd"], (BOOL,), _V2_BINARY, READ, explicit_batch_only=True),
        _family(_V2_UNARY_OPS, FLOATS, _V2_UNARY, READ, matmul=()),
        _family(_V2_FLOAT_OPS, FLOATS, _V2_RECALLED, RECALLED, matmul=()),
        _with_index_dtypes(_family(_V2_INDEX_OPS, WITH_INT32, _V2_RECALLED, RECALLED, matmul=()), WITH_INT32),
        _entries(QUANTIZE_OPS, FLOATS, _V2_RECALLED, RECALLED, int8_only=True)),
    "tensor_dtypes": (FLOAT, HALF, INT8, INT32, BOOL),
    "validates_inputs": True,
    "edge_validators": "output_only",  # 2.x: input_candidate_fn always true, OutputEdgeValidator (no Const)
    "counts_noops": False,            # num_effective_nodes: Identity/Snapshot/StopGradient do not count
    "implicit_batch": "unless_dynamic",  # use_implicit_batch = !use_dynamic_shape
    "batch_size_clusters": True,      # implicit batch: segments only merge nodes of compatible batch size
    "max_engines": 20,                # TF_TRT_MAX_ALLOWED_ENGINES default: the 20 largest segments are kept
    "int8_only_ops": (),
    "segment_source": _SEG_V2 + " (" + READ + ")",
    "not_modelled": ["the unary op list (UnaryOperationMap in ops/layer_utils.h) and most non-binary converters "
                     "are recalled, not re-read", "ops with TensorRT-version gates are assumed available"],
}

GENERATIONS = OrderedDict((g["name"], g) for g in (CONTRIB_17, CONTRIB_110, CONTRIB_113, CONVERTER_V1,
                                                    CONVERTER_V2))
# What to write instead of an op an older TF-TRT cannot convert (same math, an op that generation converts).
REPLACEMENTS = {
    "AddV2": "Add computes the same (TF 1.x graph builders emit Add)",
    "BatchMatMulV2": "BatchMatMul when no batch broadcasting is needed",
    "FusedBatchNormV3": "fold the batch norm into the conv weights (migrate optimize's fold_batch_norms pass)",
    "LeakyRelu": "Maximum(x, alpha * x)",
    "Relu6": "Minimum(Relu(x), 6)",
    "Squeeze": "Reshape to a constant shape",
    "SquaredDifference": "Square(Sub(x, y))",
    "Shape": "a constant shape (give static shapes and fold constants)",
}
# Ops whose converters handle weights directly: their dtype is checked as a weight, not as a tensor.
NOOP_OPS = frozenset(["Identity", "Snapshot", "StopGradient"])


def for_version(version):
    """The generation table for a TF version tuple ((1, 13) or (1, 13, 2)); None below TF 1.7."""
    major_minor = tuple(version[:2])
    if major_minor < (1, 7):
        return None
    for generation in GENERATIONS.values():
        low, high = generation["tf_versions"][0], generation["tf_versions"][-1]
        if low <= major_minor <= high:
            return generation
    return CONVERTER_V2


def first_generation_with(op):
    """Name of the earliest generation whose table converts `op`, or None."""
    for generation in GENERATIONS.values():
        if op in generation["ops"]:
            return generation
    return None


def describe():
    """{generation: {tf, ops: {op: {dtypes, checks, source, provenance}}, ...}} for --json and the README."""
    return OrderedDict((name, {
        "api": g["api"], "tf_versions": [".".join(str(p) for p in v) for v in g["tf_versions"]],
        "summary": g["summary"], "segment_source": g["segment_source"], "counts_noops": g["counts_noops"],
        "implicit_batch": g["implicit_batch"], "max_engines": g["max_engines"], "not_modelled": g["not_modelled"],
        "ops": OrderedDict((op, {"dtypes": list(e["dtypes"]) if e["dtypes"] else "any", "checks": list(e["checks"]),
                                 "source": e["source"], "provenance": e["provenance"]})
                           for op, e in g["ops"].items())}) for name, g in GENERATIONS.items())


# ------------------------------------------------------------------------------- op families the planner uses
# (shapes.py: how an op's output shape and FLOPs follow from its inputs; classify.py: what TF-TRT's segmenter
# treats specially)
SAME_SHAPE_OPS = frozenset([
    "Identity", "Snapshot", "StopGradient", "PreventGradient", "CheckNumerics", "Relu", "Relu6", "Elu", "Selu",
    "Sigmoid", "Tanh", "Softplus", "Softsign", "LeakyRelu", "Neg", "Exp", "Log", "Sqrt", "Rsqrt", "Abs",
    "Reciprocal", "Square", "Sin", "Cos", "Tan", "Sinh", "Cosh", "Asin", "Acos", "Atan", "Asinh", "Acosh", "Atanh",
    "Ceil", "Floor", "Round", "Sign", "Erf", "Softmax", "LogSoftmax", "BiasAdd", "BiasAddV1", "FusedBatchNorm",
    "FusedBatchNormV2", "FusedBatchNormV3", "LRN", "Cast", "ZerosLike", "OnesLike", "QuantizeAndDequantizeV2",
    "QuantizeAndDequantizeV3", "FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxArgs", "ClipByValue", "Enter",
    "Exit", "NextIteration", "RefEnter", "RefExit", "Switch", "RefSwitch", "Merge", "RefMerge", "EnsureShape",
    "Dequantize", "IsNan", "IsInf", "IsFinite", "LogicalNot", "Invert",
])
BROADCAST_OPS = frozenset([
    "Add", "AddV2", "Sub", "Mul", "Div", "RealDiv", "DivNoNan", "Maximum", "Minimum", "Pow", "SquaredDifference",
    "FloorDiv", "FloorMod", "TruncateDiv", "Greater", "GreaterEqual", "Less", "LessEqual", "Equal", "NotEqual",
    "LogicalAnd", "LogicalOr", "Select", "SelectV2", "Atan2",
])
REDUCE_OPS = frozenset(["Mean", "Sum", "Max", "Min", "Prod", "All", "Any", "ArgMax", "ArgMin"])
# FLOPs per output element for elementwise-like ops (a rough, stated estimate: the heavy ops dominate).
ELEMENTWISE_FLOPS = dict([(op, 1) for op in BROADCAST_OPS | SAME_SHAPE_OPS] + [
    ("FusedBatchNorm", 2), ("FusedBatchNormV2", 2), ("FusedBatchNormV3", 2), ("Softmax", 5), ("LogSoftmax", 5),
    ("Identity", 0), ("Snapshot", 0), ("StopGradient", 0), ("CheckNumerics", 0), ("Cast", 0), ("Enter", 0),
    ("Exit", 0), ("NextIteration", 0), ("Switch", 0), ("Merge", 0), ("RefEnter", 0), ("RefExit", 0),
    ("RefSwitch", 0), ("RefMerge", 0), ("PreventGradient", 0), ("EnsureShape", 0), ("ZerosLike", 0),
    ("OnesLike", 0)])
# Ops that move or view data without arithmetic: 0 FLOPs whatever their shapes.
ZERO_FLOP_OPS = frozenset(["Reshape", "Squeeze", "ExpandDims", "Transpose", "ConcatV2", "Concat", "Pad", "PadV2",
                           "MirrorPad", "StridedSlice", "Slice", "Pack", "Unpack", "Split", "SplitV", "Shape",
                           "Size", "Rank", "GatherV2", "Gather", "Tile", "Fill", "Range", "IdentityN",
                           "DepthToSpace", "SpaceToDepth", "Const", "Placeholder", "PlaceholderV2",
                           "PlaceholderWithDefault", "NoOp"])
PLACEHOLDER_OPS = frozenset(["Placeholder", "PlaceholderV2", "PlaceholderWithDefault"])
WHILE_ENTER_OPS = frozenset(["Enter", "RefEnter"])
WHILE_EXIT_OPS = frozenset(["Exit", "RefExit"])
# Ops whose batch size TF 2.x reads from all inputs (broadcasting ops, GetInputsToDeterminateBatchSize).
BROADCAST_BATCH_OPS = frozenset(["Add", "AddV2", "Mul", "Sub", "Div", "FloorDiv", "RealDiv", "Minimum",
                                 "Maximum", "Pow", "BiasAdd", "SquaredDifference", "BatchMatMul",
                                 "BatchMatMulV2"])
NON_COMPUTE_OPS = frozenset(["Const", "Placeholder", "PlaceholderV2", "PlaceholderWithDefault", "NoOp"])
# Smaller families shapes.py and classify.py test ops against.
FORWARDING_OPS = frozenset(["Identity", "Snapshot"])
AXIS_OPS = frozenset(["ConcatV2", "ExpandDims"])
BACKPROP_INPUT_OPS = frozenset(["Conv2DBackpropInput", "Conv3DBackpropInputV2"])
SWITCH_OPS = frozenset(["Switch", "RefSwitch"])
MERGE_OPS = frozenset(["Merge", "RefMerge"])
WINDOW_OPS = frozenset(["Conv2D", "DepthwiseConv2dNative", "MaxPool", "AvgPool"])
BATCH_MATMUL_OPS = frozenset(["BatchMatMul", "BatchMatMulV2"])
RANDOM_OPS = frozenset(["RandomUniform", "RandomStandardNormal", "TruncatedNormal", "RandomUniformInt"])
PAD_OPS = frozenset(["Pad", "PadV2", "MirrorPad"])
GATHER_OPS = frozenset(["GatherV2", "Gather"])
POOL_OPS = frozenset(["MaxPool", "AvgPool"])
ARG_REDUCE_OPS = frozenset(["ArgMax", "ArgMin"])
