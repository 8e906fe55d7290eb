"""Broken and hostile inputs: one clear line, nothing lost, nothing from a model runs unasked.

A corpus of broken inputs the tests make themselves (tmp_path), from small models built with the running
TensorFlow (checkpoint dir, SavedModel, session bundle, frozen .pb/.pbtxt). Each case (CASES: a plain list,
append to it) runs every command it applies to (inspect, freeze, optimize, export, convert, verify) and
asserts:
  - exit 2 (bad input), 1 for a verification mismatch;
  - exactly one stderr line `migrate: error: WHERE: WHAT (HOW TO FIX)`: the path (or the option) appears, the
    line names the problem, the fix is in parentheses; no 'Traceback' (only --debug shows one); never a
    temp path as the WHERE;
  - no output left behind and no temp file (`.*.tmp`) anywhere; every input file byte-identical and no
    neighbouring file added, removed or changed (sha256 of every file under the test's directory).
Cases marked real=True also run as real processes (python -m migrate through a small wrapper): stderr at the
file-descriptor level, where TF's C++ logging (`E0000 ... tensor.cc:166] ...`) would add a second line.
Some cases only exist in a real process (real_only): a file-size limit (RLIMIT_FSIZE: writes fail as on a
full disk, without root or a small filesystem) and an address-space limit applied after TF is imported
(ulimit -v: MemoryError). The wrapper reports the process's peak RSS (getrusage), which the memory-bound
case holds to a number. SIGINT/SIGTERM while the frozen graph is computed or written are checked too.

Not writable as root: chmod does not stop root, so the unwritable output directory is /proc (a kernel
filesystem that refuses new files to everyone) and the missing-directory case puts the output under a
regular file.
"""
import collections
import glob
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

import migrate
from migrate import tfcompat
from tests.processes import default_signals

CODE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(migrate.__file__)))


# ------------------------------------------------------------------------------------------ base artifacts

def _v1():
    return tfcompat.v1()


W_VALUE = np.arange(12, dtype=np.float32).reshape(4, 3) / 10.0
B_VALUE = np.ones(3, dtype=np.float32)


def _save_checkpoint(directory, variables, build=None, prefix="model.ckpt", step=1, meta=True):
    """A checkpoint of `variables` ({name: value}); `build(x, variables)` adds the model on top."""
    v1 = _v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 4], name="x")
        made = dict((name, v1.get_variable(name, initializer=value)) for name, value in sorted(variables.items()))
        if build is not None:
            build(x, made)
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            if not os.path.isdir(directory):
                os.makedirs(directory)
            saver.save(session, os.path.join(directory, prefix), global_step=step, write_meta_graph=meta)
    return directory


def _mlp(x, variables):
    v1 = _v1()
    logits = v1.identity(v1.matmul(x, variables["w"]) + variables["b"], name="logits")
    v1.nn.softmax(logits, name="probabilities")


def _frozen_graph_def():
    v1 = _v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 4], name="x")
        w = v1.constant(W_VALUE, name="w")
        logits = v1.identity(v1.matmul(x, w), name="logits")
        v1.nn.softmax(logits, name="probabilities")
    return graph.as_graph_def()


def _saved_model(directory):
    v1 = _v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 4], name="x")
        w = v1.get_variable("w", initializer=W_VALUE)
        y = v1.nn.softmax(v1.matmul(x, w), name="probabilities")
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            builder = v1.saved_model.builder.SavedModelBuilder(directory)
            signature = v1.saved_model.signature_def_utils.predict_signature_def({"x": x}, {"probabilities": y})
            builder.add_meta_graph_and_variables(session, ["serve"],
                                                 signature_def_map={"serving_default": signature})
            builder.save()
    return directory


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Healthy artifacts, written once by the running TF; cases copy and break them."""
    from google.protobuf import text_format
    root = str(tmp_path_factory.mktemp("healthy"))
    paths = {"root": root}
    paths["ckpt"] = _save_checkpoint(os.path.join(root, "ckpt"), {"w": W_VALUE, "b": B_VALUE}, _mlp)
    # Checkpoints that do not fit the mlp's meta graph (same prefix, no meta graph).
    paths["ckpt_missing_var"] = _save_checkpoint(os.path.join(root, "missing_var"), {"w": W_VALUE}, meta=False)
    paths["ckpt_wrong_shape"] = _save_checkpoint(os.path.join(root, "wrong_shape"),
                                                 {"w": np.zeros((4, 2), np.float32), "b": B_VALUE}, meta=False)
    paths["ckpt_wrong_dtype"] = _save_checkpoint(os.path.join(root, "wrong_dtype"),
                                                 {"w": W_VALUE.astype(np.float64), "b": B_VALUE}, meta=False)
    paths["saved_model"] = _saved_model(os.path.join(root, "saved_model"))
    graph_def = _frozen_graph_def()
    paths["frozen_pb"] = os.path.join(root, "frozen.pb")
    with open(paths["frozen_pb"], "wb") as handle:
        handle.write(graph_def.SerializeToString())
    paths["frozen_pbtxt"] = os.path.join(root, "frozen.pbtxt")
    with open(paths["frozen_pbtxt"], "w") as handle:
        handle.write(text_format.MessageToString(graph_def))
    return paths


# ------------------------------------------------------------------------------------------ helpers

HUGE = 64 << 20


def _digest(path):
    """sha256 of the file; above 64 MiB (the sparse 2 GiB graph) of its size, first and last MiB; a symlink
    or a special file (a FIFO would block a read) by what it is."""
    if os.path.islink(path):
        return "symlink -> " + os.readlink(path)
    if not stat.S_ISREG(os.stat(path).st_mode):
        return "special file, mode {:o}".format(os.stat(path).st_mode)
    digest = hashlib.sha256()
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        if size > HUGE:
            digest.update(str(size).encode() + handle.read(1 << 20))
            handle.seek(-(1 << 20), os.SEEK_END)
            digest.update(handle.read())
        else:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _digests(root):
    """{relative path: sha256} of every file under root (a file root: itself)."""
    if os.path.isfile(root):
        return {os.path.basename(root): _digest(root)}
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(directory, d))]:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = _digest(path)
        for name in dirs:  # empty directories count too
            found[os.path.relpath(os.path.join(directory, name), root) + "/"] = "directory"
    return found


def _temp_files(*directories):
    found = []
    for directory in directories:
        if os.path.isdir(directory):
            for path in glob.glob(os.path.join(directory, "**", ".*.tmp"), recursive=True):
                found.append(path)
    return found


def _copy(source, target):
    if os.path.isdir(source):
        shutil.copytree(source, target)
    else:
        shutil.copy(source, target)
    return target


def _meta(prefix):
    from tensorflow.core.protobuf import meta_graph_pb2
    meta = meta_graph_pb2.MetaGraphDef()
    with open(prefix + ".meta", "rb") as handle:
        meta.ParseFromString(handle.read())
    return meta


def _edit_meta(prefix, edit):
    meta = _meta(prefix)
    edit(meta.graph_def)
    with open(prefix + ".meta", "wb") as handle:
        handle.write(meta.SerializeToString())


def _edit_graph(path, edit):
    from tensorflow.core.framework import graph_pb2
    graph_def = graph_pb2.GraphDef()
    with open(path, "rb") as handle:
        graph_def.ParseFromString(handle.read())
    edit(graph_def)
    with open(path, "wb") as handle:
        handle.write(graph_def.SerializeToString())


def _node(graph_def, name):
    return next(node for node in graph_def.node if node.name == name)


def _cycle(graph_def):
    _node(graph_def, "logits").input[0] = "probabilities"  # logits -> probabilities -> logits


def _dangling(graph_def):
    _node(graph_def, "logits").input[0] = "no_such_node"


def _unknown_op(graph_def):
    _node(graph_def, "logits").op = "NoSuchOpAnywhere"


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def _write(path, data):
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def _swap_weights(case_dir, base, which):
    """Replace the checkpoint's .index/.data by those of another checkpoint (same prefix)."""
    ckpt = _copy(base["ckpt"], os.path.join(case_dir, "ckpt"))
    for path in glob.glob(os.path.join(ckpt, "model.ckpt-1.index")) + glob.glob(
            os.path.join(ckpt, "model.ckpt-1.data-*")):
        os.remove(path)
    for path in glob.glob(os.path.join(base[which], "model.ckpt-1.*")):
        shutil.copy(path, ckpt)
    return ckpt


