"""Evaluate constant subgraphs with numpy where that gives TensorFlow's CPU result bit for bit; fold_constants
hands everything else to a TF session.

Why: TF runs a graph of many tiny ops slowly (import through the Python API and per-op run overhead; numbers
in benchmarks/README.md), numpy does each op in microseconds. Only ops whose
results cannot differ are evaluated here:
  data movement      Identity, Snapshot, StopGradient, Reshape, ExpandDims, Squeeze, Pack, ConcatV2,
                     Transpose, Shape, Size, Rank, Fill, ZerosLike, OnesLike, Cast (int<->int, int->float,
                     float->float)
  IEEE arithmetic    Add, AddV2, Sub, Mul, Neg, Abs, Square (+ RealDiv on floats): exactly rounded, so numpy
                     and Eigen agree (Maximum/Minimum are left out: SIMD max/min and numpy may pick
                     different zeros of -0.0 and 0.0, and their NaN rules changed across TF versions)
on float32/float64/int32/int64 (and bool for data movement). TF's CPU kernels flush denormals to zero, numpy
does not: a float input or result with a denormal goes to TF. Integer arithmetic wraps in both.
Anything else (an op not listed, another dtype, an error, a result above the size cap) is left to TF.
"""
import numpy as np

from migrate import tfcompat
from migrate.graph.view import parse_input

FLOATS = frozenset([np.dtype(np.float32), np.dtype(np.float64)])
INTS = frozenset([np.dtype(np.int32), np.dtype(np.int64)])
NUMBERS = FLOATS | INTS
MOVABLE = NUMBERS | frozenset([np.dtype(np.bool_)])


def _same(a, b):
    return a.dtype == b.dtype


def _arith(function, floats_only=False):
    def run(node, args):
        if len(args) != 2 or not _same(*args) or args[0].dtype not in (FLOATS if floats_only else NUMBERS):
            return None
        return function(args[0], args[1])
    return run


def _unary(function, kinds=NUMBERS):
    def run(node, args):
        if len(args) != 1 or args[0].dtype not in kinds:
            return None
        return function(args[0])
    return run


def _movable(args):
    return all(a.dtype in MOVABLE for a in args)


def _reshape(node, args):
    if len(args) != 2 or not _movable(args[:1]) or args[1].dtype not in INTS or args[1].ndim != 1:
        return None
    shape = [int(d) for d in args[1]]
    if shape.count(-1) > 1 or any(d < -1 for d in shape):
        return None
    return args[0].reshape(shape)


def _expand_dims(node, args):
    if len(args) != 2 or not _movable(args[:1]) or args[1].size != 1 or args[1].dtype not in INTS:
        return None
    axis = int(args[1].reshape(-1)[0])
    if not -args[0].ndim - 1 <= axis <= args[0].ndim:
        return None
    return np.expand_dims(args[0], axis)


def _squeeze(node, args):
    if len(args) != 1 or not _movable(args):
        return None
    dims = list(node.attr["squeeze_dims"].list.i) if "squeeze_dims" in node.attr else []
    if not dims:
        return np.squeeze(args[0])
    rank = args[0].ndim
    axes = tuple(sorted(set(d + rank if d < 0 else d for d in dims)))
    if any(a < 0 or a >= rank or args[0].shape[a] != 1 for a in axes):
        return None
    return np.squeeze(args[0], axis=axes)


def _pack(node, args):
    if not args or not _movable(args) or len(set(a.dtype for a in args)) != 1 or \
            len(set(a.shape for a in args)) != 1:
        return None
    axis = node.attr["axis"].i if "axis" in node.attr else 0
    rank = args[0].ndim + 1
    if not -rank <= axis < rank:
        return None
    return np.stack(args, axis=axis)


