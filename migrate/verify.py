"""Run two models on the same inputs and compare their outputs, like Polygraphy's `run` comparison."""
import os
from collections import namedtuple

import numpy as np

from migrate import tfcompat
from migrate.errors import BadInput
from migrate.graph.names import node_name, tensor_name

# ok: no mismatch beyond tolerance. checked: False when the comparison proves nothing (the reference output is
# empty, or the same for two generated batches of different inputs); `reason` then says why. A row that is
# ok but not checked is never reported as OK (format_rows, require_checked, report.comparisons_dict).
Comparison = namedtuple("Comparison", ["output", "shape", "dtype", "max_abs", "max_rel", "mismatch", "ok",
                                       "checked", "reason"])
Comparison.__new__.__defaults__ = (True, None)

UNCHECKED_HINT = "pass --inputs-npz with inputs that give the outputs varying, non-empty values"


class Feeds(dict):
    """{tensor or name: array}, plus where the values came from (`origin`) and, for generated values, a second
    batch generated with another seed (`alternate`): an output identical for both checks nothing."""
    origin = "the given inputs"
    alternate = None


class Results(dict):
    """{output: array} of a reference run, with `alternate` (the run on Feeds.alternate) and `origin`."""
    origin = "these inputs"
    alternate = None


def _with(feeds, values, alternate=None):
    """Feeds `values` carrying feeds' origin; alternate as given."""
    result = Feeds(values)
    result.origin = getattr(feeds, "origin", Feeds.origin)
    result.alternate = alternate
    return result


def with_tensors(feeds, extra):
    """feeds plus {tensor: value} extra (switches), in the alternate batch too; feeds itself when no extra."""
    if not extra:
        return feeds
    alternate = getattr(feeds, "alternate", None)
    return _with(feeds, dict(feeds, **extra), dict(alternate, **extra) if alternate is not None else None)


def input_specs(graph_def, outputs, names=None):
    """{tensor: (dtype name, shape)} of the Placeholders the outputs need (or of `names`)."""
    from migrate.graph import view
    needed = view.needed_nodes(view.to_digraph(graph_def), [node_name(o) for o in outputs])
    specs = {}
    for node in graph_def.node:
        wanted = node.name in names if names is not None else (node.op == "Placeholder" and node.name in needed)
        if wanted:
            dtype = tfcompat.tf().as_dtype(node.attr["dtype"].type).name
            shape = node.attr["shape"].shape
            dims = None if shape.unknown_rank else [d.size for d in shape.dim]
            specs[tensor_name(node.name)] = (dtype, dims)
    return specs


def tensor_specs(model, tensors):
    """{tensor: (dtype, dims)} as TF infers them: the graph is imported (weights are not restored)."""
    from migrate import session
    from tensorflow.core.framework import graph_pb2
    graph_def = graph_pb2.GraphDef()
    graph_def.CopyFrom(model.graph_def)
    session.normalize_for_import(graph_def, model.meta_graph.meta_info_def.stripped_op_list
                                 if model.meta_graph is not None else None)
    graph = tfcompat.v1().Graph()
    with graph.as_default():
        tfcompat.v1().import_graph_def(graph_def, name="")
    specs = {}
    for name in tensors:
        tensor = graph.get_tensor_by_name(tensor_name(name))
        dims = tensor.shape.as_list() if tensor.shape.ndims is not None else None
        specs[tensor_name(name)] = (tensor.dtype.name, dims)
    return specs


