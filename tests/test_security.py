"""Models that would write files or read outside themselves, and outputs other accounts cannot read.

- A tf.print to a file (PrintV2 with output_stream "file:///path") appends to that file whenever the graph
  runs: every verb that runs a graph (freeze, optimize, export, convert, verify) refuses it (exit 2) unless
  --allow-unsafe-ops, and the file is never created. A print to the console (PrintV2 to stderr, TF 1.7's
  Print) stays allowed: strip_debug removes it, running it harms nothing.
- A SavedModel whose assets/vocab.txt is a symlink to a file outside the SavedModel: freeze would embed that
  file's content and `export --format tf1` copy it. Refused (exit 2) unless --allow-unsafe-ops.
- Outputs get the modes any other writer gives under the umask (files 0666 & ~umask, dirs 0777 & ~umask),
  not the 0600 / 0700 of the temp file they were renamed from.
"""
import os
import shutil
import stat
import sys

import numpy as np
import pytest

from migrate import tfcompat

W_VALUE = np.arange(12, dtype=np.float32).reshape(4, 3) / 10.0


def _v1():
    return tfcompat.v1()


def _has_print_v2():
    return not tfcompat.unregistered_ops(["PrintV2"])


def _print_node(graph_def, stream):
    """A PrintV2 NodeDef (written by hand, so TF 1.7, which lacks the op, gets the same graph) printing a
    constant string to `stream`; the output `y` waits on it, like a `with control_dependencies([tf.print])`."""
    message = graph_def.node.add()
    message.name = "print_message"
    message.op = "Const"
    message.attr["dtype"].type = 7  # DT_STRING
    message.attr["value"].tensor.dtype = 7
    message.attr["value"].tensor.string_val.append(b"the model ran")
    node = graph_def.node.add()
    node.name = "print"
    node.op = "PrintV2"
    node.input.append("print_message")
    node.attr["output_stream"].s = stream.encode()
    if "end" in _print_attrs():
        node.attr["end"].s = b"\n"
    [y] = [n for n in graph_def.node if n.name == "y"]
    y.input.append("^print")
    return graph_def


def _print_attrs():
    return [attr.name for attr in tfcompat.op_def("PrintV2").attr] if _has_print_v2() else []


def _graph(variable):
    v1 = _v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 4], name="x")
        w = v1.get_variable("w", initializer=W_VALUE) if variable else v1.constant(W_VALUE, name="w")
        v1.identity(v1.matmul(x, w), name="y")
    return graph


def _frozen_printing(directory, stream):
    graph_def = _print_node(_graph(False).as_graph_def(), stream)
    path = os.path.join(directory, "printing.pb")
    with open(path, "wb") as handle:
        handle.write(graph_def.SerializeToString())
    return path


def _checkpoint_printing(directory, stream):
    """A checkpoint dir whose meta graph has the file print (edited into the MetaGraphDef after saving)."""
    from tensorflow.core.protobuf import meta_graph_pb2
    v1 = _v1()
    graph = _graph(True)
    ckpt = os.path.join(directory, "ckpt")
    os.makedirs(ckpt)
    with graph.as_default():
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            prefix = saver.save(session, os.path.join(ckpt, "model.ckpt"), global_step=1)
    meta = meta_graph_pb2.MetaGraphDef()
    with open(prefix + ".meta", "rb") as handle:
        meta.ParseFromString(handle.read())
    _print_node(meta.graph_def, stream)
    with open(prefix + ".meta", "wb") as handle:
        handle.write(meta.SerializeToString())
    return ckpt


def _refused(code, err, expect, where):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, "exit {}: {}".format(code, err)
    assert len(lines) == 1 and lines[0].startswith("migrate: error: "), err
    assert where in lines[0] and expect in lines[0] and "--allow-unsafe-ops" in lines[0], lines[0]


def _verbs(source, out):
    """(verb, argv) for every verb that runs the graph; each writes under `out`."""
    return [
        ("freeze", ["freeze", source, "-o", os.path.join(out, "frozen.pb"), "--outputs", "y"]),
        ("optimize", ["optimize", source, "-o", os.path.join(out, "optimized.pb"), "--outputs", "y"]),
        ("export", ["export", source, "-o", os.path.join(out, "saved_model"), "--outputs", "y"]),
        ("export-tf1", ["export", source, "-o", os.path.join(out, "saved_model_tf1"), "--outputs", "y",
                        "--format", "tf1"]),
        ("convert", ["convert", source, os.path.join(out, "converted"), "--outputs", "y", "--no-trt"]),
        ("verify", ["verify", source, source, "--outputs", "y"]),
    ]


