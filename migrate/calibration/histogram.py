"""Per-tensor statistics kept while calibration batches stream through, and the three range methods.

AbsHistogram holds, for one tensor, the running max |x| and a histogram of |x| with BINS bins over [0, amax]:
when a later batch raises amax, the histogram collected so far is re-binned onto the new [0, amax] (each old
bin's count is spread over the new bins it overlaps, in proportion to the overlap), so memory per tensor is
BINS floats, whatever the number of batches. Non-finite values are counted apart and never enter a histogram.

Methods (each returns amax; the INT8 scale is amax / 127):
  minmax      the running max |x|.
  percentile  the right edge of the bin where the cumulative count of |x| reaches p percent.
  entropy     TensorRT's entropy calibrator (IInt8EntropyCalibrator2; "8-bit Inference with TensorRT",
              GTC 2017): for every candidate i in [LEVELS, BINS] bins, the reference P is the first i bins
              with the counts beyond them (outliers) folded into bin i-1; the candidate Q is those i bins
              (outliers excluded) merged into LEVELS groups of i // LEVELS bins (the last group takes the
              remainder), each group's count spread evenly over its bins that are non-zero in P; P and Q are
              smoothed (zeros become 1e-4, taken from the non-zero bins in proportion, as MXNet and
              onnxruntime do) and normalized; the threshold is the right edge (i * bin width) of the i with
              the smallest KL(P || Q), the first one on ties, never above amax.
"""
import numpy as np

BINS = 2048
LEVELS = 128            # INT8: 127 positive levels plus zero, as TensorRT quantizes symmetric ranges
SMOOTHING = 1e-4
INT8_MAX = 127.0
METHODS = ("entropy", "minmax", "percentile")
DEFAULT_PERCENTILE = 99.99


class AbsHistogram(object):
    """Running max |x| and a BINS-bin histogram of |x| over [0, amax] of one tensor."""

    def __init__(self, bins=BINS):
        self.bins = bins
        self.counts = np.zeros(bins, dtype=np.float64)
        self.amax = 0.0
        self.count = 0          # finite values seen
        self.non_finite = 0     # NaN / Inf values seen (left out of the histogram)

    def add(self, values):
        """Count a batch of values (numpy): the same as merge() of the batch's own histogram."""
        flat = np.abs(np.asarray(values, dtype=np.float32).ravel())
        finite = np.isfinite(flat)
        non_finite = int(flat.size - np.count_nonzero(finite))
        if non_finite:
            flat = flat[finite]
        top = max(self.amax, float(flat.max()) if flat.size else 0.0)
        counts = np.zeros(self.bins)
        if flat.size and top == 0:
            counts[0] = flat.size
        elif flat.size:
            index = (flat * (self.bins / top)).astype(np.int64)
            np.minimum(index, self.bins - 1, out=index)  # top itself belongs to the last bin
            counts = np.bincount(index, minlength=self.bins)
        self.merge(float(flat.max()) if flat.size else 0.0, top, counts, non_finite)

    def merge(self, batch_max, top, counts, non_finite=0):
        """Add a batch whose finite |x| (max batch_max) were counted in `counts`, bins over [0, top] with
        top = max(self.amax, batch_max) (the running histogram is re-binned onto [0, top] when it grew)."""
        self.non_finite += int(non_finite)
        total = float(np.sum(counts))
        if not total:
            return
        self.count += int(round(total))
        if batch_max > self.amax:
            if self.amax > 0:
                self.counts = rebin(self.counts, self.amax, top)
            self.amax = float(top)
        self.counts += counts

    @property
    def width(self):
        return self.amax / self.bins

    def edges(self):
        return np.linspace(0.0, self.amax, self.bins + 1)


def rebin(counts, old_amax, new_amax):
    """counts of a histogram over [0, old_amax] spread onto as many bins over [0, new_amax] (new_amax >
    old_amax), each old bin's count shared among the new bins it overlaps in proportion to the overlap."""
    bins = counts.size
    old_edges = np.linspace(0.0, old_amax, bins + 1)
    new_edges = np.linspace(0.0, new_amax, bins + 1)
    # cumulative count at each new edge, the old histogram's CDF being linear inside each old bin
    cdf = np.concatenate([[0.0], np.cumsum(counts)])
    at_new = np.interp(new_edges, old_edges, cdf)
    result = np.diff(at_new)
    result[result < 0] = 0.0
    return result


def minmax_amax(hist):
    return float(hist.amax)


def percentile_amax(hist, percentile=DEFAULT_PERCENTILE):
    total = hist.counts.sum()
    if total <= 0 or hist.amax == 0:
        return 0.0
    cdf = np.cumsum(hist.counts) / total
    index = int(np.searchsorted(cdf, percentile / 100.0 - 1e-12))
    index = min(index, hist.bins - 1)
    return float(min((index + 1) * hist.width, hist.amax))


def smooth(distribution, eps=SMOOTHING):
    """Zeros become eps, the same total taken from the non-zero entries evenly; None when all are zero or
    when a non-zero entry is too small to give its share (onnxruntime asserts there; the candidate is out)."""
    zeros = distribution == 0
    n_zeros = int(zeros.sum())
    n_nonzeros = distribution.size - n_zeros
    if not n_nonzeros:
        return None
    result = distribution.astype(np.float64)
    result[zeros] = eps
    result[~zeros] -= eps * n_zeros / float(n_nonzeros)
    return result if (result > 0).all() else None


def kl_divergence(p, q):
    """KL(p || q) of two positive vectors, each normalized to sum 1 first."""
    p = p / p.sum()
    q = q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def entropy_divergences(counts, levels=LEVELS):
    """[(i, KL)] for every candidate number of bins i in [levels, len(counts)]."""
    counts = np.asarray(counts, dtype=np.float64)
    bins = counts.size
    suffix = np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])  # suffix[i] = sum(counts[i:])
    result = []
    for i in range(levels, bins + 1):
        sliced = counts[:i]
        p = sliced.copy()
        p[-1] += suffix[i]
        nonzero = p != 0
        merged = i // levels
        sizes = np.full(levels, merged)
        sizes[-1] = i - merged * (levels - 1)  # the last group takes the remainder
        group_of = np.repeat(np.arange(levels), sizes)
        group_sums = np.bincount(group_of, weights=sliced, minlength=levels)
        nonzero_per_group = np.bincount(group_of, weights=nonzero, minlength=levels)
        share = np.divide(group_sums, nonzero_per_group, out=np.zeros(levels), where=nonzero_per_group > 0)
        q = np.where(nonzero, share[group_of], 0.0)
        p_s, q_s = smooth(p), smooth(q)
        result.append((i, np.inf if p_s is None or q_s is None else kl_divergence(p_s, q_s)))
    return result


def entropy_amax(hist, levels=LEVELS):
    """The KL-minimizing threshold (see the module docstring); 0 when every value is zero."""
    if hist.amax == 0 or hist.counts.sum() <= 0:
        return 0.0
    divergences = entropy_divergences(hist.counts, levels)
    best_i, best_kl = divergences[0]
    for i, kl in divergences[1:]:
        if kl < best_kl:
            best_i, best_kl = i, kl
    return float(min(best_i * hist.width, hist.amax))


def amax_for(method, hist, percentile=DEFAULT_PERCENTILE):
    if method == "entropy":
        return entropy_amax(hist)
    if method == "minmax":
        return minmax_amax(hist)
    if method == "percentile":
        return percentile_amax(hist, percentile)
    raise ValueError("unknown calibration method {!r}".format(method))


def scale(amax):
    """The INT8 scale TensorRT's cache holds: amax / 127."""
    return amax / INT8_MAX