def load_npz(path, specs, aliases=None):
    """Feeds from an .npz whose keys are tensor ('x:0') or node ('x') names, or keys of `aliases`
    ({signature input key: tensor}: 'examples' -> 'input_example_tensor:0')."""
    import zipfile
    if not os.path.isfile(path) or not zipfile.is_zipfile(path):
        raise BadInput("cannot read inputs: not an .npz file (a zip archive of arrays)", path,
                       "pass an .npz written by numpy.savez")
    try:
        data = np.load(path, allow_pickle=False)  # pickles run code: never from a user's file
    except (IOError, OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise BadInput("cannot read inputs: {}".format(exc), path, "pass an .npz written by numpy.savez")
    feeds = {}
    for key in data.files:
        target = tensor_name(key)
        alias = (aliases or {}).get(key) or (aliases or {}).get(target)
        if target not in specs and alias:
            target = tensor_name(alias)
        if target not in specs and cut_placeholder(target) in specs:  # 'D:1' names the placeholder 'D_1:0'
            target = cut_placeholder(target)
        try:
            value = data[key]
        except ValueError:
            raise BadInput("array '{}' is an object array (needs pickle, which migrate never loads)".format(key),
                           path, "save strings as bytes: np.array([b'...'], dtype='S')")
        if target in feeds and target in specs and not np.array_equal(feeds[target], value):
            raise BadInput("arrays for {} given twice, with different values".format(target), path,
                           "keep one array per input (a signature key or a tensor name)")
        feeds[target] = value
    missing = sorted(set(specs) - set(feeds))
    if missing:
        raise BadInput("inputs missing from npz: {} (has: {})".format(", ".join(missing), ", ".join(data.files)),
                       path, "add arrays named after the input tensors or the signature's input keys")
    return {name: feeds[name] for name in specs}


def generate_feeds(specs, batch=1, seed=0, examples=None):
    """Seeded random feeds from placeholder dtypes/shapes; unknown dims become `batch`. String inputs a parse
    op reads (`examples`: {tensor: examples.ExampleInput}) get serialized tf.Example protos."""
    from migrate import examples as examples_mod
    rng = np.random.RandomState(seed)
    feeds = {}
    for name, (dtype, dims) in sorted(specs.items()):
        if examples and name in examples:
            feeds[name] = examples_mod.generate(examples[name], rng, batch, dims)
            continue
        if dims is None:
            raise BadInput("input {} has unknown rank; cannot generate values".format(name), None,
                           "pass --inputs-npz with a value for it")
        shape = [batch if d is None or d < 0 else d for d in dims]
        feeds[name] = _random(rng, dtype, shape, name)
    return feeds


def _random(rng, dtype, shape, name):
    if dtype.startswith("float") or dtype in ("half", "bfloat16", "double"):
        return rng.standard_normal(shape).astype(np.dtype(dtype if dtype != "bfloat16" else "float32"))
    if dtype.startswith("int") or dtype.startswith("uint"):
        return rng.randint(0, 4, size=shape).astype(np.dtype(dtype))
    if dtype == "bool":
        return rng.randint(0, 2, size=shape).astype(bool)
    raise BadInput("input {} is {}, and neither a tf.Example parse op nor a lookup table with a known vocabulary "
                   "reads it: random values would be meaningless".format(name, dtype), None,
                   "pass --inputs-npz with real values for it")


def compare(reference, candidate, rtol=1e-5, atol=1e-5):
    """Per-output Comparison of two {tensor: array} dicts (matched by name). A reference output that is empty,
    or (reference a Results with an alternate run) the same for both generated batches, is not checked."""
    rows = []
    alternate = getattr(reference, "alternate", None)
    origin = getattr(reference, "origin", Results.origin)
    for name in sorted(reference):
        expected = np.asarray(reference[name])
        if name not in candidate:
            rows.append(Comparison(name, expected.shape, expected.dtype.name, None, None, 1.0, False))
            continue
        actual = np.asarray(candidate[name])
        row = _compare_one(name, expected, actual, rtol, atol)
        if row.ok:
            reason = _unchecked_reason(expected, None if alternate is None else alternate.get(name), origin)
            row = row._replace(checked=False, reason=reason) if reason else row
        rows.append(row)
    return rows


def all_ok(rows):
    """True when every output compared within tolerance and there was at least one: a comparison with no rows
    compared nothing, which is never a pass (all() of an empty list is True)."""
    return bool(rows) and all(row.ok for row in rows)


def failed_outputs(rows):
    """The outputs that differ, or a phrase saying nothing was compared."""
    return [row.output for row in rows if not row.ok] if rows else ["no outputs were compared"]


def _unchecked_reason(expected, alternate, origin):
    if expected.size == 0:
        return "empty (0 elements) for {}".format(origin)
    if alternate is not None:
        other = np.asarray(alternate)
        if _identical(expected, other):
            return "identical for two generated batches of different inputs ({}): the generated inputs do not " \
                   "reach it".format(origin)
    return None


def _compare_one(name, expected, actual, rtol, atol):
    if expected.shape != actual.shape:
        return Comparison(name, "{} vs {}".format(expected.shape, actual.shape), expected.dtype.name, None, None,
                          1.0, False)
    if expected.dtype.kind in "OSUb" or actual.dtype.kind in "OSU":
        equal = expected == actual
        mismatch = float(1.0 - np.mean(equal)) if equal.size else 0.0
        return Comparison(name, expected.shape, expected.dtype.name, None, None, mismatch, mismatch == 0.0)
    exp = expected.astype(np.float64)
    act = actual.astype(np.float64)
    diff = np.abs(exp - act)
    rel = diff / np.maximum(np.abs(exp), 1e-12)
    bad = ~np.isclose(act, exp, rtol=rtol, atol=atol, equal_nan=True)
    return Comparison(name, expected.shape, expected.dtype.name, float(diff.max()) if diff.size else 0.0,
                      float(rel.max()) if rel.size else 0.0, float(bad.mean()) if bad.size else 0.0,
                      not bad.any())


def _identical(a, b):
    if a.shape != b.shape:
        return False
    if a.dtype.kind not in "fc" or b.dtype.kind not in "fc":
        return bool(np.array_equal(a, b))
    return bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))  # equal_nan= needs numpy 1.19


