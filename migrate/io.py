"""Writing outputs atomically: a temp file beside the target, renamed into place once complete."""
import os
import re
import shutil
import signal
import tempfile
from contextlib import contextmanager

from migrate.errors import BadInput


# Files that make up one checkpoint prefix: PREFIX.meta, PREFIX.index, PREFIX.data-NNNNN-of-NNNNN, V1 PREFIX and
# PREFIX-NNNNN-of-NNNNN.
_CHECKPOINT_PART = re.compile(r"(\.meta|\.index|\.data-\d{5}-of-\d{5}|-\d{5}-of-\d{5})$")


def _landing_path(path):
    """Where a file written to `path` really lands: symlinked parent directories resolved."""
    path = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def _input_clash(target, source):
    """Why writing `target` would overwrite part of input `source`, or None."""
    real = os.path.realpath(os.path.abspath(source))
    if os.path.isdir(real):
        if target == real or target.startswith(real.rstrip(os.sep) + os.sep):
            return "output would land inside the input directory " + real
        return None
    if target == real:
        return "output is the input file itself"
    # A checkpoint prefix, or one of its files: every file of that checkpoint is input.
    prefix = _CHECKPOINT_PART.sub("", real)
    if target == prefix or (target.startswith(prefix) and _CHECKPOINT_PART.match(target[len(prefix):])):
        return "output would overwrite a file of the input checkpoint " + prefix
    # saved_model.pb given as the path: its directory is the SavedModel.
    if os.path.basename(real) in ("saved_model.pb", "saved_model.pbtxt") and \
            target.startswith(os.path.dirname(real) + os.sep):
        return "output would land inside the input SavedModel " + os.path.dirname(real)
    return None


FILE_SUFFIXES = (".pb", ".pbtxt", ".txt", ".prototxt", ".graphdef", ".json", ".npz")


def check_output_path(path, inputs=(), force=False, directory=None):
    """Refuse outputs that would clobber an input, an existing file (unless force), a directory where a file
    goes, or that cannot be written; checked before any work is done. `directory`: True when the output is a
    directory (SavedModel export), False for a file, None to tell from the name (a file suffix)."""
    target = _landing_path(path)
    for source in inputs:
        clash = _input_clash(target, source) if source else None
        if clash:
            raise BadInput(clash, path, "choose an output outside the input")
    if directory is None:
        directory = not target.endswith(FILE_SUFFIXES)
    if not directory and os.path.isdir(target):
        raise BadInput("output is a directory, not a file", path,
                       "name a file, e.g. " + os.path.join(path, "frozen.pb"))
    if os.path.lexists(target) and not force:
        raise BadInput("output already exists", path, "remove it or pass --force")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(parent):
        raise BadInput("output directory does not exist", parent, "create it first")
    if not os.path.isdir(parent):
        raise BadInput("output directory is a file, not a directory", parent, "choose an output in a directory")
    try:  # os.access says yes to root everywhere (and to read-only mounts): try it for real
        fd, probe = tempfile.mkstemp(prefix=".migrate-probe.", suffix=".tmp", dir=parent)
        os.close(fd)
        os.remove(probe)
    except (IOError, OSError) as exc:
        raise BadInput("output directory is not writable ({})".format(exc.strerror or exc), parent,
                       "choose a writable location")


@contextmanager
def _signals_deferred():
    """Hold SIGINT/SIGTERM during the final rename so an interrupt never leaves half an output."""
    pending = []
    handlers = {}

    def remember(signum, frame):
        pending.append(signum)
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            handlers[sig] = signal.signal(sig, remember)
        except ValueError:  # not the main thread
            pass
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for signum in pending:
            os.kill(os.getpid(), signum)


class Terminated(KeyboardInterrupt):
    """SIGTERM while an output is being written: unwinds like Ctrl-C, so the temp file is removed."""


@contextmanager
def _terminate_unwinds():
    """SIGTERM's default action kills the process on the spot and would leave the temp file behind:
    while one exists, turn SIGTERM into an exception that unwinds through the cleanup."""
    def unwind(signum, frame):
        raise Terminated("terminated (signal {})".format(signum))
    try:
        previous = signal.signal(signal.SIGTERM, unwind)
    except ValueError:  # not the main thread: signals go to the main thread anyway
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _write_error(exc, path):
    return BadInput("cannot write output: {}".format(exc.strerror or exc), path,
                    "check free space and permissions of the output directory")


def current_umask():
    """The process umask. Linux shows it in /proc/self/status (read without changing it); elsewhere it is
    read by setting and restoring it."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (IOError, OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _usual_mode(path, directory=False):
    """Give a temp file/dir the mode any other writer's output gets: mkstemp / mkdtemp make them 0600 / 0700,
    and that mode would survive the rename (a TF Serving account could not read the result)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def temp_file_beside(path):
    """A new empty temp file in `path`'s directory (so a rename puts it in place), with the mode the umask
    gives new files; BadInput when `path` is a directory or the file cannot be made."""
    if os.path.isdir(path):
        raise BadInput("output is a directory, not a file", path, "name a file inside it")
    try:
        fd, temp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                    dir=os.path.dirname(os.path.abspath(path)))
        os.close(fd)
        _usual_mode(temp)
    except (IOError, OSError) as exc:
        raise _write_error(exc, path)
    return temp