def _concat(node, args):
    if len(args) < 2 or args[-1].dtype not in INTS or args[-1].size != 1:
        return None
    values = args[:-1]
    if not _movable(values) or len(set(a.dtype for a in values)) != 1 or len(set(a.ndim for a in values)) != 1:
        return None
    rank = values[0].ndim
    axis = int(args[-1].reshape(-1)[0])
    if rank == 0 or not -rank <= axis < rank:
        return None
    axis %= rank
    if len(set(a.shape[:axis] + a.shape[axis + 1:] for a in values)) != 1:
        return None
    return np.concatenate(values, axis=axis)


def _transpose(node, args):
    if len(args) != 2 or not _movable(args[:1]) or args[1].dtype not in INTS or args[1].ndim != 1:
        return None
    perm = [int(p) for p in args[1]]
    if sorted(perm) != list(range(args[0].ndim)):
        return None
    return np.ascontiguousarray(np.transpose(args[0], perm))


def _out_type(node, default):
    return np.dtype(tfcompat.v1().as_dtype(node.attr["out_type"].type).as_numpy_dtype) \
        if "out_type" in node.attr else default


def _shape(node, args):
    if len(args) != 1:
        return None
    return np.array(args[0].shape, dtype=_out_type(node, np.dtype(np.int32)))


def _size(node, args):
    if len(args) != 1:
        return None
    return np.array(args[0].size, dtype=_out_type(node, np.dtype(np.int32)))


def _rank(node, args):
    return np.array(args[0].ndim, dtype=np.int32) if len(args) == 1 else None


def _fill(node, args):
    if len(args) != 2 or args[0].dtype not in INTS or args[0].ndim != 1 or args[1].size != 1 or \
            not _movable(args[1:]) or any(int(d) < 0 for d in args[0]):
        return None
    return np.full([int(d) for d in args[0]], args[1].reshape(-1)[0], dtype=args[1].dtype)


def _like(fill):
    def run(node, args):
        if len(args) != 1 or not _movable(args):
            return None
        return np.full(args[0].shape, fill, dtype=args[0].dtype)
    return run


def _cast(node, args):
    if len(args) != 1 or "DstT" not in node.attr:
        return None
    source = args[0].dtype
    target = np.dtype(tfcompat.v1().as_dtype(node.attr["DstT"].type).as_numpy_dtype)
    if node.attr["Truncate"].b if "Truncate" in node.attr else False:
        return None
    exact = (source in INTS and target in NUMBERS) or (source in FLOATS and target in FLOATS) or source == target
    return args[0].astype(target) if exact else None


def _identity(node, args):
    return args[0] if len(args) == 1 and _movable(args) else None


OPS = {
    "Identity": _identity, "Snapshot": _identity, "StopGradient": _identity,
    "Reshape": _reshape, "ExpandDims": _expand_dims, "Squeeze": _squeeze, "Pack": _pack, "ConcatV2": _concat,
    "Transpose": _transpose, "Shape": _shape, "Size": _size, "Rank": _rank, "Fill": _fill,
    "ZerosLike": _like(0), "OnesLike": _like(1), "Cast": _cast,
    "Add": _arith(np.add), "AddV2": _arith(np.add), "Sub": _arith(np.subtract), "Mul": _arith(np.multiply),
    "RealDiv": _arith(np.true_divide, floats_only=True),
    "Neg": _unary(np.negative), "Abs": _unary(np.abs), "Square": _unary(np.square),
}


_TINY = dict((dtype, float(np.finfo(dtype).tiny)) for dtype in FLOATS)  # exact as Python floats


def _has_denormal(value):
    tiny = _TINY.get(value.dtype)
    if tiny is None:
        return False
    size = value.size
    if size == 1:
        return 0 < abs(value.item()) < tiny
    if not size:
        return False
    if size <= 8:  # numpy's per-call overhead dwarfs a few comparisons
        return any(0 < abs(x) < tiny for x in value.reshape(-1).tolist())
    magnitude = np.abs(value)
    return bool(np.any((magnitude > 0) & (magnitude < tiny)))