def format_rows(rows):
    lines = []
    for row in rows:
        shape = list(row.shape) if not isinstance(row.shape, str) else row.shape
        if row.ok and not row.checked:
            lines.append("  NOT CHECKED {} shape={} dtype={}: {}".format(row.output, shape, row.dtype, row.reason))
            continue
        lines.append("  {} {} shape={} dtype={} max_abs_err={} max_rel_err={} mismatch={:.2%}".format(
            "OK  " if row.ok else "FAIL", row.output, shape, row.dtype, _num(row.max_abs), _num(row.max_rel),
            row.mismatch))
    unchecked = [row for row in rows if row.ok and not row.checked]
    if unchecked:
        checked = sum(1 for row in rows if row.checked)
        lines.append("  checked {} of {} outputs; not checked: {} ({})".format(
            checked, len(rows), ", ".join(row.output for row in unchecked), UNCHECKED_HINT))
    return "\n".join(lines)


def require_checked(rows, where, progress=None, writes=True):
    """NotVerified (exit 4) when rows exist, none failed and none was checked: nothing was verified.
    progress: where to print the rows first (the verbs that write raise before the CLI prints them)."""
    if not rows or not all(row.ok for row in rows) or any(row.checked for row in rows):
        return
    from migrate.errors import NotVerified
    if progress is not None:
        progress(format_rows(rows))
    reasons = []
    for row in rows:
        if row.reason not in reasons:
            reasons.append(row.reason)
    raise NotVerified("verification checked nothing: {} output(s) not checked ({})".format(
        len(rows), "; ".join(reasons)), where,
        UNCHECKED_HINT + (", or --no-verify to write it unverified; nothing was written" if writes else ""))


def _num(value):
    return "n/a" if value is None else "{:.3g}".format(value)


def run_model(model, outputs, feeds):
    """{output: array} from running `model` on `feeds` (only the feeds its graph has)."""
    if getattr(model, "kind", None) == "onnx":  # migrate/onnx: run with onnxruntime
        from migrate.onnx import model as onnx_model
        return onnx_model.run(model, outputs, feeds)
    from migrate.session import Restored
    with Restored(model) as restored:
        return run_batches(lambda batch: restored.run(list(outputs), present_feeds(restored.graph, batch)), feeds)


def run_batches(run, feeds):
    """Results of run(feeds), with run(feeds.alternate) as its alternate when feeds carry one."""
    results = Results(run(feeds))
    results.origin = getattr(feeds, "origin", Results.origin)
    alternate = getattr(feeds, "alternate", None)
    if alternate is not None:
        results.alternate = run(alternate)
    return results


def cut_placeholder(name):
    """The Placeholder pipeline.cut puts at tensor `name`: 'D:1' -> 'D_1:0' (component 0 keeps 'D:0')."""
    name = tensor_name(name)
    node, index = name.rsplit(":", 1)
    return name if index == "0" else "{}_{}:0".format(node, index)


def present_feeds(graph, feeds):
    """The feeds a live graph has a tensor for; a feed named after a tensor the input pipeline had ('D:1')
    goes to the placeholder that replaced it ('D_1:0')."""
    present = {}
    for name, value in feeds.items():
        for candidate in (tensor_name(name), cut_placeholder(name)):
            try:
                graph.get_tensor_by_name(candidate)
            except (KeyError, ValueError):
                continue
            present[candidate] = value
            break
    return present


