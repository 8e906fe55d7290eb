"""A graph file (.pb/.pbtxt/.graphdef): a frozen graph (weights as constants, outputs recorded by migrate
kept), or a graph holding variables with the checkpoint beside it (an Estimator model_dir's graph.pbtxt)."""
import os

from migrate import model as m
from migrate import opsets
from migrate.artifacts.checkpoints import latest_checkpoint, open_checkpoint
from migrate.artifacts.parsing import read_graph_def
from migrate.errors import BadInput


def load_graph(path, checkpoint=None):
    graph_def = read_graph_def(path)
    has_variables = any(node.op in opsets.FREEZABLE_VARIABLE_OPS for node in graph_def.node)
    if not has_variables:
        from migrate import outputs
        inputs, recorded = outputs.recorded(graph_def)
        notes = [outputs.RECORDED_NOTE + ", ".join(recorded)] if recorded else []  # resolve_outputs reads it
        return m.Model(m.FROZEN_GRAPH, path, graph_def, inputs=inputs, outputs=recorded,
                       provenance=["loaded frozen graph " + path] + notes)
    prefix = checkpoint or latest_checkpoint(os.path.dirname(os.path.abspath(path)), [])
    if not prefix:
        raise BadInput("graph holds variables but no checkpoint was found beside it", path,
                       "pass --checkpoint PREFIX")
    if os.path.isdir(prefix):
        directory, prefix = prefix, latest_checkpoint(prefix, [])
        if not prefix:
            raise BadInput("no checkpoint in directory", directory, "pass a checkpoint prefix with --checkpoint")
    open_checkpoint(prefix)
    return m.Model(m.GRAPH_WITH_CHECKPOINT, path, graph_def, checkpoint=prefix,
                   provenance=["loaded graph {} with checkpoint {}".format(path, prefix)])
