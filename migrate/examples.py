"""Serialized tf.Example inputs for the string tensors a model parses, so verification needs no --inputs-npz.

An Estimator / TF Transform serving export takes `input_example_tensor` (a batch of serialized tf.Example
protos) and parses it with ParseExample / ParseExampleV2 (ParseSingleExample: one scalar proto). Random bytes
would fail to parse; this module reads the parse spec from the graph (dense keys with dtype, shape and
default; sparse and ragged keys with their value dtypes) and writes valid Examples:
  float   standard normal values
  int64   0..3, or the keys of an integer vocabulary table that reads the feature
  string  words of the vocabulary a lookup table reading the feature holds: an asset file of the model
          (graph-level InitializeTableFromTextFile(V2), or a call to an `__initializer_*` function given the
          table and the asset) or the keys constant of a list-initialized table (frozen graphs); else
          `migrate_0`, `migrate_1`, ...
dense features get exactly their shape (a -1 leading dim, FixedLenSequenceFeature, gets 2 rows), sparse and
ragged ones 1-3 values. Protos are built with the protobuf classes TF ships (tf.train.Example) from one
seeded numpy generator and serialized deterministically: the same seed gives the same bytes. A string input
that a lookup table reads directly (no parse op) gets words of that table's vocabulary the same way.
"""
from collections import namedtuple

import numpy as np

from migrate import opsets, tfcompat
from migrate.graph.names import node_name, tensor_name

Feature = namedtuple("Feature", ["key", "kind", "dtype", "shape", "output", "vocabulary"])
ExampleInput = namedtuple("ExampleInput", ["tensor", "rank", "features", "parser"])

_SEQUENCE_ROWS = 2
_FALLBACK_WORDS = 8


def example_inputs(graph_def, tensors, assets=None):
    """{tensor: ExampleInput} for each of `tensors` (string tensors: the caller checks) that a parse op reads,
    or that a lookup table with a known vocabulary reads directly (then parser is None: words, not protos)."""
    nodes = dict((node.name, node) for node in graph_def.node)
    readers = _readers(graph_def)
    words = _Vocabularies(graph_def, nodes, readers, assets or {})
    found = {}
    for name in tensors:
        tensor = tensor_name(name)
        parser = _parser_of(tensor, nodes, readers)
        if parser is None:
            vocabulary = words.for_tensor(tensor)
            if vocabulary and all(isinstance(w, str) for w in vocabulary):
                found[tensor] = ExampleInput(tensor, None, [Feature(None, "words", "string", None, None,
                                                                    vocabulary)], None)
            continue
        try:
            spec = _features(parser, nodes)
        except _Unreadable:
            continue  # keys computed at run time: no Examples can be written for it (the caller says so)
        features = [f._replace(vocabulary=_typed(f, words.for_tensor("{}:{}".format(parser.name, f.output))))
                    for f in spec]
        rank = 0 if parser.op in opsets.SINGLE_EXAMPLE_PARSE_OPS else 1
        found[tensor] = ExampleInput(tensor, rank, features, parser.name)
    return found


def _typed(feature, vocabulary):
    """The vocabulary when its words fit the feature's dtype (str for string, int for int64), else None."""
    if not vocabulary:
        return None
    wanted = str if feature.dtype == "string" else int
    words = [w for w in vocabulary if isinstance(w, wanted) and not isinstance(w, bool)]
    return words if feature.dtype in ("string", "int64") and len(words) == len(vocabulary) else None


def generate(example_input, rng, batch, dims=None):
    """An object array of serialized tf.Example protos: shape [batch] (ParseExample) or [] (single); for a
    string input a table looks up directly (no parse op), words of its vocabulary in the input's shape."""
    if example_input.parser is None:
        shape = [batch if d is None or d < 0 else d for d in (dims if dims is not None else [None])]
        words = example_input.features[0].vocabulary
        picked = [words[i].encode("utf-8") for i in rng.randint(0, len(words), size=int(np.prod(shape)))]
        array = np.empty([len(picked)], dtype=object)
        array[:] = picked
        return array.reshape(shape)
    scalar = dims == [] or (dims is None and example_input.rank == 0)  # the input's own rank decides
    count = 1 if scalar else batch
    protos = [_example(example_input.features, rng) for _ in range(count)]
    array = np.empty([count], dtype=object)
    array[:] = protos
    return array[0] if scalar else array


def describe(example_input):
    """One line: which keys the generated Examples carry (for notes)."""
    if example_input.parser is None:
        return "{}: words of a {}-word vocabulary a lookup table holds".format(
            example_input.tensor, len(example_input.features[0].vocabulary))
    parts = []
    for f in example_input.features:
        source = " from a {}-word vocabulary".format(len(f.vocabulary)) if f.vocabulary else ""
        parts.append("{} ({} {} {}{})".format(f.key, f.kind, f.dtype, f.shape if f.kind == "dense" else "1-3",
                                              source))
    return "{}: tf.Example protos parsed by {}: {}".format(example_input.tensor, example_input.parser,
                                                          ", ".join(parts) or "no features")


