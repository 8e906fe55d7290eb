"""Broken and hostile inputs: one clear line, nothing lost, nothing from a model runs unasked.

A corpus of broken inputs the tests make themselves (tmp_path), from small models built with the running
TensorFlow (checkpoint dir, SavedModel, frozen .pb/.pbtxt). Each case runs every command it applies to
(inspect, freeze, optimize) and asserts:
  - exit 2 (bad input), 1 for a verification mismatch;
  - exactly one stderr line `migrate: error: WHERE: WHAT (HOW TO FIX)`: the path appears, the line names
    the problem, the fix is in parentheses; no 'Traceback' (only --debug shows one);
  - no output file left behind and no temp file (`.*.tmp`) in the output or the input directory;
  - every input file byte-identical (sha256 of each file before/after) and no file added to the input.
Real processes (python -m migrate) check what in-process runs cannot: stderr at the file-descriptor level
(TF's own C++ logging) and SIGINT/SIGTERM while the frozen graph is being computed or written.

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
import subprocess
import sys

import numpy as np
import pytest

import migrate
from migrate import tfcompat

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
    """sha256 of the file; above 64 MiB (the sparse 2 GiB graph) of its size, first and last MiB."""
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
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = _digest(path)
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
    one stderr line must hold."""

    def __init__(self, name, commands, expect, make, args=(), output=None, where=None, code=2,
                 existing_output=False):
        self.name = name
        self.commands = commands
        self.expect = expect
        self.make = make
        self.args = list(args)          # for freeze/optimize; inspect takes only --tag and --checkpoint
        self.output = output          # callable(case_dir, out_dir, source) -> output path, else out_dir/out.pb
        self.where = where            # callable(case_dir, source, output) -> path the line must name
        self.code = code
        self.existing_output = existing_output


ALL = ("inspect", "freeze", "optimize")
RUNS = ("freeze", "optimize")


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


def _make_frozen_edit(edit):
    def make(base, d):
        path = _frozen(base, d)
        _edit_graph(path, edit)
        return path
    return make


def _make_meta_edit(edit):
    def make(base, d):
        ckpt = _ckpt(base, d)
        _edit_meta(os.path.join(ckpt, "model.ckpt-1"), edit)
        return ckpt
    return make


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


def _random_graph(base, d):
    """A checkpoint whose output adds unseeded noise: two runs never agree (verification mismatch)."""
    def build(x, variables):
        v1 = _v1()
        noise = v1.random_uniform([3], name="noise")
        v1.identity(v1.matmul(x, variables["w"]) + noise, name="y")
    return _save_checkpoint(os.path.join(d, "ckpt"), {"w": W_VALUE}, build)


def _random_frozen(base, d):
    v1 = _v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 4], name="x")
        v1.identity(x + v1.random_uniform([4], name="noise"), name="y")
    return _write(os.path.join(d, "noisy.pb"), graph.as_graph_def().SerializeToString())


def _in_input(case_dir, out_dir, source):
    return os.path.join(source, "frozen.pb")


def _where_output(case_dir, source, output):
    return output


def _where_output_parent(case_dir, source, output):
    return os.path.dirname(output)


NPZ_ARGS = ["--inputs-npz", "{case}/inputs.npz", "--outputs", "probabilities"]


def _where_npz(case_dir, source, output):
    return os.path.join(case_dir, "inputs.npz")


