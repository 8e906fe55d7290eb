"""The one comparison of verification: two {output: array} runs -> [Comparison] per output (max abs / rel error,
mismatch fraction, status OK / MISMATCH / NOT CHECKED and why), and the one place a failed comparison becomes
the error that says nothing was written (require_ok, require_signatures_ok) or checked nothing (require_checked).

all_ok([]) is False: a comparison that compared nothing never passes."""
from collections import namedtuple

import numpy as np

from migrate.verification.feeds import Results


# ok: no mismatch beyond tolerance. checked: False when the comparison proves nothing (the reference output is
# empty, or the same for two generated batches of different inputs); `reason` then says why. A row that is
# ok but not checked is never reported as OK (format_rows, require_checked, report.comparisons_dict).
Comparison = namedtuple("Comparison", ["output", "shape", "dtype", "max_abs", "max_rel", "mismatch", "ok",
                                       "checked", "reason"])
Comparison.__new__.__defaults__ = (True, None)


UNCHECKED_HINT = "pass --inputs-npz with inputs that give the outputs varying, non-empty values"


def compare(reference, candidate, rtol=1e-5, atol=1e-5):
    """Per-output Comparison of two {tensor: array} dicts (matched by name). A reference output that is empty,
    or (reference a Results with an alternate run) the same for both generated batches, is not checked."""
    rows = []
    alternate = getattr(reference, "alternate", None)
    origin = getattr(reference, "origin", Results.origin)
    for name in sorted(reference):
        expected = np.asarray(reference[name])
        if name not in candidate:
            rows.append(Comparison(name, expected.shape, expected.dtype.name, None, None, 1.0, False))
            continue
        actual = np.asarray(candidate[name])
        row = _compare_one(name, expected, actual, rtol, atol)
        if not row.ok:
            row = row._replace(reason=_random_reason(reference, name))
        else:
            reason = _unchecked_reason(expected, None if alternate is None else alternate.get(name), origin)
            row = row._replace(checked=False, reason=reason) if reason else row
        rows.append(row)
    return rows


OK, MISMATCH, NOT_CHECKED = "OK", "MISMATCH", "NOT CHECKED"


def status(row):
    """OK (compared within tolerance), MISMATCH, or NOT CHECKED (within tolerance but proves nothing: row.reason
    says why)."""
    if not row.ok:
        return MISMATCH
    return OK if row.checked else NOT_CHECKED


def all_ok(rows):
    """True when every output compared within tolerance and there was at least one: a comparison with no rows
    compared nothing, which is never a pass (all() of an empty list is True)."""
    return bool(rows) and all(row.ok for row in rows)


def failed_outputs(rows):
    """The outputs that differ, or a phrase saying nothing was compared."""
    return [row.output for row in rows if not row.ok] if rows else ["no outputs were compared"]


def require_ok(rows, where, what, fix):
    """VerificationFailed (exit 1) unless all_ok(rows): the one place a failed comparison becomes the error.
    what: the message with '{}' where the failed outputs go (or the phrase saying none was compared)."""
    if not all_ok(rows):
        _fail(what.format(", ".join(failed_outputs(rows))), where, "; ".join(_reasons(rows) + [fix]))


def _reasons(rows):
    """The distinct reasons the failed rows give (a random op each reads), in row order."""
    reasons = []
    for row in rows:
        if not row.ok and row.reason and row.reason not in reasons:
            reasons.append(row.reason)
    return reasons


def require_signatures_ok(comparisons, what, where, source):
    """{signature: rows} of an exported SavedModel against its source: a mismatch (or no signature compared at
    all) is VerificationFailed naming the signatures; then every output must have been checked."""
    bad = sorted(name for name, rows in comparisons.items() if not all_ok(rows)) or (
        [] if comparisons else ["(none compared)"])
    if bad:
        _fail(what + ", ".join(bad), where, "nothing was written; see the errors above")
    require_checked([row for rows in comparisons.values() for row in rows], source)


