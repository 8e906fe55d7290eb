"""Per node: would this TF-TRT generation take it into a segment, and if not, why (one reason, the first rule
that refuses it, in the order TF-TRT itself applies them: exclude list, implicit-batch shape rules, converter
table, dtype, input tensors, attribute validators; except that an op with no converter is reported as such
before the shape rules: static shapes would not make it convert).

Reason codes (Decision.code), each with a one-line message naming what is wrong:
  output          a fetched node: TF-TRT puts the outputs in segment_options.exclude_node_list
  input           a graph input (Placeholder): never converted, it feeds the engines
  deny_ops        excluded by --deny-ops (TF 2.x: what TF_TRT_OP_DENYLIST does)
  while_loop      inside a v1 while-loop frame (Enter ... Exit): migrate's rule, see README "### plan"
  no_converter    the generation's table has no converter for the op
  int8_only       a quantization op: converted only in INT8 mode
  dtype           the op's dtype is not one its converter (or TensorRT of that release) accepts
  shape           implicit batch: an input of unknown rank or of rank < 2 (the first dim is the batch)
  dynamic_shape   implicit batch 2.x: the output has unknown non-batch dims (give static shapes)
  attribute       an attribute/input the converter's validator rejects (data_format, padding, batch axis, ...)
"""
from collections import namedtuple

from migrate.planning import shapes as shapes_mod
from migrate.planning import tables

Decision = namedtuple("Decision", ["convertible", "code", "message"])
OK = Decision(True, None, "")

PLACEHOLDERS, WHILE_ENTER, WHILE_EXIT = tables.PLACEHOLDER_OPS, tables.WHILE_ENTER_OPS, tables.WHILE_EXIT_OPS
BROADCAST_BATCH_OPS = tables.BROADCAST_BATCH_OPS


class Context(object):
    """What the checks read: NodeDefs by name, shapes/values, the mode."""

    def __init__(self, nodes, shapes, implicit_batch):
        self.nodes = nodes
        self.shapes = shapes
        self.implicit_batch = implicit_batch
        self._inputs = {}

    def data_inputs(self, node):
        """The node's data inputs (control inputs left out), computed once per node."""
        found = self._inputs.get(node.name)
        if found is None:
            found = self._inputs[node.name] = [i for i in node.input if not i.startswith("^")]
        return found

    def producer(self, tensor):
        """The NodeDef producing `tensor`, looking through Identity/Snapshot (Grappler folds them first)."""
        name = tensor.lstrip("^").split(":")[0] if ":" in tensor else tensor.lstrip("^")
        node = self.nodes.get(name)
        seen = 0
        while node is not None and node.op in tables.FORWARDING_OPS and node.input and seen < 64:
            node = self.nodes.get(_name(node.input[0]))
            seen += 1
        return node

    def is_const(self, tensor):
        node = self.producer(tensor)
        return node is not None and node.op == "Const"


def _name(tensor):
    tensor = tensor[1:] if tensor.startswith("^") else tensor
    head, _, tail = tensor.rpartition(":")
    return head if head and tail.isdigit() else tensor





def _attr_s(node, key, default):
    if key in node.attr and node.attr[key].s:
        value = node.attr[key].s
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return default


def _attr_ints(node, key):
    return list(node.attr[key].list.i) if key in node.attr else []


def _layout(node):
    fmt = _attr_s(node, "data_format", "NHWC")
    return fmt, (0, 1) if fmt.startswith("NC") else (0, len(fmt) - 1)


# ------------------------------------------------------------------------------------------------- checks

def _filter_const(node, ctx):
    if not ctx.is_const(node.input[1]):
        return "the filter (input 1) must be a constant: TF-TRT takes conv weights, not tensors"
    return None


def _conv_data_format(node, ctx):
    fmt = _attr_s(node, "data_format", "NHWC")
    if fmt not in ("NHWC", "NCHW"):
        return "data_format {} is not NHWC or NCHW".format(fmt)
    return None


