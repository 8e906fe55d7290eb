"""Writing outputs atomically: a temp file beside the target, renamed into place once complete."""
import os
import re
import shutil
import signal
import tempfile
from contextlib import contextmanager

from migrate import tfcompat
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
    landing = os.path.realpath(target)  # the target itself may be a symlink to a directory
    for place in set([target, landing]):
        if real.startswith(place.rstrip(os.sep) + os.sep):
            return "output would replace a directory that holds the input " + real
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

# Every directory migrate writes (an exported SavedModel, a convert OUT_DIR) holds this file: the list of what
# migrate put there. `--force` replaces a directory only when it is such a previous output, unchanged in what
# it holds: nothing in it but the files and directories listed (no symbolic link, nothing added).
MARKER = ".migrate-output"


def _listing(directory):
    """Sorted relative paths of everything under `directory` (directories end with '/'); symlinks are
    listed as they are, never followed."""
    found = []
    for root, dirs, files in os.walk(directory):
        relative = os.path.relpath(root, directory)
        for name in dirs:
            path = os.path.join(root, name)
            found.append(os.path.normpath(os.path.join(relative, name)) + ("" if os.path.islink(path) else "/"))
        for name in files:
            found.append(os.path.normpath(os.path.join(relative, name)))
    return sorted(found)


def write_marker(directory):
    """Record in `directory` what migrate wrote there (called on the temp directory just before it is put
    in place)."""
    import json
    from migrate import __version__
    entries = [entry for entry in _listing(directory) if entry != MARKER]
    with open(os.path.join(directory, MARKER), "w") as handle:
        json.dump({"written_by": "migrate " + __version__, "entries": entries}, handle, indent=0)
        handle.write("\n")


def _foreign_entries(directory):
    """What in `directory` migrate did not write, per its marker: [] for a previous output left as it was;
    None when there is no (readable) marker at all."""
    import json
    marker = os.path.join(directory, MARKER)
    if os.path.islink(marker) or not os.path.isfile(marker):
        return None
    try:
        with open(marker) as handle:
            written = set(json.load(handle)["entries"])
    except (IOError, OSError, ValueError, KeyError, TypeError):
        return None
    return [entry for entry in _listing(directory) if entry != MARKER and entry not in written]


def _replaceable(path):
    """BadInput unless `path` (an existing output that --force is about to replace) is a directory migrate
    wrote before and nobody added to, or a regular file."""
    if os.path.islink(path):
        raise BadInput("output is a symbolic link (to {}); --force never replaces what a link points at".format(
            os.path.realpath(path)), path, "remove the link or choose another output")
    if not os.path.isdir(path):
        if not os.path.isfile(path):
            raise BadInput("output exists and is not a regular file or directory", path, "choose another output")
        return
    foreign = _foreign_entries(path)
    if foreign is None:
        raise BadInput("output directory exists and is not a previous migrate output (no {} file); --force "
                       "replaces only what migrate wrote".format(MARKER), path,
                       "remove it yourself or choose a new directory")
    if foreign:
        raise BadInput("output directory holds {} migrate did not write ({}); --force replaces only what "
                       "migrate wrote".format("a file" if len(foreign) == 1 else "{} entries".format(len(foreign)),
                                              ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")),
                       path, "move those files away or choose a new directory")


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
    if directory and os.path.lexists(target) and not os.path.isdir(target):
        raise BadInput("output is a file, not a directory", path, "name a new directory")
    if os.path.lexists(target) and not force:
        raise BadInput("output already exists", path, "remove it or pass --force")
    if os.path.lexists(target):
        _replaceable(target)
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
def terminate_unwinds():
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


class WriteFailed(BadInput):
    """The output could not be written (disk full, permissions): named by the output, never a temp path."""


def write_error(exc, path):
    return WriteFailed("cannot write output: {}".format(exc.strerror or exc), path,
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
        raise write_error(exc, path)
    return temp


def _appeared(path):
    return BadInput("output appeared while migrate was running (another run writing it?); left as it is", path,
                    "pass --force to replace it, or choose another output")


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def _renameat2(source, target):
    """Linux renameat2(RENAME_NOREPLACE) through libc: True when done, False when this system has no such
    call (not Linux, glibc < 2.28, or a filesystem without the flag); OSError(EEXIST) when target exists."""
    import ctypes
    import errno
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.renameat2
    except (OSError, AttributeError):
        return False
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if call(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), target)


def _put_new(temp, path):
    """Rename `temp` to `path` unless something is at `path` (then OSError EEXIST)."""
    import errno
    if not os.path.isdir(temp):
        try:
            os.link(temp, path)
            os.unlink(temp)
            return
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise
            # a filesystem without hard links: renameat2 below, or the two-step fallback
    if _renameat2(temp, path):
        return
    if os.path.lexists(path):
        raise OSError(errno.EEXIST, "exists", path)
    os.rename(temp, path)


def rename_into_place(temp, path, replace):
    """Put `temp` (a file or directory beside `path`) at `path`. replace=False (no --force) never replaces
    anything that appeared at `path` meanwhile, e.g. another run's result: a file goes in by os.link (fails
    when `path` exists; the temp name is then unlinked), a directory by renameat2(RENAME_NOREPLACE). Where
    neither exists (not Linux, glibc < 2.28, a filesystem without hard links) the check and the rename are
    two steps and a result landing between them is replaced. replace=True: the previous output (checked
    by check_output_path, and again here) is moved aside, the new one renamed in, the old one removed."""
    import errno
    with _signals_deferred():
        if not replace:
            try:
                _put_new(temp, path)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    raise _appeared(path)
                raise
            return
        if os.path.lexists(path):
            _replaceable(path)  # again: it may have changed since the run started
        if os.path.isdir(path) and not os.path.islink(path):
            trash = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".old.", suffix=".tmp",
                                     dir=os.path.dirname(os.path.abspath(path)))
            aside = os.path.join(trash, "previous")
            os.rename(path, aside)
            try:
                os.rename(temp, path)
            except OSError:
                os.rename(aside, path)
                os.rmdir(trash)
                raise
            shutil.rmtree(trash)
        else:
            os.rename(temp, path)