def feeds_for(model, outputs, inputs_npz=None, batch=1, seed=0, set_values=None, signature=None, aliases=None,
              notes=None):
    """Feeds for the placeholders `outputs` need (or the signature's inputs): from an npz or generated;
    --set values included. aliases ({npz key: tensor}): names an npz may use besides tensor names (default:
    the model's signature input keys). notes (a list): gets a line per input generated as tf.Examples."""
    sig = model.signatures.get(signature) if signature else None
    if sig and sig.specs:
        specs = dict(sig.specs)
    elif sig:
        specs = tensor_specs(model, sorted(sig.inputs.values()))
    else:
        specs = input_specs(model.graph_def, outputs)
    for name in set_values or {}:
        specs.pop(tensor_name(name), None)
    examples = None if inputs_npz else example_inputs(model, specs, notes=notes)
    feeds = feeds_from(specs, inputs_npz, batch, seed, aliases or input_aliases(model, sig), examples)
    for batch_feeds in (feeds, feeds.alternate or {}):
        for name, value in (set_values or {}).items():
            batch_feeds[tensor_name(name)] = np.asarray(value)
    return feeds


def feeds_from(specs, inputs_npz=None, batch=1, seed=0, aliases=None, examples=None):
    """Feeds for specs from the npz (keys may be `aliases`), or generated with `seed` (tf.Examples where
    `examples` says) plus an alternate batch from seed + 1."""
    if inputs_npz:
        return _with(None, load_npz(inputs_npz, specs, aliases))
    feeds = Feeds(generate_feeds(specs, batch, seed, examples))
    feeds.origin = "the generated inputs (seed {}{})".format(seed, "" if batch == 1 else ", batch {}".format(batch))
    alternate = generate_feeds(specs, batch, seed + 1, examples)
    if any(not np.array_equal(feeds[name], alternate[name]) for name in feeds):
        feeds.alternate = alternate
        feeds.origin = "the generated inputs (seeds {} and {}{})".format(
            seed, seed + 1, "" if batch == 1 else ", batch {}".format(batch))
    return feeds


def plain(feeds):
    """Feeds without the alternate batch: what a candidate (or anything but the reference) is run on."""
    return dict(feeds)


def check_pair(reference, candidate, outputs, feeds, rtol=1e-5, atol=1e-5):
    """Run both models on the same feeds; [Comparison] per output."""
    expected = run_model(reference, outputs, feeds)
    actual = run_model(candidate, outputs, plain(feeds))
    return compare(expected, actual, rtol, atol)


# ------------------------------------------------------------------------------------------ two artifacts

class Endpoint(object):
    """A model with named inputs and outputs: signature keys for SavedModels, tensor names otherwise."""

    def __init__(self, model, inputs, outputs, specs):
        self.model = model
        self.inputs = inputs     # {name: tensor}
        self.outputs = outputs   # {name: tensor}
        self.specs = specs       # {tensor: (dtype, dims)}

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
    from migrate import freeze as freeze_mod
    sig_name = signature or ("serving_default" if "serving_default" in model.signatures else
                             (sorted(model.signatures)[0] if len(model.signatures) == 1 else None))
    if sig_name:
        from migrate import artifacts
        sig = artifacts.choose_signature(model, sig_name)
        specs = dict(sig.specs) if sig.specs else tensor_specs(model, sorted(sig.inputs.values()))
        chosen = dict(sig.outputs) if not outputs else dict(
            (key, sig.outputs[key]) for key in (_signature_key(sig, name, model.path) for name in outputs))
        return Endpoint(model, dict(sig.inputs), chosen, specs)
    known = set(node.name for node in model.graph_def.node)
    partner_outputs = partner.outputs if partner is not None else {}
    if outputs:
        named = {}
        for name in outputs:
            tensor = partner_outputs.get(name)
            by_alias = [node for node in sorted(known) if name in _aliases(node)] \
                if node_name(name) not in known else []
            if node_name(name) not in known and tensor is not None and node_name(tensor) in known:
                named[name] = tensor  # a partner's signature key, this graph holds the tensor behind it
            elif len(by_alias) == 1:
                named[name] = tensor_name(by_alias[0])  # a key export derived from a node name ('a/b' -> 'a_b')
            else:
                tensor = freeze_mod.resolve_outputs(model, [name])[0][0]
                named[tensor] = tensor
    elif model.outputs and model.kind == "frozen_graph":
        named = dict((t, t) for t in freeze_mod.resolve_outputs(model)[0])
    else:
        named = dict((key, tensor_name(tensor)) for key, tensor in partner_outputs.items()
                     if node_name(tensor) in known)
        if not named or len(named) < len(partner_outputs):
            named = dict((t, t) for t in freeze_mod.resolve_outputs(model)[0])
    specs = input_specs(model.graph_def, sorted(named.values()))
    return Endpoint(model, dict((t, t) for t in specs), named, specs)