@contextmanager
def atomic_file(path):
    """Yield a temp path; on success it replaces `path`, on any error or interrupt it is removed."""
    with _terminate_unwinds():
        temp = temp_file_beside(path)
        try:
            yield temp
            with _signals_deferred():
                os.rename(temp, path)
        except BaseException as exc:
            if os.path.exists(temp):
                os.remove(temp)
            if isinstance(exc, (IOError, OSError)):
                raise _write_error(exc, path)
            raise


@contextmanager
def atomic_dir(path):
    """Yield a temp directory; on success it becomes `path` (replacing it), on any error it is removed."""
    directory = os.path.dirname(os.path.abspath(path))
    with _terminate_unwinds():
        try:
            temp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
            _usual_mode(temp, directory=True)
        except (IOError, OSError) as exc:
            raise _write_error(exc, path)
        try:
            yield temp
            with _signals_deferred():
                if os.path.isdir(path):
                    shutil.rmtree(path)
                os.rename(temp, path)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise


def write_graph(graph_def, path):
    """Binary for .pb, text for .pbtxt/.txt; atomically. Attrs equal to their op's default are dropped first
    (in place): newer TF adds them (FusedBatchNormV3.exponential_avg_factor) and import_graph_def writes them
    into the caller's GraphDef, but older TF and TF Serving builds refuse attrs they do not know."""
    from google.protobuf import text_format
    from migrate.graph.edit import strip_default_attrs
    strip_default_attrs(graph_def)
    with atomic_file(path) as temp:
        if path.endswith((".pbtxt", ".txt", ".prototxt")):
            with open(temp, "w") as handle:
                handle.write(text_format.MessageToString(graph_def))
        else:
            with open(temp, "wb") as handle:
                handle.write(graph_def.SerializeToString())


# ------------------------------------------------------------------------------------------ test-only hook

PLANT_ENV = "MIGRATE_TEST_PLANT"  # test-only: freeze, optimize and/or export (comma-separated)


def planted(stage):
    """True when the test-only variable MIGRATE_TEST_PLANT names `stage` (freeze, optimize, export). That stage's
    writer then moves every value of the largest float weight it writes (plant_value), so the file on disk
    differs from what the source computes: the verification that follows must fail (exit 1, nothing written).
    The tests set it to prove each verification runs what was written; it has no other use."""
    return stage in os.environ.get(PLANT_ENV, "").split(",")


def plant_value(value):
    """`value` (a float array) with every element moved by a different amount (0.5, 0.75, 1.0, 0.5, ...): no
    symmetry of the model (softmax shift, scale) can hide it."""
    import numpy as np
    value = np.asarray(value)
    moved = value.reshape(-1) + (0.5 + 0.25 * (np.arange(value.size) % 3)).astype(value.dtype)
    return moved.reshape(value.shape)


def planted_weight(named_specs):
    """The name of the largest float weight among {name: (dtype name, element count)}, or None."""
    floats = [(count, name) for name, (dtype, count) in named_specs.items()
              if dtype in ("float16", "half", "float32", "float", "float64", "double") and count]
    return max(floats)[1] if floats else None


def planted_graph_def(graph_def):
    """A copy of `graph_def` whose largest float Const holds plant_value of its value (test-only, see planted)."""
    import numpy as np
    from migrate.graph import edit
    from migrate import tfcompat
    copy = type(graph_def)()
    copy.CopyFrom(graph_def)
    specs = {}
    for node in copy.node:
        if node.op == "Const":
            dims = [d.size for d in node.attr["value"].tensor.tensor_shape.dim]
            specs[node.name] = (tfcompat.v1().as_dtype(node.attr["dtype"].type).name, int(np.prod(dims)))
    chosen = planted_weight(specs)
    for node in copy.node:
        if node.name == chosen:
            edit.make_const(node, plant_value(edit.const_value(node)), node.attr["dtype"].type)
    return copy


def plant_in(stage, graph_def, weights):
    """(graph_def, weights) as a writer of `stage` that splits a frozen graph's large Consts off as {tensor: array}
    writes them: unchanged, or (test-only, see planted) with the largest float weight moved."""
    if not planted(stage):
        return graph_def, weights
    import numpy as np
    chosen = planted_weight(dict((name, (np.asarray(value).dtype.name, np.asarray(value).size))
                                 for name, value in weights.items()))
    if chosen is None:
        return planted_graph_def(graph_def), weights
    weights = dict(weights)
    weights[chosen] = plant_value(weights[chosen])
    return graph_def, weights
