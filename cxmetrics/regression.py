"""Step-level regression detection (DESIGN.md section 6, layer 2: the analyzer).

Input is what the analyzer has for one step: raw latency samples in arrival order (embedded mode,
recorded events), Prometheus-style histogram windows, or per-window good/total counts for a rate
(accuracy pass rate, conversion). Output is a `Detection`: a verdict, the regressions found (change
point, when it became certain, recovery, baseline vs current value, size, confidence, affected
volume) and the sensitivity the data allowed.

The method, in one line: a multi-chart one-sided CUSUM on expected normal scores against a robust
trailing baseline that freezes while a change is suspected; change point = the alarming chart's
last zero; recovery = a second CUSUM back towards the baseline. Rates use Bernoulli
likelihood-ratio CUSUMs. The statistics live in `cxmetrics._changepoint`; docs/regression.md
explains and measures them against the detectors other products ship.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from cxmetrics import _changepoint as cp
from cxmetrics._changepoint import FloatArray, IntArray

__all__ = [
    "Detection",
    "LatencyDetector",
    "Policy",
    "Regression",
    "Sensitivity",
    "detect_latency",
    "detect_latency_windows",
    "detect_rate",
]


@dataclass(frozen=True)
class Regression:
    metric: str  # "latency" or "rate"
    statistic: str  # "p95" for latency, "rate" for rates
    start: int  # index (sample or window) where the change began (estimated change point)
    detected_at: int  # index at which the detector became sure
    end: int | None  # index where it recovered, None if still regressed
    baseline: float  # baseline value of `statistic` (seconds for latency)
    current: float  # value of `statistic` after the change
    change: float  # relative change; for rates the relative drop in good rate (positive = worse)
    confidence: float  # in [0, 1]
    affected: int  # samples (events) observed between start and end (or the end of data)


@dataclass(frozen=True)
class Sensitivity:
    n_baseline: int
    n_current: int
    min_detectable_change: (
        float | None
    )  # detectable at 80% power with this traffic; None if too little

    def describe(self) -> str:
        traffic = f"with {self.n_baseline:,} baseline and {self.n_current:,} current samples"
        if self.min_detectable_change is None:
            return f"{traffic} no shift can be reliably detected (too little traffic)"
        return f"{traffic} a {self.min_detectable_change:+.0%} shift is detectable"


@dataclass(frozen=True)
class Detection:
    verdict: str  # "regressed" | "stable" | "insufficient_data"
    regressions: tuple[Regression, ...]
    sensitivity: Sensitivity


@dataclass(frozen=True)
class Policy:
    min_change: float = 0.10  # relative worsening that matters (the spec's regression policy)
    min_samples: int = 100  # below this: insufficient_data, never a verdict
    false_alarm_rate: float = 1e-5  # per sample, target
    quantile: float = 0.95  # the statistic reported for latency

    def __post_init__(self) -> None:
        if not (self.min_change > 0.0 and math.isfinite(self.min_change)):
            raise ValueError(f"min_change must be a positive number, got {self.min_change!r}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, got {self.min_samples!r}")
        if not 0.0 < self.false_alarm_rate < 0.01:
            raise ValueError(
                f"false_alarm_rate must be in (0, 0.01), got {self.false_alarm_rate!r}"
            )
        if not 0.0 < self.quantile < 1.0:
            raise ValueError(f"quantile must be in (0, 1), got {self.quantile!r}")


#: Charts are tuned to shifts of min_change times these (a ladder: small shifts are caught late,
#: large ones early; the false-alarm budget is split evenly across the charts).
CHART_MULTIPLES = (1.0, 2.0, 5.0)
#: Baseline = the latest this many samples before the guard and before any suspected change.
REFERENCE_SAMPLES = 10_000
RATE_REFERENCE_EVENTS = 100_000
#: Samples between the baseline and "now", so a change that has just begun is not yet baseline.
GUARD_SAMPLES = 500
#: The baseline is re-estimated after this many new samples (never while a change is suspected).
REFRESH_SAMPLES = 1000
BLOCK_SAMPLES = 1000
POWER_Z = 0.8416  # 80% power
#: The latency charts are designed for half the policy's false-alarm rate: Siegmund's
#: approximation and the baseline-error correction are approximations, and the policy's rate is
#: a ceiling, not a target to hit on average (the benchmark measures the result).
DESIGN_MARGIN = 0.5


@dataclass(frozen=True)
class _Comparison:
    current: float
    change: float
    p_value: float
    matters: bool


class _Reference:
    """A frozen baseline and everything the CUSUMs need from it. Subclasses per data form."""

    n: float
    baseline: float
    h: FloatArray  # per-chart thresholds; inf where the baseline is too small for the chart

    def usable(self) -> bool:
        return bool(np.isfinite(self.h).any())

    def increments(self, lo: int, hi: int) -> FloatArray:
        raise NotImplementedError

    def level(self, lo: int, hi: int) -> float:
        raise NotImplementedError

    def recovery(self, level: float, lo: int, hi: int) -> tuple[FloatArray, float]:
        raise NotImplementedError

    def compare(self, lo: int, hi: int) -> _Comparison:
        raise NotImplementedError

    def detectable_change(self, n_current: int) -> float | None:
        raise NotImplementedError


class _Series:
    """Data indexed by unit (a sample, or a window); knows how many samples each unit holds."""

    def n_units(self) -> int:
        raise NotImplementedError

    def samples(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def units_back(self, pos: int, n_samples: int) -> int:
        """Largest unit u <= pos with at least n_samples samples in [u, pos) (0 if none)."""
        raise NotImplementedError

    def reference(self, lo: int, hi: int, excluded: Sequence[tuple[int, int]]) -> _Reference | None:
        raise NotImplementedError

    def forget_before(self, unit: int) -> None:
        """Data before `unit` will not be asked for again."""


# --------------------------------------------------------------------------------------------
# latency: shared normal-score machinery


class _ScoreReference(_Reference):
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
            self.h = _split_thresholds(self.k, DESIGN_MARGIN * policy.false_alarm_rate, n)
        self.sigma, self.sd = sigma, sd

    def scores(self, lo: int, hi: int) -> tuple[FloatArray, FloatArray]:
        """Standardized score sums and sample counts per unit."""
        raise NotImplementedError

    def increments(self, lo: int, hi: int) -> FloatArray:
        y, n = self.scores(lo, hi)
        return np.asarray(y[None, :] - self.k[:, None] * n[None, :], dtype=np.float64)

    def level(self, lo: int, hi: int) -> float:
        y, n = self.scores(lo, hi)
        total = float(n.sum())
        return float(y.sum()) / total if total > 0 else 0.0

    def recovery(self, level: float, lo: int, hi: int) -> tuple[FloatArray, float]:
        y, n = self.scores(lo, hi)
        if level <= 0.0:
            return np.full(hi - lo, math.inf), 0.0
        h = cp.siegmund_threshold(level / 2.0, DESIGN_MARGIN * self.policy.false_alarm_rate)
        return np.asarray(0.5 * level * n - y, dtype=np.float64), h

    def detectable_change(self, n_current: int) -> float | None:
        if n_current <= 0:
            return None
        shifts = [
            cp.detectable_shift(float(k), float(h), n_current, POWER_Z)
            for k, h in zip(self.k, self.h)
            if math.isfinite(h)
        ]
        if not shifts:
            return None
        return math.expm1(min(shifts) * self.sigma / self.sd)

    def _judge(self, current: float, hl: float, n_seg: float, p_value: float) -> _Comparison:
        change = current / self.baseline - 1.0 if self.baseline > 0 else math.inf
        se = self.sigma * math.sqrt(math.pi / 3.0 * (1.0 / self.n + 1.0 / max(n_seg, 1.0)))
        upper = math.expm1(hl + 1.645 * se)
        matters = upper >= self.policy.min_change or change >= self.policy.min_change
        return _Comparison(current, change, p_value, matters)


def _split_thresholds(k: FloatArray, alpha: float, n: float) -> FloatArray:
    """Per-chart CUSUM thresholds sharing the false-alarm budget alpha; charts the baseline is
    too small for get inf and hand their share to the others."""
    h = [cp.cusum_threshold(float(kj), alpha / k.size, n) for kj in k]
    usable = sum(x is not None for x in h)
    if 0 < usable < k.size:
        h = [
            None if x is None else cp.cusum_threshold(float(kj), alpha / usable, n)
            for x, kj in zip(h, k)
        ]
    return np.array([math.inf if x is None else x for x in h])


# --------------------------------------------------------------------------------------------
# latency from raw samples


class _SampleSeries(_Series):
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

    def reference(self, lo: int, hi: int, excluded: Sequence[tuple[int, int]]) -> _Reference | None:
        lo = max(lo, self._offset)
        if hi - lo <= 0:
            return None
        keep = np.ones(hi - lo, dtype=bool)
        for a, b in excluded:
            keep[max(a - lo, 0) : max(b - lo, 0)] = False
        values = self.values(lo, hi)[keep][-REFERENCE_SAMPLES:]
        if values.size < self.policy.min_samples:
            return None
        return _SampleReference(self, np.sort(values), self.policy)


class _SampleReference(_ScoreReference):
    def __init__(self, series: _SampleSeries, ref: FloatArray, policy: Policy) -> None:
        self.series, self.ref = series, ref
        n = ref.size
        sigma = cp.robust_log_sigma(lambda q: float(cp.sorted_quantile(ref, q)))
        if n > 1 and bool(np.any(ref[1:] == ref[:-1])):
            own = self._raw_scores(ref)
            sd = float(np.sqrt(np.mean(own * own)))
        else:
            sd = cp.untied_score_sd(n)
        baseline = float(cp.sorted_quantile(ref, policy.quantile))
        super().__init__(n, sigma, sd, baseline, policy)
        self.log_sketch = np.log(np.maximum(cp.quantile_sketch(ref), cp.LOG_FLOOR))

    def _raw_scores(self, x: FloatArray) -> FloatArray:
        left = np.searchsorted(self.ref, x, side="left").astype(np.int64)
        right = np.searchsorted(self.ref, x, side="right").astype(np.int64)
        return cp.slot_scores(left, right, self.ref.size)

    def scores(self, lo: int, hi: int) -> tuple[FloatArray, FloatArray]:
        y = self._raw_scores(self.series.values(lo, hi)) / self.sd
        return y, np.ones(hi - lo)

    def compare(self, lo: int, hi: int) -> _Comparison:
        seg = np.sort(self.series.values(lo, hi))
        current = float(cp.sorted_quantile(seg, self.policy.quantile))
        both, inverse = np.unique(np.concatenate([self.ref, seg]), return_inverse=True)
        ref_counts = np.bincount(inverse[: self.ref.size], minlength=both.size).astype(np.float64)
        seg_counts = np.bincount(inverse[self.ref.size :], minlength=both.size).astype(np.float64)
        p_value = cp.mann_whitney_sf(ref_counts, seg_counts)
        seg_sketch = np.log(np.maximum(cp.quantile_sketch(seg), cp.LOG_FLOOR))
        ones_r, ones_s = np.ones(self.log_sketch.size), np.ones(seg_sketch.size)
        hl = cp.hodges_lehmann(self.log_sketch, ones_r, seg_sketch, ones_s)
        return self._judge(current, hl, float(seg.size), p_value)


# --------------------------------------------------------------------------------------------
# latency from histogram windows


class _HistogramSeries(_Series):
    def __init__(self, bounds: FloatArray, counts: FloatArray, policy: Policy) -> None:
        self.policy, self.counts = policy, counts
        last = bounds[-1] * (bounds[-1] / bounds[-2]) if bounds.size > 1 else 2.0 * bounds[-1]
        first = bounds[0] * (bounds[0] / bounds[1]) if bounds.size > 1 and bounds[0] > 0 else 0.0
        self.edges = np.concatenate([[0.0], bounds, [bounds[-1]]])  # +Inf reads as the last bound
        mids = np.sqrt(np.concatenate([[first], bounds]) * np.concatenate([bounds, [last]]))
        self.log_mids = np.log(np.maximum(mids, cp.LOG_FLOOR))
        self.cum = np.concatenate([[0.0], np.cumsum(counts.sum(axis=1))])

    def n_units(self) -> int:
        return int(self.counts.shape[0])

    def samples(self, lo: int, hi: int) -> int:
        return int(round(self.cum[hi] - self.cum[lo])) if hi > lo else 0

    def units_back(self, pos: int, n_samples: int) -> int:
        target = self.cum[pos] - n_samples
        return min(max(int(np.searchsorted(self.cum, target, side="right")) - 1, 0), pos)

    def reference(self, lo: int, hi: int, excluded: Sequence[tuple[int, int]]) -> _Reference | None:
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
        return _HistogramReference(self, hist, self.policy)


class _HistogramReference(_ScoreReference):
    def __init__(self, series: _HistogramSeries, hist: FloatArray, policy: Policy) -> None:
        self.series, self.hist = series, hist
        n = float(hist.sum())
        n_int = max(int(round(n)), 1)
        below = np.cumsum(hist) - hist
        left = np.floor(below * n_int / n).astype(np.int64)
        right = np.minimum(np.floor((below + hist) * n_int / n).astype(np.int64), n_int)
        self.bucket_scores = cp.slot_scores(left, right, n_int)
        sd = float(np.sqrt(np.sum(hist * self.bucket_scores**2) / n))
        edges = series.edges
        sigma = cp.robust_log_sigma(lambda q: cp.histogram_quantile(edges, hist, q))
        baseline = cp.histogram_quantile(edges, hist, policy.quantile)
        super().__init__(n, sigma, sd, baseline, policy)
        self.unit_scores = self.bucket_scores / self.sd

    def scores(self, lo: int, hi: int) -> tuple[FloatArray, FloatArray]:
        c = self.series.counts[lo:hi]
        return np.asarray(c @ self.unit_scores, dtype=np.float64), c.sum(axis=1)

    def compare(self, lo: int, hi: int) -> _Comparison:
        seg = self.series.counts[lo:hi].sum(axis=0)
        current = cp.histogram_quantile(self.series.edges, seg, self.policy.quantile)
        p_value = cp.mann_whitney_sf(self.hist, seg)
        mids = self.series.log_mids
        hl = cp.hodges_lehmann(mids, self.hist, mids, seg)
        return self._judge(current, hl, float(seg.sum()), p_value)


# --------------------------------------------------------------------------------------------
# rates


class _RateSeries(_Series):
    def __init__(self, good: FloatArray, total: FloatArray, policy: Policy) -> None:
        self.good, self.total, self.policy = good, total, policy
        self.bad = total - good
        self.cum = np.concatenate([[0.0], np.cumsum(total)])

    def n_units(self) -> int:
        return int(self.total.size)

    def samples(self, lo: int, hi: int) -> int:
        return int(round(self.cum[hi] - self.cum[lo])) if hi > lo else 0

    def units_back(self, pos: int, n_samples: int) -> int:
        target = self.cum[pos] - n_samples
        return min(max(int(np.searchsorted(self.cum, target, side="right")) - 1, 0), pos)

    def reference(self, lo: int, hi: int, excluded: Sequence[tuple[int, int]]) -> _Reference | None:
        if hi <= lo:
            return None
        weight = np.ones(hi - lo)
        for a, b in excluded:
            weight[max(a - lo, 0) : max(b - lo, 0)] = 0.0
        tot = self.total[lo:hi] * weight
        from_end = np.cumsum(tot[::-1])[::-1]
        start = max(int(np.searchsorted(-from_end, -RATE_REFERENCE_EVENTS, side="right")) - 1, 0)
        n = float(tot[start:].sum())
        if n < self.policy.min_samples:
            return None
        bad = float((self.bad[lo:hi] * weight)[start:].sum())
        return _RateReference(self, n, bad, self.policy)


class _RateReference(_Reference):
    """Bernoulli likelihood-ratio CUSUMs on bad events.

    The baseline bad rate is taken at its 99.87% upper confidence bound, so an unlucky baseline
    cannot make normal traffic look worse; charts are tuned to the bad-outcome odds growing by
    min_change times CHART_MULTIPLES. An LLR CUSUM with threshold ln(J / alpha) has a false-alarm
    rate of at most alpha / J per event (Wald), with no distributional approximation.
    """

    def __init__(self, series: _RateSeries, n: float, bad: float, policy: Policy) -> None:
        self.series, self.n, self.policy = series, n, policy
        self.p0 = min(max(bad, 0.5) / n, 1.0 - 0.5 / n)
        self.p_upper = min(float(special.gammaincinv(bad + 1.0, 0.99865)) / n, 1.0 - 0.5 / n)
        self.baseline = 1.0 - bad / n
        odds0 = self.p_upper / (1.0 - self.p_upper)
        odds1 = odds0 * (1.0 + policy.min_change * np.array(CHART_MULTIPLES))
        p1 = odds1 / (1.0 + odds1)
        self.a = np.log(p1 / self.p_upper)
        self.b = np.log((1.0 - p1) / (1.0 - self.p_upper))
        self.h = np.full(
            len(CHART_MULTIPLES), math.log(len(CHART_MULTIPLES) / policy.false_alarm_rate)
        )

    def increments(self, lo: int, hi: int) -> FloatArray:
        bad, good = self.series.bad[lo:hi], self.series.good[lo:hi]
        return np.asarray(
            self.a[:, None] * bad[None, :] + self.b[:, None] * good[None, :], dtype=np.float64
        )

    def level(self, lo: int, hi: int) -> float:
        tot = float(self.series.total[lo:hi].sum())
        return float(self.series.bad[lo:hi].sum()) / tot if tot > 0 else self.p0

    def recovery(self, level: float, lo: int, hi: int) -> tuple[FloatArray, float]:
        if level <= self.p0:
            return np.full(hi - lo, math.inf), 0.0
        p1 = min(level, 1.0 - 0.5 / self.n)
        inc = self.series.bad[lo:hi] * math.log(self.p0 / p1) + self.series.good[lo:hi] * math.log(
            (1.0 - self.p0) / (1.0 - p1)
        )
        return np.asarray(inc, dtype=np.float64), math.log(1.0 / self.policy.false_alarm_rate)

    def compare(self, lo: int, hi: int) -> _Comparison:
        m = float(self.series.total[lo:hi].sum())
        bad = float(self.series.bad[lo:hi].sum())
        current = 1.0 - bad / m if m > 0 else math.nan
        change = (self.baseline - current) / self.baseline if self.baseline > 0 else 0.0
        pooled = (bad + self.n * (1.0 - self.baseline)) / (m + self.n)
        se = math.sqrt(max(pooled * (1.0 - pooled) * (1.0 / m + 1.0 / self.n), 1e-300))
        p_value = cp.norm_sf((bad / m - (1.0 - self.baseline)) / se)
        bad0 = self.n * (1.0 - self.baseline)
        log_or = math.log((bad + 0.5) * (self.n - bad0 + 0.5) / ((m - bad + 0.5) * (bad0 + 0.5)))
        se_or = math.sqrt(
            1 / (bad + 0.5) + 1 / (m - bad + 0.5) + 1 / (bad0 + 0.5) + 1 / (self.n - bad0 + 0.5)
        )
        matters = math.expm1(log_or + 1.645 * se_or) >= self.policy.min_change
        return _Comparison(current, change, p_value, matters)

    def detectable_change(self, n_current: int) -> float | None:
        if n_current <= 0:
            return None
        n = float(n_current)
        best: float | None = None
        for a, b, h in zip(self.a.tolist(), self.b.tolist(), self.h.tolist()):

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


# --------------------------------------------------------------------------------------------
# the sequential monitor, shared by every data form


@dataclass
class _Open:
    ref: _Reference
    start: int
    detected_at: int
    level: float
    scan: int  # candidate change points examined (for the confidence's Bonferroni factor)
    r: float = 0.0
    r_zero: int = 0


@dataclass
class _Monitor:
    series: _Series
    policy: Policy
    metric: str
    statistic: str
    pos: int = 0
    ref: _Reference | None = None
    next_refresh: int = 0
    monitored: int = 0
    s: FloatArray = field(default_factory=lambda: np.zeros(len(CHART_MULTIPLES)))
    zero: IntArray = field(default_factory=lambda: np.full(len(CHART_MULTIPLES), -1, np.int64))
    open: _Open | None = None
    excluded: list[tuple[int, int]] = field(default_factory=list)
    closed: list[Regression] = field(default_factory=list)

    def run(self) -> list[Regression]:
        """Process every unit not yet seen; return regressions detected on the way."""
        found: list[Regression] = []
        n = self.series.n_units()
        while self.pos < n:
            if self.open is None:
                hit = self._monitor_block(n)
                if hit is not None:
                    found.append(hit)
            else:
                self._recovery_block(n)
        return found

    def _refresh(self) -> None:
        pos = self.pos
        hi = self.series.units_back(pos, GUARD_SAMPLES)
        active = self.s > 0
        if active.any():
            hi = min(hi, int(self.zero[active].min()) + 1)
        lo = self.series.units_back(hi, 4 * REFERENCE_SAMPLES)
        ref = self.series.reference(lo, hi, self.excluded)
        if ref is not None and ref.usable():
            self.ref = ref
        self.series.forget_before(lo)
        step = max(self.series.units_back(pos, 0) - self.series.units_back(pos, REFRESH_SAMPLES), 1)
        self.next_refresh = pos + step

    def _monitor_block(self, n: int) -> Regression | None:
        if self.pos >= self.next_refresh:
            self._refresh()
        end = min(n, self.next_refresh, self.pos + BLOCK_SAMPLES)
        ref = self.ref
        if ref is None:
            self.pos = end
            return None
        usable = np.isfinite(ref.h)
        inc = ref.increments(self.pos, end)
        inc[~usable] = 0.0  # their threshold is inf: they never alarm
        paths, zeros = cp.cusum_paths(inc, self.s, self.zero, self.pos)
        crossed = paths >= ref.h[:, None]
        cols = np.flatnonzero(crossed.any(axis=0))
        if cols.size == 0:
            self.monitored += self.series.samples(self.pos, end)
            self.s, self.zero, self.pos = paths[:, -1], zeros[:, -1], end
            return None
        t = int(cols[0])
        at = self.pos + t
        self.monitored += self.series.samples(self.pos, at + 1)
        chart = int(np.argmax(np.where(crossed[:, t], paths[:, t] / ref.h, -np.inf)))
        start = int(zeros[chart, t]) + 1
        self.pos = at + 1
        cmp = ref.compare(start, at + 1)
        if not cmp.matters:  # a real but small shift: not a regression by this policy
            self.s, self.zero = np.zeros_like(self.s), np.full_like(self.zero, at)
            return None
        scan = at - start + 1
        self.open = _Open(ref, start, at, ref.level(start, at + 1), scan, 0.0, at)
        return self._regression(self.open, None, at + 1, cmp)

    def _recovery_block(self, n: int) -> None:
        op = self.open
        assert op is not None
        end = min(n, self.pos + BLOCK_SAMPLES)
        inc, h = op.ref.recovery(op.level, self.pos, end)
        paths, zeros = cp.cusum_paths(
            inc[None, :], np.array([op.r]), np.array([op.r_zero]), self.pos
        )
        cols = np.flatnonzero(paths[0] >= h)
        if cols.size == 0:
            op.r, op.r_zero, self.pos = float(paths[0, -1]), int(zeros[0, -1]), end
            if op.r_zero + 1 > op.start:
                op.level = op.ref.level(op.start, op.r_zero + 1)
            return
        t = int(cols[0])
        stop = max(int(zeros[0, t]) + 1, op.start + 1)
        self.closed.append(self._regression(op, stop, stop, op.ref.compare(op.start, stop)))
        self.excluded.append((op.start, stop))
        self.open = None
        self.pos = self.pos + t + 1
        self.s = np.zeros_like(self.s)
        self.zero = np.full_like(self.zero, self.pos - 1)
        self.next_refresh = self.pos

    def _regression(self, op: _Open, end: int | None, stop: int, cmp: _Comparison) -> Regression:
        confidence = 1.0 - cmp.p_value * len(CHART_MULTIPLES) * op.scan
        return Regression(
            metric=self.metric,
            statistic=self.statistic,
            start=op.start,
            detected_at=op.detected_at,
            end=end,
            baseline=op.ref.baseline,
            current=cmp.current,
            change=cmp.change,
            confidence=min(max(confidence, 0.0), 1.0),
            affected=self.series.samples(op.start, stop),
        )

    def detection(self) -> Detection:
        total = self.series.samples(0, self.series.n_units())
        regressions = list(self.closed)
        ref = self.ref
        if self.open is not None:
            op = self.open
            n = self.series.n_units()
            regressions.append(self._regression(op, None, n, op.ref.compare(op.start, n)))
            ref = op.ref
        n_base = int(round(ref.n)) if ref is not None else 0
        mdc = ref.detectable_change(self.monitored) if ref is not None else None
        sensitivity = Sensitivity(n_base, self.monitored if ref is not None else total, mdc)
        if total < self.policy.min_samples:
            return Detection("insufficient_data", (), sensitivity)
        if regressions:
            return Detection("regressed", tuple(regressions), sensitivity)
        if ref is None or self.monitored == 0:
            return Detection("insufficient_data", (), sensitivity)
        return Detection("stable", (), sensitivity)


# --------------------------------------------------------------------------------------------
# public entry points


def _statistic_name(q: float) -> str:
    return f"p{q * 100:.10g}"


class LatencyDetector:
    """Streaming latency regression detector over raw samples (seconds, arrival order)."""

    def __init__(self, policy: Policy = Policy()) -> None:
        self.policy = policy
        self._series = _SampleSeries(policy)
        self._monitor = _Monitor(self._series, policy, "latency", _statistic_name(policy.quantile))

    def update(self, value: float) -> Regression | None:
        """Add one sample; return a Regression the moment one is detected."""
        found = self.extend(np.array([value], dtype=np.float64))
        return found[0] if found else None

    def extend(self, values: Sequence[float] | FloatArray) -> list[Regression]:
        """Add samples in arrival order; return the regressions detected among them."""
        arr = _latencies(values, allow_empty=True)
        self._series.extend(arr)
        return self._monitor.run()

    def detection(self) -> Detection:
        """Verdict, regressions (with recovery and final sizes) and sensitivity so far."""
        return self._monitor.detection()


def _latencies(values: Sequence[float] | FloatArray, allow_empty: bool = False) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"latencies must be a 1-D sequence, got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError("latencies are empty")
    if not np.isfinite(arr).all():
        raise ValueError("latencies contain NaN or infinite values")
    if (arr < 0).any():
        raise ValueError("latencies contain negative values")
    return arr


def detect_latency(values: Sequence[float] | FloatArray, policy: Policy = Policy()) -> Detection:
    """Regressions in raw latency samples (seconds) given in arrival order."""
    detector = LatencyDetector(policy)
    detector.extend(_latencies(values))
    return detector.detection()


def detect_latency_windows(
    bounds: Sequence[float] | FloatArray, counts: FloatArray, policy: Policy = Policy()
) -> Detection:
    """Regressions in per-window latency histograms (the form Prometheus holds).

    `bounds` are the finite bucket upper bounds (`le`, ascending; +Inf is implied), `counts` the
    non-cumulative per-window bucket counts, shape (n_windows, len(bounds) + 1). Indices in the
    result are window indices.
    """
    b = np.asarray(bounds, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    if b.ndim != 1 or b.size == 0:
        raise ValueError("bounds must be a non-empty 1-D sequence of bucket upper bounds")
    if not np.isfinite(b).all() or (b < 0).any() or (np.diff(b) <= 0).any():
        raise ValueError(
            "bounds must be finite, non-negative and strictly ascending (+Inf is implied)"
        )
    if c.ndim != 2 or c.shape[1] != b.size + 1:
        raise ValueError(f"counts must have shape (n_windows, {b.size + 1}), got {c.shape}")
    if c.shape[0] == 0:
        raise ValueError("counts hold no windows")
    if not np.isfinite(c).all() or (c < 0).any():
        raise ValueError("counts must be finite and non-negative")
    monitor = _Monitor(
        _HistogramSeries(b, c, policy), policy, "latency", _statistic_name(policy.quantile)
    )
    monitor.run()
    return monitor.detection()


def detect_rate(good: Sequence[int], total: Sequence[int], policy: Policy = Policy()) -> Detection:
    """Regressions (drops) in a per-window good/total rate: accuracy pass rate, conversion."""
    g = np.asarray(good, dtype=np.float64)
    t = np.asarray(total, dtype=np.float64)
    if g.ndim != 1 or t.ndim != 1 or g.shape != t.shape:
        raise ValueError(
            f"good and total must be 1-D and the same length, got {g.shape} and {t.shape}"
        )
    if g.size == 0:
        raise ValueError("good/total are empty")
    if not (np.isfinite(g).all() and np.isfinite(t).all()) or (g < 0).any():
        raise ValueError("good and total must be finite and non-negative")
    if (g > t).any():
        raise ValueError("good exceeds total in some window")
    monitor = _Monitor(_RateSeries(g, t, policy), policy, "rate", "rate")
    monitor.run()
    return monitor.detection()