@pytest.mark.parametrize("kind", ["frozen", "checkpoint"])
def test_print_to_a_file_is_refused_by_every_verb(kind, tmp_path, run_cli):
    """Refused before anything runs, also in TF 1.7 (no PrintV2 op there: the check reads the NodeDef)."""
    written = str(tmp_path / "written_by_the_model.txt")
    stream = "file://" + written
    source = (_frozen_printing if kind == "frozen" else _checkpoint_printing)(str(tmp_path), stream)
    code, listing, err = run_cli("inspect", source)  # what the refusal's fix points to lists it
    assert code == 0 and "PrintV2 (to {})".format(stream) in listing, listing + err
    out = str(tmp_path / "out")
    os.makedirs(out)
    for verb, argv in _verbs(source, out):
        if kind == "frozen" and verb == "freeze":
            continue  # a frozen graph has nothing to freeze
        code, _, err = run_cli(*argv)
        _refused(code, err, "print (PrintV2 writing to {})".format(stream), source)
        assert not os.path.exists(written), verb
        assert os.listdir(out) == [], "{} left {}".format(verb, os.listdir(out))


def test_the_refused_print_really_writes_when_allowed(tmp_path, run_cli):
    """The control: with --allow-unsafe-ops, the same graph appends to the file when run (TF >= 1.13); TF 1.7
    has no PrintV2 (only Print, which writes to stderr), so there it cannot even be imported."""
    written = str(tmp_path / "written_by_the_model.txt")
    source = _frozen_printing(str(tmp_path), "file://" + written)
    code, out, err = run_cli("optimize", source, "-o", str(tmp_path / "o.pb"), "--outputs", "y",
                             "--allow-unsafe-ops", "--no-trt")
    if not _has_print_v2():
        assert code == 2 and "ops not registered in TF {}: PrintV2".format(tfcompat.version_string()) in err, err
        assert not os.path.exists(written)
        return
    assert code == 0, err
    with open(written) as handle:
        assert "the model ran" in handle.read()


def test_print_to_the_console_is_not_refused(tmp_path, run_cli):
    """PrintV2 to stderr (TF >= 1.13) or Print (TF 1.7, which writes to stderr): allowed, and strip_debug
    removes it from the optimized graph."""
    v1 = _v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 4], name="x")
        value = v1.matmul(x, v1.constant(W_VALUE, name="w"))
        if _has_print_v2():
            with v1.control_dependencies([v1.print("value", value, output_stream=sys.stderr, name="print")]):
                v1.identity(value, name="y")
            op = "PrintV2"
        else:
            v1.identity(v1.Print(value, [value], message="value", name="print"), name="y")
            op = "Print"
    source = str(tmp_path / "console.pb")
    with open(source, "wb") as handle:
        handle.write(graph.as_graph_def().SerializeToString())
    assert op in [n.op for n in graph.as_graph_def().node]
    output = str(tmp_path / "optimized.pb")
    code, out, err = run_cli("optimize", source, "-o", output, "--outputs", "y", "--no-trt")
    assert code == 0, err
    from migrate import artifacts
    assert op not in [n.op for n in artifacts.load(output).graph_def.node]


# ------------------------------------------------------------------------------------------ asset symlinks

SECRET_WORDS = ["secret-one", "secret-two", "secret-three"]


def _words_npz(tmp_path):
    path = str(tmp_path / "words.npz")
    np.savez(path, **{"words:0": np.array([w.encode() for w in SECRET_WORDS + ["cat"]])})
    return path


def _with_linked_vocab(lookup_saved_model, tmp_path, target):
    saved = str(tmp_path / "saved_model")
    shutil.copytree(lookup_saved_model, saved)
    vocab = os.path.join(saved, "assets", "vocab.txt")
    os.remove(vocab)
    os.symlink(target, vocab)
    return saved