class Case(object):
    """A broken input: `make(base, case_dir)` returns the source path; the rest says how to run and what the
    one stderr line must hold.

    commands  the verbs to run it with (ALL, RUNS, WRITES, FILE_OUT, DIR_OUT or any tuple)
    expect    text the line must hold, or {command: text} with None as the default key
    args      extra arguments; '{case}' becomes the case's input directory; options a verb does not take are
              left out for that verb (inspect takes --tag and --checkpoint only, verify no output options)
    output    callable(case_dir, out_dir, source) -> output path (default out_dir/out.pb for a file,
              out_dir/result for a directory)
    where     callable(case_dir, source, output) -> what the line must name (default: the source), or
              {command: callable} with None as the default key
    code      the exit code (2 bad input, 1 verification mismatch)
    existing_output  an earlier result sits at the output and must survive
    real      also run it as a real process (one per command)
    real_only None, or (wrapper, value): only as a real process, under a limit the wrapper applies
              ('fsize': RLIMIT_FSIZE bytes; 'memory': RLIMIT_AS = after-TF-import size + value MiB)
    max_rss_mib  for a real process: the peak RSS it may reach (getrusage)
    """

    def __init__(self, name, commands, expect, make, args=(), output=None, where=None, code=2,
                 existing_output=False, real=False, real_only=None, max_rss_mib=None):
        self.name = name
        self.commands = commands
        self.expect = expect
        self.make = make
        self.args = list(args)
        self.output = output
        self.where = where
        self.code = code
        self.existing_output = existing_output
        self.real = real or real_only is not None
        self.real_only = real_only
        self.max_rss_mib = max_rss_mib

    def real_commands(self):
        if self.real_only is not None or self.real is True:
            return tuple(self.commands)
        return tuple(self.real or ())

    def expected(self, command=None):
        if isinstance(self.expect, dict):
            return self.expect.get(command, self.expect.get(None))
        return self.expect


ALL = ("inspect", "freeze", "optimize", "export", "convert", "verify", "plan", "calibrate")  # every verb that
                                                                                             # reads the model
RUNS = ("freeze", "optimize", "export", "convert", "verify", "calibrate")  # every verb that runs it
WRITES = ("freeze", "optimize", "export", "convert", "calibrate")          # every verb that writes
FILE_OUT = ("freeze", "optimize")                                         # ... a file
DIR_OUT = ("export", "convert", "calibrate")                              # ... a directory
VERIFIES = ("freeze", "optimize", "export", "convert", "verify")  # take --batch, --rtol/--atol, --inputs-npz


def _option_kinds():
    """{option: True for a flag, False when it takes a value} over every verb, and {verb: its options}."""
    from migrate import cli
    kinds, per_verb = {}, {}
    for name, command in cli.cli.commands.items():
        per_verb[name] = set()
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    kinds[opt] = bool(getattr(param, "is_flag", False))
                    per_verb[name].add(opt)
    return kinds, per_verb


def _accepted(command, args):
    """The arguments `command` takes out of `args` (an option it lacks is dropped with its value)."""
    kinds, per_verb = _option_kinds()
    kept, position = [], 0
    while position < len(args):
        arg = args[position]
        width = 1 if arg not in kinds or kinds[arg] else 2
        if arg not in kinds or arg in per_verb[command]:
            kept += args[position:position + width]
        position += width
    return kept


def _default_output(command, out_dir):
    return os.path.join(out_dir, "result" if command in DIR_OUT else "out.pb")


def _argv(command, case, source, output, case_dir, base):
    """The command line for one run of a case."""
    extra = [arg.replace("{case}", case_dir) for arg in case.args]
    if command == "inspect":
        return _inspect_args(["inspect", source] + extra)
    extra = _accepted(command, extra)
    if command == "verify":  # the model against itself: what is wrong with it stops the first load
        return ["verify", source, source] + extra
    if command == "convert":
        return ["convert", source, output] + extra + ["--no-trt"]
    if command == "plan":  # writes nothing
        return ["plan", source] + extra
    if command == "calibrate":  # good calibration batches beside the case (unless the case brings its own)
        data = [] if "--calib-data" in extra else ["--calib-data", _calib_data(case_dir)]
        return ["calibrate", source] + data + extra + ["-o", output, "--no-sensitivity"]
    return [command, source] + extra + ["-o", output]


def _calib_data(case_dir):
    """Two calibration batches for the corpus models (x [None, 4]) beside the case's input and output
    directories: a good file, so what the line names is the case's fault."""
    path = os.path.join(os.path.dirname(case_dir), "calib.npz")
    if not os.path.exists(path):
        np.savez(path, **{"x:0": np.random.RandomState(0).rand(8, 4).astype(np.float32)})
    return path


def _calib(write):
    """A case whose calibration data ({case}/calib.npz, written by `write(path)`) is at fault."""
    def make(base, d):
        write(os.path.join(d, "calib.npz"))
        return _ckpt(base, d)
    return make


def _calib_arrays(**arrays):
    return _calib(lambda path: np.savez(path, **dict((k.replace("_0", ":0"), v) for k, v in arrays.items())))


def _calib_truncated(path):
    np.savez(path, **{"x:0": np.ones((8, 4), np.float32)})
    _write(path, _read(path)[:200])


CALIB_ARGS = ["--calib-data", "{case}/calib.npz"]


def _where_calib(case_dir, source, output):
    return os.path.join(case_dir, "calib.npz")


def _ckpt(base, case_dir):
    return _copy(base["ckpt"], os.path.join(case_dir, "ckpt"))


def _frozen(base, case_dir):
    return _copy(base["frozen_pb"], os.path.join(case_dir, "frozen.pb"))


def _saved(base, case_dir):
    return _copy(base["saved_model"], os.path.join(case_dir, "saved_model"))


def _make_empty(base, d):
    return _write(os.path.join(d, "model.pb"), b"")


def _make_random(base, d):
    return _write(os.path.join(d, "model.pb"), np.random.RandomState(0).bytes(4096))


