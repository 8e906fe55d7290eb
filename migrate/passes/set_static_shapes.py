"""set_static_shapes: give every Placeholder a fully defined shape (TensorRT static engines need them).

Only when options static is True. A dim the graph knows stays; an unknown dim 0 becomes options max_batch;
options input_shapes {name: [dims]} fills the rest (None or -1 there = take the graph's or max_batch).
A dim that stays unknown, a rank mismatch or a contradiction with the graph is BadInput naming the
placeholder and the dim. PlaceholderWithDefault keeps its flexible shape unless input_shapes names it.
The `shape` attr and `_output_shapes` (when present) are rewritten; other nodes' `_output_shapes` are not
re-inferred.
"""
import re

from migrate import tfcompat
from migrate.errors import BadInput
from migrate.graph import names
from migrate.graph.ops import attr
from migrate.opsets import PLACEHOLDER_OPS, SHAPED_PLACEHOLDER_OPS as PLACEHOLDERS
from migrate.passes import base

NAME = "set_static_shapes"
SUMMARY = "fix every Placeholder shape: unknown batch = max_batch, other dims from input_shapes"


def run(graph_def, context, in_place=False):
    return base.run_pass(NAME, _set_shapes, graph_def, context, in_place)


def _set_shapes(index, context, record):
    options = context.options
    if not options.get("static"):
        record.skip("options static is False: dynamic shapes kept", untouched=True)
        return
    given = _given_shapes(index, options.get("input_shapes") or {})
    for node in index.of_ops(PLACEHOLDER_OPS):
        if node.op in PLACEHOLDERS or node.name in given:
            before = _dims(node)
            after = _resolve(node.name, before, given.get(node.name), options.get("max_batch"))
            if after != before:
                _write_shape(node, after)
                record.note("{}: {} -> {}".format(node.name, _show(before), _show(after)))
                record.applied = True
    if not record.applied:
        record.skip("every placeholder already has a fully defined shape", untouched=True)


def _given_shapes(index, input_shapes):
    placeholders = set(node.name for node in index.of_ops(PLACEHOLDER_OPS))
    given = dict((names.node_name(name), list(dims)) for name, dims in input_shapes.items())
    unknown = sorted(set(given) - placeholders)
    if unknown:
        raise BadInput("input_shapes names {} but the graph has no such placeholder".format(
            base.short_list(unknown)), where=NAME, fix="placeholders: {}".format(base.short_list(placeholders, 20)))
    return given


def _dims(node):
    """[dims] with -1 for unknown, or None for unknown rank."""
    shape = attr(node, "shape")
    if shape is None or shape.shape.unknown_rank:
        return None
    return [dim.size for dim in shape.shape.dim]


def _resolve(name, dims, wanted, max_batch):
    where = "placeholder '{}'".format(name)
    example = _example(name, dims)
    if wanted is not None:
        wanted = [-1 if d is None else int(d) for d in wanted]
        if dims is not None and len(wanted) != len(dims):
            raise BadInput("input_shapes gives {} dims, the graph has {}".format(len(wanted), len(dims)),
                           where=where, fix="give {} dims".format(len(dims)))
        dims = _merge(where, dims or [-1] * len(wanted), wanted)
    if dims is None:
        raise BadInput("rank is unknown", where=where, fix="give its full shape, e.g. " + example)
    if dims and dims[0] < 0:
        if max_batch is None:
            raise BadInput("dim 0 (batch) is unknown", where=where, fix="set max_batch")
        dims = [int(max_batch)] + dims[1:]
    for index, size in enumerate(dims):
        if size < 0:
            raise BadInput("dim {} is unknown".format(index), where=where,
                           fix="give its shape, e.g. " + example)
    return dims


# Placeholders named like these are scalars in every model we have seen (dropout keep_prob, thresholds).
_SCALAR_NAMES = re.compile(r"(^|/)(keep_prob|keep_probability|dropout(_rate)?|rate|learning_rate|lr|temperature|"
                           r"threshold|score_threshold|iou_threshold|is_training|training|phase)(_\d+)?$",
                           re.IGNORECASE)


def _example(name, dims):
    """An --input-shape value of the right rank in CLI syntax ('name:' is a scalar)."""
    if dims is not None:
        return "--input-shape {}:{}".format(name, ",".join(str(d if d >= 0 else 8) for d in dims))
    if _SCALAR_NAMES.search(name):
        return "--input-shape {}: (empty = a scalar)".format(name)
    return "--input-shape {}:1,224,224,3 (the rank it has; '{}:' for a scalar)".format(name, name)


def _merge(where, dims, wanted):
    merged = []
    for index, (known, asked) in enumerate(zip(dims, wanted)):
        if known >= 0 and asked >= 0 and known != asked:
            raise BadInput("input_shapes says dim {} is {}, the graph says {}".format(index, asked, known),
                           where=where, fix="give {} or -1 for dim {}".format(known, index))
        merged.append(asked if asked >= 0 else known)
    return merged


def _write_shape(node, dims):
    proto = tfcompat.v1().TensorShape(dims).as_proto()
    node.attr["shape"].shape.CopyFrom(proto)
    if "_output_shapes" in node.attr and node.attr["_output_shapes"].list.shape:
        node.attr["_output_shapes"].list.shape[0].CopyFrom(proto)


def _show(dims):
    if dims is None:
        return "<unknown rank>"
    return "[{}]".format(", ".join("?" if d < 0 else str(d) for d in dims))
