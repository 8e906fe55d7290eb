"""Static shapes and FLOPs of a GraphDef's tensors, computed in one topological sweep without TensorFlow.

Why not TF's own shape inference: importing a 120k-node graph into a tf.Graph takes ~5 s on our machines (the
plan's whole budget) and the planner must run in every TF of the matrix alike. This sweep covers the ops that
matter to TF-TRT segmentation and FLOPs (convolutions, pooling, matmuls, elementwise with broadcasting, shape
ops with constant arguments); any other op's outputs come from its `_output_shapes` attr when the writer left
one, else they are unknown (rank unknown), which the planner reports as such, never guesses.
tests/test_plan.py holds the known shapes to TF's own inference on every zoo model: never a contradiction.

A shape is None (unknown rank) or a list of ints, -1 for an unknown dim.
"""
import numpy as np

from migrate.graph.view import parse_input
from migrate.planning import tables

_DTYPE_NAMES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
                9: "int64", 10: "bool", 19: "float16", 14: "bfloat16", 17: "uint16", 20: "resource", 21: "variant"}

# Op families the sweep models: tables.py (op knowledge lives there and in migrate/opsets.py).
SAME_SHAPE_OPS, BROADCAST_OPS, REDUCE_OPS = tables.SAME_SHAPE_OPS, tables.BROADCAST_OPS, tables.REDUCE_OPS
ELEMENTWISE_FLOPS, ZERO_FLOP_OPS = tables.ELEMENTWISE_FLOPS, tables.ZERO_FLOP_OPS
MAX_CONST_ELEMENTS = 64  # small integer constants are decoded (shapes, axes, perms, paddings)


class Shapes(object):
    """shapes[node] -> [shape per output]; values[tensor] -> small int constant as a list; dtypes[node]."""

    def __init__(self):
        self.shapes = {}
        self.values = {}
        self.dtypes = {}

    def of(self, tensor_or_pair):
        node, index = parse_input(tensor_or_pair) if not isinstance(tensor_or_pair, tuple) else tensor_or_pair
        outputs = self.shapes.get(node)
        if not outputs or index < 0 or index >= len(outputs):
            return None
        return outputs[index]

    def value(self, tensor):
        node, index = parse_input(tensor)
        return self.values.get((node, index))

    def dtype(self, tensor):
        node, index = parse_input(tensor)
        found = self.dtypes.get(node)
        if not found:
            return None
        return found[index] if index < len(found) else found[-1]


def dtype_name(enum):
    return _DTYPE_NAMES.get(enum, "dtype{}".format(enum))


def output_dtypes(node):
    """[dtype name] of a NodeDef's outputs as its attrs tell (T/dtype/DstT/out_type), [] when they do not."""
    attr = node.attr
    for key in ("dtype", "DstT", "out_type", "output_type", "T"):
        if key in attr and attr[key].type:
            name = dtype_name(attr[key].type)
            if node.op.startswith("FusedBatchNorm"):
                return [name] + ["float32"] * 5
            return [name]
    if "T" in attr and attr["T"].list.type:
        return [dtype_name(t) for t in attr["T"].list.type]
    if "Tout" in attr and attr["Tout"].list.type:
        return [dtype_name(t) for t in attr["Tout"].list.type]
    return _registered_output_dtypes(node.op)


_REGISTERED = {}


def _registered_output_dtypes(op):
    """Output dtypes the op's registration fixes (Mfcc: float), [] when they depend on attrs or TF lacks it."""
    if op not in _REGISTERED:
        from migrate import tfcompat
        definition = tfcompat.op_def(op)
        types = [arg.type for arg in definition.output_arg] if definition is not None else []
        _REGISTERED[op] = [dtype_name(t) for t in types] if types and all(types) else []
    return _REGISTERED[op]


def infer(graph_def, order):
    """Shapes for the nodes of graph_def, `order` = node names producers first (while-loop back edges aside)."""
    result = Shapes()
    nodes = dict((node.name, node) for node in graph_def.node)
    for name in order:
        node = nodes[name]
        result.dtypes[name] = output_dtypes(node)
        try:
            shapes = _infer_node(node, result)
        except (ValueError, IndexError, KeyError, TypeError, ZeroDivisionError):
            shapes = None
        if shapes is None:
            shapes = _recorded(node)
        result.shapes[name] = shapes
    return result


