"""compare.py on its own: real numpy arrays, the numbers it reports, NaN/Inf, empty and constant outputs,
tolerances, and the errors it raises (the one place a failed comparison says nothing was written)."""
import numpy as np
import pytest

from migrate.errors import NotVerified, VerificationFailed
from migrate.verification import compare as c
from migrate.verification.feeds import Results


def _one(expected, actual, **tolerances):
    rows = c.compare({"y:0": np.asarray(expected)}, {"y:0": np.asarray(actual)}, **tolerances)
    assert [row.output for row in rows] == ["y:0"]
    return rows[0]


def test_identical_outputs_are_ok_with_zero_error():
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    row = _one(x, x.copy())
    assert (row.ok, row.checked, row.max_abs, row.max_rel, row.mismatch) == (True, True, 0.0, 0.0, 0.0)
    assert (row.shape, row.dtype) == ((3, 4), "float32") and c.status(row) == c.OK


def test_max_abs_rel_error_and_mismatch_fraction_are_measured():
    expected = np.array([1.0, 2.0, 4.0, -8.0])
    actual = np.array([1.0, 2.5, 4.0, -8.0])
    row = _one(expected, actual)
    assert row.max_abs == pytest.approx(0.5) and row.max_rel == pytest.approx(0.25)
    assert row.mismatch == pytest.approx(0.25) and row.ok is False and c.status(row) == c.MISMATCH


def test_tolerances_decide_like_numpy_isclose():
    expected = np.array([100.0, 1.0], dtype=np.float32)
    actual = expected + np.array([1e-3, 1e-3], dtype=np.float32)
    assert _one(expected, actual, rtol=1e-5, atol=1e-5).ok is False
    loose_rel = _one(expected, actual, rtol=2e-3, atol=0.0)  # 1e-3 <= 2e-3 * 1.0 and <= 2e-3 * 100
    assert loose_rel.ok is True
    row = _one(expected, actual, rtol=0.0, atol=5e-4)
    assert row.ok is False and row.mismatch == pytest.approx(1.0)
    assert _one(expected, actual, rtol=0.0, atol=2e-3).ok is True


def test_nan_matches_nan_only_and_inf_matches_same_sign_inf():
    assert _one([np.nan, 1.0], [np.nan, 1.0]).ok is True
    row = _one([np.nan, 1.0], [0.0, 1.0])
    assert row.ok is False and row.mismatch == pytest.approx(0.5)
    assert _one([np.inf, -np.inf], [np.inf, -np.inf]).ok is True
    assert _one([np.inf], [-np.inf]).ok is False
    assert _one([1.0], [np.inf]).ok is False


def test_shape_difference_and_missing_output_fail():
    row = _one(np.zeros((2, 3)), np.zeros((3, 2)))
    assert row.ok is False and row.shape == "(2, 3) vs (3, 2)" and row.mismatch == 1.0
    rows = c.compare({"y:0": np.zeros(3), "z:0": np.ones(2)}, {"y:0": np.zeros(3)})
    assert [(r.output, r.ok) for r in rows] == [("y:0", True), ("z:0", False)]
    assert c.failed_outputs(rows) == ["z:0"]


def test_strings_and_bools_compare_exactly():
    assert _one(np.array([b"a", b"b"]), np.array([b"a", b"b"])).ok is True
    row = _one(np.array([b"a", b"b"]), np.array([b"a", b"c"]))
    assert row.ok is False and row.mismatch == pytest.approx(0.5) and row.max_abs is None
    assert _one(np.array([True, False]), np.array([True, True])).ok is False


def test_empty_output_is_not_checked_and_never_a_pass():
    row = _one(np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32))
    assert row.ok is True and row.checked is False and c.status(row) == c.NOT_CHECKED
    assert "empty (0 elements)" in row.reason
    with pytest.raises(NotVerified) as raised:
        c.require_checked([row], "model_dir")
    assert raised.value.exit_code == 4 and "nothing was written" in str(raised.value)


def test_output_constant_over_two_generated_batches_is_not_checked():
    expected = Results({"y:0": np.full(3, 7.0), "z:0": np.arange(3.0)})
    expected.origin = "the generated inputs (seeds 0 and 1)"
    expected.alternate = {"y:0": np.full(3, 7.0), "z:0": np.arange(3.0) + 1}
    rows = c.compare(expected, {"y:0": np.full(3, 7.0), "z:0": np.arange(3.0)})
    assert [(r.output, c.status(r)) for r in rows] == [("y:0", c.NOT_CHECKED), ("z:0", c.OK)]
    assert "identical for two generated batches" in rows[0].reason
    c.require_checked(rows, "model_dir")  # one output checked: enough


def test_all_ok_needs_at_least_one_row():
    assert c.compare({}, {}) == []
    assert c.all_ok([]) is False and c.failed_outputs([]) == ["no outputs were compared"]
    assert c.all_ok(c.compare({"y:0": np.ones(2)}, {"y:0": np.ones(2)})) is True


def test_require_ok_is_the_one_nothing_written_error():
    rows = c.compare({"y:0": np.ones(2), "z:0": np.ones(2)}, {"y:0": np.ones(2), "z:0": np.zeros(2)})
    with pytest.raises(VerificationFailed) as raised:
        c.require_ok(rows, "out.pb", "optimize changed the outputs: {}", "see the errors above; nothing was written")
    assert raised.value.exit_code == 1
    assert str(raised.value) == "out.pb: optimize changed the outputs: z:0 (see the errors above; nothing was written)"
    with pytest.raises(VerificationFailed, match="no outputs were compared"):
        c.require_ok([], "out.pb", "differ: {}", "fix")
    c.require_ok(rows[:1], "out.pb", "differ: {}", "fix")  # all within tolerance: no error


def test_require_signatures_ok_names_the_bad_signatures_or_none_compared():
    good = c.compare({"y:0": np.arange(3.0)}, {"y:0": np.arange(3.0)})
    bad = c.compare({"y:0": np.arange(3.0)}, {"y:0": np.zeros(3)})
    c.require_signatures_ok({"serving_default": good}, "differs in ", "out", "src")
    with pytest.raises(VerificationFailed) as raised:
        c.require_signatures_ok({"a": bad, "b": good, "c": bad}, "differs in ", "out", "src")
    assert str(raised.value) == "out: differs in a, c (nothing was written; see the errors above)"
    with pytest.raises(VerificationFailed, match=r"differs in \(none compared\)"):
        c.require_signatures_ok({}, "differs in ", "out", "src")


def test_format_rows_shows_each_status():
    rows = c.compare({"a:0": np.ones(2), "b:0": np.ones(2), "e:0": np.zeros(0)},
                     {"a:0": np.ones(2), "b:0": np.zeros(2), "e:0": np.zeros(0)})
    text = c.format_rows(rows)
    assert "OK   a:0 shape=[2] dtype=float64 max_abs_err=0 max_rel_err=0 mismatch=0.00%" in text
    assert "FAIL b:0 shape=[2] dtype=float64 max_abs_err=1 max_rel_err=1 mismatch=100.00%" in text
    assert "NOT CHECKED e:0 shape=[0] dtype=float64: empty (0 elements)" in text
    assert "checked 2 of 3 outputs; not checked: e:0" in text