# ------------------------------------------------------------------------------------------ reading the spec

def _readers(graph_def):
    """{tensor: [nodes reading it through a data input]}."""
    readers = {}
    for node in graph_def.node:
        for name in node.input:
            if name[:1] != "^":
                readers.setdefault(tensor_name(name), []).append(node)
    return readers


def _parser_of(tensor, nodes, readers, depth=0):
    """The parse op reading `tensor` (through Identity-like ops), or None."""
    for reader in readers.get(tensor, []):
        if reader.op in opsets.EXAMPLE_PARSE_OPS and tensor_name(reader.input[0]) == tensor:
            return reader
        if (reader.op in opsets.PASS_THROUGH_OPS or
                (reader.op in opsets.RESHAPE_OPS and tensor_name(reader.input[0]) == tensor)) \
                and depth < 8:
            found = _parser_of(reader.name + ":0", nodes, readers, depth + 1)
            if found is not None:
                return found
    return None


class _Unreadable(Exception):
    """A parse op's keys are not constants of the graph."""


def _keys(name, nodes):
    value = _const(name, nodes)
    if value is None:
        raise _Unreadable(name)
    return _strings(value)


def _const(name, nodes):
    """numpy value of the Const behind `name` (through Identity), or None."""
    node = nodes.get(node_name(name))
    for _ in range(8):
        if node is None or node.op != "Identity":
            break
        node = nodes.get(node_name(node.input[0]))
    if node is None or node.op != "Const":
        return None
    return tfcompat.v1().make_ndarray(node.attr["value"].tensor)


def _strings(values):
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for v in np.asarray(values).reshape(-1).tolist()]


def _dtype(enum):
    return tfcompat.tf().as_dtype(enum).name


def _shape(proto):
    return [d.size for d in proto.dim]


def _features(parser, nodes):
    """[Feature] of one parse op, with the output index of each feature's values."""
    attr = parser.attr
    dense_types = [_dtype(t) for t in attr["Tdense"].list.type]
    dense_shapes = [_shape(s) for s in attr["dense_shapes"].list.shape]
    sparse_types = [_dtype(t) for t in attr["sparse_types"].list.type]
    ragged_types = [_dtype(t) for t in attr["ragged_value_types"].list.type] if "ragged_value_types" in attr \
        else []
    n_sparse, n_dense = len(sparse_types), len(dense_types)
    if parser.op == "ParseExample":
        inputs = list(parser.input)
        sparse_keys = [_keys(name, nodes)[0] for name in inputs[2:2 + n_sparse]]
        dense_keys = [_keys(name, nodes)[0] for name in inputs[2 + n_sparse:2 + n_sparse + n_dense]]
        ragged_keys = []
    elif parser.op == "ParseExampleV2":
        sparse_keys = _keys(parser.input[2], nodes)
        dense_keys = _keys(parser.input[3], nodes)
        ragged_keys = _keys(parser.input[4], nodes)
    else:  # ParseSingleExample: keys are attrs
        sparse_keys = _strings(list(attr["sparse_keys"].list.s))
        dense_keys = _strings(list(attr["dense_keys"].list.s))
        ragged_keys = []
    features = []
    for i, key in enumerate(sparse_keys):
        features.append(Feature(key, "sparse", sparse_types[i], None, n_sparse + i, None))
    for j, key in enumerate(dense_keys):
        features.append(Feature(key, "dense", dense_types[j], dense_shapes[j], 3 * n_sparse + j, None))
    for k, key in enumerate(ragged_keys):
        features.append(Feature(key, "ragged", ragged_types[k], None, 3 * n_sparse + n_dense + k, None))
    return features


# ------------------------------------------------------------------------------------------ vocabularies

