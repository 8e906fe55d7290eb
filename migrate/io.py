"""Writing outputs atomically: a temp file beside the target, renamed into place once complete."""
import os
import shutil
import signal
import tempfile
from contextlib import contextmanager

from migrate.errors import BadInput


def check_output_path(path, inputs=(), force=False):
    """Refuse outputs that would clobber a file or land inside an input directory."""
    target = os.path.abspath(path)
    for source in inputs:
        source = os.path.abspath(source)
        if target == source or (os.path.isdir(source) and target.startswith(source.rstrip(os.sep) + os.sep)):
            raise BadInput("output would be written inside the input", path, "choose an output outside " + source)
    if os.path.exists(target) and not force:
        raise BadInput("output already exists", path, "remove it or pass --force")
    parent = os.path.dirname(target) or "."
    if not os.path.isdir(parent):
        raise BadInput("output directory does not exist", parent, "create it first")
    if not os.access(parent, os.W_OK):
        raise BadInput("output directory is not writable", parent, "choose a writable location")


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


@contextmanager
def atomic_file(path):
    """Yield a temp path; on success it replaces `path`, on any error it is removed."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield temp
        with _signals_deferred():
            os.rename(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise


@contextmanager
def atomic_dir(path):
    """Yield a temp directory; on success it becomes `path` (replacing it), on any error it is removed."""
    directory = os.path.dirname(os.path.abspath(path))
    temp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
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
    """Binary for .pb, text for .pbtxt/.txt; atomically."""
    from google.protobuf import text_format
    with atomic_file(path) as temp:
        if path.endswith((".pbtxt", ".txt", ".prototxt")):
            with open(temp, "w") as handle:
                handle.write(text_format.MessageToString(graph_def))
        else:
            with open(temp, "wb") as handle:
                handle.write(graph_def.SerializeToString())