CASES = [
    # unreadable files
    Case("empty_file", ALL, "file is empty", _make_empty),
    Case("random_bytes_pb", ALL, "not a", _make_random),
    Case("truncated_pb", ALL, "not a", _make_truncated_pb),
    Case("truncated_pbtxt", ALL, "not a valid text GraphDef", _make_truncated_pbtxt),
    Case("pbtxt_syntax_error", ALL, "not a valid text GraphDef", _make_syntax_pbtxt),
    Case("graph_over_2gib", ALL, "over protobuf's 2 GiB limit", _make_over_2gib),
    Case("truncated_meta", ALL, "not a valid MetaGraphDef", _make_truncated_meta),
    Case("corrupt_index", ALL, "cannot read checkpoint", _make_corrupt_index),
    Case("truncated_saved_model", ALL, "not a valid SavedModel", _make_corrupt_saved_model),
    # graphs nothing can run
    Case("cycle_frozen", ("inspect", "optimize"), "cycle that is not a while loop", _make_frozen_edit(_cycle)),
    Case("cycle_meta", ALL, "cycle that is not a while loop", _make_meta_edit(_cycle)),
    Case("missing_node_frozen", ("inspect", "optimize"), "reads 'no_such_node', which is not in the graph",
         _make_frozen_edit(_dangling)),
    Case("missing_node_meta", ALL, "reads 'no_such_node', which is not in the graph", _make_meta_edit(_dangling)),
    Case("unknown_op_frozen", ("optimize",), "NoSuchOpAnywhere", _make_frozen_edit(_unknown_op),
         args=["--outputs", "probabilities"]),
    Case("unknown_op_meta", RUNS, "NoSuchOpAnywhere", _make_meta_edit(_unknown_op),
         args=["--outputs", "probabilities"]),
    # checkpoints with files missing or not matching the graph
    Case("index_missing", ALL, ".index is missing", _make_no_index),
    Case("data_missing", ALL, "data shard(s) missing", _make_no_data),
    Case("data_missing_prefix", ALL, "data shard(s) missing", _make_no_data_prefix),
    Case("data_shard_1_of_2_missing", ALL, "model.ckpt-1.data-00001-of-00002", _make_missing_shard),
    Case("state_file_names_missing", ALL, "names model.ckpt-9 but no checkpoint files", _make_state_names_missing),
    Case("meta_missing", ALL, "no meta graph", _make_no_meta),
    Case("graph_without_checkpoint", ALL, "no checkpoint was found", _make_graph_without_checkpoint),
    Case("checkpoint_flag_empty_dir", ("inspect", "freeze"), "no checkpoint in", _make_graph_checkpoint_dir_empty,
         args=["--checkpoint", "{case}/empty_dir"],
         where=lambda d, s, o: os.path.join(d, "empty_dir")),
    Case("checkpoint_flag_on_checkpoint_dir", ("inspect", "freeze"), "--checkpoint applies to a graph", _ckpt,
         args=["--checkpoint", "{case}/ckpt/model.ckpt-1"]),
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
    Case("saved_model_wrong_tag", ("inspect", "freeze"), "no meta graph with tags 'train'", _saved,
         args=["--tag", "train"]),
    Case("saved_model_wrong_signature", ("freeze",), "no signature 'predict'", _saved,
         args=["--signature", "predict"]),
    Case("output_name_typo", RUNS, "did you mean: probabilities?", _saved, args=["--outputs", "probabilitis"]),
    Case("output_name_typo_frozen", ("optimize",), "did you mean: probabilities?", _frozen,
         args=["--outputs", "probabilitis"]),
    # inputs for verification
    Case("npz_is_a_directory", RUNS, "cannot read inputs", _npz_dir, where=_where_npz, args=NPZ_ARGS),
    Case("npz_not_a_zip", RUNS, "cannot read inputs", _npz_garbage, where=_where_npz, args=NPZ_ARGS),
    Case("npz_lacks_input", RUNS, "inputs missing from npz: x:0", _npz_missing, where=_where_npz, args=NPZ_ARGS),
    Case("npz_wrong_shape", RUNS, "Cannot feed value of shape (2, 5)", _npz_shape, args=NPZ_ARGS),
    # where the output goes
    Case("output_is_a_directory", RUNS, "output is a directory", _ckpt, args=["--force"],
         output=lambda d, out, s: out, where=_where_output),
    Case("output_under_a_file", RUNS, "is a file, not a directory", _ckpt,
         output=lambda d, out, s: os.path.join(_write(os.path.join(out, "a_file"), b"x"), "frozen.pb"),
         where=_where_output_parent),
    Case("output_dir_missing", RUNS, "output directory does not exist", _ckpt,
         output=lambda d, out, s: os.path.join(out, "no", "such", "frozen.pb"), where=_where_output_parent),
    Case("output_dir_not_writable", RUNS, "output directory is not writable", _ckpt,
         output=lambda d, out, s: "/proc/migrate-test-frozen.pb", where=lambda d, s, o: "/proc"),
    Case("output_inside_input_dir", RUNS, "inside the input directory", _ckpt, args=["--force"],
         output=_in_input, where=_where_output),
    Case("output_inside_input_via_symlink", RUNS, "inside the input directory", _symlinked,
         output=lambda d, out, s: os.path.join(d, "link", "frozen.pb"), where=_where_output),
    Case("output_is_checkpoint_index", ("freeze",), "overwrite a file of the input checkpoint",
         lambda base, d: os.path.join(_ckpt(base, d), "model.ckpt-1"), args=["--force"],
         output=lambda d, out, s: s + ".index", where=_where_output),
    Case("output_is_the_input", ("optimize",), "output is the input file itself", _frozen, args=["--force"],
         output=lambda d, out, s: s, where=_where_output),
    Case("output_exists", RUNS, "output already exists", _ckpt, where=_where_output,
         existing_output=True),
    # verification mismatch: exit 1, nothing written
    Case("verification_mismatch_freeze", ("freeze",), "differ beyond tolerance", _random_graph,
         args=["--outputs", "y"], code=1),
    Case("verification_mismatch_optimize", ("optimize",), "differ beyond tolerance", _random_frozen,
         args=["--outputs", "y"], code=1),
]

