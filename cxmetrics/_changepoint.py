"""Statistical primitives behind `cxmetrics.regression`.

Nothing here knows about steps, policies or reports. It holds the pieces the detector is built
from, each small enough to check on its own:

- expected normal scores of a new observation against a reference sample (a rank transform, so
  the detector is distribution-free: heavy tails and scale do not change its false-alarm rate);
- CUSUM paths over a block of increments, computed without a Python loop (Lindley recursion as a
  running minimum of the cumulative sum) together with each chart's last zero (the change point);
- CUSUM thresholds from Siegmund's ARL approximation, inflated for the uncertainty of an
  estimated baseline;
- Mann-Whitney tail probabilities, Hodges-Lehmann shifts and histogram quantiles for reporting.

docs/regression.md explains why each is there.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy import special

if TYPE_CHECKING:
    from cxmetrics.regression import Policy

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Siegmund's correction: a CUSUM with threshold h behaves like a random walk absorbed at h + 1.166
#: (for unit-variance Gaussian increments).
SIEGMUND_SHIFT = 1.166
#: Logs are floored here so that zero latencies (clock resolution) stay finite.
LOG_FLOOR = 1e-9


def norm_sf(z: float) -> float:
    """Upper tail of the standard normal, accurate far into the tail."""
    return float(0.5 * special.erfc(z / math.sqrt(2.0)))


def norm_ppf(p: float) -> float:
    return float(special.ndtri(p))


@lru_cache(maxsize=64)
def _density_at_quantiles(n: int) -> FloatArray:
    """g[j] = phi(Phi^-1(j / (n + 1))) for j = 0 .. n + 1 (g[0] = g[n + 1] = 0)."""
    u = np.arange(n + 2, dtype=np.float64) / (n + 1)
    z = special.ndtri(u[1:-1])
    g = np.zeros(n + 2)
    g[1:-1] = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    g.setflags(write=False)
    return g


def slot_scores(left: IntArray, right: IntArray, n: int) -> FloatArray:
    """Expected normal score of a new value whose rank among n reference values spans slots
    left..right (right > left when it ties with reference values).

    The new value is equally likely to occupy any of the n + 1 slots under the null hypothesis, and
    the score is E[Z | Z in the slots' normal quantile range], so scores average exactly zero
    under the null whatever the latency distribution is.
    """
    g = _density_at_quantiles(n)
    width = (right - left + 1).astype(np.float64)
    return np.asarray((n + 1) * (g[left] - g[right + 1]) / width, dtype=np.float64)


def cusum_paths(
    increments: FloatArray, start: FloatArray, last_zero: IntArray, first_index: int
) -> tuple[FloatArray, IntArray]:
    """CUSUM statistics S_t = max(0, S_{t-1} + x_t) for each row of `increments`.

    `start` holds S before the block and `last_zero` the index at which each chart was last zero;
    the block's first column has index `first_index`. Returns the paths and, for each step, the
    index of the chart's last zero (the CUSUM estimate of where the current excursion began).
    """
    cum = np.cumsum(increments, axis=1)
    floor = np.minimum.accumulate(np.concatenate([-start[:, None], cum], axis=1), axis=1)[:, 1:]
    paths = cum - floor
    idx = np.arange(first_index, first_index + increments.shape[1], dtype=np.int64)
    at_zero = np.where(paths <= 0.0, idx[None, :], np.int64(-1))
    zeros = np.maximum(np.maximum.accumulate(at_zero, axis=1), last_zero[:, None])
    return np.maximum(paths, 0.0), zeros


def cusum_threshold(k: float, alpha: float, n_reference: float) -> float | None:
    """Threshold h giving a per-sample false-alarm rate of about `alpha` for a CUSUM with
    reference value k on unit-variance increments whose null mean is estimated from
    `n_reference` samples.

    Siegmund: the false-alarm rate is about 2k^2 exp(-2k b) with b = h + 1.166. A baseline mean
    that is off by e ~ N(0, 1/n) turns k into k - e; averaging over e gives
    2k^2 exp(-2k b + 2 b^2 / n). Solving for b gives the smaller root below, which exists only
    when the reference is large enough for this k: otherwise None (the chart cannot be run).
    """
    if k <= 0.0 or not math.isfinite(k):
        return None
    log_ratio = math.log(2.0 * k * k / alpha)
    if log_ratio <= 0.0:
        return 0.0
    disc = k * k - 2.0 * log_ratio / n_reference
    if disc <= 0.0:
        return None
    b = log_ratio / (k + math.sqrt(disc))  # = n (k - sqrt(disc)) / 2, computed stably
    return max(b - SIEGMUND_SHIFT, 0.0)


def siegmund_threshold(k: float, alpha: float) -> float:
    """Threshold for a known null mean: solves (e^x - x - 1) / (2k^2) = 1/alpha, x = 2k b."""
    target = 2.0 * k * k / alpha
    x = max(math.log(target), 1.0)
    for _ in range(50):  # Newton on e^x - x - 1 = target; converges in a few steps
        step = (math.exp(x) - x - 1.0 - target) / (math.exp(x) - 1.0)
        x -= step
        if abs(step) < 1e-10:
            break
    return max(x / (2.0 * k) - SIEGMUND_SHIFT, 0.0)


def detectable_shift(k: float, h: float, n: int, power_z: float) -> float:
    """Smallest mean shift (unit-variance units) that a CUSUM (k, h) crosses within n samples with
    the power implied by `power_z` (0.8416 for 80%): n (d - k) >= h + power_z sqrt(n)."""
    return k + (h + SIEGMUND_SHIFT + power_z * math.sqrt(n)) / n


def change_point(y: FloatArray, n: FloatArray, delta_min: float) -> int:
    """Maximum-likelihood start of a mean shift of at least `delta_min` at the end of `y`.

    y holds standardized score sums and n sample counts per unit; the shift runs from the returned
    offset to the end. The log-likelihood ratio of a shift d from offset t is S_t d - N_t d^2 / 2
    (S_t, N_t: sums from t to the end), maximized over d >= delta_min. Bounding d below keeps a
    single extreme sample at the very end from outscoring a sustained shift.
    """
    s = np.cumsum(y[::-1])[::-1]
    m = np.maximum(np.cumsum(n[::-1])[::-1], 1e-12)
    d = np.maximum(s / m, delta_min)
    return int(np.argmax(s * d - 0.5 * m * d * d))


def mann_whitney_sf(
    ref_counts: FloatArray, seg_counts: FloatArray, tie_sizes: FloatArray | None = None
) -> float:
    """One-sided Mann-Whitney p-value that the segment is stochastically larger than the reference.

    Both inputs are counts over the same ordered bins (for raw samples: one bin per distinct
    value), so ties are handled with mid-ranks and the usual tie-corrected variance.
    """
    n = float(ref_counts.sum())
    m = float(seg_counts.sum())
    if n == 0.0 or m == 0.0:
        return 1.0
    below = np.cumsum(ref_counts) - ref_counts
    u = float(np.sum(seg_counts * (below + 0.5 * ref_counts)))
    t = ref_counts + seg_counts if tie_sizes is None else tie_sizes
    total = n + m
    var = n * m / 12.0 * ((total + 1.0) - float(np.sum(t**3 - t)) / (total * (total - 1.0)))
    if var <= 0.0:
        return 1.0
    return norm_sf((u - 0.5 * n * m) / math.sqrt(var))


def weighted_median(values: FloatArray, weights: FloatArray) -> float:
    order = np.argsort(values, kind="stable")
    cw = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cw, 0.5 * cw[-1])])


def hodges_lehmann(
    ref_values: FloatArray, ref_weights: FloatArray, seg_values: FloatArray, seg_weights: FloatArray
) -> float:
    """Hodges-Lehmann shift: weighted median of all pairwise differences segment - reference."""
    diffs = (seg_values[:, None] - ref_values[None, :]).ravel()
    weights = (seg_weights[:, None] * ref_weights[None, :]).ravel()
    keep = weights > 0
    return weighted_median(diffs[keep], weights[keep])


def sorted_quantile(sorted_values: FloatArray, q: float | FloatArray) -> FloatArray:
    """numpy's default ("linear") quantile of already sorted data, without re-partitioning."""
    pos = np.asarray(q, dtype=np.float64) * (sorted_values.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, sorted_values.size - 1)
    frac = pos - lo
    return np.asarray(sorted_values[lo] * (1.0 - frac) + sorted_values[hi] * frac, dtype=np.float64)


def quantile_sketch(sorted_values: FloatArray, size: int = 256) -> FloatArray:
    """`size` evenly spaced quantiles: enough to compute a Hodges-Lehmann shift to well under a
    percent without forming n*m pairwise differences."""
    if sorted_values.size <= size:
        return sorted_values
    return sorted_quantile(sorted_values, (np.arange(size) + 0.5) / size)


@lru_cache(maxsize=64)
def untied_score_sd(n: int) -> float:
    """Standard deviation of the reference's own scores when it has no ties (depends on n only)."""
    idx = np.arange(n, dtype=np.int64)
    own = slot_scores(idx, idx + 1, n)
    return float(np.sqrt(np.mean(own * own)))


def histogram_quantile(edges: FloatArray, counts: FloatArray, q: float) -> float:
    """Quantile of a histogram with bucket edges `edges` (len(counts) + 1, finite, ascending).

    Interpolates log-linearly inside a bucket whose lower edge is positive (latency buckets are
    geometric) and linearly in the first bucket when it starts at zero.
    """
    total = float(counts.sum())
    if total <= 0.0:
        return math.nan
    cum = np.cumsum(counts)
    rank = q * total
    b = int(np.searchsorted(cum, rank, side="left"))
    b = min(b, counts.size - 1)
    inside = counts[b]
    before = cum[b] - inside
    frac = 0.0 if inside <= 0 else min(max((rank - before) / inside, 0.0), 1.0)
    lo, hi = float(edges[b]), float(edges[b + 1])
    if lo > 0.0:
        return float(lo * (hi / lo) ** frac)
    return lo + (hi - lo) * frac


def robust_log_sigma(quantile: Callable[[float], float]) -> float | None:
    """Robust standard deviation of log latency from a quantile function of the latencies:
    the interquartile range of the logs over 1.349, falling back to the 10-90% range."""
    for lo, hi, width in ((0.25, 0.75, 1.3490), (0.10, 0.90, 2.5631)):
        q_lo, q_hi = float(quantile(lo)), float(quantile(hi))
        if q_lo > 0.0 and q_hi > q_lo * (1.0 + 1e-9):
            return math.log(q_hi / q_lo) / width
    return None


# ================================================================================================
# data forms: how raw samples, histogram windows and rates become CUSUM increments

#: Charts are tuned to shifts of min_change times these (a ladder: small shifts are caught late,
#: large ones early; the false-alarm budget is split evenly across the charts).
CHART_MULTIPLES = (1.0, 2.0, 5.0)
#: Rates: odds of a bad outcome up by min_change times these. Wrong answers tend to jump (a bug
#: turns 0.1% errors into 2%), and a likelihood-ratio chart costs only ln(J) in threshold.
RATE_MULTIPLES = (1.0, 2.0, 5.0, 20.0, 50.0, 100.0)
#: ... and, when the baseline is so clean that the ladder tops out below RATE_JUMP / JUMP_MARGIN
#: (bad rate under ~0.1%), one more chart tuned to a jump to RATE_JUMP bad: a fault that starts
#: failing requests does so at a rate that has nothing to do with the baseline's near-zero one.
RATE_JUMP = 0.03
JUMP_MARGIN = 3.0
RATE_CHARTS = len(RATE_MULTIPLES) + 1
#: Baseline = the latest this many samples before the guard and before any suspected change.
REFERENCE_SAMPLES = 10_000
RATE_REFERENCE_EVENTS = 100_000
#: Samples between the baseline and "now", so a change that has just begun is not yet baseline.
#: While the stream is young the guard is this fraction of the samples seen instead (never more
#: than GUARD_SAMPLES): monitoring starts once `min_samples` baseline samples exist, and the
#: baseline grows with the stream until it reaches REFERENCE_SAMPLES.
GUARD_SAMPLES = 500
GUARD_FRACTION = 0.1
#: The baseline is re-estimated after this many new samples (never while a change is suspected),
#: or after REFRESH_FRACTION of the samples seen so far if that is fewer (a young baseline grows
#: by 10% at a time, not by doubling).
REFRESH_SAMPLES = 1000
REFRESH_FRACTION = 0.1
BLOCK_SAMPLES = 1000  # samples per vectorized CUSUM step
POWER_Z = 0.8416  # 80% power
#: The latency charts are designed for half the policy's false-alarm rate: Siegmund's
#: approximation and the baseline-error correction are approximations, and the policy's rate is
#: a ceiling, not a target to hit on average (the benchmark measures the result).
DESIGN_MARGIN = 0.5


@dataclass(frozen=True)
class Comparison:
    current: float
    change: float
    p_value: float
    matters: bool


class Reference(ABC):
    """A frozen baseline and everything the CUSUMs need from it. Subclasses per data form."""

    n: float
    baseline: float
    h: FloatArray  # per-chart thresholds; inf where the baseline is too small for the chart

    def usable(self) -> bool:
        return bool(np.isfinite(self.h).any())

    @abstractmethod
    def increments(self, lo: int, hi: int) -> FloatArray: ...

    @abstractmethod
    def recovery(self, lo: int, hi: int, regressed: tuple[int, int]) -> tuple[FloatArray, float]:
        """Increments and threshold of the CUSUM that declares the step back near its baseline;
        `regressed` is the span known to be regressed so far."""
        ...

    @abstractmethod
    def compare(self, lo: int, hi: int) -> Comparison: ...

    def scores(self, lo: int, hi: int) -> tuple[FloatArray, FloatArray]:
        """Per unit: sum of unit-variance scores (mean zero at baseline), and sample counts."""
        raise TypeError(f"{type(self).__name__} locates its change point by its own likelihood")

    def min_shift(self) -> float:
        """The smallest shift that matters, in the units of `scores`."""
        raise TypeError(f"{type(self).__name__} locates its change point by its own likelihood")

    def change_point(self, lo: int, hi: int) -> int:
        """Maximum-likelihood start, in [lo, hi), of a shift that lasts to hi."""
        y, m = self.scores(lo, hi)
        return lo + change_point(y, m, self.min_shift())

    @abstractmethod
    def detectable_change(self, n_current: int) -> float | None: ...


class Series(ABC):
    """Data indexed by unit (a sample, or a window); knows how many samples each unit holds."""

    reference_size = REFERENCE_SAMPLES  # samples (events) a baseline aims for

    @abstractmethod
    def n_units(self) -> int: ...

    @abstractmethod
    def samples(self, lo: int, hi: int) -> int: ...

    @abstractmethod
    def units_back(self, pos: int, n_samples: int) -> int:
        """Largest unit u <= pos with at least n_samples samples in [u, pos) (0 if none)."""
        ...

    @abstractmethod
    def reference(
        self, lo: int, hi: int, excluded: Sequence[tuple[int, int]]
    ) -> Reference | None: ...

    def forget_before(self, unit: int) -> None:  # noqa: B027 - optional hook, most keep all
        """Data before `unit` will not be asked for again."""


# --------------------------------------------------------------------------------------------
# latency: shared normal-score machinery


class ScoreReference(Reference):
    """Baseline for latency: expected normal scores of new samples against the baseline sample.

    A shift of the log-latency distribution by d moves the mean standardized score by
    sd * d / sigma (sd < 1 only when ties or buckets hide information), so a chart tuned to a
    relative change c uses k = sd * ln(1 + c) / (2 sigma).
    """

    def __init__(
        self, n: float, sigma: float | None, sd: float, baseline: float, policy: Policy
    ) -> None:
        self.n, self.baseline, self.policy = n, baseline, policy
        if sigma is None or sd < 1e-6:  # no spread: relative shifts cannot be calibrated
            sigma, sd = 1.0, 1.0
            self.k = np.zeros(len(CHART_MULTIPLES))
            self.h = np.full(len(CHART_MULTIPLES), math.inf)
        else:
            self.k = sd * np.log1p(policy.min_change * np.array(CHART_MULTIPLES)) / (2.0 * sigma)
            self.h = split_thresholds(self.k, DESIGN_MARGIN * policy.false_alarm_rate, n)
        self.sigma, self.sd = sigma, sd

    def min_shift(self) -> float:
        return 2.0 * float(self.k[0])

    def increments(self, lo: int, hi: int) -> FloatArray:
        y, n = self.scores(lo, hi)
        return np.asarray(y[None, :] - self.k[:, None] * n[None, :], dtype=np.float64)

    def recovery(self, lo: int, hi: int, regressed: tuple[int, int]) -> tuple[FloatArray, float]:
        # Back near baseline = the mean score has fallen below half the smallest change that
        # matters (k of the first chart). Not half the estimated regressed level: that estimate
        # is biased upwards by the alarm that selected it, and would declare recovery too soon.
        y, n = self.scores(lo, hi)
        c = float(self.k[0])
        if c <= 0.0:
            return np.full(hi - lo, math.inf), 0.0
        h = siegmund_threshold(c, DESIGN_MARGIN * self.policy.false_alarm_rate)
        return np.asarray(c * n - y, dtype=np.float64), h

    def detectable_change(self, n_current: int) -> float | None:
        if n_current <= 0:
            return None
        shifts = [
            detectable_shift(float(k), float(h), n_current, POWER_Z)
            for k, h in zip(self.k, self.h, strict=True)
            if math.isfinite(h)
        ]
        if not shifts:
            return None
        return math.expm1(min(shifts) * self.sigma / self.sd)

    def _judge(self, current: float, hl: float, n_seg: float, p_value: float) -> Comparison:
        change = current / self.baseline - 1.0 if self.baseline > 0 else math.inf
        se = self.sigma * math.sqrt(math.pi / 3.0 * (1.0 / self.n + 1.0 / max(n_seg, 1.0)))
        upper = math.expm1(hl + 1.645 * se)
        matters = upper >= self.policy.min_change or change >= self.policy.min_change
        return Comparison(current, change, p_value, matters)


def split_thresholds(k: FloatArray, alpha: float, n: float) -> FloatArray:
    """Per-chart CUSUM thresholds sharing the false-alarm budget alpha; charts the baseline is
    too small for get inf and hand their share to the others."""
    h = [cusum_threshold(float(kj), alpha / k.size, n) for kj in k]
    usable = sum(x is not None for x in h)
    if 0 < usable < k.size:
        h = [
            None if x is None else cusum_threshold(float(kj), alpha / usable, n)
            for x, kj in zip(h, k, strict=True)
        ]
    return np.array([math.inf if x is None else x for x in h])


# --------------------------------------------------------------------------------------------
# latency from raw samples


class SampleSeries(Series):
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._buf = np.empty(4096)
        self._offset = 0  # absolute index of _buf[0]
        self._len = 0

    def extend(self, values: FloatArray) -> None:
        need = self._len + values.size
        if need > self._buf.size:
            grown = np.empty(max(need, 2 * self._buf.size))
            grown[: self._len] = self._buf[: self._len]
            self._buf = grown
        self._buf[self._len : need] = values
        self._len = need

    def values(self, lo: int, hi: int) -> FloatArray:
        return self._buf[lo - self._offset : hi - self._offset]

    def n_units(self) -> int:
        return self._offset + self._len

    def samples(self, lo: int, hi: int) -> int:
        return max(hi - lo, 0)

    def units_back(self, pos: int, n_samples: int) -> int:
        return max(pos - n_samples, 0)

    def forget_before(self, unit: int) -> None:
        drop = unit - self._offset
        if drop > 4 * REFERENCE_SAMPLES:  # compact rarely; memory stays O(reference + regression)
            self._buf = self._buf[drop : self._len].copy()
            self._len -= drop
            self._offset = unit

    def reference(self, lo: int, hi: int, excluded: Sequence[tuple[int, int]]) -> Reference | None:
        lo = max(lo, self._offset)
        if hi - lo <= 0:
            return None
        keep = np.ones(hi - lo, dtype=bool)
        for a, b in excluded:
            keep[max(a - lo, 0) : max(b - lo, 0)] = False
        values = self.values(lo, hi)[keep][-REFERENCE_SAMPLES:]
        if values.size < self.policy.min_samples:
            return None
        return SampleReference(self, np.sort(values), self.policy)


class SampleReference(ScoreReference):
    def __init__(self, series: SampleSeries, ref: FloatArray, policy: Policy) -> None:
        self.series, self.ref = series, ref
        n = ref.size
        sigma = robust_log_sigma(lambda q: float(sorted_quantile(ref, q)))
        if n > 1 and bool(np.any(ref[1:] == ref[:-1])):
            own = self._raw_scores(ref)
            sd = float(np.sqrt(np.mean(own * own)))
        else:
            sd = untied_score_sd(n)
        baseline = float(sorted_quantile(ref, policy.quantile))
        super().__init__(n, sigma, sd, baseline, policy)
        self.log_sketch = np.log(np.maximum(quantile_sketch(ref), LOG_FLOOR))

    def _raw_scores(self, x: FloatArray) -> FloatArray:
        left = np.searchsorted(self.ref, x, side="left").astype(np.int64)
        right = np.searchsorted(self.ref, x, side="right").astype(np.int64)
        return slot_scores(left, right, self.ref.size)

    def scores(self, lo: int, hi: int) -> tuple[FloatArray, FloatArray]:
        y = self._raw_scores(self.series.values(lo, hi)) / self.sd
        return y, np.ones(hi - lo)

    def compare(self, lo: int, hi: int) -> Comparison:
        seg = np.sort(self.series.values(lo, hi))
        current = float(sorted_quantile(seg, self.policy.quantile))
        both, inverse = np.unique(np.concatenate([self.ref, seg]), return_inverse=True)
        ref_counts = np.bincount(inverse[: self.ref.size], minlength=both.size).astype(np.float64)
        seg_counts = np.bincount(inverse[self.ref.size :], minlength=both.size).astype(np.float64)
        p_value = mann_whitney_sf(ref_counts, seg_counts)
        seg_sketch = np.log(np.maximum(quantile_sketch(seg), LOG_FLOOR))
        ones_r, ones_s = np.ones(self.log_sketch.size), np.ones(seg_sketch.size)
        hl = hodges_lehmann(self.log_sketch, ones_r, seg_sketch, ones_s)
        return self._judge(current, hl, float(seg.size), p_value)


# --------------------------------------------------------------------------------------------
# latency from histogram windows


class HistogramSeries(Series):
    def __init__(self, bounds: FloatArray, counts: FloatArray, policy: Policy) -> None:
        self.policy, self.counts = policy, counts
        last = bounds[-1] * (bounds[-1] / bounds[-2]) if bounds.size > 1 else 2.0 * bounds[-1]
        first = bounds[0] * (bounds[0] / bounds[1]) if bounds.size > 1 and bounds[0] > 0 else 0.0
        self.edges = np.concatenate([[0.0], bounds, [bounds[-1]]])  # +Inf reads as the last bound
        mids = np.sqrt(np.concatenate([[first], bounds]) * np.concatenate([bounds, [last]]))
        self.log_mids = np.log(np.maximum(mids, LOG_FLOOR))
        self.cum = np.concatenate([[0.0], np.cumsum(counts.sum(axis=1))])

    def n_units(self) -> int:
        return int(self.counts.shape[0])

    def samples(self, lo: int, hi: int) -> int:
        return round(self.cum[hi] - self.cum[lo]) if hi > lo else 0

    def units_back(self, pos: int, n_samples: int) -> int:
        target = self.cum[pos] - n_samples
        return min(max(int(np.searchsorted(self.cum, target, side="right")) - 1, 0), pos)

    def reference(self, lo: int, hi: int, excluded: Sequence[tuple[int, int]]) -> Reference | None:
        if hi <= lo:
            return None
        weight = np.ones(hi - lo)
        for a, b in excluded:
            weight[max(a - lo, 0) : max(b - lo, 0)] = 0.0
        per_window = self.counts[lo:hi].sum(axis=1) * weight
        from_end = np.cumsum(per_window[::-1])[::-1]  # samples in [w, hi) over kept windows
        start = int(np.searchsorted(-from_end, -REFERENCE_SAMPLES, side="right")) - 1
        start = max(start, 0)
        hist = (self.counts[lo:hi][start:] * weight[start:, None]).sum(axis=0)
        if hist.sum() < self.policy.min_samples:
            return None
        return HistogramReference(self, hist, self.policy)


class HistogramReference(ScoreReference):
    def __init__(self, series: HistogramSeries, hist: FloatArray, policy: Policy) -> None:
        self.series, self.hist = series, hist
        n = float(hist.sum())
        n_int = max(round(n), 1)
        below = np.cumsum(hist) - hist
        left = np.floor(below * n_int / n).astype(np.int64)
        right = np.minimum(np.floor((below + hist) * n_int / n).astype(np.int64), n_int)
        self.bucket_scores = slot_scores(left, right, n_int)
        sd = float(np.sqrt(np.sum(hist * self.bucket_scores**2) / n))
        edges = series.edges
        sigma = robust_log_sigma(lambda q: histogram_quantile(edges, hist, q))
        baseline = histogram_quantile(edges, hist, policy.quantile)
        super().__init__(n, sigma, sd, baseline, policy)
        self.unit_scores = self.bucket_scores / self.sd

    def scores(self, lo: int, hi: int) -> tuple[FloatArray, FloatArray]:
        c = self.series.counts[lo:hi]
        return np.asarray(c @ self.unit_scores, dtype=np.float64), c.sum(axis=1)

    def compare(self, lo: int, hi: int) -> Comparison:
        seg = self.series.counts[lo:hi].sum(axis=0)
        current = histogram_quantile(self.series.edges, seg, self.policy.quantile)
        p_value = mann_whitney_sf(self.hist, seg)
        mids = self.series.log_mids
        hl = hodges_lehmann(mids, self.hist, mids, seg)
        return self._judge(current, hl, float(seg.sum()), p_value)


# --------------------------------------------------------------------------------------------
# rates


class RateSeries(Series):
    reference_size = RATE_REFERENCE_EVENTS

    def __init__(self, good: FloatArray, total: FloatArray, policy: Policy) -> None:
        self.good, self.total, self.policy = good, total, policy
        self.bad = total - good
        self.cum = np.concatenate([[0.0], np.cumsum(total)])

    def n_units(self) -> int:
        return int(self.total.size)

    def samples(self, lo: int, hi: int) -> int:
        return round(self.cum[hi] - self.cum[lo]) if hi > lo else 0

    def units_back(self, pos: int, n_samples: int) -> int:
        target = self.cum[pos] - n_samples
        return min(max(int(np.searchsorted(self.cum, target, side="right")) - 1, 0), pos)

    def reference(self, lo: int, hi: int, excluded: Sequence[tuple[int, int]]) -> Reference | None:
        if hi <= lo:
            return None
        weight = np.ones(hi - lo)
        for a, b in excluded:
            weight[max(a - lo, 0) : max(b - lo, 0)] = 0.0
        tot = self.total[lo:hi] * weight
        from_end = np.cumsum(tot[::-1])[::-1]
        start = max(int(np.searchsorted(-from_end, -self.reference_size, side="right")) - 1, 0)
        n = float(tot[start:].sum())
        if n < self.policy.min_samples:
            return None
        bad = float((self.bad[lo:hi] * weight)[start:].sum())
        return RateReference(self, n, bad, self.policy)


def rate_targets(p_upper: float, min_change: float) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Bad-outcome rates the rate charts are tuned to (the odds ladder, then the jump), and
    whether each is in use: the jump chart only when the ladder tops out far below it."""
    odds = p_upper / (1.0 - p_upper) * (1.0 + min_change * np.array(RATE_MULTIPLES))
    ladder = odds / (1.0 + odds)
    top = float(ladder[-1])
    jump_used = JUMP_MARGIN * top < RATE_JUMP
    p1 = np.append(ladder, RATE_JUMP if jump_used else top)
    return p1, np.append(np.ones(ladder.size, dtype=bool), jump_used)


class RateReference(Reference):
    """Bernoulli likelihood-ratio CUSUMs on bad events.

    The baseline bad rate is taken at its 99.87% upper confidence bound, so an unlucky baseline
    cannot make normal traffic look worse; charts are tuned to the bad-outcome odds growing by
    min_change times RATE_MULTIPLES, and from a clean baseline to a jump to RATE_JUMP bad
    (`rate_targets`). An LLR CUSUM with threshold ln(J / alpha), J the charts in use, has a
    false-alarm rate of at most alpha / J per event (Wald), with no distributional approximation.
    """

    def __init__(self, series: RateSeries, n: float, bad: float, policy: Policy) -> None:
        self.series, self.n, self.policy = series, n, policy
        self.p0 = min(max(bad, 0.5) / n, 1.0 - 0.5 / n)
        self.p_upper = min(float(special.gammaincinv(bad + 1.0, 0.99865)) / n, 1.0 - 0.5 / n)
        self.baseline = 1.0 - bad / n
        p1, used = rate_targets(self.p_upper, policy.min_change)
        self.a = np.log(p1 / self.p_upper)
        self.b = np.log((1.0 - p1) / (1.0 - self.p_upper))
        self.h = np.where(used, math.log(int(used.sum()) / policy.false_alarm_rate), math.inf)
        if bad >= n:  # nothing good to lose (and the bound, capped below 1, would see a drop)
            self.h = np.full(self.h.size, math.inf)

    def usable(self) -> bool:
        return True  # even with no chart running: a rate that is all bad is watched, and stable

    def change_point(self, lo: int, hi: int) -> int:
        # Bernoulli likelihood, not the Gaussian score approximation: with rare bad events the
        # Gaussian one favours the shortest span holding the bad events, so it places the start
        # at the first failure after the change rather than at the change.
        odds = self.p0 / (1.0 - self.p0) * (1.0 + self.policy.min_change)
        p_min = odds / (1.0 + odds)
        bad = np.cumsum(self.series.bad[lo:hi][::-1])[::-1]
        tot = np.maximum(np.cumsum(self.series.total[lo:hi][::-1])[::-1], 1e-12)
        p = np.clip(bad / tot, p_min, 1.0 - 1e-12)
        llr = bad * np.log(p / self.p0) + (tot - bad) * np.log((1.0 - p) / (1.0 - self.p0))
        return lo + int(np.argmax(llr))

    def increments(self, lo: int, hi: int) -> FloatArray:
        bad, good = self.series.bad[lo:hi], self.series.good[lo:hi]
        return np.asarray(
            self.a[:, None] * bad[None, :] + self.b[:, None] * good[None, :], dtype=np.float64
        )

    def recovery(self, lo: int, hi: int, regressed: tuple[int, int]) -> tuple[FloatArray, float]:
        # Likelihood ratio of "back at the baseline rate" against "still at least as bad as the
        # regressed span's 99.87% lower bound" (never less than min_change worse). The lower
        # bound, not the estimate: the estimate is inflated by the alarm that selected the span.
        odds = self.p0 / (1.0 - self.p0) * (1.0 + self.policy.min_change)
        p1 = odds / (1.0 + odds)
        a, b = regressed
        seen = float(self.series.total[a:b].sum())
        seen_bad = float(self.series.bad[a:b].sum())
        if seen > 0 and seen_bad > 0:
            p1 = max(p1, float(special.gammaincinv(seen_bad, 0.00135)) / seen)
        p1 = min(p1, 1.0 - 0.5 / max(seen, self.n))
        bad, good = self.series.bad[lo:hi], self.series.good[lo:hi]
        inc = bad * math.log(self.p0 / p1) + good * math.log((1.0 - self.p0) / (1.0 - p1))
        return np.asarray(inc, dtype=np.float64), math.log(1.0 / self.policy.false_alarm_rate)

    def compare(self, lo: int, hi: int) -> Comparison:
        m = float(self.series.total[lo:hi].sum())
        bad = float(self.series.bad[lo:hi].sum())
        if m <= 0.0:
            return Comparison(math.nan, 0.0, 1.0, False)
        current = 1.0 - bad / m
        change = (self.baseline - current) / self.baseline if self.baseline > 0 else 0.0
        pooled = (bad + self.n * (1.0 - self.baseline)) / (m + self.n)
        se = math.sqrt(max(pooled * (1.0 - pooled) * (1.0 / m + 1.0 / self.n), 1e-300))
        p_value = norm_sf((bad / m - (1.0 - self.baseline)) / se)
        bad0 = self.n * (1.0 - self.baseline)
        log_or = math.log((bad + 0.5) * (self.n - bad0 + 0.5) / ((m - bad + 0.5) * (bad0 + 0.5)))
        se_or = math.sqrt(
            1 / (bad + 0.5) + 1 / (m - bad + 0.5) + 1 / (bad0 + 0.5) + 1 / (self.n - bad0 + 0.5)
        )
        matters = math.expm1(log_or + 1.645 * se_or) >= self.policy.min_change
        return Comparison(current, change, p_value, matters)

    def detectable_change(self, n_current: int) -> float | None:
        if n_current <= 0 or self.baseline <= 0.0:  # nothing good left to drop
            return None
        n = float(n_current)
        best: float | None = None
        for a, b, h in zip(self.a.tolist(), self.b.tolist(), self.h.tolist(), strict=True):

            def margin(p: float, a: float = a, b: float = b) -> float:
                # expected CUSUM gain over n events at bad rate p, less 0.84 sd (80% power)
                return n * (p * a + (1 - p) * b) - POWER_Z * math.sqrt(n * p * (1 - p)) * (a - b)

            lo, hi = self.p_upper, 1.0 - 1e-9
            if margin(hi) < h:
                continue
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if margin(mid) < h else (lo, mid)
            drop = (hi - (1.0 - self.baseline)) / self.baseline
            best = drop if best is None else min(best, drop)
        return best
