"""Nothing from a model runs unasked: refuse to execute graphs whose needed part touches files, the network
or Python (opsets.UNSAFE_OPS) unless the user passed --allow-unsafe-ops.

What is checked is what migrate would execute: the nodes the requested outputs need, plus the table
initializers it runs. The checkpoint restore itself is ours (saver restore ops reading the checkpoint the user
named), and vocabulary files a SavedModel ships as assets are read only from its assets/ directory.
"""
from migrate import opsets
from migrate.errors import BadInput
from migrate.graph import needed_nodes, node_name

FILE_TABLE_INITIALIZERS = frozenset(["InitializeTableFromTextFile", "InitializeTableFromTextFileV2"])


def unsafe_nodes(model, outputs):
    """[(node, op)] of unsafe ops among the nodes running `outputs` (and table initializers) would execute."""
    graph_def = model.graph_def
    roots = [node_name(o) for o in outputs]
    roots += [n.name for n in graph_def.node if n.op in FILE_TABLE_INITIALIZERS]
    needed = needed_nodes(graph_def, roots)
    assets = set(node_name(name) for name in model.assets)
    found = []
    for node in graph_def.node:
        if node.name not in needed or node.op not in opsets.UNSAFE_OPS:
            continue
        if node.op in FILE_TABLE_INITIALIZERS and node_name(node.input[1]) in assets:
            continue  # reads the SavedModel's own asset file
        found.append((node.name, node.op))
    return found


def check(model, outputs, allow_unsafe=False):
    if allow_unsafe:
        return
    found = unsafe_nodes(model, outputs)
    if found:
        listing = ", ".join("{} ({})".format(name, op) for name, op in found[:5])
        more = " and {} more".format(len(found) - 5) if len(found) > 5 else ""
        raise BadInput("graph would run ops that touch files, the network or Python: {}{}".format(listing, more),
                       model.path, "review them (`migrate inspect`), then pass --allow-unsafe-ops to run anyway")