def _recorded(node):
    if "_output_shapes" in node.attr and node.attr["_output_shapes"].list.shape:
        return [_from_proto(s) for s in node.attr["_output_shapes"].list.shape]
    return [None]


def _from_proto(shape_proto):
    if shape_proto.unknown_rank:
        return None
    return [int(d.size) for d in shape_proto.dim]


def _inputs(node):
    return [i for i in node.input if not i.startswith("^")]


def _infer_node(node, known):
    op, attr, inputs = node.op, node.attr, _inputs(node)
    ins = [known.of(i) for i in inputs]
    if op in tables.PLACEHOLDER_OPS:
        if "shape" in attr:
            return [_from_proto(attr["shape"].shape)]
        return [ins[0] if ins else None]
    if op == "Const":
        tensor = attr["value"].tensor
        shape = [int(d.size) for d in tensor.tensor_shape.dim]
        value = _small_int_value(tensor, shape)
        if value is not None:
            known.values[(node.name, 0)] = value
        return [shape]
    if op in SAME_SHAPE_OPS:
        shape = ins[0] if ins else None
        if op.startswith("FusedBatchNorm"):
            channels = [shape[_channel_axis(attr, len(shape))]] if shape else [-1]
            return [shape] + [channels] * 5
        if op in tables.SWITCH_OPS:
            return [shape, shape]
        if op in tables.MERGE_OPS:
            return [shape, []]
        if op in tables.FORWARDING_OPS and inputs:
            value = known.value(inputs[0])
            if value is not None:
                known.values[(node.name, 0)] = value
        return [shape]
    if op in BROADCAST_OPS:
        start = 1 if op == "Select" else 0
        if op == "Select":
            return [ins[1]]
        return [_broadcast(ins[start:])]
    if op in tables.WINDOW_OPS:
        return [_conv_like(op, attr, ins)]
    if op == "MatMul":
        return [_matmul(attr, ins)]
    if op in tables.BATCH_MATMUL_OPS:
        return [_batch_matmul(attr, ins)]
    if op == "Reshape":
        target = known.value(inputs[1])
        if target is None and ins[1] is not None and len(ins[1]) == 1 and ins[1][0] >= 0:
            return [[-1] * ins[1][0]]  # rank known from the shape tensor's length
        return [_reshape(ins[0], target)]
    if op in tables.RANDOM_OPS:
        value = known.value(inputs[0])
        return [list(value) if value is not None else None]
    if op in REDUCE_OPS:
        return [_reduce(op, attr, ins[0], known.value(inputs[1]))]
    if op == "ConcatV2":
        return [_concat(ins[:-1], known.value(inputs[-1]))]
    if op in tables.PAD_OPS:
        return [_pad(ins[0], known.value(inputs[1]))]
    if op == "Squeeze":
        return [_squeeze(ins[0], list(attr["squeeze_dims"].list.i) if "squeeze_dims" in attr else [])]
    if op == "ExpandDims":
        return [_expand(ins[0], known.value(inputs[1]))]
    if op == "Transpose":
        perm = known.value(inputs[1])
        if ins[0] is None or perm is None:
            return [None if ins[0] is None else [-1] * len(ins[0])]
        return [[ins[0][p] for p in perm]]
    if op == "Shape":
        shape = ins[0]
        if shape is not None and all(d >= 0 for d in shape):
            known.values[(node.name, 0)] = list(shape)
        return [[len(shape)] if shape is not None else [-1]]
    if op == "Pack":
        axis = attr["axis"].i if "axis" in attr else 0
        shape = ins[0]
        if shape == [] and axis == 0:  # a vector of scalars: its value where every scalar is known (-1: not)
            parts = [known.value(i) for i in inputs]
            known.values[(node.name, 0)] = [p[0] if p else -1 for p in parts]
        if shape is None:
            return [None]
        axis = axis + len(shape) + 1 if axis < 0 else axis
        return [shape[:axis] + [len(ins)] + shape[axis:]]
    if op == "Conv2DBackpropInput":
        value = known.value(inputs[0])
        return [list(value) if value is not None else None]
    if op == "Split":
        return _split(ins[1], known.value(inputs[0]), attr["num_split"].i, None)
    if op == "SplitV":
        return _split(ins[0], known.value(inputs[2]), attr["num_split"].i, known.value(inputs[1]))
    if op == "Unpack":
        shape, num = ins[0], attr["num"].i
        if shape is None:
            return [None] * num
        axis = attr["axis"].i if "axis" in attr else 0
        axis = axis + len(shape) if axis < 0 else axis
        return [shape[:axis] + shape[axis + 1:]] * num
    if op == "StridedSlice":
        return [_strided_slice(attr, ins[0], [known.value(i) for i in inputs[1:4]])]
    if op == "Slice":
        return [_slice(ins[0], known.value(inputs[1]), known.value(inputs[2]))]
    if op in tables.GATHER_OPS:
        axis = known.value(inputs[2]) if op == "GatherV2" else [0]
        params, indices = ins[0], ins[1]
        if params is None or indices is None or axis is None or (attr["batch_dims"].i if "batch_dims" in attr
                                                                     else 0):
            return None
        axis = axis[0] + len(params) if axis[0] < 0 else axis[0]
        return [params[:axis] + indices + params[axis + 1:]]
    if op == "Tile":
        multiples = known.value(inputs[1])
        if ins[0] is None or multiples is None:
            return None
        return [[d * m if d >= 0 else -1 for d, m in zip(ins[0], multiples)]]
    if op == "Fill":
        dims = known.value(inputs[0])
        return [list(dims) if dims is not None else ([-1] * ins[0][0] if ins[0] and ins[0][0] >= 0 else None)]
    return None