class _Vocabularies(object):
    """Words of the lookup tables a parsed feature flows into."""

    def __init__(self, graph_def, nodes, readers, assets):
        self.graph_def = graph_def
        self.nodes = nodes
        self.readers = readers
        self.assets = assets
        self.functions = dict((f.signature.name, f) for f in graph_def.library.function)
        from migrate.graph.ops import table_handles
        self.handles = table_handles(graph_def)
        self.produced = {}
        for tensor in readers:
            self.produced.setdefault(node_name(tensor), []).append(tensor)

    def for_tensor(self, tensor):
        """Vocabulary (list of str/int) of the first table whose lookup keys come from `tensor`, or None."""
        seen, todo = set(), [tensor]
        while todo:
            current = todo.pop(0)
            if current in seen:
                continue
            seen.add(current)
            for reader in self.readers.get(current, []):
                if reader.op in opsets.TABLE_FIND_OPS and len(reader.input) > 1 and \
                        tensor_name(reader.input[1]) == current:
                    words = self._table_words(self._table(reader.input[0]), tensor_name(reader.input[0]))
                    if words:
                        return words
                    continue
                if reader.op in opsets.EXAMPLE_PARSE_OPS or reader.op in opsets.TABLE_OPS:
                    continue
                tables = [name for name in reader.input if tensor_name(name) in self.handles]
                if tables and any(v.HasField("func") for v in reader.attr.values()):
                    # a function doing the lookup (TF 2.x, TF Transform): the call is given the table handle
                    words = self._table_words(self._table(tables[0]), tensor_name(tables[0]))
                    if words:
                        return words
                todo.extend(self.produced.get(reader.name, []))
        return None

    def _table(self, name):
        node = self.nodes.get(node_name(name))
        while node is not None and node.op in opsets.PASS_THROUGH_OPS:
            node = self.nodes.get(node_name(node.input[0]))
        return node

    def _table_words(self, table, handle):
        if table is None:
            return None
        handle = handle if node_name(handle) == table.name else table.name + ":0"
        for reader in self.readers.get(handle, []):
            if reader.op in opsets.KEY_VALUE_TABLE_INITIALIZERS and tensor_name(reader.input[0]) == handle:
                keys = _const(reader.input[1], self.nodes)
                if keys is not None and keys.size:
                    return _plain(keys)
            if reader.op in opsets.FILE_TABLE_INITIALIZERS and tensor_name(reader.input[0]) == handle:
                words = self._file_words(reader.input[1], reader)
                if words:
                    return words
            called = [v.func.name for v in reader.attr.values() if v.HasField("func")]
            for function in called:
                words = self._function_words(reader, function)
                if words:
                    return words
        return None

    def _function_words(self, call, function_name):
        """A call to an initializer function given the table: the asset among the call's inputs."""
        from migrate.graph.ops import function_nodes
        init = next((n for n in function_nodes(function_name, self.functions)
                     if n.op in opsets.FILE_TABLE_INITIALIZERS), None)
        if init is None:
            return None
        for name in call.input:
            if name[:1] != "^" and tensor_name(name) in self.assets:
                return self._file_words(name, init)
        return None

    def _file_words(self, filename_tensor, init):
        path = self.assets.get(tensor_name(filename_tensor))
        if not path:
            return None  # only the model's own assets are read
        key_index = init.attr["key_index"].i if "key_index" in init.attr else -2
        delimiter = init.attr["delimiter"].s.decode("utf-8") if "delimiter" in init.attr else "\t"
        size = init.attr["vocab_size"].i if "vocab_size" in init.attr else -1
        try:
            with open(path, "rb") as handle:
                lines = handle.read().decode("utf-8", "replace").splitlines()
        except (IOError, OSError):
            return None
        lines = lines[:size] if size and size > 0 else lines
        if key_index == -1:  # keys are line numbers
            return list(range(len(lines)))
        if key_index == -2:
            return [line for line in lines if line]
        columns = [line.split(delimiter) for line in lines]
        return [c[key_index] for c in columns if len(c) > key_index and c[key_index]]


def _plain(values):
    flat = np.asarray(values).reshape(-1).tolist()
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in flat]


# ------------------------------------------------------------------------------------------ writing Examples

def _example(features, rng):
    tf = tfcompat.tf()
    feature_map = {}
    for feature in features:
        if feature.kind == "dense":
            dims = [(_SEQUENCE_ROWS if d < 0 else d) for d in feature.shape]
            count = int(np.prod(dims)) if dims else 1
        else:
            count = int(rng.randint(1, 4))
        feature_map[feature.key] = _feature_proto(tf, feature, _values(feature, rng, count))
    # deterministic: protobuf otherwise writes map entries (the feature keys) in no fixed order
    return tf.train.Example(features=tf.train.Features(feature=feature_map)).SerializeToString(deterministic=True)


def _values(feature, rng, count):
    if feature.vocabulary:
        words = feature.vocabulary
        return [words[i] for i in rng.randint(0, len(words), size=count)]
    if feature.dtype == "string":
        return ["migrate_{}".format(i) for i in rng.randint(0, _FALLBACK_WORDS, size=count)]
    if feature.dtype == "int64":
        return [int(v) for v in rng.randint(0, 4, size=count)]
    return [float(v) for v in rng.standard_normal(count).astype(np.float32)]


def _feature_proto(tf, feature, values):
    if feature.dtype == "string":
        data = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in values]
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=data))
    if feature.dtype == "int64":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))
