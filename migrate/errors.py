"""User-facing errors and the exit codes the CLI maps them to.

Exit codes: 0 ok, 1 verification mismatch, 2 bad input (something the user can fix),
3 TensorRT required (--require-trt) but unavailable, 4 verification checked nothing (every output empty or
constant for the inputs used: nothing written), 70 internal error (a bug of migrate's: one line, --debug shows
the traceback), 130 interrupted by SIGINT (Ctrl-C; 143 for SIGTERM: the shell's 128 + signal number).
"""

import re

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2
EXIT_TRT_UNAVAILABLE = 3
EXIT_NOT_VERIFIED = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class MigrateError(Exception):
    """An error the user can fix: one line saying what, where and how to fix it."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, what, where=None, fix=None):
        self.what = what
        self.where = where
        self.fix = fix
        super(MigrateError, self).__init__(self.line())

    def relocate(self, where):
        """The same error told about `where` (a step that ran on a temp file names what the user gave)."""
        self.where = where
        self.args = (self.line(),)
        return self

    def line(self):
        text = "{}: {}".format(self.where, self.what) if self.where else self.what
        if self.fix:
            text += " ({})".format(self.fix)
        return text


class BadInput(MigrateError):
    exit_code = EXIT_BAD_INPUT


class VerificationFailed(MigrateError):
    exit_code = EXIT_MISMATCH


class TensorRTUnavailable(MigrateError):
    exit_code = EXIT_TRT_UNAVAILABLE


# Lines TF 2.x puts before (or around) the message of an error: "Graph execution error:", where the node was
# defined ("Detected at node 'r' defined at (most recent call last):", indented File lines), "Node: 'r'".
_TF_PREAMBLE = re.compile(r"^(Graph execution error:|Detected at node |Detected unsupported operations|Node: '|"
                          r"<stack traces unavailable>|Original stack trace|\s)")
_TF_NODE = re.compile(r"^Node: '([^']+)'")


def first_line(exc):
    """The first informative line of an exception's message (TF's `message` when it has one): TF 2.x opens with
    "Graph execution error:" and a stack of where the node was defined, the message itself comes later. The
    node TF names (a "Node: 'r'" line) is kept as " [node r]" when the message line does not say it."""
    text = getattr(exc, "message", None) or str(exc)
    if not isinstance(text, str):
        text = str(text)
    lines = [line for line in text.splitlines() if line.strip()]
    node = None
    for line in lines:
        match = _TF_NODE.match(line)
        if match:
            node = match.group(1)
        elif not _TF_PREAMBLE.match(line):
            line = line.strip()
            named = node and ("'{}'".format(node) in line or "node {}".format(node) in line)
            return line + " [node {}]".format(node) if node and not named else line
    return lines[0].strip() if lines else type(exc).__name__


class NotVerified(MigrateError):
    """Verification ran but checked no output (each was empty or constant for the inputs used)."""
    exit_code = EXIT_NOT_VERIFIED