def _split(shape, axis, num, sizes):
    if shape is None or axis is None:
        return [None] * max(1, num)
    axis = axis[0] + len(shape) if axis[0] < 0 else axis[0]
    outputs = []
    for index in range(num):
        out = list(shape)
        if sizes is not None and -1 not in sizes:
            out[axis] = sizes[index]
        elif sizes is None:
            out[axis] = shape[axis] // num if shape[axis] >= 0 else -1
        else:
            out[axis] = -1
        outputs.append(out)
    return outputs


def _strided_slice(attr, shape, args):
    begin, end, strides = args
    masks = dict((key, attr[key].i if key in attr else 0) for key in (
        "begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask"))
    if shape is None or begin is None or end is None or strides is None or masks["ellipsis_mask"] or \
            masks["new_axis_mask"]:
        return None
    out = []
    for axis, size in enumerate(shape):
        if axis >= len(begin):
            out.append(size)
            continue
        if masks["shrink_axis_mask"] & (1 << axis):
            continue
        if size < 0:
            out.append(-1)
            continue
        start = None if masks["begin_mask"] & (1 << axis) else begin[axis]
        stop = None if masks["end_mask"] & (1 << axis) else end[axis]
        out.append(len(range(*slice(start, stop, strides[axis]).indices(size))))
    return out


def _slice(shape, begin, size):
    if shape is None or begin is None or size is None:
        return None
    return [(d - b if d >= 0 else -1) if n == -1 else n for d, b, n in zip(shape, begin, size)]


def _small_int_value(tensor, shape):
    if tensor.dtype not in (3, 9):  # int32, int64
        return None
    count = int(np.prod(shape)) if shape else 1
    if count > MAX_CONST_ELEMENTS:
        return None
    if tensor.tensor_content:
        array = np.frombuffer(tensor.tensor_content, dtype=np.int32 if tensor.dtype == 3 else np.int64)
        values = [int(v) for v in array]
    else:
        values = [int(v) for v in (tensor.int_val if tensor.dtype == 3 else tensor.int64_val)]
        if len(values) < count:
            values = values + [values[-1] if values else 0] * (count - len(values))
    return values if shape else values[:1]


