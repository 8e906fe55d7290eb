"""Graph rewrites a freeze makes, shared by the session path and streaming: train/infer switches set to
constants (--set), ops that need mutable (ref / resource) inputs turned into their value twins, resource reads
rewritten as TF's converter does, devices cleared."""
import difflib
import re
from collections import Counter

from migrate import opsets, tfcompat
from migrate.errors import BadInput
from migrate.graph import edit
from migrate.graph.names import node_name


# PlaceholderWithDefault nodes that switch between training and inference behaviour.
TRAIN_SWITCH = re.compile(r"(^|/)(is_training|training|is_train|train_phase|phase_train|keras_learning_phase|"
                          r"learning_phase|mode)(_\d+)?$", re.IGNORECASE)


def parse_set_values(pairs):
    """['is_training=false', 'rate=0.5'] -> {'is_training': False, 'rate': 0.5}."""
    values = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise BadInput("--set takes name=value, got '{}'".format(pair), None, "e.g. --set is_training=false")
        name, raw = pair.split("=", 1)
        values[node_name(name.strip())] = _parse_scalar(raw.strip())
    return values


def _parse_scalar(raw):
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def switch_values(graph_def, set_values):
    """{node: value} for train/infer switches resolved to inference, plus every --set."""
    values = {}
    known = dict((node.name, node) for node in graph_def.node) if set_values else {}
    for name, value in set_values.items():
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=5, cutoff=0.5)
            raise BadInput("--set names no node '{}'".format(name), None,
                           "did you mean: {}?".format(", ".join(close)) if close else "check the node name")
        _check_set_value(known[name], value)
        values[name] = value
    for node in graph_def.node:  # the op first: the one cheap test for most nodes
        if node.op in opsets.SWITCH_PLACEHOLDER_OPS and node.name not in values and \
                TRAIN_SWITCH.search(node.name) and _is_switch_placeholder(node):
            values[node.name] = False if node.attr["dtype"].type == tfcompat.tf().bool.as_datatype_enum else 0
    return values


def _is_switch_placeholder(node):
    """A PlaceholderWithDefault, or a plain bool scalar Placeholder (older Keras' keras_learning_phase,
    hand-made is_training flags): named like a train/infer switch, it is one."""
    if node.op == "PlaceholderWithDefault":
        return True
    if node.op != "Placeholder" or "shape" not in node.attr:  # reading a missing map key would add it
        return False
    shape = node.attr["shape"].shape
    return node.attr["dtype"].type == tfcompat.tf().bool.as_datatype_enum and not shape.unknown_rank and \
        len(shape.dim) == 0


def _check_set_value(node, value):
    """BadInput when `value` (from --set) is not a value of the node's dtype (hello for a float, 0.5 for an
    int)."""
    if "dtype" not in node.attr:
        return
    dtype = tfcompat.tf().as_dtype(node.attr["dtype"].type)
    try:
        array = _as_array(value, dtype)
        fits = array.shape == () and (dtype.is_bool or dtype == tfcompat.tf().string or array.item() == value)
    except (ValueError, TypeError, OverflowError):
        fits = False
    if not fits:
        raise BadInput("'{}={}': node '{}' takes a {} scalar, not {!r}".format(node.name, value, node.name,
                                                                              dtype.name, value), "--set",
                       "e.g. --set {}={}".format(node.name, "false" if dtype.is_bool else
                                                 "0" if dtype.is_integer else "0.5"))


def apply_switches(graph_def, values):
    """Turn each switch (PlaceholderWithDefault or Placeholder) into a Const of its value."""
    tf = tfcompat.tf()
    for node in graph_def.node:
        if node.name in values:
            dtype = tf.as_dtype(node.attr["dtype"].type)
            edit.make_const(node, _as_array(values[node.name], dtype), dtype)


def _as_array(value, dtype):
    import numpy as np
    return np.asarray(value, dtype=dtype.as_numpy_dtype)


