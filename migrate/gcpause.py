"""Python's cyclic garbage collector paused while a step creates many small objects and frees none until it
ends (a TF-TRT plan, a graph getting one Operation per node): each of the collector's full passes walks every
object alive, and with TensorFlow loaded that costs more than the step itself on large graphs (measured: about a
third of a 10k-node plan, several percent of a 120k-node verification)."""
import contextlib
import gc


@contextlib.contextmanager
def paused():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