def _conv_padding(node, ctx):
    padding = _attr_s(node, "padding", "VALID")
    if padding not in ("SAME", "VALID"):
        return "padding {} is not supported (SAME or VALID only)".format(padding)
    return None


def _nonspatial(key, what):
    def check(node, ctx):
        values = _attr_ints(node, key)
        _, axes = _layout(node)
        if values and any(values[a] != 1 for a in axes if a < len(values)):
            return "{} {} touch the batch or channel dim (must be 1 there)".format(what, values)
        return None
    return check


def _bn_inference(node, ctx):
    if "is_training" in node.attr and node.attr["is_training"].b:
        return "is_training=True: only inference batch norm converts (freeze with is_training False)"
    return None


def _not_both_const(node, ctx):
    inputs = ctx.data_inputs(node)
    if len(inputs) >= 2 and all(ctx.is_const(i) for i in inputs[:2]):
        return "both inputs are constants: TF-TRT leaves constant folding to TensorFlow"
    return None


def _const_input(index, what):
    def check(node, ctx):
        inputs = ctx.data_inputs(node)
        if not inputs or index >= len(inputs):
            return "the {} is missing".format(what)
        tensor = inputs[index]
        if ctx.shapes.value(tensor) is None and not ctx.is_const(tensor):
            return "the {} must be a constant".format(what)
        return None
    return check


def _axes_not_batch(index):
    def check(node, ctx):
        if not ctx.implicit_batch:
            return None
        inputs = ctx.data_inputs(node)
        axes = ctx.shapes.value(inputs[index])
        shape = ctx.shapes.of(inputs[0])
        if axes is None:
            return None
        rank = len(shape) if shape is not None else None
        if node.op == "ExpandDims" and rank is not None:
            rank += 1
        normal = [a + rank if (a < 0 and rank is not None) else a for a in axes]
        if 0 in normal:
            return "axis 0 is the batch dim: implicit-batch TensorRT cannot {} it".format(
                "reduce over" if node.op not in tables.AXIS_OPS else "touch")
        return None
    return check


def _reshape_keeps_batch(node, ctx):
    if not ctx.implicit_batch:
        return None
    inputs = ctx.data_inputs(node)
    target, source = ctx.shapes.value(inputs[1]), ctx.shapes.of(inputs[0])
    if target is None or source is None:
        return None
    if len(target) < 2:
        return "reshape to rank {} folds the batch dim (implicit batch needs it kept as dim 0)".format(len(target))
    if target[0] != -1 and source and source[0] >= 0 and target[0] != source[0]:
        return "reshape changes the batch dim ({} -> {})".format(source[0], target[0])
    rest = [d for d in target[1:]]
    if target[0] == -1 and -1 not in rest and shapes_mod.known(source[1:]) and source[1:]:
        if int(_product(rest)) != int(_product(source[1:])):
            return "reshape moves data across the batch dim ({} -> {})".format(source, target)
    return None


def _product(values):
    result = 1
    for value in values:
        result *= value
    return result


def _perm_keeps_batch(node, ctx):
    if not ctx.implicit_batch:
        return None
    perm = ctx.shapes.value(ctx.data_inputs(node)[1])
    if perm is not None and perm and perm[0] != 0:
        return "transpose perm {} moves the batch dim".format(perm)
    return None


def _squeeze_not_batch(node, ctx):
    if not ctx.implicit_batch:
        return None
    dims = _attr_ints(node, "squeeze_dims")
    if not dims:
        return "squeeze without squeeze_dims is not supported in implicit batch mode"
    if 0 in dims:
        return "squeeze of dim 0 (the batch dim)"
    return None


def _matmul_b_const(node, ctx):
    if not ctx.is_const(node.input[1]):
        return "MatMul with two tensor inputs: this converter takes input b as constant weights only"
    return None


def _matmul_no_transpose_a(node, ctx):
    if "transpose_a" in node.attr and node.attr["transpose_a"].b:
        return "transpose_a=True is not supported"
    return None


