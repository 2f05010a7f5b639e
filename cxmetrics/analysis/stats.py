"""Statistical primitives behind `cxmetrics.analysis.regression` (the data forms are in
`changepoint`).

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
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy import special

if TYPE_CHECKING:
    pass

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


#: Harmonics of the same-phase profile (`SeasonalProfile`): enough for a daily shape with a
#: morning and an evening peak, few enough that two periods of samples pin each coefficient.
SEASON_HARMONICS = 3
#: Complete periods the profile is fitted on (the latest ones).
SEASON_PERIODS = 4
#: A period counts as seen whole when its first kept sample lies within this share of its start:
#: a step whose range begins with empty windows (a quiet night, a step added at 02:00) still has
#: its first day learnt, where demanding a sample at the very start left it unlearnt for good in
#: a two-day range, its windows judged without the profile.
SEASON_START_GAP = 0.25


class SeasonalProfile:
    """The same-phase level of earlier periods, for comparing like with like under a cycle.

    The profile is the log latency's periodic shape, ``sum_k a_k cos(2 pi k phase) + b_k
    sin(2 pi k phase)`` for ``k`` up to ``SEASON_HARMONICS``, fitted by least squares on the
    samples of the last ``SEASON_PERIODS`` *complete* periods (the mean is not part of it: a
    level shift is never absorbed, only the cycle's shape). ``adjust`` divides each sample by
    the profile at its phase. Before one complete period has been seen the profile is flat
    (factor 1): the detector then runs on the raw samples, with its overdispersion-calibrated
    thresholds, as without a season. ``frozen`` stops refitting (set while a regression is open,
    so a change is not learnt as part of the cycle).
    """

    def __init__(self, period: float) -> None:
        if not (period > 0 and math.isfinite(period)):
            raise ValueError(f"the season must be a positive period, got {period!r}")
        self.period = period
        self.coef: FloatArray | None = None  # fitted harmonic coefficients, None = flat
        self.fitted_through = -1  # the last complete period fitted on
        self._t: list[FloatArray] = []  # kept samples (times, log values) of the fitted periods
        self._y: list[FloatArray] = []
        self._w: list[FloatArray] = []  # their weights (a window's mean log: its sample count)
        self.frozen = False

    def _design(self, t: FloatArray) -> FloatArray:
        phase = 2.0 * math.pi * (t / self.period)
        cols = []
        for k in range(1, SEASON_HARMONICS + 1):
            cols += [np.cos(k * phase), np.sin(k * phase)]
        return np.stack(cols, axis=1)

    def factor(self, t: FloatArray) -> FloatArray:
        if self.coef is None:
            return np.ones_like(t)
        return np.asarray(np.exp(self._design(t) @ self.coef), dtype=np.float64)

    def adjust(self, values: FloatArray, times: FloatArray) -> FloatArray:
        """``values`` divided by the profile at ``times``; the profile is refitted at each period
        boundary crossed, on complete periods only (a sample is never adjusted by a profile that
        saw it)."""
        logs = np.log(np.maximum(values, LOG_FLOOR))
        return values / self.factors(logs, times, np.ones_like(values))

    def factors(self, logs: FloatArray, times: FloatArray, weights: FloatArray) -> FloatArray:
        """The profile's factor at each of ``times``, then learn ``logs`` (log latencies, or a
        window's mean log latency with its sample count as weight) for the next periods'
        fits; refitted at each period boundary crossed, on complete periods only."""
        out = np.empty_like(logs)
        done = 0
        while done < logs.size:
            period_of = np.floor(times[done:] / self.period)
            current = period_of[0]
            same = int(np.searchsorted(period_of, current, side="right"))
            t = times[done : done + same]
            self._refit(int(current) - 1)
            out[done : done + same] = self.factor(t)
            self._t.append(t)
            self._y.append(logs[done : done + same])
            self._w.append(weights[done : done + same])
            done += same
        return out

    def _refit(self, last_complete: int) -> None:
        if last_complete <= self.fitted_through:
            return
        keep_from = (last_complete - SEASON_PERIODS + 1) * self.period
        t = np.concatenate(self._t) if self._t else np.empty(0)
        y = np.concatenate(self._y) if self._y else np.empty(0)
        w = np.concatenate(self._w) if self._w else np.empty(0)
        kept = (t >= keep_from) & (w > 0)
        t, y, w = t[kept], y[kept], w[kept]
        self._t, self._y, self._w = [t], [y], [w]
        if self.frozen:
            return
        fit = t < (last_complete + 1) * self.period
        if (
            w[fit].sum() < 20 * SEASON_HARMONICS
            or fit.sum() < 2 * SEASON_HARMONICS + 1
            or t.size == 0
            or t.min() > (last_complete + SEASON_START_GAP) * self.period
        ):
            return  # not one whole period seen yet
        x = self._design(t[fit])
        x = np.concatenate([np.ones((x.shape[0], 1)), x], axis=1)
        root = np.sqrt(w[fit])  # weighted least squares: a window counts as its samples
        coef, *_ = np.linalg.lstsq(x * root[:, None], y[fit] * root, rcond=None)
        self.coef = np.asarray(coef[1:], dtype=np.float64)
        self.fitted_through = last_complete
