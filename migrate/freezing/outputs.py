"""Which tensors a frozen graph keeps (--outputs, a signature, the outputs recorded in the graph, else inferred),
recorded on the frozen graph's nodes, and the FreezeRecord every freeze path returns."""
import difflib
from collections import namedtuple

from migrate import artifacts, outputs as output_discovery
from migrate import model as m
from migrate.errors import BadInput
from migrate.graph.names import node_name, tensor_name
from migrate.graph.validate import output_count


FreezeRecord = namedtuple("FreezeRecord", ["outputs", "how_outputs", "variables", "switches", "tables",
                                           "rewritten", "nodes_before", "nodes_after", "seconds", "notes"])


def resolve_outputs(model, requested=None, signature=None):
    """(tensor names, how) for the outputs to keep."""
    if requested:
        known = set(node.name for node in model.graph_def.node)  # names only: a dict of 1M NodeDefs costs ~2 s
        tensors = [_checked_tensor(name, known, model.path) for name in requested]
        check_output_indices(model.graph_def, tensors, model.path)
        return tensors, _how_requested(model, tensors)
    if signature:
        sig = artifacts.choose_signature(model, signature)
        return sorted(sig.outputs.values()), "signature " + signature
    if model.kind == m.FROZEN_GRAPH and model.outputs and any(note.startswith(output_discovery.RECORDED_NOTE)
                                                               for note in model.provenance):
        return list(model.outputs), "recorded in the graph"
    if len(model.signatures) == 1 or "serving_default" in model.signatures:
        name = "serving_default" if "serving_default" in model.signatures else list(model.signatures)[0]
        if model.signatures[name].outputs:
            return sorted(model.signatures[name].outputs.values()), "signature " + name
    chosen, ranked = output_discovery.infer_outputs(model.graph_def)
    if chosen:
        return [tensor_name(name) for name in chosen], output_discovery.how_inferred(model.graph_def, chosen)
    listing = ", ".join("{} [{}; {}]".format(c.name, c.op, c.why) for c in ranked[:8]) or "none"
    raise BadInput("cannot tell the outputs apart; candidates, best first: " + listing, model.path,
                   "pass --outputs NAME[,NAME]")


def _how_requested(model, tensors):
    """'--outputs', or the signature(s) whose outputs these are all of (convert passes them on)."""
    names = sorted(name for name, sig in model.signatures.items() if sig.outputs)
    for name in names:
        if set(tensors) == set(model.signatures[name].outputs.values()):
            return "signature " + name
    if len(names) > 1 and set(tensors) == set(t for name in names for t in model.signatures[name].outputs.values()):
        return "signatures " + ", ".join(names)
    return "--outputs"


def record_io(graph_def, model, outputs, how):
    """Stamp the inputs and outputs into a graph migrate writes (outputs.record): the outputs, and as inputs
    the signature's inputs when the outputs came from a signature, else the placeholders left in the graph."""
    inputs = []
    if how.startswith("signature "):
        sig = model.signatures.get(how[len("signature "):])
        inputs = sorted(sig.inputs.values()) if sig is not None else []
    if not inputs:
        inputs = [tensor_name(node.name) for node in graph_def.node if node.op == "Placeholder"]
    return output_discovery.record(graph_def, inputs, outputs)


def _checked_tensor(name, known, where):
    node = node_name(name)
    if node not in known:
        close = difflib.get_close_matches(node, list(known), n=5, cutoff=0.5)
        hint = "did you mean: {}?".format(", ".join(close)) if close else "run `migrate inspect` to list nodes"
        raise BadInput("no node '{}' in the graph (from --outputs '{}')".format(node, name), where, hint)
    return tensor_name(name)


def check_output_indices(graph_def, tensors, where):
    """BadInput for a tensor `y:N` whose node has no output N (op known to this TF)."""
    wanted = dict((node_name(t), t) for t in tensors if not t.endswith(":0"))
    if not wanted:
        return
    for node in graph_def.node:
        if node.name in wanted:
            count = output_count(node)
            index = int(wanted[node.name].rpartition(":")[2])
            if count is not None and index >= count:
                raise BadInput("--outputs '{}': node '{}' ({}) has {} output(s), numbered from 0".format(
                    wanted[node.name], node.name, node.op, count), where,
                    "use {}".format(" or ".join("{}:{}".format(node.name, i) for i in range(min(count, 3)))
                                    if count else "another node"))