CHECKS = {
    "filter_const": _filter_const,
    "conv_data_format": _conv_data_format,
    "conv_padding": _conv_padding,
    "pool_padding": _conv_padding,
    "strides_nonspatial": _nonspatial("strides", "strides"),
    "dilations_nonspatial": _nonspatial("dilations", "dilations"),
    "ksize_nonspatial": _nonspatial("ksize", "ksize"),
    "bn_inference": _bn_inference,
    "not_both_const": _not_both_const,
    "axes_const": _const_input(1, "reduction axes (input 1)"),
    "axes_not_batch": _axes_not_batch(1),
    "axis_const": _const_input(-1, "axis"),
    "axis_not_batch": _axes_not_batch(-1),
    "shape_const": _const_input(1, "target shape (input 1)"),
    "reshape_keeps_batch": _reshape_keeps_batch,
    "perm_const": _const_input(1, "permutation (input 1)"),
    "perm_keeps_batch": _perm_keeps_batch,
    "squeeze_not_batch": _squeeze_not_batch,
    "matmul_b_const": _matmul_b_const,
    "matmul_no_transpose_a": _matmul_no_transpose_a,
}


# --------------------------------------------------------------------------------------------- the decision

def loop_frames(graph_def, order):
    """{node name: Enter node name of its innermost v1 while frame} for nodes inside a frame (Enter .. Exit)."""
    nodes = dict((n.name, n) for n in graph_def.node)
    frame = {}
    for name in order:
        node = nodes[name]
        if node.op in WHILE_ENTER:
            frame[name] = _attr_s(node, "frame_name", name)
            continue
        for tensor in node.input:
            producer = nodes.get(_name(tensor))
            if producer is None:
                continue
            found = frame.get(producer.name)
            if found is not None and producer.op not in WHILE_EXIT:
                frame[name] = found
                break
    return frame


def decide(node, generation, ctx, options, outputs, frames):
    """Decision for one NodeDef."""
    op = node.op
    if node.name in outputs:
        return Decision(False, "output", "a graph output: TF-TRT keeps fetched nodes out of engines")
    if op in PLACEHOLDERS:
        return Decision(False, "input", "a graph input")
    if op in options.get("deny_ops", ()):
        return Decision(False, "deny_ops", "excluded by --deny-ops")
    if node.name in frames:
        return Decision(False, "while_loop", "inside v1 while loop frame '{}'".format(frames[node.name]))
    implicit = ctx.implicit_batch
    entry = generation["ops"].get(op)
    if entry is None:  # (2.x logs its shape rules first; no shape makes an op without converter convert)
        later = later_generation(op, generation)
        return Decision(False, "no_converter", "no {} converter in TF-TRT {}{}".format(
            op, generation["name"], "; {} has one".format(later) if later else ""))
    if generation["name"] == tables.CONVERTER_V2["name"] and implicit:
        refused = _v2_implicit_batch(node, ctx)
        if refused is not None:
            return refused
    if entry.get("int8_only") and options.get("precision") != "INT8":
        return Decision(False, "int8_only", "{} converts only with --precision INT8".format(op))
    if entry.get("explicit_batch_only") and implicit:
        return Decision(False, "shape", "{} converts only in dynamic-shape (explicit batch) mode".format(op))
    if not generation["validates_inputs"]:
        return OK  # TF 1.7-1.11: op type only
    dtypes = ctx.shapes.dtypes.get(node.name) or []
    if entry["dtypes"] is not None and dtypes and op != "Const" and dtypes[0] not in entry["dtypes"]:
        return Decision(False, "dtype", "dtype {} not accepted by the {} converter of TF-TRT {} ({})".format(
            dtypes[0], op, generation["name"], ", ".join(entry["dtypes"])))
    refused = _input_tensors(node, generation, ctx)
    if refused is not None:
        return refused
    for check in entry["checks"]:
        message = CHECKS[check](node, ctx)
        if message:
            return Decision(False, "attribute", message)
    return OK