def _channel_axis(attr, rank):
    fmt = attr["data_format"].s if "data_format" in attr else b"NHWC"
    return 1 if fmt in (b"NCHW", "NCHW") else rank - 1


def _broadcast(shapes):
    if any(s is None for s in shapes) or not shapes:
        return None
    rank = max(len(s) for s in shapes)
    out = []
    for axis in range(rank):
        dims = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
        known = [d for d in dims if d != 1]
        if not known:
            out.append(1)
        elif any(d < 0 for d in known):
            fixed = [d for d in known if d >= 0]
            out.append(fixed[0] if fixed else -1)
        else:
            out.append(known[0])
    return out


def _ints(attr, key, default):
    return list(attr[key].list.i) if key in attr and attr[key].list.i else default


def _spatial(size, kernel, stride, dilation, padding):
    if size < 0 or kernel < 0:
        return -1
    effective = (kernel - 1) * dilation + 1
    if padding == b"VALID":
        return (size - effective + stride) // stride
    if padding == b"SAME":
        return (size + stride - 1) // stride
    return -1


def _conv_like(op, attr, ins):
    shape = ins[0]
    if shape is None or len(shape) != 4:
        return None
    nchw = "data_format" in attr and attr["data_format"].s == b"NCHW"
    h_axis, w_axis, c_axis = (2, 3, 1) if nchw else (1, 2, 3)
    strides = _ints(attr, "strides", [1, 1, 1, 1])
    dilations = _ints(attr, "dilations", [1, 1, 1, 1])
    padding = attr["padding"].s if "padding" in attr else b"VALID"
    if op in tables.POOL_OPS:
        ksize = _ints(attr, "ksize", [1, 1, 1, 1])
        kh, kw, channels = ksize[h_axis], ksize[w_axis], shape[c_axis]
    else:
        kernel = ins[1]
        if kernel is None or len(kernel) != 4:
            kh = kw = -1
            channels = -1
        else:
            kh, kw = kernel[0], kernel[1]
            channels = kernel[3] if op == "Conv2D" else (kernel[2] * kernel[3] if kernel[2] >= 0 and
                                                          kernel[3] >= 0 else -1)
    out = list(shape)
    out[h_axis] = _spatial(shape[h_axis], kh, strides[h_axis], dilations[h_axis], padding)
    out[w_axis] = _spatial(shape[w_axis], kw, strides[w_axis], dilations[w_axis], padding)
    out[c_axis] = channels
    return out


def _matmul(attr, ins):
    a, b = ins[0], ins[1]
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return None
    ta = attr["transpose_a"].b if "transpose_a" in attr else False
    tb = attr["transpose_b"].b if "transpose_b" in attr else False
    return [a[1] if ta else a[0], b[0] if tb else b[1]]


def _batch_matmul(attr, ins):
    a, b = ins[0], ins[1]
    if a is None or b is None or len(a) < 2 or len(b) < 2:
        return None
    adj_x = attr["adj_x"].b if "adj_x" in attr else False
    adj_y = attr["adj_y"].b if "adj_y" in attr else False
    batch = _broadcast([a[:-2], b[:-2]])
    return batch + [a[-1] if adj_x else a[-2], b[-2] if adj_y else b[-1]]


def _reshape(shape, target):
    if target is None:
        return None
    target = list(target)
    if target.count(-1) == 1:
        known = int(np.prod([d for d in target if d != -1])) if len(target) > 1 else 1
        if shape is not None and all(d >= 0 for d in shape) and known > 0:
            target[target.index(-1)] = int(np.prod(shape)) // known
    return target


def _reduce(op, attr, shape, axes):
    if shape is None or axes is None:
        return None
    rank = len(shape)
    axes = set(a + rank if a < 0 else a for a in axes)
    if op in tables.ARG_REDUCE_OPS:
        return [d for i, d in enumerate(shape) if i not in axes]
    keep = attr["keep_dims"].b if "keep_dims" in attr else False
    return [1 if i in axes else d for i, d in enumerate(shape)] if keep else \
        [d for i, d in enumerate(shape) if i not in axes]


