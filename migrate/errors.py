"""User-facing errors and the exit codes the CLI maps them to.

Exit codes: 0 ok, 1 verification mismatch, 2 bad input (something the user can fix),
3 TensorRT required (--require-trt) but unavailable, 4 verification checked nothing (every output empty or
constant for the inputs used: nothing written).
"""

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2
EXIT_TRT_UNAVAILABLE = 3
EXIT_NOT_VERIFIED = 4


class MigrateError(Exception):
    """An error the user can fix: one line saying what, where and how to fix it."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, what, where=None, fix=None):
        self.what = what
        self.where = where
        self.fix = fix
        super(MigrateError, self).__init__(self.line())

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


class NotVerified(MigrateError):
    """Verification ran but checked no output (each was empty or constant for the inputs used)."""
    exit_code = EXIT_NOT_VERIFIED
