"""Progress of long work (streaming a checkpoint's weights, ...), told to a listener the CLI sets (a click
progress bar on a terminal); without one, a no-op. Library code says what it does; it never draws."""
from contextlib import contextmanager

_LISTENER = []  # [factory(label, total) -> (advance(n), close()) or None], at most one


def set_listener(factory):
    """Install `factory` (None removes it): called as factory(label, total) when a task starts, it returns
    (advance(n), close()) to be told of the task, or None to let it pass."""
    del _LISTENER[:]
    if factory is not None:
        _LISTENER.append(factory)


def _nothing(*args):
    return None


@contextmanager
def task(label, total):
    """Yield advance(n): call it as each part of `total` units is done."""
    advance, close = (_LISTENER[0](label, total) if _LISTENER else None) or (_nothing, _nothing)
    try:
        yield advance
    finally:
        close()
