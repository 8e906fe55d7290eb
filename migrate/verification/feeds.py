"""Verification inputs: feeds from an .npz (keys: tensor names, node names or signature input keys) or
generated (seeded; unknown dims = batch; tf.Example protos for strings a parse op reads), with a second batch
generated from seed + 1 (`Feeds.alternate`): an output identical for both checks nothing."""
import os

import numpy as np

from migrate import tfcompat
from migrate.errors import BadInput
from migrate.graph.names import node_name, tensor_name


class Feeds(dict):
    """{tensor or name: array}, plus where the values came from (`origin`) and, for generated values, a second
    batch generated with another seed (`alternate`): an output identical for both checks nothing."""
    origin = "the given inputs"
    alternate = None


class Results(dict):
    """{output: array} of a reference run, with `alternate` (the run on Feeds.alternate), `origin`, and
    `random`: None or a callable giving {output: why it differs} for outputs that read random ops
    (randomness.explain), called only when one differs."""
    origin = "these inputs"
    alternate = None
    random = None


def with_origin(feeds, values, alternate=None):
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
    return with_origin(feeds, dict(feeds, **extra), dict(alternate, **extra) if alternate is not None else None)


def input_specs(graph_def, outputs, names=None):
    """{tensor: (dtype name, shape)} of the Placeholders the outputs need (or of `names`)."""
    from migrate.graph import view
    needed = view.needed_nodes(view.to_digraph(graph_def), [node_name(o) for o in outputs])
    specs = {}
    for node in graph_def.node:
        wanted = node.name in names if names is not None else (node.op == "Placeholder" and node.name in needed)
        if wanted:
            dtype = tfcompat.tf().as_dtype(node.attr["dtype"].type).name
            # No shape attr (graphs written with default attrs stripped, or by TF before 1.0) means unknown
            # rank, the op's default; reading the missing map key would also add an empty (scalar) shape.
            shape = node.attr["shape"].shape if "shape" in node.attr else None
            dims = None if shape is None or shape.unknown_rank else [d.size for d in shape.dim]
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
                           "give its shape: --static --input-shape {}:d1,d2,... (empty = a scalar), or "
                           "pass --inputs-npz with a value for it".format(node_name(name)))
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
        return with_origin(None, load_npz(inputs_npz, specs, aliases))
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


def load_npz_named(path, specs, inputs=None):
    """Feeds keyed like specs (signature keys or tensor names) from an npz keyed by either spelling:
    `inputs` ({name: tensor}) lets an npz name the tensor behind a signature key."""
    by_tensor = load_npz(path, dict((tensor_name(name), spec) for name, spec in specs.items()),
                         dict((tensor, tensor_name(name)) for name, tensor in (inputs or {}).items()))
    return with_origin(None, dict((name, by_tensor[tensor_name(name)]) for name in specs))


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