@contextmanager
def atomic_file(path, replace=True):
    """Yield a temp path; on success it becomes `path` (see rename_into_place for `replace`), on any error or
    interrupt it is removed."""
    with terminate_unwinds():
        temp = temp_file_beside(path)
        try:
            yield temp
            rename_into_place(temp, path, replace)
        except BaseException as exc:
            if os.path.exists(temp):
                os.remove(temp)
            if isinstance(exc, (IOError, OSError)):
                raise write_error(exc, path)
            raise


@contextmanager
def atomic_dir(path, replace=False, source=None):
    """Yield a temp directory; on success it becomes `path` with a MARKER listing what it holds (replacing a
    previous migrate output only with replace=True), on any error it is removed. Errors never name the temp
    directory: a failed write there (TF's 'No space left on device' included) is a write error of `path`; a
    MigrateError whose where is inside it (a step run on a file written there) names `source`."""
    from migrate.errors import MigrateError
    directory = os.path.dirname(os.path.abspath(path))
    with terminate_unwinds():
        try:
            temp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
            _usual_mode(temp, directory=True)
        except (IOError, OSError) as exc:
            raise write_error(exc, path)
        try:
            yield temp
            write_marker(temp)
            rename_into_place(temp, path, replace)
        except BaseException as exc:
            shutil.rmtree(temp, ignore_errors=True)
            if isinstance(exc, MigrateError):
                if exc.where and exc.where.startswith(temp):
                    exc.where = path if isinstance(exc, WriteFailed) else source or path
                exc.what = exc.what.replace(temp, os.path.abspath(path))
                raise
            if isinstance(exc, (IOError, OSError)):
                raise write_error(exc, path)
            if temp in str(exc):  # TF's own write errors (ResourceExhaustedError: ...; No space left on device)
                raise WriteFailed("cannot write output: {}".format(tfcompat.write_error_reason(exc)), path,
                               "check free space and permissions of the output directory")
            raise


def write_graph(graph_def, path, replace=True):
    """Binary for .pb, text for .pbtxt/.txt; atomically. Attrs equal to their op's default are dropped first
    (in place): newer TF adds them (FusedBatchNormV3.exponential_avg_factor) and import_graph_def writes them
    into the caller's GraphDef, but older TF and TF Serving builds refuse attrs they do not know."""
    from google.protobuf import text_format
    from migrate.graph.edit import strip_default_attrs
    strip_default_attrs(graph_def)
    with atomic_file(path, replace) as temp:
        if path.endswith((".pbtxt", ".txt", ".prototxt")):
            with open(temp, "w") as handle:
                handle.write(text_format.MessageToString(graph_def))
        else:
            with open(temp, "wb") as handle:
                handle.write(graph_def.SerializeToString(deterministic=True))


# ------------------------------------------------------------------------------------------ test-only hook

PLANT_ENV = "MIGRATE_TEST_PLANT"  # test-only: freeze, optimize and/or export (comma-separated)
# Test-only, for `migrate batch`'s tests: a convert whose source's base name is listed (comma-separated) sleeps
# for an hour once its temp output directory exists (a model that hangs mid-way) / kills itself with SIGKILL
# there (as the kernel's OOM killer does, leaving the temp directory behind).
HANG_ENV = "MIGRATE_TEST_HANG"
CRASH_ENV = "MIGRATE_TEST_CRASH"


def planted_stall(source):
    """The test-only hang or crash (HANG_ENV, CRASH_ENV) when `source` is named there; nothing otherwise."""
    import time
    name = os.path.basename(os.path.normpath(source))
    if _listed_in(CRASH_ENV, name):
        os.kill(os.getpid(), signal.SIGKILL)
    if _listed_in(HANG_ENV, name):
        time.sleep(3600)


def _listed_in(variable, name):
    """True when the test-only environment variable lists `name` (comma-separated)."""
    return name in os.environ.get(variable, "").split(",")


def planted(stage):
    """True when the test-only variable MIGRATE_TEST_PLANT names `stage` (freeze, optimize, export). That stage's
    writer then moves every value of the largest float weight it writes (plant_value), so the file on disk
    differs from what the source computes: the verification that follows must fail (exit 1, nothing written).
    The tests set it to prove each verification runs what was written; it has no other use."""
    return _listed_in(PLANT_ENV, stage)


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
