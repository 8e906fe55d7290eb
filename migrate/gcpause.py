"""Python's cyclic garbage collector paused while a step creates many small objects and frees none until it
ends (a TF-TRT plan, a graph getting one Operation per node): each of the collector's full passes walks every
object alive, and with TensorFlow loaded that costs more than the step itself on large graphs (measured: about a
third of a 10k-node plan, several percent of a 120k-node verification). young_only: collections that walk only
what a step created (a verification graph freed by one gc.collect without walking TensorFlow's own objects)."""
import contextlib
import gc
import sys


@contextlib.contextmanager
def paused():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_young = [0]  # depth of young_only blocks: only the outermost sets the old objects aside and back


@contextlib.contextmanager
def young_only():
    """Inside the block, the cyclic collector sees only objects created inside it: everything alive on entry is
    set aside (gc.freeze: Python 3.7+) and put back in the oldest generation on exit. A gc.collect() in the block
    then frees a graph built in it (a tf.Graph and its Operations hold each other) without walking the
    ~270k objects TensorFlow's modules keep alive (0.17 CPU s a collection with TF 2.21 loaded). Nothing
    collectable is lost: what was set aside is collected by the next full collection after the block, as it
    would have been. Python 3.6 (no gc.freeze): a plain block, every collection walks everything."""
    outermost = not _young[0] and sys.version_info >= (3, 7)  # gc.freeze is Python 3.7+
    _young[0] += 1
    if outermost:
        gc.freeze()
    try:
        yield
    finally:
        _young[0] -= 1
        if outermost:
            gc.unfreeze()