def _signature_key(sig, name, where):
    """The signature output key `name` means: a key, or the tensor (or node) of one."""
    if name in sig.outputs:
        return name
    for key, tensor in sorted(sig.outputs.items()):
        if tensor_name(name) == tensor or node_name(name) == node_name(tensor):
            return key
    by_alias = [key for key in sorted(sig.outputs) if key in _aliases(name)]  # TF2: tensors are PartitionedCall:N
    if len(by_alias) == 1:
        return by_alias[0]
    raise BadInput("signature has no output '{}' (keys: {})".format(name, ", ".join(
        "{}={}".format(k, t) for k, t in sorted(sig.outputs.items()))), where, "name a key or its tensor")


def _aliases(name):
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
                if same if exact else _aliases(name) & _aliases(other):
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
    feeds = _with(feeds_by_name, by_tensor(feeds_by_name), by_tensor(alternate) if alternate else None)
    results = run_model(end.model, sorted(set(end.outputs.values())), feeds)
    named = Results((name, results[tensor]) for name, tensor in end.outputs.items())
    named.origin = results.origin
    if results.alternate is not None:
        named.alternate = dict((name, results.alternate[tensor]) for name, tensor in end.outputs.items())
    return named


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
    rows = compare(reference, dict((a_name, actual[b_name]) for a_name, b_name in output_pairs), rtol, atol)
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
    return _with(by_tensor, named(by_tensor), named(by_tensor.alternate) if by_tensor.alternate else None)


def load_npz_named(path, specs, inputs=None):
    """Feeds keyed like specs (signature keys or tensor names) from an npz keyed by either spelling:
    `inputs` ({name: tensor}) lets an npz name the tensor behind a signature key."""
    by_tensor = load_npz(path, dict((tensor_name(name), spec) for name, spec in specs.items()),
                         dict((tensor, tensor_name(name)) for name, tensor in (inputs or {}).items()))
    return _with(None, dict((name, by_tensor[tensor_name(name)]) for name in specs))


def example_inputs(model, specs, tensors=None, notes=None):
    """{tensor: examples.ExampleInput} for the string inputs among `specs` ({name: (dtype, dims)}) that a
    tf.Example parse op or a lookup table reads; `tensors` ({name: tensor}) maps signature keys to tensors;
    `notes` (a list) gets one line per such input saying what will be generated."""
    from migrate import examples as examples_mod
    strings = [(tensors or {}).get(name, name) for name, (dtype, _) in specs.items() if dtype == "string"]
    if not strings:
        return {}
    found = examples_mod.example_inputs(model.graph_def, strings, model.assets)
    if notes is not None:
        notes.extend("generated " + examples_mod.describe(found[tensor]) for tensor in sorted(found))
    return found


def input_aliases(model, sig=None):
    """{npz key: tensor} for signature input keys: every key that names one tensor across the model's
    signatures (a key two signatures use for different tensors is left out), `sig`'s own keys first."""
    targets = {}
    for one in [model.signatures[name] for name in sorted(model.signatures)]:
        for key, tensor in one.inputs.items():
            targets.setdefault(key, set()).add(tensor_name(tensor))
    aliases = dict((key, list(found)[0]) for key, found in targets.items() if len(found) == 1)
    if sig is not None:
        aliases.update((key, tensor_name(tensor)) for key, tensor in sig.inputs.items())
    return aliases


def feeds_for_signature(model, sig, inputs_npz=None, batch=1, seed=0, notes=None):
    """Feeds for a signature's input tensors (placeholders or not), from an npz or generated."""
    specs = dict(sig.specs) if sig.specs else tensor_specs(model, sorted(sig.inputs.values()))
    examples = None if inputs_npz else example_inputs(model, specs, notes=notes)
    return feeds_from(specs, inputs_npz, batch, seed, input_aliases(model, sig), examples)
