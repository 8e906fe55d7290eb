"""Simulated INT8 in the TF graph itself: every calibrated tensor goes through a FakeQuantWithMinMaxVars
(8 bits, narrow range: 255 levels over [-amax, amax], step amax / 127, as TensorRT's symmetric INT8), chosen
by a Select on a boolean switch, so one graph runs FP32 (every switch off: the tensors pass unchanged),
INT8 with any method's ranges (all on, ranges fed), or one tensor quantized alone (sensitivity).

For each calibrated tensor t (node n, output k) the graph gains, under `migrate_int8/<i>/`:
  on (PlaceholderWithDefault bool, default False), min / max (PlaceholderWithDefault float, default -1 / 1),
  quant = FakeQuantWithMinMaxVars(t, min, max), pick = Select(on, quant, t)
and every consumer of t reads pick instead. Model outputs are never quantized themselves (TensorRT hands
outputs back in float); the tensors before them are."""
from collections import namedtuple

import numpy as np

from migrate import tfcompat
from migrate.graph.names import tensor_name

SCOPE = "migrate_int8"
Switches = namedtuple("Switches", ["on", "min", "max"])


def quantized_graph(graph_def, tensors, outputs):
    """(GraphDef copy with the switchable fake quantization, {tensor: Switches of feedable tensor names})."""
    from tensorflow.core.framework import graph_pb2, types_pb2
    result = graph_pb2.GraphDef()
    result.CopyFrom(graph_def)
    skip = set(tensor_name(o) for o in outputs)
    chosen = [t for t in tensors if tensor_name(t) not in skip]
    rewired = {}
    switches = {}
    op = tfcompat.fake_quant_op()
    for index, tensor in enumerate(chosen):
        scope = "{}/{}".format(SCOPE, index)
        _placeholder(result, scope + "/on", types_pb2.DT_BOOL, False)
        _placeholder(result, scope + "/min", types_pb2.DT_FLOAT, -1.0)
        _placeholder(result, scope + "/max", types_pb2.DT_FLOAT, 1.0)
        quant = result.node.add()
        quant.name, quant.op = scope + "/quant", op
        quant.input.extend([tensor, scope + "/min", scope + "/max"])
        quant.attr["num_bits"].i = 8
        quant.attr["narrow_range"].b = True
        pick = result.node.add()
        pick.name, pick.op = scope + "/pick", "Select"
        pick.input.extend([scope + "/on", scope + "/quant", tensor])
        pick.attr["T"].type = types_pb2.DT_FLOAT
        rewired[tensor_name(tensor)] = pick.name
        switches[tensor_name(tensor)] = Switches(scope + "/on:0", scope + "/min:0", scope + "/max:0")
    for node in result.node:
        if node.name.startswith(SCOPE + "/"):
            continue
        for position, name in enumerate(node.input):
            if name.startswith("^"):
                continue
            target = rewired.get(tensor_name(name))
            if target is not None:
                node.input[position] = target
    return result, switches


def _placeholder(graph_def, name, dtype, value):
    from tensorflow.core.framework import types_pb2
    const = graph_def.node.add()
    const.name, const.op = name + "/default", "Const"
    const.attr["dtype"].type = dtype
    proto = const.attr["value"].tensor
    proto.dtype = dtype
    proto.tensor_shape.SetInParent()
    if dtype == types_pb2.DT_BOOL:
        proto.bool_val.append(value)
    else:
        proto.float_val.append(value)
    node = graph_def.node.add()
    node.name, node.op = name, "PlaceholderWithDefault"
    node.input.append(const.name)
    node.attr["dtype"].type = dtype
    node.attr["shape"].shape.SetInParent()


def switch_feeds(switches, ranges, only=None):
    """Feeds turning on the fake quantization of every tensor with a range > 0 (or just `only`)."""
    feeds = {}
    for tensor, names in switches.items():
        amax = ranges.get(tensor, 0.0)
        if amax <= 0 or (only is not None and tensor != only):
            continue
        feeds[names.on] = np.array(True)
        feeds[names.min] = np.array(-amax, dtype=np.float32)
        feeds[names.max] = np.array(amax, dtype=np.float32)
    return feeds


class ErrorStats(object):
    """Per-output error of simulated INT8 against FP32, accumulated over batches."""

    def __init__(self):
        self.max_abs = 0.0
        self.max_rel = 0.0
        self.sum_abs = 0.0
        self.sum_ref = 0.0
        self.count = 0
        self.top1_same = 0
        self.top1_rows = 0

    def add(self, reference, candidate):
        ref = np.asarray(reference, dtype=np.float64)
        got = np.asarray(candidate, dtype=np.float64)
        if not ref.size:
            return
        diff = np.abs(ref - got)
        self.max_abs = max(self.max_abs, float(diff.max()))
        self.max_rel = max(self.max_rel, float((diff / np.maximum(np.abs(ref), 1e-12)).max()))
        self.sum_abs += float(diff.sum())
        self.sum_ref += float(np.abs(ref).sum())
        self.count += ref.size
        if classification_like(ref):
            self.top1_same += int(np.sum(ref.argmax(axis=-1) == got.argmax(axis=-1)))
            self.top1_rows += int(ref.size // ref.shape[-1])

    def relative_mean_error(self):
        """mean |INT8 - FP32| / mean |FP32| (0 when the output is all zero and stays so)."""
        if not self.count:
            return 0.0
        if self.sum_ref == 0:
            return 0.0 if self.sum_abs == 0 else float("inf")
        return self.sum_abs / self.sum_ref

    def to_dict(self):
        return {"max_abs_err": self.max_abs, "max_rel_err": self.max_rel,
                "mean_abs_err": self.sum_abs / self.count if self.count else 0.0,
                "relative_mean_err": self.relative_mean_error(),
                "top1_agreement": (float(self.top1_same) / self.top1_rows) if self.top1_rows else None}


def classification_like(array):
    """Float outputs of rank >= 2 whose last dim is > 1: scores per class, compared by argmax."""
    return array.ndim >= 2 and array.shape[-1] > 1 and array.dtype.kind == "f"


def score(stats):
    """One number per run for choosing a method: the mean over outputs of relative_mean_error."""
    values = [s.relative_mean_error() for s in stats.values()]
    return float(np.mean(values)) if values else 0.0