def later_generation(op, generation):
    names = list(tables.GENERATIONS)
    for name in names[names.index(generation["name"]) + 1:]:
        if op in tables.GENERATIONS[name]["ops"]:
            return "TF-TRT " + name
    return None


def _input_tensors(node, generation, ctx):
    """ValidateTensorProperties on each data input a non-Const node produces (1.12+): dtype TensorRT knows,
    known rank, and in implicit batch a rank >= 2 (the first dim is the batch)."""
    for tensor in ctx.data_inputs(node):
        producer = ctx.producer(tensor)
        if producer is None or producer.op == "Const":
            continue
        dtype = ctx.shapes.dtype(tensor)
        if dtype is not None and dtype not in generation["tensor_dtypes"]:
            return Decision(False, "dtype", "input {} is {}: TensorRT of TF-TRT {} takes {}".format(
                tensor, dtype, generation["name"], ", ".join(generation["tensor_dtypes"])))
        shape = ctx.shapes.of(tensor)
        if shape is None:
            return Decision(False, "shape", "input {} has unknown rank".format(tensor))
        # 1.x: rank < 2 refused (dim 0 is the batch and TensorRT needs a dim besides it); 2.x: scalars only
        least = 1 if generation["api"] == "TrtGraphConverterV2" else 2
        if ctx.implicit_batch and len(shape) < least:
            return Decision(False, "shape", "input {} has rank {}: implicit batch needs rank >= {} (dim 0 is the "
                                            "batch)".format(tensor, len(shape), least))
    return None


def _v2_implicit_batch(node, ctx):
    """TF 2.x segment.cc: OperationCanBeTranslatedToImplicitBatch, then OperationHasDynamicNonBatchDimension."""
    inputs = ctx.data_inputs(node)
    if not inputs:
        return None
    if node.op in BROADCAST_BATCH_OPS:
        relevant = inputs
    elif node.op in tables.BACKPROP_INPUT_OPS and len(inputs) > 2:
        relevant = inputs[2:3]
    else:
        relevant = inputs[:1]
    props = [ctx.shapes.of(i) for i in relevant]
    if any(p is None for p in props):
        return Decision(False, "shape", "implicit batch mode requires input shape with at least two dimensions "
                                        "(an input has unknown rank)")
    leading = _leading_shape(props)
    if leading is None or len(leading) < 2:
        return Decision(False, "shape", "implicit batch mode requires input shape with at least two dimensions")
    out = ctx.shapes.of((node.name, 0))
    if out is None or (len(out) > 0 and any(d < 0 for d in out[1:])):
        return Decision(False, "dynamic_shape", "dynamic non-batch dimensions not allowed (output shape {})".format(
            "unknown" if out is None else out))
    return None


def _leading_shape(props):
    """FindLeadingShape: the highest-rank input shape; None when batch sizes cannot be told apart."""
    result = props[0]
    max_batch = 1 if len(result) < 1 else result[0]
    for shape in props[1:]:
        if len(shape) < len(result):
            continue
        if len(shape) > len(result):
            result = shape
            max_batch = 1 if len(shape) < 1 else shape[0]
            continue
        if len(result) < 1:
            continue
        if shape[0] < 0 or result[0] < 0:
            if shape[0] < 0 <= result[0]:
                result = shape
            else:
                max_batch = max(max_batch, shape[0])
            continue
        if shape[0] > result[0]:
            result = shape
            max_batch = shape[0]
    if result and result[0] < 0 and max_batch > 1:
        return None
    return result


def batch_size(node, ctx):
    """The static batch size 2.x clusters a node by (GetClusterBatchSizeForNode), or None when unknown."""
    inputs = ctx.data_inputs(node)
    if not inputs:
        return None
    relevant = inputs if node.op in BROADCAST_BATCH_OPS else inputs[:1]
    props = [ctx.shapes.of(i) for i in relevant]
    if any(p is None for p in props):
        return None
    leading = _leading_shape(props)
    return leading[0] if leading else None