def evaluate(node, args, max_bytes, checked=None, op=None):
    """The node's output 0 as a numpy array, or None when numpy cannot stand in for TF here.
    checked: ids of arrays already known to hold no denormal. op: node.op, when the caller has it.
    Call under np.errstate(all="ignore")."""
    op = node.op if op is None else op
    function = OPS.get(op)
    if function is None:
        return None
    for arg in args:
        if arg.nbytes > max_bytes or (checked is None or id(arg) not in checked) and _has_denormal(arg):
            return None
    if op == "Fill" and len(args) == 2 and args[0].ndim == 1 and args[0].dtype in INTS:
        count = 1
        for dim in args[0].tolist():
            count *= max(int(dim), 0)
        if count * args[1].itemsize > max_bytes:
            return None
    try:
        value = function(node, args)
    except (ValueError, TypeError, IndexError, MemoryError):
        return None
    if value is None:
        return None
    value = np.asarray(value)
    if value.nbytes > max_bytes or _has_denormal(value):
        return None
    return value


def const_array(node):
    """A Const NodeDef's value (fast paths for tensor_content and one-value scalars of common dtypes)."""
    tensor = node.attr["value"].tensor
    dtype = _NUMPY.get(tensor.dtype)
    shape = tensor.tensor_shape
    if dtype is not None and not shape.unknown_rank:
        dims = [d.size for d in shape.dim]
        count = 1
        for dim in dims:
            count *= dim
        content = tensor.tensor_content
        if content:
            if len(content) == count * dtype.itemsize:
                return np.frombuffer(content, dtype=dtype).reshape(dims)
        else:
            field = getattr(tensor, _VALUE_FIELD[dtype])
            if len(field) == count:
                if not dims:  # a scalar: no list, no reshape
                    return np.array(field[0], dtype=dtype)
                return np.array(field, dtype=dtype).reshape(dims)
            if len(field) == 1 or (not field and count):
                fill = field[0] if len(field) else 0
                return np.full(dims, fill, dtype=dtype)
    return tfcompat.v1().make_ndarray(tensor)


_NUMPY = {1: np.dtype(np.float32), 2: np.dtype(np.float64), 3: np.dtype(np.int32), 9: np.dtype(np.int64),
          10: np.dtype(np.bool_)}
_VALUE_FIELD = {np.dtype(np.float32): "float_val", np.dtype(np.float64): "double_val",
                np.dtype(np.int32): "int_val", np.dtype(np.int64): "int64_val", np.dtype(np.bool_): "bool_val"}


def evaluate_all(order, nodes, foldable, max_bytes, ops=None):
    """{node: output-0 array} for the foldable nodes numpy can evaluate (Consts included when read).
    ops: {node: op} (the node index's), else each NodeDef's op is read."""
    values = {}
    clean = set()  # ids of values known to hold no denormal
    if ops is None:
        ops = dict((name, nodes[name].op) for name in order if name in nodes)
    with np.errstate(all="ignore"):
        for name in order:
            if name not in foldable:
                continue
            op = ops[name]
            if op == "Const" or op not in OPS:
                continue  # Consts are parsed when a reader needs them
            node = nodes[name]
            args = []
            for input_name in node.input:
                if input_name[:1] == "^":
                    continue
                producer, index = parse_input(input_name) if ":" in input_name else (input_name, 0)
                if index != 0:
                    args = None
                    break
                if producer not in values:
                    source = nodes.get(producer)
                    if source is None or (ops[producer] if producer in ops else source.op) != "Const":
                        args = None
                        break
                    try:
                        value = const_array(source)
                    except Exception:  # a Const TF itself would reject: TF's evaluation reports it
                        args = None
                        break
                    if _has_denormal(value):
                        args = None
                        break
                    values[producer] = value
                    clean.add(id(value))
                args.append(values[producer])
            if args is None:
                continue
            value = evaluate(node, args, max_bytes, clean, op)
            if value is not None:
                values[name] = value
                clean.add(id(value))
    return values