def test_asset_symlinked_outside_the_saved_model_is_refused(lookup_saved_model, tmp_path, run_cli):
    secret = str(tmp_path / "secret.txt")
    with open(secret, "w") as handle:
        handle.write("\n".join(SECRET_WORDS) + "\n")
    saved = _with_linked_vocab(lookup_saved_model, tmp_path, secret)
    out = str(tmp_path / "out")
    os.makedirs(out)
    for verb, argv in _verbs(saved, out):
        argv = [a for a in argv if a not in ("--outputs", "y")]
        code, _, err = run_cli(*argv)
        _refused(code, err, "vocab.txt -> " + os.path.realpath(secret), saved)
        assert os.listdir(out) == [], "{} left {}".format(verb, os.listdir(out))
    # The control: allowed, freeze really embeds the outside file's words.
    frozen = os.path.join(out, "frozen.pb")
    code, _, err = run_cli("freeze", saved, "-o", frozen, "--allow-unsafe-ops", "--inputs-npz", _words_npz(tmp_path))
    assert code == 0, err
    with open(frozen, "rb") as handle:
        assert SECRET_WORDS[1].encode() in handle.read()


def test_asset_symlink_to_etc_passwd_is_refused(lookup_saved_model, tmp_path, run_cli):
    saved = _with_linked_vocab(lookup_saved_model, tmp_path, "/etc/passwd")
    output = str(tmp_path / "frozen.pb")
    code, _, err = run_cli("freeze", saved, "-o", output)
    _refused(code, err, "vocab.txt -> /etc/passwd", saved)
    assert not os.path.exists(output)


def test_asset_symlink_inside_the_saved_model_is_fine(lookup_saved_model, tmp_path, run_cli):
    """A link to a file that lies inside the SavedModel reads nothing from elsewhere."""
    saved = str(tmp_path / "saved_model")
    shutil.copytree(lookup_saved_model, saved)
    shutil.move(os.path.join(saved, "assets", "vocab.txt"), os.path.join(saved, "assets", "words.txt"))
    os.symlink("words.txt", os.path.join(saved, "assets", "vocab.txt"))
    code, _, err = run_cli("freeze", saved, "-o", str(tmp_path / "frozen.pb"), "--inputs-npz", _words_npz(tmp_path))
    assert code == 0, err


# ------------------------------------------------------------------------------------------ output modes

@pytest.fixture
def umask():
    previous = os.umask(0o022)
    os.umask(previous)

    def set_mask(mask):
        os.umask(mask)
    yield set_mask
    os.umask(previous)


def _modes(root):
    """{relative path: (is_dir, mode & 0o777)} of root and everything under it."""
    found = {".": (os.path.isdir(root), stat.S_IMODE(os.stat(root).st_mode))}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = (os.path.isdir(path), stat.S_IMODE(os.stat(path).st_mode))
    return found


@pytest.mark.parametrize("mask", [0o022, 0o077], ids=["umask022", "umask077"])
def test_outputs_get_the_modes_the_umask_gives(mask, tmp_path, run_cli, umask):
    from tests.test_broken_inputs import _mlp, _save_checkpoint
    ckpt = _save_checkpoint(str(tmp_path / "ckpt"), {"w": W_VALUE, "b": np.ones(3, np.float32)}, _mlp)
    umask(mask)
    out = str(tmp_path / "out")
    os.makedirs(out)
    frozen, optimized = os.path.join(out, "frozen.pb"), os.path.join(out, "optimized.pbtxt")
    runs = [["freeze", ckpt, "-o", frozen, "--outputs", "probabilities"],
            ["optimize", frozen, "-o", optimized, "--no-trt"],
            ["export", frozen, "-o", os.path.join(out, "saved_model")],
            ["convert", ckpt, os.path.join(out, "converted"), "--outputs", "probabilities", "--no-trt"]]
    for argv in runs:
        code, _, err = run_cli(*argv)
        assert code == 0, err
    want = {True: 0o777 & ~mask, False: 0o666 & ~mask}
    modes = {}
    for name in ("frozen.pb", "optimized.pbtxt", "saved_model", "converted"):
        for path, (is_dir, mode) in _modes(os.path.join(out, name)).items():
            modes[os.path.join(name, path)] = (is_dir, mode)
    wrong = dict((path, "{:o} (want {:o})".format(mode, want[is_dir])) for path, (is_dir, mode) in modes.items()
                 if mode != want[is_dir])
    assert wrong == {}
    assert {"frozen.pb/.", "converted/.", "converted/frozen.pb", "converted/report.json",
            "saved_model/."} <= set(modes)