PARAMS = [pytest.param(case, command, id="{}-{}".format(case.name, command))
          for case in CASES for command in case.commands]


def _line_checks(err, out, case, where):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, "want exactly one stderr line, got:\n" + err
    line = lines[0]
    assert line.startswith("migrate: error: "), line
    assert "Traceback" not in err and "Traceback" not in out
    assert where in line, "the line should name {}: {}".format(where, line)
    assert case.expect in line, "the line should say '{}': {}".format(case.expect, line)
    assert line.endswith(")") and " (" in line, "the line should end with how to fix it, in parentheses: " + line
    return line


@pytest.mark.parametrize("case,command", PARAMS)
def test_broken_input(case, command, base, tmp_path, run_cli):
    case_dir = str(tmp_path / "input")
    out_dir = str(tmp_path / "out")
    os.makedirs(case_dir)
    os.makedirs(out_dir)
    source = case.make(base, case_dir)
    output = case.output(case_dir, out_dir, source) if case.output else os.path.join(out_dir, "out.pb")
    if case.existing_output:
        _write(output, b"an earlier result that must survive")
    before = _digests(case_dir)
    existing = _digests(output) if os.path.isfile(output) else None
    args = [command, source] + [arg.replace("{case}", case_dir) for arg in case.args]
    if command == "inspect":
        args = _inspect_args(args)
    else:
        args += ["-o", output]
    code, out, err = run_cli(*args)
    assert code == case.code, "exit {} (want {}): {}".format(code, case.code, err)
    where = case.where(case_dir, source, output) if case.where else source
    _line_checks(err, out, case, where)
    assert _digests(case_dir) == before, "the input changed"
    if existing is not None:
        assert _digests(output) == existing, "an existing output was touched"
    elif command != "inspect" and not case.name.startswith("output_is_a_directory"):
        assert not os.path.exists(output), "an output was left behind"
    assert _temp_files(out_dir, case_dir) == []


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
    for command in RUNS:
        output = str(tmp_path / (command + ".pb"))
        code, out, err = run_cli(command, ckpt, "-o", output, "--outputs", "y")
        assert code == 2, err
        line = _line_checks(err, out, Case("unsafe", (), "({})".format(op), None), ckpt)
        assert "--allow-unsafe-ops" in line
        assert not os.path.exists(output) and not os.path.exists(written)
    assert _digests(ckpt) == before
    if op == "PyFunc":
        return  # the Python function is not registered in a new process: nothing to run it with
    for command in RUNS:
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
    for command in RUNS:
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
    import migrate.stream as stream
    import migrate.verify as verify
    def announcing(original):
        def check_pair(*args, **kwargs):
            announce()
            return original(*args, **kwargs)
        return check_pair
    # a streamed freeze verifies through stream.check_pair, an in-memory one through verify.check_pair
    stream.check_pair = announcing(stream.check_pair)
    verify.check_pair = announcing(verify.check_pair)
elif stage == "write":  # freeze writes through a stream.Target whichever path froze
    import migrate.stream as stream
    original_commit = stream.Target.commit
    def commit(self, frozen=None):
        announce()
        return original_commit(self, frozen)
    stream.Target.commit = commit
runpy.run_module("migrate", run_name="__main__", alter_sys=True)
""".replace("STAGE", repr(STAGE))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([CODE_ROOT] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # what a user has: migrate itself must keep TF quiet
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _default_signals():
    """A shell's background job (`cmd &`) starts with SIGINT ignored and passes that on: give the child the
    disposition a user's terminal gives it, or SIGINT would be tested as "ignored" instead of as Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


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
                                          cwd=root, universal_newlines=True, preexec_fn=_default_signals),
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
    if job.process.returncode == 0:
        graph_pb2.GraphDef().ParseFromString(_read(job.output))
    else:
        assert job.process.returncode in (130, -signal.SIGTERM, 128 + signal.SIGTERM), err
        assert not os.path.exists(job.output)
    assert _temp_files(job.out_dir) == []
    assert _digests(job.source) == before