def _concat(shapes, axis):
    if axis is None or any(s is None for s in shapes) or not shapes:
        return None
    axis = axis[0]
    rank = len(shapes[0])
    axis = axis + rank if axis < 0 else axis
    out = list(shapes[0])
    sizes = [s[axis] for s in shapes]
    out[axis] = sum(sizes) if all(d >= 0 for d in sizes) else -1
    return out


def _pad(shape, paddings):
    if shape is None or paddings is None or len(paddings) != 2 * len(shape):
        return None
    return [d + paddings[2 * i] + paddings[2 * i + 1] if d >= 0 else -1 for i, d in enumerate(shape)]


def _squeeze(shape, dims):
    if shape is None:
        return None
    rank = len(shape)
    dims = set(d + rank if d < 0 else d for d in dims)
    if not dims:
        if any(d < 0 for d in shape):
            return None
        return [d for d in shape if d != 1]
    return [d for i, d in enumerate(shape) if i not in dims]


def _expand(shape, dim):
    if shape is None or dim is None:
        return None
    axis = dim[0]
    axis = axis + len(shape) + 1 if axis < 0 else axis
    return shape[:axis] + [1] + shape[axis:]


def known(shape):
    return shape is not None and all(d >= 0 for d in shape)


def elements(shape):
    return int(np.prod(shape)) if known(shape) else None


class _Batched(object):
    """shapes.of with an unknown dim 0 read as `batch` (FLOPs per `batch` examples when the batch is open)."""

    def __init__(self, shapes, batch):
        self.shapes, self.batch = shapes, batch

    def of(self, tensor):
        shape = self.shapes.of(tensor)
        if shape and shape[0] < 0:
            return [self.batch] + list(shape[1:])
        return shape


def flops(node, shapes, batch=1):
    """Estimated floating-point operations of one NodeDef at its static shapes (an unknown batch dim 0 counts
    as `batch`); None when another dim it needs is unknown. Convolutions/matmuls: 2 * multiply-accumulates;
    elementwise: ELEMENTWISE_FLOPS per output element; pooling: window size per output element; reductions:
    input elements; data movement (ZERO_FLOP_OPS): 0."""
    op = node.op
    inputs = _inputs(node)
    shapes = _Batched(shapes, batch)
    out = shapes.of((node.name, 0))
    if op == "Conv2D" or op == "Conv2DBackpropInput":
        kernel = shapes.of(inputs[1])
        big = out if op == "Conv2D" else shapes.of(inputs[2])
        if not known(kernel) or not known(big):
            return None
        return 2 * elements(big) * kernel[0] * kernel[1] * (kernel[2] if op == "Conv2D" else kernel[3])
    if op == "DepthwiseConv2dNative":
        kernel = shapes.of(inputs[1])
        if not known(kernel) or not known(out):
            return None
        return 2 * elements(out) * kernel[0] * kernel[1]
    if op == "MatMul":
        a = shapes.of(inputs[0])
        if not known(a) or not known(out):
            return None
        ta = node.attr["transpose_a"].b if "transpose_a" in node.attr else False
        return 2 * elements(out) * (a[0] if ta else a[1])
    if op in tables.BATCH_MATMUL_OPS:
        a = shapes.of(inputs[0])
        if not known(a) or not known(out):
            return None
        adj = node.attr["adj_x"].b if "adj_x" in node.attr else False
        return 2 * elements(out) * (a[-2] if adj else a[-1])
    if op in tables.POOL_OPS:
        ksize = _ints(node.attr, "ksize", [1, 1, 1, 1])
        return elements(out) * int(np.prod(ksize)) if known(out) else None
    if op in REDUCE_OPS:
        shape = shapes.of(inputs[0])
        return elements(shape) if known(shape) else None
    per = ELEMENTWISE_FLOPS.get(op)
    if per is not None:
        if per == 0:
            return 0
        return per * elements(out) if known(out) else None
    return 0 if op in ZERO_FLOP_OPS else None
