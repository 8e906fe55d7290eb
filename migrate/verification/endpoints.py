"""Two artifacts of any kinds on the same inputs (`migrate verify`): each side an Endpoint (named inputs and
outputs: signature keys of a SavedModel, tensor names of a graph), outputs and inputs paired by name, by tensor,
then by alias."""
from migrate.errors import BadInput
from migrate.graph.names import node_name, tensor_name
from migrate.verification import compare as comparison
from migrate.verification.feeds import (Results, example_inputs, feeds_from, input_specs, load_npz_named,
                                        tensor_specs, with_origin)
from migrate.verification.runners import runner_for


class Endpoint(object):
    """A model with named inputs and outputs: signature keys for SavedModels, tensor names otherwise."""

    def __init__(self, model, inputs, outputs, specs, signature=None):
        self.model = model
        self.inputs = inputs     # {name: tensor}
        self.outputs = outputs   # {name: tensor}
        self.specs = specs       # {tensor: (dtype, dims)}
        self.signature = signature  # the SavedModel signature whose keys these are, or None

    def drop_inputs(self, nodes):
        """Stop generating values for these nodes (switches fed separately)."""
        for name, tensor in list(self.inputs.items()):
            if node_name(tensor) in nodes:
                del self.inputs[name]
                self.specs.pop(tensor, None)


def endpoint(model, outputs=None, signature=None, partner=None):
    """The model's named inputs/outputs. A SavedModel side: its signature (--outputs name signature keys or
    their tensors). A graph side: --outputs as tensor names (or the partner's signature keys, mapped to the
    partner's tensors), else the outputs recorded in the graph, else the partner's outputs where this graph has
    those tensors (keyed by the partner's names, so they pair), else inferred."""
    from migrate.freezing import outputs as freeze_outputs
    sig_name = signature or ("serving_default" if "serving_default" in model.signatures else
                             (sorted(model.signatures)[0] if len(model.signatures) == 1 else None))
    if sig_name:
        from migrate import artifacts
        sig = artifacts.choose_signature(model, sig_name)
        specs = dict(sig.specs) if sig.specs else tensor_specs(model, sorted(sig.inputs.values()))
        chosen = dict(sig.outputs) if not outputs else dict(
            (key, sig.outputs[key]) for key in (_signature_key(sig, name, model.path) for name in outputs))
        return Endpoint(model, dict(sig.inputs), chosen, specs, sig_name)
    known = set(node.name for node in model.graph_def.node)
    partner_outputs = partner.outputs if partner is not None else {}
    if outputs:
        named = {}
        for name in outputs:
            tensor = partner_outputs.get(name)
            by_alias = [node for node in sorted(known) if name in aliases(node)] \
                if node_name(name) not in known else []
            if node_name(name) not in known and tensor is not None and node_name(tensor) in known:
                named[name] = tensor  # a partner's signature key, this graph holds the tensor behind it
            elif len(by_alias) == 1:
                named[name] = tensor_name(by_alias[0])  # a key export derived from a node name ('a/b' -> 'a_b')
            else:
                tensor = freeze_outputs.resolve_outputs(model, [name])[0][0]
                named[tensor] = tensor
    elif model.outputs and model.kind == "frozen_graph":
        named = dict((t, t) for t in freeze_outputs.resolve_outputs(model)[0])
    else:
        named = dict((key, tensor_name(tensor)) for key, tensor in partner_outputs.items()
                     if node_name(tensor) in known)
        if not named or len(named) < len(partner_outputs):
            named = dict((t, t) for t in freeze_outputs.resolve_outputs(model)[0])
    specs = input_specs(model.graph_def, sorted(named.values()))
    return Endpoint(model, dict((t, t) for t in specs), named, specs)


def _signature_key(sig, name, where):
    """The signature output key `name` means: a key, or the tensor (or node) of one."""
    if name in sig.outputs:
        return name
    for key, tensor in sorted(sig.outputs.items()):
        if tensor_name(name) == tensor or node_name(name) == node_name(tensor):
            return key
    by_alias = [key for key in sorted(sig.outputs) if key in aliases(name)]  # TF2: tensors are PartitionedCall:N
    if len(by_alias) == 1:
        return by_alias[0]
    raise BadInput("signature has no output '{}' (keys: {})".format(name, ", ".join(
        "{}={}".format(k, t) for k, t in sorted(sig.outputs.items()))), where, "name a key or its tensor")


