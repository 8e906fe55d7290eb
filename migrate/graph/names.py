"""Node and tensor names as GraphDef spells them.

A node input is 'y' or 'y:0' (output 0 of node y), 'y:2' (output 2) or '^y' (control dependency on y).
`y` names a node, `y:0` a tensor; users may give either.
"""


def is_control(input_name):
    return input_name[:1] == "^"


def node_name(name):
    """'y:0' -> 'y', '^y' -> 'y', 'y' -> 'y'. (Called millions of times on big graphs: kept lean.)"""
    if name[:1] == "^":
        name = name[1:]
    colon = name.rfind(":")
    if colon >= 0 and name[colon + 1:].isdigit():
        return name[:colon]
    return name


def output_index(name):
    """'y:2' -> 2, 'y' -> 0. Control inputs have no output index."""
    if is_control(name):
        raise ValueError("{!r} is a control input, not a tensor".format(name))
    base, sep, index = name.rpartition(":")
    return int(index) if sep and index.isdigit() else 0


def tensor_name(name):
    """'y' -> 'y:0', 'y:1' -> 'y:1'. The canonical spelling used as a dictionary key."""
    return "{}:{}".format(node_name(name), output_index(name))


def control_input(name):
    """'y' or 'y:0' or '^y' -> '^y'."""
    return "^" + node_name(name)


def input_key(input_name):
    """Canonical key of a NodeDef input: 'y:0' for data inputs (also when spelled 'y'), '^y' for control."""
    return input_name if is_control(input_name) else tensor_name(input_name)


def data_input(tensor):
    """How a NodeDef refers to a tensor: 'y' for output 0 (TF's own spelling), 'y:k' otherwise."""
    index = output_index(tensor)
    return node_name(tensor) if index == 0 else "{}:{}".format(node_name(tensor), index)