def rewrite_stateful(graph_def):
    """Make ops that need mutable inputs valid on constants. Returns Counter of 'Old->New'."""
    changed = Counter()
    rewrite_resource_reads(graph_def)
    consts = set(node.name for node in graph_def.node if node.op == "Const")
    for node in graph_def.node:
        if node.op in opsets.IS_INITIALIZED_OPS and node.input and node_name(node.input[0]) in consts:
            changed["{}->Const(True)".format(node.op)] += 1
            controls = [name for name in node.input if name.startswith("^")]
            edit.make_const(node, _as_array(True, tfcompat.tf().bool), tfcompat.tf().bool)
            node.input.extend(controls)
        elif node.op in opsets.REF_TWINS:
            changed["{}->{}".format(node.op, opsets.REF_TWINS[node.op])] += 1
            node.op = opsets.REF_TWINS[node.op]
        elif node.op in opsets.ASSIGN_TWINS:
            changed[_assign_to_value(node)] += 1
        elif node.op in opsets.RESOURCE_WRITE_OPS:
            changed["{}->NoOp".format(node.op)] += 1
            data = [name for name in node.input if not name.startswith("^")]
            controls = [name for name in node.input if name.startswith("^")]
            del node.input[:]
            node.input.extend(controls + ["^" + node_name(name) for name in data])
            node.op = "NoOp"
            node.attr.clear()
    return changed


def rewrite_resource_reads(graph_def):
    """Resource reads left on a constant (TF <= 1.13's convert_variables_to_constants keeps ResourceGather):
    the rewrite TF 2.x's own conversion does, ResourceGather -> GatherV2 + axis Const, ReadVariableOp ->
    Identity. Part of turning variables into constants, so not counted among the rewrites."""
    consts = set(node.name for node in graph_def.node if node.op == "Const")
    added = []
    for node in graph_def.node:
        if node.op in opsets.RESOURCE_READ_OPS and \
                node_name(node.input[0]) in consts:
            added.extend(convert_read(node))
    for node in added:
        graph_def.node.add().CopyFrom(node)


def _assign_to_value(node):
    """Assign -> Identity(value); AssignAdd/Sub -> Add/Sub(ref, value): the value the update would produce."""
    old = node.op
    data = [name for name in node.input if not name.startswith("^")]
    controls = [name for name in node.input if name.startswith("^")]
    dtype = node.attr["T"].type
    node.attr.clear()
    node.attr["T"].type = dtype
    del node.input[:]
    if old == "Assign":
        node.op = "Identity"
        node.input.extend([data[1]] + controls + ["^" + node_name(data[0])])
    else:
        node.op = opsets.ASSIGN_TWINS[old]
        node.input.extend(data[:2] + controls)
    return "{}->{}".format(old, node.op)


def strip_devices(graph_def):
    for node in graph_def.node:
        node.device = ""
        if "_class" in node.attr:  # colocation with nodes that may be gone after pruning
            del node.attr["_class"]


def convert_read(node):
    """ReadVariableOp -> Identity, ResourceGather -> GatherV2 (+ axis Const), ResourceGatherNd -> GatherNd,
    as TF's convert_variables_to_constants (2.x) does; returns nodes to add."""
    from tensorflow.core.framework import node_def_pb2
    original = node_def_pb2.NodeDef()
    original.CopyFrom(node)
    node.Clear()
    node.name = original.name
    added = []
    if original.op == "ReadVariableOp":
        node.op = "Identity"
        node.input.append(original.input[0])
        node.attr["T"].CopyFrom(original.attr["dtype"])
    elif original.op == "ResourceGather":
        axis = node_def_pb2.NodeDef()
        axis.name = original.name + "/axis"
        axis.op = "Const"
        axis.attr["dtype"].CopyFrom(original.attr["Tindices"])
        import numpy as np
        tf = tfcompat.v1()
        axis.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.array(0), dtype=tf.as_dtype(
            original.attr["Tindices"].type)))
        added.append(axis)
        node.op = "GatherV2"
        node.input.extend([original.input[0], original.input[1], axis.name])
        node.attr["Tparams"].CopyFrom(original.attr["dtype"])
        node.attr["Tindices"].CopyFrom(original.attr["Tindices"])
        node.attr["Taxis"].CopyFrom(original.attr["Tindices"])
    else:
        node.op = "GatherNd"
        node.input.extend([original.input[0], original.input[1]])
        node.attr["Tparams"].CopyFrom(original.attr["dtype"])
        node.attr["Tindices"].CopyFrom(original.attr["Tindices"])
    if "_class" in original.attr:
        node.attr["_class"].CopyFrom(original.attr["_class"])
    return added