def aliases(name):
    """Names one output may go by: 'scope/probs:0' -> {'scope/probs:0', 'scope/probs', 'probs'}."""
    node = node_name(name)
    aliases = {name, node, node.split("/")[-1], node.replace("/", "_")}  # the last: export's long keys
    if ":" in name and not name.endswith(":0"):
        aliases.add("{}_{}".format(node.split("/")[-1], name.split(":")[-1]))
    return aliases


def match_names(left, right):
    """[(left name, right name)] pairing {name: tensor} entries: first the same name or the same tensor, then
    names that share an alias; unmatched left names are left out."""
    pairs, used = [], set()
    for exact in (True, False):
        for name in sorted(left):
            if name in set(x for x, _ in pairs):
                continue
            for other in sorted(right):
                if other in used:
                    continue
                same = name == other or (isinstance(left, dict) and isinstance(right, dict) and
                                         tensor_name(left[name]) == tensor_name(right[other]))
                if same if exact else aliases(name) & aliases(other):
                    pairs.append((name, other))
                    used.add(other)
                    break
    return sorted(pairs)


def run_endpoint(end, feeds_by_name, extra_feeds=None):
    """{output name: array}, feeding {input name: array} and {tensor: array} extra_feeds the graph has (Results
    with an alternate run when the feeds carry an alternate batch)."""
    def by_tensor(values):
        tensors = dict(extra_feeds or {})
        tensors.update((end.inputs[name], value) for name, value in values.items() if name in end.inputs)
        return tensors
    alternate = getattr(feeds_by_name, "alternate", None)
    feeds = with_origin(feeds_by_name, by_tensor(feeds_by_name), by_tensor(alternate) if alternate else None)
    results = runner_for(end.model, sorted(set(end.outputs.values()))).run(feeds)
    named = Results((name, results[tensor]) for name, tensor in end.outputs.items())
    named.origin = results.origin
    if results.random is not None:
        named.random = lambda: _by_name(end.outputs, results.random())
    if results.alternate is not None:
        named.alternate = dict((name, results.alternate[tensor]) for name, tensor in end.outputs.items())
    return named


def _by_name(outputs, by_tensor):
    return dict((name, by_tensor[tensor]) for name, tensor in outputs.items() if tensor in by_tensor)


def verify_pair(a, b, inputs_npz=None, batch=1, seed=0, rtol=1e-5, atol=1e-5, extra_feeds=None):
    """([Comparison], notes) for endpoints a and b on the same inputs; outputs matched by name."""
    output_pairs = match_names(a.outputs, b.outputs)
    if not output_pairs:
        raise BadInput("no output names in common: {} vs {}".format(sorted(a.outputs), sorted(b.outputs)),
                       b.model.path, "pass --outputs naming the same outputs for both")
    input_pairs = match_names(a.inputs, b.inputs)
    specs = dict((name, a.specs[a.inputs[name]]) for name in a.inputs if a.inputs[name] in a.specs)
    generated = []
    feeds = load_npz_named(inputs_npz, specs, a.inputs) if inputs_npz else _generated(a, specs, batch, seed,
                                                                                     generated)
    expected = run_endpoint(a, feeds, extra_feeds)
    b_feeds = dict((b_name, feeds[a_name]) for a_name, b_name in input_pairs)
    actual = run_endpoint(b, b_feeds, extra_feeds)
    reference = Results((a_name, expected[a_name]) for a_name, _ in output_pairs)
    reference.origin = expected.origin
    reference.alternate = expected.alternate
    reference.random = expected.random
    rows = comparison.compare(reference, dict((a_name, actual[b_name]) for a_name, b_name in output_pairs), rtol,
                              atol)
    notes = ["{} <-> {}".format(x, y) for x, y in output_pairs if x != y] + generated
    missing = sorted(set(a.outputs) - set(x for x, _ in output_pairs))
    if missing:
        notes.append("outputs only in A (not compared): " + ", ".join(missing))
    return rows, notes


def _generated(end, specs, batch, seed, notes):
    """Generated feeds keyed like specs (an endpoint's input names), Examples where a parse op reads one
    (each described in `notes`), with the alternate batch (seed + 1) keyed the same way."""
    tensors = dict((name, end.inputs.get(name, name)) for name in specs)
    parsed = example_inputs(end.model, specs, tensors, notes)
    by_tensor = feeds_from(dict((tensor_name(name), spec) for name, spec in specs.items()), None, batch, seed,
                           examples=dict((tensor_name(name), parsed[tensor_name(tensors[name])]) for name in specs
                                         if tensor_name(tensors[name]) in parsed))

    def named(values):
        return dict((name, values[tensor_name(name)]) for name in specs)
    return with_origin(by_tensor, named(by_tensor), named(by_tensor.alternate) if by_tensor.alternate else None)