def _fail(what, where, fix):
    from migrate.errors import VerificationFailed
    raise VerificationFailed(what, where, fix)


def _random_reason(reference, name):
    """Why `name` differs when it reads a random op (reference.random: a callable giving {output: reason},
    called once, on the first output that differs), else None."""
    random = reference.random if isinstance(reference, Results) else None
    if random is None:
        return None
    if not isinstance(random, dict):
        random = reference.random = random()
    return random.get(name)


def _unchecked_reason(expected, alternate, origin):
    if expected.size == 0:
        return "empty (0 elements) for {}".format(origin)
    if alternate is not None:
        other = np.asarray(alternate)
        if _identical(expected, other):
            return "identical for two generated batches of different inputs ({}): the generated inputs do not " \
                   "reach it".format(origin)
    return None


def _compare_one(name, expected, actual, rtol, atol):
    if expected.shape != actual.shape:
        return Comparison(name, "{} vs {}".format(expected.shape, actual.shape), expected.dtype.name, None, None,
                          1.0, False)
    if expected.dtype.kind in "OSUb" or actual.dtype.kind in "OSU":
        equal = expected == actual
        mismatch = float(1.0 - np.mean(equal)) if equal.size else 0.0
        return Comparison(name, expected.shape, expected.dtype.name, None, None, mismatch, mismatch == 0.0)
    exp = expected.astype(np.float64)
    act = actual.astype(np.float64)
    diff = np.abs(exp - act)
    rel = diff / np.maximum(np.abs(exp), 1e-12)
    bad = ~np.isclose(act, exp, rtol=rtol, atol=atol, equal_nan=True)
    return Comparison(name, expected.shape, expected.dtype.name, float(diff.max()) if diff.size else 0.0,
                      float(rel.max()) if rel.size else 0.0, float(bad.mean()) if bad.size else 0.0,
                      not bad.any())


def _identical(a, b):
    if a.shape != b.shape:
        return False
    if a.dtype.kind not in "fc" or b.dtype.kind not in "fc":
        return bool(np.array_equal(a, b))
    return bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))  # equal_nan= needs numpy 1.19


def format_rows(rows):
    lines = []
    for row in rows:
        shape = list(row.shape) if not isinstance(row.shape, str) else row.shape
        if row.ok and not row.checked:
            lines.append("  NOT CHECKED {} shape={} dtype={}: {}".format(row.output, shape, row.dtype, row.reason))
            continue
        lines.append("  {} {} shape={} dtype={} max_abs_err={} max_rel_err={} mismatch={:.2%}".format(
            "OK  " if row.ok else "FAIL", row.output, shape, row.dtype, _num(row.max_abs), _num(row.max_rel),
            row.mismatch) + (": " + row.reason if not row.ok and row.reason else ""))
    unchecked = [row for row in rows if row.ok and not row.checked]
    if unchecked:
        checked = sum(1 for row in rows if row.checked)
        lines.append("  checked {} of {} outputs; not checked: {} ({})".format(
            checked, len(rows), ", ".join(row.output for row in unchecked), UNCHECKED_HINT))
    return "\n".join(lines)


def require_checked(rows, where, progress=None, writes=True):
    """NotVerified (exit 4) when rows exist, none failed and none was checked: nothing was verified.
    progress: where to print the rows first (the verbs that write raise before the CLI prints them)."""
    if not rows or not all(row.ok for row in rows) or any(row.checked for row in rows):
        return
    from migrate.errors import NotVerified
    if progress is not None:
        progress(format_rows(rows))
    reasons = []
    for row in rows:
        if row.reason not in reasons:
            reasons.append(row.reason)
    raise NotVerified("verification checked nothing: {} output(s) not checked ({})".format(
        len(rows), "; ".join(reasons)), where,
        UNCHECKED_HINT + (", or --no-verify to write it unverified; nothing was written" if writes else ""))


def _num(value):
    return "n/a" if value is None else "{:.3g}".format(value)
