"""Progress of long work (streaming a checkpoint's weights, ...), told to a listener the CLI sets (a click
progress bar on a terminal); without one, a no-op. Library code says what it does; it never draws."""
from contextlib import contextmanager

_LISTENER = []  # [factory(label, total) -> advance(n) callable with an optional .close()], at most one


def set_listener(factory):
    """Install `factory` (None removes it): called as factory(label, total) when a task starts."""
    del _LISTENER[:]
    if factory is not None:
        _LISTENER.append(factory)


@contextmanager
def task(label, total):
    """Yield advance(n): call it as each part of `total` units is done."""
    advance = _LISTENER[0](label, total) if _LISTENER else None
    try:
        yield advance or (lambda n: None)
    finally:
        close = getattr(advance, "close", None)
        if close is not None:
            close()
