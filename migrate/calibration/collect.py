"""Histograms computed inside the graph: the session hands back 2048 counts per tensor, never its activations.

For each calibrated tensor t the graph gains, under `migrate_calib/<i>/`:
  magnitude = Abs(Reshape(t, [-1])); sum = Sum(magnitude)
  top = Maximum(amax (PlaceholderWithDefault, fed the running max |x|), Max(magnitude), smallest normal float32)
  counts = HistogramFixedWidth(magnitude, [0, top], 2048) (only when sum is finite: a Switch/Merge)
so one run per batch gives, per tensor, the batch's max |x| and its histogram over [0, max(running, batch)]:
exactly what AbsHistogram.merge takes (the running histogram is re-binned when the max grew). A NaN or Inf
makes the sum non-finite: that tensor's values of that batch are then fetched and counted in numpy
(AbsHistogram.add leaves them out and reports them), which is rare and never silent. A batch's activations
live only inside TF's run otherwise; Python holds the histograms."""
from collections import namedtuple

import numpy as np

from migrate.calibration import histogram
from migrate.graph.names import tensor_name

SCOPE = "migrate_calib"
Stats = namedtuple("Stats", ["amax", "batch_max", "top", "counts", "sum"])


def statistics_graph(graph_def, tensors, bins=histogram.BINS):
    """(GraphDef copy with the statistics nodes, {tensor: Stats of tensor names to feed (amax) and fetch})."""
    from tensorflow.core.framework import graph_pb2, types_pb2
    result = graph_pb2.GraphDef()
    result.CopyFrom(graph_def)
    names = {}
    f32, i32 = types_pb2.DT_FLOAT, types_pb2.DT_INT32

    def add(name, op, inputs, **attrs):
        node = result.node.add()
        node.name, node.op = name, op
        node.input.extend(inputs)
        for key, value in attrs.items():
            if isinstance(value, bool):
                node.attr[key].b = value
            else:
                node.attr[key].type = value
        return name

    def const(name, dtype, values, shape):
        node = result.node.add()
        node.name, node.op = name, "Const"
        node.attr["dtype"].type = dtype
        proto = node.attr["value"].tensor
        proto.dtype = dtype
        proto.tensor_shape.SetInParent()
        for size in shape:
            proto.tensor_shape.dim.add().size = size
        field = {f32: proto.float_val, i32: proto.int_val}[dtype]
        field.extend(values)
        return name

    shared = SCOPE + "/"
    minus_one = const(shared + "minus_one", i32, [-1], [1])
    axis = const(shared + "axis", i32, [0], [])
    zero = const(shared + "zero", f32, [0.0], [])
    one = const(shared + "one", f32, [1.0], [])
    begin = const(shared + "begin", i32, [0], [1])
    tiny = const(shared + "tiny", f32, [float(np.finfo(np.float32).tiny)], [])  # HistogramFixedWidth needs top > 0
    nbins = const(shared + "bins", i32, [bins], [])
    for index, tensor in enumerate(tensors):
        scope = "{}/{}/".format(SCOPE, index)
        amax_default = const(scope + "amax/default", f32, [0.0], [])
        amax = add(scope + "amax", "PlaceholderWithDefault", [amax_default], dtype=f32)
        result.node[-1].attr["shape"].shape.SetInParent()
        flat = add(scope + "flat", "Reshape", [tensor, minus_one], T=f32, Tshape=i32)
        magnitude = add(scope + "abs", "Abs", [flat], T=f32)
        batch_max = add(scope + "batch_max", "Max", [magnitude, axis], T=f32, Tidx=i32, keep_dims=False)
        total = add(scope + "sum", "Sum", [magnitude, axis], T=f32, Tidx=i32, keep_dims=False)
        grown = add(scope + "grown", "Maximum", [amax, batch_max], T=f32)
        raw_top = add(scope + "raw_top", "Maximum", [grown, tiny], T=f32)
        usable = add(scope + "usable", "IsFinite", [raw_top], T=f32)  # a NaN/Inf max: any range will do, the
        top = add(scope + "top", "Select", [usable, raw_top, one], T=f32)  # batch is recounted (merge)
        value_range = add(scope + "range", "Pack", [zero, top], T=f32)
        result.node[-1].attr["N"].i = 2
        result.node[-1].attr["axis"].i = 0
        # TF refuses to histogram a NaN (2.x): the histogram runs only when the sum is finite (a v1 cond),
        # else an empty slice of the values is counted (all zeros) and merge() recounts the batch in numpy
        clean = add(scope + "clean", "IsFinite", [total], T=f32)
        branch = add(scope + "branch", "Switch", [magnitude, clean], T=f32)
        counted = add(scope + "counted", "HistogramFixedWidth", [branch + ":1", value_range, nbins], T=f32,
                      dtype=i32)
        nothing = add(scope + "nothing", "Slice", [branch, begin, begin], T=f32, Index=i32)
        skipped = add(scope + "skipped", "HistogramFixedWidth", [nothing, value_range, nbins], T=f32, dtype=i32)
        counts = add(scope + "counts", "Merge", [skipped, counted], T=i32)
        result.node[-1].attr["N"].i = 2
        names[tensor_name(tensor)] = Stats(amax + ":0", batch_max + ":0", top + ":0", counts + ":0", total + ":0")
    return result, names


def fetches(names):
    return sorted(set(n for stats in names.values() for n in stats[1:]))


def amax_feeds(names, hists):
    return dict((stats.amax, np.array(hists[tensor].amax, dtype=np.float32)) for tensor, stats in names.items())


def merge(names, hists, values):
    """Fold one run's fetched statistics into the running histograms; [tensors] whose sum of |x| is not finite
    (a NaN or Inf among them, or a sum past float32's range): their statistics from this run cannot be
    trusted, the caller counts them from the raw values instead (AbsHistogram.add)."""
    redo = []
    for tensor, stats in sorted(names.items()):
        if not np.isfinite(values[stats.sum]):
            redo.append(tensor)
            continue
        hists[tensor].merge(float(values[stats.batch_max]), float(values[stats.top]),
                            np.asarray(values[stats.counts], dtype=np.float64))
    return redo
