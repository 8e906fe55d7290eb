"""prune_unused: keep only what the outputs need (data and control dependencies), plus the declared inputs.

Declared inputs stay even when no output needs them: callers feed them by name, and a feed of a missing
placeholder is an error in TF. While loops are kept whole (their back edges are followed).
"""
from migrate.graph import keep_only, needed_nodes
from migrate.passes import base

NAME = "prune_unused"
SUMMARY = "keep only the nodes the outputs need (data + control deps) and the declared inputs"


def run(graph_def, context, in_place=False):
    return base.run_pass(NAME, _prune, graph_def, context, in_place)


def _prune(index, context, record):
    if not context.outputs:
        record.skip("no outputs given: cannot tell what is unused", untouched=True)
        return
    needed = needed_nodes(index, context.outputs)  # a walk from the outputs over the index
    unused_inputs = set(name for name in context.input_nodes() if name in index) - needed
    if unused_inputs:
        record.note("kept input(s) no output needs: {}".format(base.short_list(unused_inputs)))
    removed = keep_only(index.graph_def, needed | unused_inputs, index)
    if not removed:
        record.skip("every node is needed by the outputs", untouched=True)