def _make_truncated_pb(base, d):
    data = _read(base["frozen_pb"])
    return _write(os.path.join(d, "model.pb"), data[:len(data) // 2])


def _make_truncated_pbtxt(base, d):
    data = _read(base["frozen_pbtxt"])
    return _write(os.path.join(d, "model.pbtxt"), data[:len(data) * 2 // 3])


def _make_syntax_pbtxt(base, d):
    data = _read(base["frozen_pbtxt"]).replace(b'op: "MatMul"', b'op: "MatMul" }}{ attr', 1)
    return _write(os.path.join(d, "model.pbtxt"), data)


def _make_over_2gib(base, d):
    path = os.path.join(d, "huge.pb")
    with open(path, "wb") as handle:  # sparse: 2 GiB + 1 byte on disk in a few blocks, nothing in RAM
        handle.truncate(2 ** 31 + 1)
    return path


def _make_zeros_1gib(base, d):
    path = os.path.join(d, "zeros.pb")
    with open(path, "wb") as handle:  # sparse: nothing on disk
        handle.truncate(1 << 30)
    return path


def _varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _make_truncated_meta(base, d):
    ckpt = _ckpt(base, d)
    meta = os.path.join(ckpt, "model.ckpt-1.meta")
    data = _read(meta)
    _write(meta, data[:len(data) // 3])
    return ckpt


def _make_corrupt_index(base, d):
    ckpt = _ckpt(base, d)
    _write(os.path.join(ckpt, "model.ckpt-1.index"), np.random.RandomState(1).bytes(300))
    return ckpt


def _make_corrupt_saved_model(base, d):
    saved = _saved(base, d)
    pb = os.path.join(saved, "saved_model.pb")
    data = _read(pb)
    _write(pb, data[:len(data) // 2])
    return saved


def _copied_and(copy, change):
    """A make: copy a healthy artifact (`copy(base, d)`), then `change(path)` the copy in place."""
    def make(base, d):
        path = copy(base, d)
        change(path)
        return path
    return make


def _make_frozen_edit(edit):
    return _copied_and(_frozen, lambda path: _edit_graph(path, edit))


def _make_meta_edit(edit):
    return _copied_and(_ckpt, lambda ckpt: _edit_meta(os.path.join(ckpt, "model.ckpt-1"), edit))


def _make_no_index(base, d):
    ckpt = _ckpt(base, d)
    os.remove(os.path.join(ckpt, "model.ckpt-1.index"))
    return ckpt


def _make_no_data(base, d):
    ckpt = _ckpt(base, d)
    for path in glob.glob(os.path.join(ckpt, "model.ckpt-1.data-*")):
        os.remove(path)
    return ckpt


def _make_no_data_prefix(base, d):
    return os.path.join(_make_no_data(base, d), "model.ckpt-1")


def _make_missing_shard(base, d):
    ckpt = _ckpt(base, d)  # a 2-shard checkpoint of which only shard 0 was copied
    (data,) = glob.glob(os.path.join(ckpt, "model.ckpt-1.data-*"))
    os.rename(data, os.path.join(ckpt, "model.ckpt-1.data-00000-of-00002"))
    return ckpt


def _make_state_names_missing(base, d):
    ckpt = _ckpt(base, d)
    for path in glob.glob(os.path.join(ckpt, "model.ckpt-1*")):
        os.remove(path)
    _write(os.path.join(ckpt, "checkpoint"), b'model_checkpoint_path: "model.ckpt-9"\n'
                                             b'all_model_checkpoint_paths: "model.ckpt-9"\n')
    return ckpt


def _make_no_meta(base, d):
    ckpt = _ckpt(base, d)
    os.remove(os.path.join(ckpt, "model.ckpt-1.meta"))
    return ckpt


def _make_graph_without_checkpoint(base, d):
    from google.protobuf import text_format
    directory = os.path.join(d, "model_dir")
    os.makedirs(directory)
    meta = _meta(os.path.join(base["ckpt"], "model.ckpt-1"))
    return _write(os.path.join(directory, "graph.pbtxt"), text_format.MessageToString(meta.graph_def).encode())


def _make_graph_checkpoint_dir_empty(base, d):
    path = _make_graph_without_checkpoint(base, d)
    os.makedirs(os.path.join(d, "empty_dir"))
    return path


def _make_mismatch(which):
    def make(base, d):
        return _swap_weights(d, base, which)
    return make


def _make_sm_no_variables(base, d):
    saved = _saved(base, d)
    shutil.rmtree(os.path.join(saved, "variables"))
    return saved


def _make_sm_asset_escape(base, d):
    """A SavedModel naming an asset outside its assets/ dir: TF's loader would feed that path to the model."""
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
    saved = _saved(base, d)
    path = os.path.join(saved, "saved_model.pb")
    model = saved_model_pb2.SavedModel()
    with open(path, "rb") as handle:
        model.ParseFromString(handle.read())
    asset = meta_graph_pb2.AssetFileDef()
    asset.filename = "../../../../../../etc/hostname"
    asset.tensor_info.name = "x:0"
    model.meta_graphs[0].collection_def["saved_model_assets"].any_list.value.add().Pack(asset)
    _write(path, model.SerializeToString())
    return saved


def _npz_dir(base, d):
    os.makedirs(os.path.join(d, "inputs.npz"))
    return _ckpt(base, d)


def _npz_shape(base, d):
    np.savez(os.path.join(d, "inputs.npz"), **{"x:0": np.zeros((2, 5), np.float32)})
    return _ckpt(base, d)


def _npz_missing(base, d):
    np.savez(os.path.join(d, "inputs.npz"), **{"y:0": np.zeros((2, 4), np.float32)})
    return _ckpt(base, d)


def _npz_garbage(base, d):
    _write(os.path.join(d, "inputs.npz"), b"PK\x03\x04 not really a zip")
    return _ckpt(base, d)


def _symlinked(base, d):
    ckpt = _ckpt(base, d)
    os.symlink(ckpt, os.path.join(d, "link"))
    return ckpt


def _planted_graph(base, d):
    """A plain deterministic checkpoint; the case plants a difference in what freeze writes (MIGRATE_TEST_PLANT):
    the verification must run the written file to see it (verification mismatch, exit 1)."""
    def build(x, variables):
        _v1().identity(_v1().matmul(x, variables["w"]), name="y")
    return _save_checkpoint(os.path.join(d, "ckpt"), {"w": W_VALUE}, build)


def _planted_frozen(base, d):
    """A plain deterministic frozen graph; the case plants a difference in what optimize writes."""
    v1 = _v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 4], name="x")
        v1.identity(v1.matmul(x, v1.constant(W_VALUE, name="w")), name="y")
    return _write(os.path.join(d, "plain.pb"), graph.as_graph_def().SerializeToString())


def _damage_data(directory, how):
    """Truncate the checkpoint's .data shard to half, or flip one bit in it (its crc32c no longer matches)."""
    (data,) = glob.glob(os.path.join(directory, "*.data-*"))
    raw = _read(data)
    if how == "truncated":
        _write(data, raw[:len(raw) // 2])
    else:
        flipped = bytearray(raw)
        flipped[len(raw) // 3] ^= 0x10
        _write(data, bytes(flipped))


def _make_damaged_checkpoint(how):
    return _copied_and(_ckpt, lambda ckpt: _damage_data(ckpt, how))


def _make_damaged_saved_model(how):
    return _copied_and(_saved, lambda saved: _damage_data(os.path.join(saved, "variables"), how))


def _make_deep_pbtxt(base, d):
    """Text GraphDef nested 5000 AttrValue levels deep: Python's text parser recurses once per level."""
    depth = 5000
    text = ('node { name: "a" op: "Const" attr { key: "value" value { ' +
            'list { func { name: "f" attr { key: "k" value { ' * depth + '} } } }' * depth + ' } } }')
    return _write(os.path.join(d, "deep.pbtxt"), text.encode())


def _make_session_bundle_bad_varint(base, d):
    """A session bundle (export.meta + `export` checkpoint) whose serving_signatures holds a varint that
    never ends (every byte has its continuation bit set)."""
    bundle = _save_checkpoint(os.path.join(d, "bundle"), {"w": W_VALUE, "b": B_VALUE}, _mlp, prefix="export",
                              step=None)
    meta = _meta(os.path.join(bundle, "export"))
    entry = meta.collection_def["serving_signatures"].any_list.value.add()
    entry.type_url = "type.googleapis.com/tensorflow.serving.Signatures"
    entry.value = b"\x0a\xff\xff\xff\xff"
    _write(os.path.join(bundle, "export.meta"), meta.SerializeToString())
    os.remove(os.path.join(bundle, "checkpoint"))
    return bundle


def _make_fifo_model(base, d):
    path = os.path.join(d, "model.pb")
    os.mkfifo(path)
    return path


def _make_fifo_checkpoint_data(base, d):
    ckpt = _ckpt(base, d)
    (data,) = glob.glob(os.path.join(ckpt, "*.data-*"))
    os.remove(data)
    os.mkfifo(data)
    return ckpt


def _make_const_content_wrong_size(base, d):
    """The weight's tensor_content is 8 bytes short of its shape (TF logs `E... tensor.cc] Input size was
    ...` to stderr when it meets it)."""
    def edit(graph_def):
        tensor = _node(graph_def, "w").attr["value"].tensor
        tensor.tensor_content = tensor.tensor_content[:-8]
    return _make_frozen_edit(edit)(base, d)


def _make_expanding_constant(base, d):
    """7 nodes: y = x + reduce_sum(fill([2**30], 1.0)). Folding or running it would make a 4 GiB tensor."""
    v1 = _v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 4], name="x")
        total = v1.reduce_sum(v1.fill(v1.constant([1 << 30], name="dims"), v1.constant(1.0, name="one"),
                                      name="fill"), name="total")
        v1.add(x, total, name="y")
    graph_def = graph.as_graph_def()
    assert len(graph_def.node) == 7, [node.op for node in graph_def.node]
    return _write(os.path.join(d, "expanding.pb"), graph_def.SerializeToString())


def _make_sparse_1gib(base, d):
    path = os.path.join(d, "huge.pb")
    with open(path, "wb") as handle:  # sparse: nothing on disk, 1 GiB once read into memory
        # one GraphDef.node field (key 0x0a, length-delimited) as long as the file: a parser must hold it whole
        handle.write(b"\x0a" + _varint((1 << 30) - 6))
        handle.truncate(1 << 30)
    return path


def _make_wider_checkpoint(base, d):
    """A checkpoint whose frozen graph and SavedModel are over 16 KiB (the fsize cases' limit is 4 KiB)."""
    wide = np.ones((4, 1024), np.float32)

    def build(x, variables):
        _v1().identity(_v1().matmul(x, variables["w"]), name="probabilities")
    return _save_checkpoint(os.path.join(d, "ckpt"), {"w": wide}, build)


# --force: the output directory holds the input / foreign files / is a link; outputs named inside case_dir
def _make_project_with_frozen(base, d):
    os.makedirs(os.path.join(d, "proj"))
    return _copy(base["frozen_pb"], os.path.join(d, "proj", "a.pb"))


def _make_project_with_checkpoint(base, d):
    os.makedirs(os.path.join(d, "proj"))
    return _copy(base["ckpt"], os.path.join(d, "proj", "ckpt"))


def _project_dir(d, out, source):
    return os.path.join(d, "proj")


def _directory_holding(path, files, marked=False):
    """Make directory `path` holding {name: bytes}; marked: with the marker migrate writes, listing them."""
    from migrate import io
    os.makedirs(path)
    for name, data in sorted(files.items()):
        _write(os.path.join(path, name), data)
    if marked:
        io.write_marker(path)
    return path


def _foreign_dir(d, out, source):
    """An existing directory of the user's: --force must not empty it."""
    return _directory_holding(os.path.join(out, "proj"), {"notes.txt": b"the user's own notes"})


def _previous_output_plus_file(d, out, source):
    """What an earlier `migrate export` left (its marker lists saved_model.pb), plus a file the user added."""
    target = _directory_holding(os.path.join(out, "previous"), {"saved_model.pb": b"earlier result"}, marked=True)
    _write(os.path.join(target, "notes.txt"), b"added since")
    return target


def _link_to_previous_output(d, out, source):
    target = _directory_holding(os.path.join(out, "previous"), {"saved_model.pb": b"earlier result"}, marked=True)
    os.symlink(target, os.path.join(out, "link"))
    return os.path.join(out, "link")


def _existing_file(d, out, source):
    return _write(os.path.join(out, "result"), b"a file where a directory goes")


def _existing_dir(d, out, source):
    return _directory_holding(os.path.join(out, "result"), {"saved_model.pb": b"an earlier result"})


def _in_input(case_dir, out_dir, source):
    return os.path.join(source, "frozen.pb")


def _where_output(case_dir, source, output):
    return output


def _where_output_parent(case_dir, source, output):
    return os.path.dirname(output)


NPZ_ARGS = ["--inputs-npz", "{case}/inputs.npz", "--outputs", "probabilities"]


def _where_npz(case_dir, source, output):
    return os.path.join(case_dir, "inputs.npz")


def _file_print(case_dir):
    """An edit adding tf.print(..., output_stream="file://CASE/printed.txt") (a PrintV2 NodeDef written by hand:
    TF 1.7 lacks the op) that `probabilities` waits on: were it run, a file would appear in the input dir."""
    def edit(graph_def):
        message = graph_def.node.add()
        message.name, message.op = "print_message", "Const"
        message.attr["dtype"].type = message.attr["value"].tensor.dtype = 7  # DT_STRING
        message.attr["value"].tensor.string_val.append(b"the model ran")
        printer = graph_def.node.add()
        printer.name, printer.op = "print", "PrintV2"
        printer.input.append("print_message")
        printer.attr["output_stream"].s = ("file://" + os.path.join(case_dir, "printed.txt")).encode()
        _node(graph_def, "probabilities").input.append("^print")
    return edit


def _make_not_onnx(base, d):
    """A frozen graph's bytes under a .onnx name: ONNX is told by content, and this is not ONNX."""
    return _write(os.path.join(d, "model.onnx"), _read(base["frozen_pb"]))


def _make_print_frozen(base, d):
    return _make_frozen_edit(_file_print(d))(base, d)


def _make_print_meta(base, d):
    return _make_meta_edit(_file_print(d))(base, d)


def _make_sm_asset_symlink(base, d):
    """A SavedModel whose assets/vocab.txt is a symlink to a file outside it (here beside it in the case dir)."""
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
    saved = _saved(base, d)
    path = os.path.join(saved, "saved_model.pb")
    model = saved_model_pb2.SavedModel()
    model.ParseFromString(_read(path))
    asset = meta_graph_pb2.AssetFileDef()
    asset.filename = "vocab.txt"
    asset.tensor_info.name = "x:0"
    model.meta_graphs[0].collection_def["saved_model_assets"].any_list.value.add().Pack(asset)
    _write(path, model.SerializeToString())
    os.makedirs(os.path.join(saved, "assets"))
    os.symlink(_write(os.path.join(d, "secret.txt"), b"not the model's\n"), os.path.join(saved, "assets", "vocab.txt"))
    return saved

_OPTION = {"--batch": lambda d, s, o: "--batch", "--max-batch": lambda d, s, o: "--max-batch",
           "--input-shape": lambda d, s, o: "--input-shape", "--rtol": lambda d, s, o: "--rtol",
           "--set": lambda d, s, o: "--set"}

CASES = [
    # unreadable files
    Case("empty_file", ALL, "file is empty", _make_empty),
    Case("random_bytes_pb", ALL, "not a", _make_random),
    Case("truncated_pb", ALL, "not a", _make_truncated_pb, real=("inspect", "convert")),
    Case("truncated_pbtxt", ALL, "not a valid text GraphDef", _make_truncated_pbtxt),
    Case("pbtxt_syntax_error", ALL, "not a valid text GraphDef", _make_syntax_pbtxt),
    Case("pbtxt_nested_too_deep", ALL, "nested deeper than the parser's recursion limit", _make_deep_pbtxt,
         real=("inspect", "optimize")),
    Case("graph_over_2gib", ALL, "over protobuf's 2 GiB limit", _make_over_2gib),
    Case("graph_1gib_over_memory_limit", ("inspect", "optimize", "export"), "out of memory", _make_sparse_1gib,
         real_only=("memory", 256)),
    # over the chunked-parse size and all zeros: field 0 is refused at once (it was parsed 2 bytes at a time)
    Case("graph_1gib_of_zeros", ("inspect", "optimize"), "not a valid GraphDef", _make_zeros_1gib),
    Case("model_is_a_fifo", ALL, "named pipe (FIFO)", _make_fifo_model, real=("inspect", "freeze")),
    Case("checkpoint_data_is_a_fifo", ALL, "named pipe (FIFO)", _make_fifo_checkpoint_data,
         where=lambda d, s, o: glob.glob(os.path.join(s, "*.data-*"))[0]),
    Case("truncated_meta", ALL, "not a valid MetaGraphDef", _make_truncated_meta),
    Case("graph_named_onnx", ("verify",), "named .onnx but not an ONNX model", _make_not_onnx, real=("verify",)),
    Case("corrupt_index", ALL, "cannot read checkpoint", _make_corrupt_index, real=("verify",)),
    Case("truncated_saved_model", ALL, "not a valid SavedModel", _make_corrupt_saved_model),
    Case("session_bundle_bad_varint", ALL, "serving_signatures collection is corrupt (bad varint",
         _make_session_bundle_bad_varint, where=lambda d, s, o: os.path.join(s, "export.meta"),
         real=("inspect",)),
    # checkpoint data damaged: only running reads it (inspect does not)
    Case("checkpoint_data_truncated", RUNS, "checkpoint data is damaged", _make_damaged_checkpoint("truncated"),
         args=["--outputs", "probabilities"], real=("freeze", "convert")),
    Case("checkpoint_data_bit_flipped", RUNS, "checkpoint data is damaged",
         _make_damaged_checkpoint("flipped"), args=["--outputs", "probabilities"], real=("export", "verify")),
    Case("saved_model_data_truncated", RUNS, "checkpoint data is damaged", _make_damaged_saved_model("truncated"),
         real=("optimize",)),
    Case("saved_model_data_bit_flipped", RUNS, "checkpoint data is damaged",
         _make_damaged_saved_model("flipped"), real=("convert",)),
    Case("const_content_wrong_size", ALL, "node 'w' (Const) holds 40 bytes of tensor_content, its shape [4, 3] "
         "float32 needs 48", _make_const_content_wrong_size, args=["--outputs", "probabilities"],
         real=("optimize", "export", "convert", "verify")),
    # graphs nothing can run
    Case("cycle_frozen", ("inspect", "optimize", "export", "convert", "verify"), "cycle that is not a while loop",
         _make_frozen_edit(_cycle)),
    Case("cycle_meta", ALL, "cycle that is not a while loop", _make_meta_edit(_cycle)),
    Case("missing_node_frozen", ("inspect", "optimize", "export", "convert", "verify"),
         "reads 'no_such_node', which is not in the graph", _make_frozen_edit(_dangling)),
    Case("missing_node_meta", ALL, "reads 'no_such_node', which is not in the graph", _make_meta_edit(_dangling)),
    Case("unknown_op_frozen", ("optimize", "export", "convert", "verify"), "NoSuchOpAnywhere",
         _make_frozen_edit(_unknown_op), args=["--outputs", "probabilities"]),
    Case("unknown_op_meta", RUNS, "NoSuchOpAnywhere", _make_meta_edit(_unknown_op),
         args=["--outputs", "probabilities"], real=("export",)),
    # memory: a 7-node graph whose constant would expand to 4 GiB; refused before anything runs
    Case("constant_expands_to_4gib", ("optimize", "export", "convert", "verify"), "would take 4.00 GiB",
         _make_expanding_constant, args=["--outputs", "y"], real=("optimize", "export"), max_rss_mib=1536),
    # checkpoints with files missing or not matching the graph
    Case("index_missing", ALL, ".index is missing", _make_no_index),
    Case("data_missing", ALL, "data shard(s) missing", _make_no_data),
    Case("data_missing_prefix", ALL, "data shard(s) missing", _make_no_data_prefix),
    Case("data_shard_1_of_2_missing", ALL, "model.ckpt-1.data-00001-of-00002", _make_missing_shard),
    Case("state_file_names_missing", ALL, "names model.ckpt-9 but no checkpoint files", _make_state_names_missing),
    Case("meta_missing", ALL, "no meta graph", _make_no_meta),
    Case("graph_without_checkpoint", ALL, "no checkpoint was found", _make_graph_without_checkpoint),
    Case("checkpoint_flag_empty_dir", ("inspect", "freeze", "export", "convert"), "no checkpoint in",
         _make_graph_checkpoint_dir_empty, args=["--checkpoint", "{case}/empty_dir"],
         where=lambda d, s, o: os.path.join(d, "empty_dir")),
    Case("checkpoint_flag_on_checkpoint_dir", ("inspect", "freeze", "export", "convert"),
         "--checkpoint applies to a graph", _ckpt, args=["--checkpoint", "{case}/ckpt/model.ckpt-1"]),
    Case("variable_missing_from_checkpoint", RUNS, "variable 'b' (float32 [3]) is not found in checkpoint",
         _make_mismatch("ckpt_missing_var"), args=["--outputs", "probabilities"]),
    Case("variable_wrong_shape", RUNS, "graph wants shape [4, 3], checkpoint has [4, 2]",
         _make_mismatch("ckpt_wrong_shape"), args=["--outputs", "probabilities"]),
    Case("variable_wrong_dtype", RUNS, "graph wants float32, checkpoint has float64",
         _make_mismatch("ckpt_wrong_dtype"), args=["--outputs", "probabilities"]),
    # SavedModels
    Case("saved_model_without_variables", ALL, "variables/", _make_sm_no_variables),
    Case("saved_model_asset_outside_assets", ALL, "points outside the SavedModel's assets/ directory",
         _make_sm_asset_escape),
    Case("saved_model_wrong_tag", ("inspect", "freeze", "export", "convert"), "no meta graph with tags 'train'",
         _saved, args=["--tag", "train"]),
    Case("saved_model_wrong_signature", ("freeze", "export", "convert", "verify"), "no signature 'predict'", _saved,
         args=["--signature", "predict"]),
    # what the user asked for
    Case("output_name_typo", RUNS, {None: "did you mean: probabilities?",
                                    "verify": "signature has no output 'probabilitis'"},
         _saved, args=["--outputs", "probabilitis"]),
    Case("output_name_typo_frozen", ("optimize", "export", "convert", "verify"), "did you mean: probabilities?",
         _frozen, args=["--outputs", "probabilitis"]),
    Case("output_index_past_the_op", RUNS, "node 'probabilities' (Softmax) has 1 output(s)", _ckpt,
         args=["--outputs", "probabilities:7"], real=("convert",)),
    Case("output_index_past_the_op_frozen", ("optimize", "export", "convert", "verify"),
         "node 'probabilities' (Softmax) has 1 output(s)", _frozen, args=["--outputs", "probabilities:7"]),
    Case("set_text_on_a_float", ("freeze",), "node 'x' takes a float32 scalar, not 'hello'", _ckpt,
         args=["--outputs", "probabilities", "--set", "x=hello"], where=_OPTION["--set"]),
    # flags refused by their click type
    Case("batch_negative", VERIFIES, "-3 is not in the range x>=1", _ckpt, args=["--batch", "-3"],
         where=_OPTION["--batch"]),
    Case("batch_zero", VERIFIES, "0 is not in the range x>=1", _ckpt, args=["--batch", "0"], where=_OPTION["--batch"]),
    Case("max_batch_zero", ("optimize", "convert"), "0 is not in the range x>=1", _frozen,
         args=["--max-batch", "0"], where=_OPTION["--max-batch"]),
    Case("input_shape_negative_dim", ("optimize", "convert"), "'x:-5,4' is not name:d1,d2", _frozen,
         args=["--static", "--input-shape", "x:-5,4"], where=_OPTION["--input-shape"]),
    Case("tolerances_negative", VERIFIES, "is not in the range x>=0", _ckpt, args=["--rtol", "-1", "--atol", "-1"],
         where=_OPTION["--rtol"]),
    # inputs for verification
    Case("npz_is_a_directory", VERIFIES, "cannot read inputs", _npz_dir, where=_where_npz, args=NPZ_ARGS),
    Case("npz_not_a_zip", VERIFIES, "cannot read inputs", _npz_garbage, where=_where_npz, args=NPZ_ARGS),
    Case("npz_lacks_input", ("freeze", "optimize", "convert"), "inputs missing from npz: x:0", _npz_missing,
         where=_where_npz, args=NPZ_ARGS),
    Case("npz_wrong_shape", VERIFIES, "Cannot feed value of shape (2, 5)", _npz_shape, args=NPZ_ARGS,
         real=("freeze",)),
    # calibration batches (calibrate): one line naming the file, exit 2, nothing written
    Case("calib_data_missing", ("calibrate",), "calibration data not found", _ckpt,
         args=["--calib-data", "{case}/no_such.npz"], where=lambda d, s, o: os.path.join(d, "no_such.npz")),
    Case("calib_data_empty_folder", ("calibrate",), "no .npz files in calibration folder",
         _calib(lambda path: os.makedirs(path)), args=CALIB_ARGS, where=_where_calib),
    Case("calib_data_not_a_zip", ("calibrate",), "cannot read calibration batch",
         _calib(lambda path: _write(path, b"PK\x03\x04 not really a zip")), args=CALIB_ARGS, where=_where_calib),
    Case("calib_data_truncated", ("calibrate",), "cannot read calibration batch", _calib(_calib_truncated),
         args=CALIB_ARGS, where=_where_calib, real=("calibrate",)),
    Case("calib_data_wrong_tensor_name", ("calibrate",), "calibration batch lacks input x:0 (has: y:0)",
         _calib_arrays(y_0=np.ones((8, 4), np.float32)), args=CALIB_ARGS, where=_where_calib),
    Case("calib_data_wrong_shape", ("calibrate",), "input x:0 has shape [8, 5] in the data",
         _calib_arrays(x_0=np.ones((8, 5), np.float32)), args=CALIB_ARGS, where=_where_calib),
    Case("calib_data_wrong_dtype", ("calibrate",), "input x:0 is bool in the data, the model takes float32",
         _calib_arrays(x_0=np.ones((8, 4), bool)), args=CALIB_ARGS, where=_where_calib),
    Case("calib_data_nan", ("calibrate",), "NaN/Inf", _calib_arrays(x_0=np.full((8, 4), np.nan, np.float32)),
         args=CALIB_ARGS, where=_where_calib),
    Case("eval_data_not_a_zip", ("calibrate",), "cannot read calibration batch",
         _calib(lambda path: _write(path, b"PK\x03\x04 not really a zip")), args=["--eval-data", "{case}/calib.npz"],
         where=_where_calib),
    # where the output goes
    Case("output_is_a_directory", FILE_OUT, "output is a directory", _ckpt, args=["--force"],
         output=lambda d, out, s: out, where=_where_output),
    Case("output_is_a_file_not_a_directory", DIR_OUT, "output is a file, not a directory", _ckpt,
         args=["--force"], output=_existing_file, where=_where_output),
    Case("output_under_a_file", WRITES, "is a file, not a directory", _ckpt,
         output=lambda d, out, s: os.path.join(_write(os.path.join(out, "a_file"), b"x"), "frozen.pb"),
         where=_where_output_parent),
    Case("output_dir_missing", WRITES, "output directory does not exist", _ckpt,
         output=lambda d, out, s: os.path.join(out, "no", "such", "frozen.pb"), where=_where_output_parent),
    Case("output_dir_not_writable", WRITES, "output directory is not writable", _ckpt,
         output=lambda d, out, s: "/proc/migrate-test-frozen.pb", where=lambda d, s, o: "/proc",
         real=("convert",)),
    Case("output_inside_input_dir", WRITES, "inside the input directory", _ckpt, args=["--force"],
         output=_in_input, where=_where_output),
    Case("output_inside_input_via_symlink", WRITES, "inside the input directory", _symlinked,
         output=lambda d, out, s: os.path.join(d, "link", "frozen.pb"), where=_where_output),
    Case("output_is_checkpoint_index", ("freeze",), "overwrite a file of the input checkpoint",
         lambda base, d: os.path.join(_ckpt(base, d), "model.ckpt-1"), args=["--force"],
         output=lambda d, out, s: s + ".index", where=_where_output),
    Case("output_is_the_input", ("optimize",), "output is the input file itself", _frozen, args=["--force"],
         output=lambda d, out, s: s, where=_where_output),
    Case("output_exists", FILE_OUT, "output already exists", _ckpt, where=_where_output,
         existing_output=True),
    Case("output_dir_exists", DIR_OUT, "output already exists", _ckpt, output=_existing_dir, where=_where_output),
    # --force never destroys what migrate did not write
    Case("force_into_dir_holding_the_input_graph", DIR_OUT, "output would replace a directory that holds the input",
         _make_project_with_frozen, args=["--force"], output=_project_dir, where=_where_output, real=("export",)),
    Case("force_into_dir_holding_the_input_checkpoint", DIR_OUT,
         "output would replace a directory that holds the input", _make_project_with_checkpoint,
         args=["--force", "--outputs", "probabilities"], output=_project_dir, where=_where_output),
    Case("force_into_a_foreign_directory", DIR_OUT, "not a previous migrate output", _ckpt,
         args=["--force", "--outputs", "probabilities"], output=_foreign_dir, where=_where_output),
    Case("force_into_previous_output_with_a_file_added", DIR_OUT, "holds a file migrate did not write (notes.txt)",
         _ckpt, args=["--force", "--outputs", "probabilities"], output=_previous_output_plus_file,
         where=_where_output),
    Case("force_onto_a_symlink", DIR_OUT, "output is a symbolic link", _ckpt,
         args=["--force", "--outputs", "probabilities"], output=_link_to_previous_output, where=_where_output),
    # the disk fills up while the output is written: RLIMIT_FSIZE makes every write past 4 KiB fail (EFBIG)
    # (calibrate writes a few KiB: ranges, cache, report; under the limit)
    Case("disk_full_while_writing", ("freeze", "optimize", "export", "convert"), "cannot write output", _make_wider_checkpoint,
         args=["--outputs", "probabilities", "--no-trt"], where=_where_output, real_only=("fsize", 4096)),
    # verification mismatch: exit 1, nothing written (the writer moves a weight: MIGRATE_TEST_PLANT, see below)
    Case("verification_mismatch_freeze", ("freeze", "export", "convert"),
         {None: "differ beyond tolerance", "export": "reloaded SavedModel differs from the source",
          "convert": "freeze changed the outputs: y"}, _planted_graph, args=["--outputs", "y"], code=1,
         where={None: None, "export": _where_output}),
    Case("verification_mismatch_optimize", ("optimize",), "differ beyond tolerance", _planted_frozen,
         args=["--outputs", "y"], code=1),
    # models that would write files or read outside themselves (test_security runs every verb on them)
    Case("print_to_file_frozen", ("optimize",), "(PrintV2 writing to file://", _make_print_frozen,
         args=["--outputs", "probabilities"]),
    Case("print_to_file_meta", RUNS, "(PrintV2 writing to file://", _make_print_meta,
         args=["--outputs", "probabilities"]),
    Case("saved_model_asset_symlinked_outside", RUNS, "vocab.txt -> ", _make_sm_asset_symlink),
]

PARAMS = [pytest.param(case, command, id="{}-{}".format(case.name, command))
          for case in CASES if case.real_only is None for command in case.commands]


def _line_checks(err, out, case, where, command=None):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, "want exactly one stderr line, got:\n" + err
    line = lines[0]
    assert line.startswith("migrate: error: "), line
    assert "Traceback" not in err and "Traceback" not in out
    assert where in line, "the line should name {}: {}".format(where, line)
    expect = case.expected(command)
    assert expect in line, "the line should say '{}': {}".format(expect, line)
    assert line.endswith(")") and " (" in line, "the line should end with how to fix it, in parentheses: " + line
    head = line[len("migrate: error: "):].split(": ", 1)[0]
    assert not head.endswith(".tmp") and ".tmp" + os.sep not in head, "a temp path as the where: " + line
    return line


class Prepared(object):
    """One run of a case: its directories, source, output and command line, and what was there before."""

    def __init__(self, case, command, base, root):
        self.case, self.command, self.root = case, command, root
        self.case_dir = os.path.join(root, "input")
        self.out_dir = os.path.join(root, "out")
        os.makedirs(self.case_dir)
        os.makedirs(self.out_dir)
        self.source = case.make(base, self.case_dir)
        self.output = case.output(self.case_dir, self.out_dir, self.source) if case.output else \
            _default_output(command, self.out_dir)
        if case.existing_output:
            _write(self.output, b"an earlier result that must survive")
        self.argv = _argv(command, case, self.source, self.output, self.case_dir, base)
        where = case.where.get(command, case.where.get(None)) if isinstance(case.where, dict) else case.where
        self.where = where(self.case_dir, self.source, self.output) if where else self.source
        self.before = _digests(root)

    def check(self, code, out, err):
        case = self.case
        assert code == case.code, "exit {} (want {}): {}".format(code, case.code, err)
        _line_checks(err, out, case, self.where, self.command)
        after = _digests(self.root)
        changed = sorted(set(after) ^ set(self.before)) + sorted(
            name for name in set(after) & set(self.before) if after[name] != self.before[name])
        assert not changed, "files added, removed or changed (input, output or neighbours): {}".format(changed)
        assert _temp_files(self.root) == []


@pytest.mark.parametrize("case,command", PARAMS)
def test_broken_input(case, command, base, tmp_path, run_cli, monkeypatch):
    from migrate import io
    if case.name.startswith("verification_mismatch"):  # a deterministic difference, planted in the writer
        monkeypatch.setenv(io.PLANT_ENV, "freeze" if command == "convert" else command)
    run = Prepared(case, command, base, str(tmp_path))
    code, out, err = run_cli(*run.argv)
    run.check(code, out, err)


def _inspect_args(args):
    """inspect takes the options that say what to read (--tag, --checkpoint), none of the others."""
    kept = args[:2]
    for position in range(2, len(args) - 1):
        if args[position] in ("--tag", "--checkpoint"):
            kept += args[position:position + 2]
    return kept


def test_corpus_is_large_enough():
    assert len(CASES) >= 25
    assert len(set(case.name for case in CASES)) == len(CASES)


def test_debug_adds_the_traceback(base, tmp_path, run_cli):
    path = _make_truncated_pb(base, str(tmp_path))
    code, out, err = run_cli("--debug", "inspect", path)
    assert code == 2 and "Traceback" in err and path in err


# ------------------------------------------------------------------------------------------ what still works

@pytest.mark.parametrize("edit,listed", [(_unknown_op, "care/unregistered: NoSuchOpAnywhere")])
def test_inspect_describes_a_graph_this_tf_cannot_run(edit, listed, base, tmp_path, run_cli):
    """inspect reads protobufs only: an op this TF lacks is listed, not an error."""
    path = _make_frozen_edit(edit)(base, str(tmp_path))
    code, out, err = run_cli("inspect", path)
    assert code == 0, err
    assert listed in out


@pytest.mark.parametrize("which", ["ckpt_missing_var", "ckpt_wrong_shape", "ckpt_wrong_dtype"])
def test_inspect_reads_mismatched_checkpoints(which, base, tmp_path, run_cli):
    """inspect does not restore: the mismatch surfaces at freeze (above), inspect still describes both parts."""
    ckpt = _swap_weights(str(tmp_path), base, which)
    code, out, err = run_cli("inspect", ckpt)
    assert code == 0, err
    assert "weights:" in out


def test_state_file_naming_a_missing_checkpoint_falls_back_to_the_newest_present(base, tmp_path, run_cli):
    ckpt = _ckpt(base, str(tmp_path))
    _write(os.path.join(ckpt, "checkpoint"), b'model_checkpoint_path: "model.ckpt-9"\n')
    output = str(tmp_path / "frozen.pb")
    code, out, err = run_cli("freeze", ckpt, "-o", output, "--outputs", "probabilities")
    assert code == 0, err
    assert "model.ckpt-9 which is missing; using the newest present: model.ckpt-1" in out
    assert os.path.isfile(output)


def test_state_file_with_absolute_paths_elsewhere_uses_this_directory(base, tmp_path, run_cli):
    """A copied model_dir whose `checkpoint` file names the original's absolute paths: the copy is used,
    never the original."""
    ckpt = _ckpt(base, str(tmp_path))
    _write(os.path.join(ckpt, "checkpoint"), 'model_checkpoint_path: "{}"\n'.format(
        os.path.join(base["ckpt"], "model.ckpt-1")).encode())
    os.remove(os.path.join(ckpt, "model.ckpt-1.index"))  # the copy is incomplete; the original is not
    code, out, err = run_cli("inspect", ckpt)
    assert code == 2 and ckpt in err and ".index is missing" in err


def test_existing_output_is_replaced_with_force(base, tmp_path, run_cli):
    source = _frozen(base, str(tmp_path))
    output = _write(str(tmp_path / "out.pb"), b"old")
    code, out, err = run_cli("optimize", source, "-o", output, "--force", "--outputs", "probabilities")
    assert code == 0, err
    assert _read(output) != b"old"
    assert _temp_files(str(tmp_path)) == []


# ------------------------------------------------------------------------------------------ unsafe ops

def _unsafe_checkpoint(directory, op, tmp_path):
    """A checkpoint whose output `y` needs an op that touches files or runs Python."""
    secret = _write(str(tmp_path / "secret.txt"), b"0123456789")
    target = str(tmp_path / "written.txt")

    def build(x, variables):
        v1 = _v1()
        base_value = v1.matmul(x, variables["w"])
        if op == "ReadFile":
            contents = v1.read_file(v1.constant(secret), name="contents")
            size = v1.reduce_sum(v1.cast(v1.decode_raw(contents, v1.uint8), v1.float32))
            v1.identity(base_value + size, name="y")
        elif op == "WriteFile":
            write = v1.write_file(v1.constant(target), v1.constant("written by the model"), name="write")
            with v1.control_dependencies([write]):
                v1.identity(base_value, name="y")
        else:
            extra = v1.py_func(lambda value: value, [base_value], v1.float32, name="python")
            v1.identity(extra, name="y")
    return _save_checkpoint(directory, {"w": W_VALUE}, build), target


@pytest.mark.parametrize("op", ["ReadFile", "WriteFile", "PyFunc"])
def test_unsafe_op_needed_by_the_outputs_is_refused(op, tmp_path, run_cli):
    ckpt, written = _unsafe_checkpoint(str(tmp_path / "model"), op, tmp_path)
    before = _digests(ckpt)
    code, out, err = run_cli("inspect", ckpt)
    assert code == 0, err
    unsafe = [line for line in out.splitlines() if line.strip().startswith("care/unsafe: ")]
    assert unsafe and op in unsafe[0].split(": ", 1)[1].split(", "), out
    for command in FILE_OUT:
        output = str(tmp_path / (command + ".pb"))
        code, out, err = run_cli(command, ckpt, "-o", output, "--outputs", "y")
        assert code == 2, err
        line = _line_checks(err, out, Case("unsafe", (), "({})".format(op), None), ckpt)
        assert "--allow-unsafe-ops" in line
        assert not os.path.exists(output) and not os.path.exists(written)
    assert _digests(ckpt) == before
    if op == "PyFunc":
        return  # the Python function is not registered in a new process: nothing to run it with
    for command in FILE_OUT:
        output = str(tmp_path / (command + "-allowed.pb"))
        code, out, err = run_cli(command, ckpt, "-o", output, "--outputs", "y", "--allow-unsafe-ops")
        assert code == 0, err
        assert os.path.isfile(output)
    assert op != "WriteFile" or os.path.isfile(written)


def _add_write_file(graph_def, target):
    """Nodes that write `target` when run: evil/write (WriteFile of two string Consts)."""
    from tensorflow.core.framework import types_pb2
    for name, value in (("evil/name", target), ("evil/text", "pwned")):
        node = graph_def.node.add()
        node.name, node.op = name, "Const"
        node.attr["dtype"].type = types_pb2.DT_STRING
        node.attr["value"].tensor.dtype = types_pb2.DT_STRING
        node.attr["value"].tensor.string_val.append(value.encode())
    write = graph_def.node.add()
    write.name, write.op = "evil/write", "WriteFile"
    write.input.extend(["evil/name", "evil/text"])


def _hook_restore_op(base, directory, target):
    ckpt = _ckpt(base, directory)
    prefix = os.path.join(ckpt, "model.ckpt-1")
    meta = _meta(prefix)
    _add_write_file(meta.graph_def, target)
    _node(meta.graph_def, meta.saver_def.restore_op_name).input.append("^evil/write")
    _write(prefix + ".meta", meta.SerializeToString())
    return ckpt


def _hook_table_initializer(base, directory, target):
    ckpt = _ckpt(base, directory)
    prefix = os.path.join(ckpt, "model.ckpt-1")
    meta = _meta(prefix)
    _add_write_file(meta.graph_def, target)
    meta.collection_def["table_initializer"].node_list.value.append("evil/write")
    _write(prefix + ".meta", meta.SerializeToString())
    return ckpt


def _hook_legacy_init_op(base, directory, target):
    from tensorflow.core.protobuf import saved_model_pb2
    saved = _saved(base, directory)
    path = os.path.join(saved, "saved_model.pb")
    model = saved_model_pb2.SavedModel()
    with open(path, "rb") as handle:
        model.ParseFromString(handle.read())
    _add_write_file(model.meta_graphs[0].graph_def, target)
    model.meta_graphs[0].collection_def["legacy_init_op"].node_list.value.append("evil/write")
    _write(path, model.SerializeToString())
    return saved


@pytest.mark.parametrize("hook", [_hook_restore_op, _hook_table_initializer, _hook_legacy_init_op],
                         ids=["restore_op", "table_initializer", "saved_model_legacy_init_op"])
def test_ops_the_loader_runs_are_checked_too(hook, base, tmp_path, run_cli):
    """Restoring runs more than the outputs need: the model's own `save/restore_all` (and whatever it waits
    on), its table initializers, a SavedModel's init op. An unsafe op there is refused like one the outputs
    need, before anything runs."""
    target = str(tmp_path / "pwned.txt")
    source = hook(base, str(tmp_path / "input"), target)
    before = _digests(source)
    for command in FILE_OUT:
        output = str(tmp_path / (command + ".pb"))
        code, out, err = run_cli(command, source, "-o", output, "--outputs", "probabilities")
        assert code == 2, err
        _line_checks(err, out, Case("unsafe", (), "evil/write (WriteFile)", None), source)
        assert not os.path.exists(target) and not os.path.exists(output)
    assert _digests(source) == before


# ------------------------------------------------------------------------------------------ real processes

STAGE = "MIGRATE-TEST-STAGE"

# python -m migrate, with one hook that announces a stage and sleeps there: 'work' before verification
# runs (nothing at the output yet), 'write' just before the temp file beside the output is put in place
# (a streamed freeze's temp file holds the whole graph by then; an in-memory one is written at commit).
WRAPPER = r"""
import runpy, sys, time
stage = sys.argv[1]
sys.argv = ["migrate"] + sys.argv[2:]

def announce():
    sys.stdout.write("%s %s\n" % (STAGE, stage))
    sys.stdout.flush()
    time.sleep(120)

if stage == "work":
    import migrate.verification.runners as runners
    def announcing(original):
        def check_frozen(*args, **kwargs):
            announce()
            return original(*args, **kwargs)
        return check_frozen
    # freeze verifies through runners.check_frozen, streamed or in memory
    runners.check_frozen = announcing(runners.check_frozen)
elif stage == "write":  # freeze writes through a stream_target.Target whichever path froze
    import migrate.freezing.streaming.target as stream_target
    original_commit = stream_target.Target.commit
    def commit(self, frozen=None):
        announce()
        return original_commit(self, frozen)
    stream_target.Target.commit = commit
runpy.run_module("migrate", run_name="__main__", alter_sys=True)
""".replace("STAGE", repr(STAGE))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([CODE_ROOT] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # what a user has: migrate itself must keep TF quiet
    env["PYTHONUNBUFFERED"] = "1"
    return env


Job = collections.namedtuple("Job", ["process", "source", "output", "out_dir"])


@pytest.fixture(scope="module")
def processes(base, tmp_path_factory):
    """Every real process, started at once (each pays TF's import; in parallel the module stays fast)."""
    root = str(tmp_path_factory.mktemp("processes"))
    jobs = {}

    def start(name, argv, source, output, wrapped=None):
        out_dir = os.path.dirname(output) if output else root
        if wrapped:
            command = [sys.executable, "-c", WRAPPER, wrapped] + argv
        else:
            command = [sys.executable, "-m", "migrate"] + argv
        jobs[name] = Job(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                                          cwd=root, universal_newlines=True, preexec_fn=default_signals),
                         source, output, out_dir)

    for stage in ("work", "write"):
        for sig in ("SIGINT", "SIGTERM"):
            name = "{}-{}".format(stage, sig)
            directory = os.path.join(root, name)
            os.makedirs(os.path.join(directory, "out"))
            source = _copy(base["ckpt"], os.path.join(directory, "ckpt"))
            output = os.path.join(directory, "out", "frozen.pb")
            start(name, ["freeze", source, "-o", output, "--outputs", "probabilities"], source, output, stage)
    directory = os.path.join(root, "plain")
    os.makedirs(os.path.join(directory, "out"))
    source = _copy(base["ckpt"], os.path.join(directory, "ckpt"))
    output = os.path.join(directory, "out", "frozen.pb")
    start("plain-SIGTERM", ["freeze", source, "-o", output, "--outputs", "probabilities"], source, output)
    directory = os.path.join(root, "corrupt")
    os.makedirs(directory)
    source = _make_truncated_pb(base, directory)
    start("inspect-corrupt", ["inspect", source], source, None)
    source = _make_no_data(base, directory)
    output = os.path.join(directory, "frozen.pb")
    start("freeze-corrupt", ["freeze", source, "-o", output], source, output)
    yield jobs
    for job in jobs.values():
        if job.process.poll() is None:
            job.process.kill()
        job.process.wait()


@pytest.mark.parametrize("name", ["inspect-corrupt", "freeze-corrupt"])
def test_real_process_prints_one_line(name, processes):
    """At the file-descriptor level: no TF start-up chatter, no warnings, just the one line."""
    job = processes[name]
    out, err = job.process.communicate(timeout=120)
    assert job.process.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("migrate: error: " + job.source), err
    assert job.output is None or not os.path.exists(job.output)


@pytest.mark.parametrize("stage", ["work", "write"])
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_while_freezing_leaves_nothing(stage, sig, processes):
    job = processes["{}-{}".format(stage, sig)]
    before = _digests(job.source)
    line = job.process.stdout.readline()
    while line and STAGE not in line:
        line = job.process.stdout.readline()
    assert STAGE in line, "the process ended before reaching stage {}: {}".format(stage, job.process.stderr.read())
    if stage == "write":  # the window that matters: the whole graph sits in a temp file beside the output
        assert len(_temp_files(job.out_dir)) == 1
    job.process.send_signal(getattr(signal, sig))
    out, err = job.process.communicate(timeout=60)
    code = job.process.returncode
    assert code in (130, -getattr(signal, sig), 128 + getattr(signal, sig)), (code, err)
    assert "Traceback" not in err
    assert not os.path.exists(job.output), "a partial output was left behind"
    assert _temp_files(job.out_dir) == [] and os.listdir(job.out_dir) == []
    assert _digests(job.source) == before


def test_sigterm_to_plain_python_m_migrate(processes):
    """No hook: SIGTERM as soon as `python -m migrate freeze` says it is freezing. Whenever it lands, the
    result is all or nothing: exit 0 with a whole frozen graph, or no output at all; never a temp file."""
    from tensorflow.core.framework import graph_pb2
    job = processes["plain-SIGTERM"]
    before = _digests(job.source)
    line = job.process.stdout.readline()
    while line and "freezing" not in line:
        line = job.process.stdout.readline()
    assert "freezing" in line, job.process.stderr.read()
    job.process.send_signal(signal.SIGTERM)
    out, err = job.process.communicate(timeout=60)
    assert "Traceback" not in err
    if job.process.returncode != 0:
        assert job.process.returncode in (130, -signal.SIGTERM, 128 + signal.SIGTERM), err
    if os.path.exists(job.output):
        # exit 0, or the signal landed after the rename (the process was only printing): either way the
        # file is the whole frozen graph, never a part of one
        graph = graph_pb2.GraphDef()
        graph.ParseFromString(_read(job.output))
        assert any(node.name == "probabilities" for node in graph.node)
    else:
        assert job.process.returncode != 0
    assert _temp_files(job.out_dir) == []
    assert _digests(job.source) == before


# ------------------------------------------------------------------------------------------ corpus, real processes

# Real processes for the cases marked real/real_only: python -m migrate (runpy, as -m does) under an optional
# limit, reporting its peak RSS on stdout when it ends. 'memory' limits the address space to what the process
# holds once TF is imported plus VALUE MiB (a user's ulimit -v that leaves room for TF itself).
REAL_WRAPPER = r"""
import resource, runpy, sys
kind, value = sys.argv[1], int(sys.argv[2])
sys.argv = ["migrate"] + sys.argv[3:]
if kind == "fsize":  # Python ignores SIGXFSZ: a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (value, value))
elif kind == "memory":
    from migrate import tfcompat
    tfcompat.tf()
    import migrate.cli
    with open("/proc/self/status") as handle:
        size = [int(line.split()[1]) * 1024 for line in handle if line.startswith("VmSize:")][0]
    resource.setrlimit(resource.RLIMIT_AS, (size + (value << 20), size + (value << 20)))
try:
    runpy.run_module("migrate", run_name="__main__", alter_sys=True)
finally:
    sys.stdout.write("\nPEAK-RSS-KIB %d\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    sys.stdout.flush()
"""

REAL_PARAMS = [pytest.param(case, command, id="{}-{}".format(case.name, command))
               for case in CASES for command in case.real_commands()]
REAL_AT_ONCE = 3  # processes at a time: each holds a TF


@pytest.fixture(scope="module")
def real_runs(base, tmp_path_factory):
    """{(case name, command): (Prepared, exit code, stdout, stderr, seconds)} for every REAL_PARAMS run,
    REAL_AT_ONCE processes at a time."""
    root = str(tmp_path_factory.mktemp("real"))
    pending = []
    for param in REAL_PARAMS:
        case, command = param.values
        prepared = Prepared(case, command, base, os.path.join(root, "{}-{}".format(case.name, command)))
        kind, value = case.real_only or ("none", 0)
        pending.append(((case.name, command), prepared,
                        [sys.executable, "-c", REAL_WRAPPER, kind, str(value)] + prepared.argv))
    results, running = {}, []
    while pending or running:
        while pending and len(running) < REAL_AT_ONCE:
            key, prepared, argv = pending.pop(0)
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                                       cwd=prepared.root, universal_newlines=True)
            running.append((key, prepared, process, time.time()))
        key, prepared, process, started = running.pop(0)
        out, err = process.communicate(timeout=300)
        results[key] = (prepared, process.returncode, out, err, time.time() - started)
    return results


def _peak_rss_mib(out):
    marks = [line for line in out.splitlines() if line.startswith("PEAK-RSS-KIB ")]
    return int(marks[-1].split()[1]) / 1024.0 if marks else None


@pytest.mark.parametrize("case,command", REAL_PARAMS)
def test_broken_input_in_a_real_process(case, command, real_runs):
    """The corpus case in `python -m migrate`: TF's C++ logging writes straight to file descriptor 2, where
    an in-process run cannot see it; the one-line rule holds there too."""
    prepared, code, out, err, seconds = real_runs[(case.name, command)]
    prepared.check(code, out, err)
    peak = _peak_rss_mib(out)
    assert peak is not None, out
    if case.max_rss_mib is not None:
        assert peak <= case.max_rss_mib, "peak RSS {:.0f} MiB over {} MiB".format(peak, case.max_rss_mib)


def test_memory_bound_is_held_in_numbers(real_runs):
    """The 7-node graph whose Fill would be 1 G float32 (4 GiB): optimize refuses it before running, and
    the process stays far below the tensor's size (peak RSS of the whole process, TF included)."""
    for command in ("optimize", "export"):
        prepared, code, out, err, seconds = real_runs[("constant_expands_to_4gib", command)]
        peak = _peak_rss_mib(out)
        sys.stderr.write("constant_expands_to_4gib {}: exit {}, peak RSS {:.0f} MiB, {:.1f} s\n".format(
            command, code, peak, seconds))
        assert code == 2 and peak < 1536, (peak, err)


# ------------------------------------------------------------------------------------------ --force, races, full disks

def _dir_argv(command, source, output):
    if command == "convert":
        return ["convert", source, output, "--no-trt", "--outputs", "probabilities"]
    if command == "calibrate":  # its batches in the directory above the source's
        return ["calibrate", source, "--calib-data", _calib_data(os.path.dirname(source)), "-o", output,
                "--outputs", "probabilities", "--no-sensitivity"]
    return ["export", source, "-o", output, "--outputs", "probabilities"]


@pytest.mark.parametrize("command", DIR_OUT)
def test_force_replaces_a_previous_migrate_output(command, base, tmp_path, run_cli):
    """--force replaces what migrate wrote before (its marker lists every entry), and only that: the
    previous output's files are gone, the new ones in place, nothing left beside."""
    from migrate import io
    import json
    os.makedirs(str(tmp_path / "model"))
    source = _frozen(base, str(tmp_path / "model"))
    output = str(tmp_path / "result")
    code, out, err = run_cli(*_dir_argv(command, source, output))
    assert code == 0, err
    with open(os.path.join(output, io.MARKER)) as handle:
        listed = json.load(handle)["entries"]
    inside = {"export": "saved_model.pb", "convert": "saved_model/saved_model.pb",
              "calibrate": "calibration.cache"}[command]
    assert inside in listed and sorted(listed) == [e for e in io._listing(output) if e != io.MARKER]
    first = os.stat(os.path.join(output, inside)).st_ino
    code, out, err = run_cli(*_dir_argv(command, source, output))
    assert code == 2 and "output already exists" in err and "--force" in err
    code, out, err = run_cli(*(_dir_argv(command, source, output) + ["--force"]))
    assert code == 0, err
    assert os.stat(os.path.join(output, inside)).st_ino != first
    assert sorted(os.listdir(str(tmp_path))) == ["calib.npz", "model", "result"][command != "calibrate":]
    assert os.listdir(str(tmp_path / "model")) == ["frozen.pb"] and _temp_files(str(tmp_path)) == []


def _appear(path, when, directory=False):
    """A progress callback that makes `path` appear (another run's result) when a message holds `when`."""
    def progress(message):
        if when in message and not os.path.lexists(path):
            if directory:
                os.makedirs(path)
                _write(os.path.join(path, "saved_model.pb"), b"another run's result")
            else:
                _write(path, b"another run's result")
    return progress


@pytest.mark.parametrize("verb", ["freeze", "optimize", "export"])
def test_output_appearing_during_the_run_is_never_replaced(verb, base, tmp_path):
    """Without --force the output is put in place by a rename that never replaces (os.link for a file,
    renameat2(RENAME_NOREPLACE) for a directory): a result that appeared after the run's start (another
    run, finished first) stays, and this run says so in one line and leaves nothing."""
    from migrate import api
    from migrate.errors import BadInput
    source = _ckpt(base, str(tmp_path))
    before = _digests(source)
    if verb == "freeze":
        output = str(tmp_path / "frozen.pb")
        call = lambda: api.freeze(source, output, outputs=["probabilities"],  # noqa: E731
                                  progress=_appear(output, "freezing"))
    elif verb == "optimize":
        source = _frozen(base, str(tmp_path))
        before = _digests(source)
        output = str(tmp_path / "optimized.pb")
        call = lambda: api.optimize(source, output, outputs=["probabilities"],  # noqa: E731
                                    progress=_appear(output, "topo_sort"))
    else:
        output = str(tmp_path / "exported")
        call = lambda: api.export(source, output, outputs=["probabilities"],  # noqa: E731
                                  progress=_appear(output, "SavedModel with signatures", directory=True))
    with pytest.raises(BadInput) as raised:
        call()
    assert "output appeared while migrate was running" in str(raised.value) and output in str(raised.value)
    written = os.path.join(output, "saved_model.pb") if verb == "export" else output
    assert _read(written) == b"another run's result"
    assert _temp_files(str(tmp_path)) == [] and _digests(source) == before


def test_two_concurrent_runs_to_one_new_output(base, tmp_path):
    """Two `python -m migrate optimize` started together, same new output, no --force: one writes it, the
    other exits 2 (it found the output already there, or saw it appear before its own rename)."""
    from tensorflow.core.framework import graph_pb2
    source = _frozen(base, str(tmp_path))
    output = str(tmp_path / "optimized.pb")
    argv = [sys.executable, "-m", "migrate", "optimize", source, "-o", output, "--outputs", "probabilities",
            "--no-trt"]
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=str(tmp_path),
                             universal_newlines=True) for _ in range(2)]
    results = [(run.communicate(timeout=300)[1], run.returncode)[::-1] for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = [err for code, err in results if code == 2][0]
    assert len(loser.strip().splitlines()) == 1 and output in loser and (
        "output already exists" in loser or "output appeared while migrate was running" in loser), loser
    graph_pb2.GraphDef().ParseFromString(_read(output))
    assert _temp_files(str(tmp_path)) == []


def _can_mount_tmpfs():
    try:
        return subprocess.call(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                                "mount -t tmpfs -o size=4k tmpfs /mnt"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) == 0
    except OSError:
        return False


@pytest.mark.parametrize("command", ("export", "convert"))  # (calibrate writes a few KiB: under 16 KiB)
def test_disk_full_on_a_small_filesystem(command, base, tmp_path):
    """A genuinely full disk (ENOSPC from a 16 KiB tmpfs in a private mount namespace: TF's SaveV2 raises
    ResourceExhaustedError 'No space left on device'). Where user namespaces are not allowed this skips:
    the corpus case disk_full_while_writing (RLIMIT_FSIZE) covers the same code everywhere."""
    if not _can_mount_tmpfs():
        pytest.skip("cannot mount a tmpfs here (unshare --user --mount not permitted)")
    source = _saved(base, str(tmp_path))
    before = _digests(source)
    mount = str(tmp_path / "small")
    os.makedirs(mount)
    output = os.path.join(mount, "result")
    argv = [sys.executable, "-m", "migrate"] + (["convert", source, output, "--no-trt"] if command == "convert"
                                                else ["export", source, "-o", output])
    script = 'mount -t tmpfs -o size=16k tmpfs "$0" && "$@"; code=$?; echo LISTING; ls -A "$0"; exit $code'
    run = subprocess.Popen(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, mount] + argv,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), universal_newlines=True)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("migrate: error: {}: cannot write output: No space left on "
                                                   "device".format(output)), err
    assert "LISTING" in out and out.split("LISTING", 1)[1].split() == [], "left on the full disk: " + out
    assert _digests(source) == before
