"""Helpers for tests that start real migrate processes."""
import signal


def default_signals():
    """Popen(preexec_fn=...): a shell's background job (`cmd &`) starts with SIGINT ignored and its children
    inherit that, so Ctrl-C would be tested as "ignored" instead of as Ctrl-C. Give the child the signal
    dispositions a user's terminal gives it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
