"""Graph passes by name, and a pipeline that runs a list of them (the idea of TF's graph_transforms).

Each pass is a module with NAME, SUMMARY and run(graph_def, context, in_place=False) ->
(graph_def, PassRecord). run_pipeline copies the caller's GraphDef once and lets every pass edit that copy.
"""
import gc
from collections import OrderedDict

from migrate.errors import BadInput
from migrate.graph import names
from migrate.graph.index import NodeIndex
from migrate.passes import (fold_batch_norms, fold_constants, prune_unused, remove_identity, resolve_switches,
                            set_static_shapes, strip_debug, topo_sort)
from migrate.passes.base import PassContext, PassRecord, copy_graph_def

REGISTRY = OrderedDict((module.NAME, module) for module in [
    strip_debug, remove_identity, set_static_shapes, fold_constants, resolve_switches, fold_batch_norms,
    prune_unused, topo_sort,
])

# The order matters: debug nodes and identities hide constants and patterns from folding; static shapes
# come before folding; a cond on a folded predicate (is_training) then collapses to its taken branch, whose
# Identity plumbing goes in a second remove_identity; batch norms fold once their parameters are constants;
# prune and sort clean up.
DEFAULT_PASSES = ("strip_debug", "remove_identity", "set_static_shapes", "fold_constants", "resolve_switches",
                  "remove_identity", "fold_batch_norms", "prune_unused", "topo_sort")

__all__ = ["REGISTRY", "DEFAULT_PASSES", "PassContext", "PassRecord", "parse_pass_list", "run_pipeline",
           "known_passes"]


def known_passes():
    return list(REGISTRY)


def parse_pass_list(spec):
    """'a,b,c' (or a list of names) -> [names], BadInput on an unknown name."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    chosen = [item.strip() for item in items if item.strip()]
    for name in chosen:
        if name not in REGISTRY:
            raise BadInput("unknown pass '{}'".format(name), where="pass list",
                           fix="known passes: {}".format(", ".join(REGISTRY)))
    return chosen


def run_pipeline(graph_def, pass_names, context, checked=False, in_place=False):
    """Run the passes in order on a copy of graph_def: (new graph_def, [PassRecord]).

    checked=True: graph_def passed graph.validate.check_graph_structure already (artifacts.load does it) and was
    not changed since: the structural check (seconds on a million nodes) is not repeated.
    in_place=True: edit graph_def itself, no copy (a copy of a 1 GB graph is 1 GB more); the caller no longer
    needs the original (e.g. it verifies against the source file)."""
    chosen = parse_pass_list(pass_names)
    if not checked:
        _check_structure(graph_def)
    working = graph_def if in_place else copy_graph_def(graph_def)
    records = []
    collecting = gc.isenabled()
    gc.disable()  # the index and the passes build millions of small dicts and lists, without cycles
    try:
        # The one node index of this run: every pass reads it and the edit helpers keep it up to date, so
        # no pass sweeps the whole graph to learn who reads whom.
        context.index = NodeIndex(working)
        _check_names(context.index, context)
        for name in chosen:
            working, record = REGISTRY[name].run(working, context, in_place=True)
            records.append(record)
            _check_survivors(context.index, context, name)
    finally:
        context.index = None
        if collecting:
            gc.enable()
    return working, records


def _check_structure(graph_def):
    from migrate.graph.validate import check_graph_structure
    check_graph_structure(graph_def, None)  # arity, output indices, attrs, duplicate names, dangling, cycles


def _check_names(existing, context):
    for kind, tensors in (("output", context.outputs), ("input", context.inputs)):
        for tensor in tensors:
            if names.node_name(tensor) not in existing:
                raise BadInput("{} '{}' names node '{}', which is not in the graph".format(
                    kind, tensor, names.node_name(tensor)), fix="check the {} names".format(kind))


def _check_survivors(existing, context, pass_name):
    """A pass that loses a requested output or input is a bug in that pass, not a user error."""
    lost = sorted(node for node in context.protected_nodes() if node not in existing)
    if lost:
        raise RuntimeError("pass {} removed requested input/output node(s): {}".format(pass_name, lost))
