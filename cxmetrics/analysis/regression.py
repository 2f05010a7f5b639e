"""Step-level regression detection (docs/regression.md; layer 2: the analyzer).

Input is what the analyzer has for one step: raw latency samples in arrival order (embedded mode,
recorded events), Prometheus-style histogram windows, or per-window good/total counts for a rate
(accuracy pass rate, conversion). Output is a `Detection`: a verdict, the regressions found (change
point, when it became certain, recovery, baseline vs current value, size, confidence, affected
volume) and the sensitivity the data allowed.

The method, in one line: one-sided CUSUMs (one per shift size) on expected normal scores of each
sample against a trailing baseline that freezes while a change is suspected; the change point is
the maximum-likelihood start inside the alarming excursion; recovery is a second CUSUM back
towards the baseline. Rates use Bernoulli likelihood-ratio CUSUMs. `_Monitor` below runs the
sequence for every data form; the data forms live in `cxmetrics.analysis.changepoint` (rates in
`cxmetrics.analysis.rates`), the statistics in `cxmetrics.analysis.stats`, and
docs/regression.md explains them and measures them against the detectors other products ship.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from . import changepoint as cp
from . import rates as _rates
from . import stats as _stats
from .policy import DEFAULT_POLICY, Policy
from .stats import FloatArray, IntArray

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
    #: the statistic that moved and is sized: the latency quantile of the chart that alarmed
    #: ("p95", the policy's; "p50" when the median's exceedance chart found it), "rate" for rates
    statistic: str
    start: int  # index (sample or window) where the change began (estimated change point)
    detected_at: int  # index at which the detector became sure
    end: int | None  # index where it recovered, None if still regressed
    baseline: float  # baseline value of `statistic` (seconds for latency)
    current: float  # value of `statistic` after the change
    change: float  # relative change; for rates the relative drop in good rate (positive = worse)
    confidence: float  # in [0, 1]
    affected: int  # samples (events) observed between start and end (or the end of data)
    #: 95% confidence interval of `change`
    change_low: float = math.nan
    change_high: float = math.nan
    #: the point estimate is below min_change but its interval reaches it: a change at the
    #: policy's threshold, within noise of it, listed as such rather than dropped
    at_threshold: bool = False
    #: what raised the alarm: "rank shift" (the whole distribution), "tail shift" (the samples
    #: above the baseline's p90), "p95 exceedances" / "p50 exceedances" (more samples than the
    #: baseline's share above that quantile), "drift" (the latest samples against a long-memory
    #: anchor, step 2b of docs/regression.md), "rate"
    signal: str = ""
    #: "worse" (a regression) or "better" (an improvement: latency only, listed apart in
    #: `Detection.improvements`, never a regression; its `change` is negative)
    direction: str = "worse"


@dataclass(frozen=True)
class Sensitivity:
    n_baseline: int
    n_current: int
    #: relative shift detectable at 80% power with this traffic; None if too little
    min_detectable_change: float | None

    def describe(self) -> str:
        traffic = f"with {self.n_baseline:,} baseline and {self.n_current:,} current samples"
        if self.min_detectable_change is None:
            return f"{traffic} no shift can be reliably detected (too little traffic)"
        return f"{traffic} a {_percent(self.min_detectable_change)} shift is detectable"


def _percent(x: float) -> str:
    """+14%, +1.4%, +0.038%: whole percents from 10%, two significant digits below."""
    pct = 100.0 * x
    return f"{pct:+.0f}%" if abs(pct) >= 10 else f"{pct:+.2g}%"


@dataclass(frozen=True)
class Detection:
    verdict: str  # "regressed" | "stable" | "insufficient_data"
    regressions: tuple[Regression, ...]
    sensitivity: Sensitivity
    #: latency that became faster (same detector on the reciprocal latencies); never changes
    #: the verdict, which is about worsenings only
    improvements: tuple[Regression, ...] = ()


# --------------------------------------------------------------------------------------------
# the sequential monitor, shared by every data form


@dataclass
class _Open:
    ref: cp.Reference
    start: int
    detected_at: int
    scan: int  # candidate change points examined (for the confidence's Bonferroni factor)
    chart: int = 0  # the first chart that alarmed
    r: float = 0.0
    r_zero: int = 0
    #: found by the drift check against an anchor (step 2b): sized on its latest samples
    drift: bool = False


@dataclass
class _Monitor:
    series: cp.Series
    policy: Policy
    metric: str
    statistic: str
    pos: int = 0
    #: the baseline the charts watch against: `observed`, moved along a drift (`_along_drift`)
    ref: cp.Reference | None = None
    #: the trailing baseline as observed: what regressions are sized, reported and recover against
    observed: cp.Reference | None = None
    next_refresh: int = 0
    monitored: int = 0
    n_charts: int = len(cp.CHART_MULTIPLES)
    s: FloatArray = field(init=False)
    zero: IntArray = field(init=False)
    open: _Open | None = None
    excluded: list[tuple[int, int]] = field(default_factory=list)
    closed: list[Regression] = field(default_factory=list)
    #: the series holds reciprocal latencies: what it finds are improvements, reported in
    #: latency terms (quantile 1 - q of the reciprocals is quantile q of the latencies)
    mirrored: bool = False
    #: long-memory baselines for the drift check: (unit at capture, baseline, the sample its
    #: samples are centred on), oldest first
    anchors: list[tuple[int, cp.Reference, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.s = np.zeros(self.n_charts)
        self.zero = np.full(self.n_charts, -1, np.int64)

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
        """Re-estimate the baseline from the latest samples that cannot belong to a change:
        older than the guard, older than every open CUSUM excursion, outside past regressions."""
        pos = self.pos
        seen = self.series.samples(0, pos)
        hi = self.series.units_back(pos, min(cp.GUARD_SAMPLES, math.ceil(cp.GUARD_FRACTION * seen)))
        active = self.s > 0
        if active.any():
            hi = min(hi, int(self.zero[active].min()) + 1)
        lo = self.series.units_back(hi, 4 * self.series.reference_size)  # room for exclusions
        ref = self.series.reference(lo, hi, self.excluded)
        step = min(cp.REFRESH_SAMPLES, math.ceil(cp.REFRESH_FRACTION * seen))
        self.next_refresh = pos + max(pos - self.series.units_back(pos, step), 1)
        if ref is not None and ref.usable():
            center = self.series.samples(0, hi) - ref.n / 2.0
            self._anchor(ref, center)
            self.observed = ref
            self.ref = self._along_drift(ref, hi, center, self.series.samples(0, pos) + step / 2)
        # the drift check's change point (step 2b) reads the samples since the oldest anchor
        self.series.forget_before(min([lo, *(at for at, _, _ in self.anchors[:1])]))

    def _along_drift(self, ref: cp.Reference, hi: int, center: float, now: float) -> cp.Reference:
        """The trailing baseline moved to where a significant rise since the oldest anchor has
        carried the level by the middle of the next refresh interval (step 2b): a baseline
        ~5,500 samples old trails a slow drift, and chance excursions on top of that lag are
        what the trailing charts would otherwise find. Measured on the baseline's own samples
        against the anchor (never the guard's, where a step that has just begun would be)."""
        if not self.anchors:
            return ref
        _, anchor, anchor_center = self.anchors[0]
        gap = center - anchor_center
        if gap < cp.LAG_MIN_GAP:
            return ref
        found = anchor.drift_shift(self.series.units_back(hi, round(ref.n)), hi)
        if found is None or found[0] < cp.LAG_Z or found[1] <= 0.0:
            return ref
        moved = ref.shifted(math.exp(found[1] / gap * (now - center)))
        return ref if moved is None or not moved.usable() else moved

    def _anchor(self, ref: cp.Reference, center: float) -> None:
        """Keep `ref` (its samples centred on sample `center`) as an anchor if the newest is
        ANCHOR_EVERY samples old; forget anchors older than ANCHOR_SPAN samples."""
        pos = self.pos
        if not ref.drifts or ref.n < cp.ANCHOR_MIN_SAMPLES:
            return
        if self.anchors and self.series.samples(self.anchors[-1][0], pos) < cp.ANCHOR_EVERY:
            return
        self.anchors.append((pos, ref, center))
        while self.series.samples(self.anchors[0][0], pos) > cp.ANCHOR_SPAN:
            self.anchors.pop(0)

    def _drift(self) -> Regression | None:
        """Step 2b: the latest DRIFT_RECENT samples against the oldest anchor. A drift the
        trailing baseline follows shows there; it is reported, as any change, only if it
        matters (step 6), and sized on those latest samples."""
        if not self.anchors or self.open is not None:
            return None
        captured, anchor, _ = self.anchors[0]
        pos = self.pos
        if self.series.samples(captured, pos) < cp.ANCHOR_EVERY:
            return None
        lo = self.series.units_back(pos, cp.DRIFT_RECENT)
        z = anchor.drift_z(lo, pos)
        alpha = cp.DRIFT_SHARE * self.policy.false_alarm_rate * cp.REFRESH_SAMPLES
        if z is None or z < _stats.norm_ppf(1.0 - alpha):
            return None
        cmp = anchor.compare(lo, pos, 0)
        if not (cmp.matters and cmp.high >= self.policy.min_change and cmp.low > 0.0):
            return None
        start = max(anchor.change_point(captured, pos, 0), captured)
        at = pos  # checked as unit `pos` arrives, on the units before it
        self.open = _Open(anchor, start, at, at - start + 1, 0, 0.0, at, drift=True)
        return self._regression(self.open, None, pos, cmp)

    def _monitor_block(self, n: int) -> Regression | None:
        if self.pos >= self.next_refresh:
            self._refresh()
            found = self._drift()
            if found is not None:
                return found
        end = min(n, self.next_refresh, self.pos + cp.BLOCK_SAMPLES)
        ref = self.ref
        if ref is None:
            self.pos = end
            return None
        usable = np.isfinite(ref.h)
        inc = ref.increments(self.pos, end)
        inc[~usable] = 0.0  # their threshold is inf: they never alarm
        paths, zeros = _stats.cusum_paths(inc, self.s, self.zero, self.pos)
        crossed = (paths >= ref.h[:, None]) & (paths > 0.0)  # h can be 0 for huge shifts
        cols = np.flatnonzero(crossed.any(axis=0))
        if cols.size == 0:
            self.monitored += self.series.samples(self.pos, end)
            self.s, self.zero, self.pos = paths[:, -1], zeros[:, -1], end
            return None
        t = int(cols[0])
        at = self.pos + t
        self.monitored += self.series.samples(self.pos, at + 1)
        earliest = int(zeros[:, t].min()) + 1  # the longest excursion bounds the change point
        chart = int(np.flatnonzero(crossed[:, t])[0])
        start = ref.change_point(earliest, at + 1, chart)
        self.pos = at + 1
        # sized, reported and recovered against the baseline as observed, never a moved one
        observed = self.observed
        assert observed is not None  # set with `ref` (`_refresh`)
        cmp = observed.compare(start, at + 1, chart, alarm=at)
        if not cmp.matters:  # a real but small shift: not a regression by this policy
            self.s, self.zero = np.zeros_like(self.s), np.full_like(self.zero, at)
            return None
        scan = at - start + 1
        self.open = _Open(observed, start, at, scan, chart, 0.0, at)
        return self._regression(self.open, None, at + 1, cmp)

    def _recovery_block(self, n: int) -> None:
        op = self.open
        assert op is not None
        if op.drift:
            self._drift_recovery(n, op)
            return
        end = min(n, self.pos + cp.BLOCK_SAMPLES)
        regressed = (op.start, max(op.r_zero, op.detected_at) + 1)
        inc, h = op.ref.recovery(self.pos, end, regressed, op.chart)
        paths, zeros = _stats.cusum_paths(
            inc[None, :], np.array([op.r]), np.array([op.r_zero]), self.pos
        )
        cols = np.flatnonzero((paths[0] >= h) & (paths[0] > 0.0))
        if cols.size == 0:
            op.r, op.r_zero, self.pos = float(paths[0, -1]), int(zeros[0, -1]), end
            return
        t = int(cols[0])
        stop = max(int(zeros[0, t]) + 1, op.start + 1)
        self.closed.append(self._regression(op, stop, stop, self._compare(op, stop)))
        self.excluded.append((op.start, stop))
        self.open = None
        self.pos = self.pos + t + 1
        self.s = np.zeros_like(self.s)
        self.zero = np.full_like(self.zero, self.pos - 1)
        self.next_refresh = self.pos

    def _drift_recovery(self, n: int, op: _Open) -> None:
        """A drift is back when the 95% interval of its latest DRIFT_RECENT samples' change
        against the anchor lies below min_change, checked every REFRESH_SAMPLES samples."""
        step = max(self.pos - self.series.units_back(self.pos, cp.REFRESH_SAMPLES), 1)
        end = self.pos = min(n, self.pos + step)
        if self.series.samples(op.r_zero, end) < cp.REFRESH_SAMPLES:
            return
        op.r_zero = end
        cmp = self._compare(op, end)
        if not (cmp.high < self.policy.min_change and cmp.low <= 0.0):
            return
        self.closed.append(self._regression(op, end, end, cmp))
        self.excluded.append((op.start, end))
        self.open = None
        self.s = np.zeros_like(self.s)
        self.zero = np.full_like(self.zero, end - 1)
        self.next_refresh = end

    def _compare(self, op: _Open, stop: int) -> cp.Comparison:
        """The regression's size over [start, stop); a drift's over its latest DRIFT_RECENT
        samples (a drift has no one level since its start: the latest is what it has reached),
        all of them even when its change point falls among them: the span from that point is
        the one whose excursion the change point maximizes, a biased and shorter read."""
        if op.drift:
            return op.ref.compare(self.series.units_back(stop, cp.DRIFT_RECENT), stop, op.chart)
        return op.ref.compare(op.start, stop, op.chart, alarm=op.detected_at)

    def _regression(self, op: _Open, end: int | None, stop: int, cmp: cp.Comparison) -> Regression:
        r = self._found(op, end, stop, cmp)
        if not self.mirrored:
            return r
        q = op.ref.quantile(op.chart)
        return dataclasses.replace(
            r,
            statistic=r.statistic if q is None else _statistic_name(1.0 - q),
            baseline=1.0 / r.baseline if r.baseline > 0 else math.inf,
            current=1.0 / r.current if r.current > 0 else math.inf,
            change=1.0 / (1.0 + r.change) - 1.0,
            change_low=1.0 / (1.0 + r.change_high) - 1.0,
            change_high=1.0 / (1.0 + r.change_low) - 1.0,
            at_threshold=False,
            direction="better",
        )

    def _found(self, op: _Open, end: int | None, stop: int, cmp: cp.Comparison) -> Regression:
        confidence = 1.0 - cmp.p_value * self.n_charts * op.scan
        q = op.ref.quantile(op.chart)
        return Regression(
            metric=self.metric,
            statistic=self.statistic if q is None else _statistic_name(q),
            start=op.start,
            detected_at=op.detected_at,
            end=end,
            baseline=op.ref.baseline if cmp.baseline is None else cmp.baseline,
            current=cmp.current,
            change=cmp.change,
            confidence=min(max(confidence, 0.0), 1.0),
            affected=self.series.samples(op.start, stop),
            change_low=cmp.low,
            change_high=cmp.high,
            at_threshold=self.metric == "latency"
            and cmp.change < self.policy.min_change <= cmp.high,
            signal="drift" if op.drift else op.ref.signal(op.chart),
        )

    def detection(self) -> Detection:
        total = self.series.samples(0, self.series.n_units())
        regressions = list(self.closed)
        ref = self.observed  # the sensitivity stated is the observed baseline's, never a moved one
        if self.open is not None:
            op = self.open
            n = self.series.n_units()
            ref = op.ref
            # Still open and seen in fewer than min_samples samples: by the policy's own volume
            # rule too little to report yet, and no different from a blip that ends a few
            # samples later (a log whose traffic stopped ends with its slowest completions).
            # `update`/`extend` returned it when it was detected; it is listed once it has
            # min_samples samples.
            if self.series.samples(op.start, n) >= self.policy.min_samples:
                regressions.append(self._regression(op, None, n, self._compare(op, n)))
        n_base = round(ref.n) if ref is not None else 0
        mdc = ref.detectable_change(self.monitored) if ref is not None else None
        sensitivity = Sensitivity(n_base, self.monitored if ref is not None else total, mdc)
        if total < self.policy.min_samples:
            return Detection("insufficient_data", (), sensitivity)
        if regressions:
            return Detection("regressed", tuple(regressions), sensitivity)
        if ref is None or self.monitored < self.policy.min_samples:
            return Detection("insufficient_data", (), sensitivity)
        return Detection("stable", (), sensitivity)


# --------------------------------------------------------------------------------------------
# public entry points


def _statistic_name(q: float) -> str:
    return f"p{q * 100:.10g}"


class LatencyDetector:
    """Streaming latency regression detector over raw samples (seconds, arrival order)."""

    def __init__(self, policy: Policy = DEFAULT_POLICY, improvements: bool = True) -> None:
        """``improvements=False`` skips looking for improvements (half the work)."""
        self.policy = policy
        self._improvements = improvements
        self._season = _stats.SeasonalProfile(policy.season) if policy.season else None
        self._seen = 0
        #: with a season: samples (values, times) of the stream's first period, held back until
        #: a profile is fitted on it; then they are the first baseline, not judged
        self._held: list[tuple[FloatArray, FloatArray]] | None = [] if self._season else None
        self._series = cp.SampleSeries(policy)
        self._monitor = _Monitor(
            self._series,
            policy,
            "latency",
            _statistic_name(policy.quantile),
            n_charts=cp.LATENCY_CHARTS,
        )
        mirror = _mirror_policy(policy)
        self._mirror_series = cp.SampleSeries(mirror)
        self._mirror = _Monitor(
            self._mirror_series,
            mirror,
            "latency",
            _statistic_name(policy.quantile),
            n_charts=cp.LATENCY_CHARTS,
            mirrored=True,
        )

    def update(self, value: float) -> Regression | None:
        """Add one sample; return a Regression the moment one is detected."""
        found = self.extend(np.array([value], dtype=np.float64))
        return found[0] if found else None

    def extend(
        self,
        values: Sequence[float] | npt.NDArray[Any],
        times: Sequence[float] | npt.NDArray[Any] | None = None,
    ) -> list[Regression]:
        """Add samples in arrival order; return the regressions detected among them.

        With a ``policy.season``, each sample is compared at its phase of the cycle: ``times``
        (non-decreasing, in the season's unit; default: the sample's index) place it, and it is
        divided by the same-phase level of the earlier periods (`stats.SeasonalProfile`) before
        the detector sees it. Sizes are then of the deseasonalised latency."""
        arr = _latencies(values, allow_empty=True)
        season = self._season
        if season is None or not arr.size:
            self._seen += arr.size
            return self._feed(arr)
        if times is None:
            t = np.arange(self._seen, self._seen + arr.size, dtype=np.float64)
        else:
            t = np.asarray(times, dtype=np.float64)
            if t.shape != arr.shape or not np.isfinite(t).all() or (np.diff(t) < 0).any():
                raise ValueError("times must be finite, non-decreasing, one per value")
        # period by period, so the profile is refitted only while no regression is open
        period = np.floor(t / season.period)
        cuts = [0, *(np.flatnonzero(np.diff(period)) + 1).tolist(), arr.size]
        found: list[Regression] = []
        for lo, hi in itertools.pairwise(cuts):
            season.frozen = self._monitor.open is not None
            chunk = season.adjust(arr[lo:hi], t[lo:hi])
            self._seen += chunk.size
            if self._held is not None:
                if season.coef is None:  # no complete period yet: hold the samples back
                    self._held.append((arr[lo:hi], t[lo:hi]))
                    continue
                self._release(season)
            found += self._feed(chunk)
        return found

    def _release(self, season: _stats.SeasonalProfile | None) -> None:
        """The held first period becomes the first baseline: seen through the profile fitted on
        it, and not judged (without a profile: as it is, judged as without a season)."""
        held, self._held = self._held or [], None
        if not held:
            return
        values = np.concatenate([v for v, _ in held])
        if season is None:
            self._feed(values)
            return
        times = np.concatenate([t for _, t in held])
        base = values / season.factor(times)
        self._series.extend(base)
        self._mirror_series.extend(1.0 / np.maximum(base, _stats.LOG_FLOOR))
        for monitor in (self._monitor, self._mirror):
            monitor.pos = monitor.next_refresh = self._series.n_units()

    def _feed(self, values: FloatArray) -> list[Regression]:
        self._series.extend(values)
        if self._improvements:  # listed by detection(), never returned as regressions
            self._mirror_series.extend(1.0 / np.maximum(values, _stats.LOG_FLOOR))
            self._mirror.run()
        return self._monitor.run()

    def detection(self) -> Detection:
        """Verdict, regressions (with recovery and final sizes), improvements and sensitivity
        so far. Samples still held back (less than one period seen, with a season) are judged
        now as without a season, and later ones too."""
        if self._held:
            self._release(None)
        return _with_improvements(self._monitor.detection(), self._mirror.detection())


def _mirror_policy(policy: Policy) -> Policy:
    """The policy for the reciprocal latencies: their quantile 1 - q is the latencies' q."""
    return dataclasses.replace(policy, quantile=1.0 - policy.quantile, season=None)


def _with_improvements(worse: Detection, better: Detection) -> Detection:
    return dataclasses.replace(worse, improvements=better.regressions)


def _latencies(values: Sequence[float] | npt.NDArray[Any], allow_empty: bool = False) -> FloatArray:
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


def detect_latency(
    values: Sequence[float] | npt.NDArray[Any], policy: Policy = DEFAULT_POLICY
) -> Detection:
    """Regressions in raw latency samples (seconds) given in arrival order."""
    detector = LatencyDetector(policy)
    detector.extend(_latencies(values))
    return detector.detection()


def detect_latency_windows(
    bounds: Sequence[float] | npt.NDArray[Any],
    counts: npt.ArrayLike,
    policy: Policy = DEFAULT_POLICY,
    improvements: bool = True,
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
    series = cp.HistogramSeries(b, c if policy.season is None else c[:0], policy)
    monitor = _Monitor(
        series,
        policy,
        "latency",
        _statistic_name(policy.quantile),
        n_charts=cp.LATENCY_CHARTS,
    )
    judged_from = 0  # the first window judged (after a held first period)
    if policy.season is None:
        monitor.run()
    else:
        # Same-phase baselines: every window is moved, as if each of its samples were divided
        # by the same-phase level of the earlier periods (a profile of the windows' mean log
        # latency, weighted by their counts), period by period so the profile is not refitted
        # while a regression is open. Times are window indices; the season is in windows.
        season = _stats.SeasonalProfile(policy.season)
        t = np.arange(c.shape[0], dtype=np.float64)
        logs, weights = series.mean_logs(c)
        period = np.floor(t / season.period)
        cuts = [0, *(np.flatnonzero(np.diff(period)) + 1).tolist(), c.shape[0]]
        held = 0  # windows before the first fitted profile: the first baseline, not judged
        for lo, hi in itertools.pairwise(cuts):
            season.frozen = monitor.open is not None
            factors = season.factors(logs[lo:hi], t[lo:hi], weights[lo:hi])
            if season.coef is None:
                held = hi
                continue
            if held:  # the first period(s), seen through the profile they were fitted to
                series.extend(series.rescaled(c[:held], season.factor(t[:held])))
                monitor.pos = monitor.next_refresh = judged_from = held
                held = 0
            series.extend(series.rescaled(c[lo:hi], factors))
            monitor.run()
        if held:  # not one complete period: judged as without a season
            series.extend(c[:held])
            monitor.run()
        c = series.counts
    if not improvements:
        return monitor.detection()
    # Improvements: the same detector on the reciprocal latencies, whose buckets are the same
    # buckets in reverse order (a window's +Inf bucket holds its fastest reciprocals).
    mirror = _mirror_policy(policy)
    flipped = 1.0 / np.maximum(b[::-1], _stats.LOG_FLOOR)
    better = _Monitor(
        cp.HistogramSeries(flipped, np.ascontiguousarray(c[:, ::-1]), mirror),
        mirror,
        "latency",
        _statistic_name(policy.quantile),
        n_charts=cp.LATENCY_CHARTS,
        mirrored=True,
    )
    better.pos = better.next_refresh = judged_from
    better.run()
    return _with_improvements(monitor.detection(), better.detection())


def detect_rate(
    good: Sequence[int] | npt.NDArray[Any],
    total: Sequence[int] | npt.NDArray[Any],
    policy: Policy = DEFAULT_POLICY,
) -> Detection:
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
    monitor = _Monitor(
        _rates.RateSeries(g, t, policy), policy, "rate", "rate", n_charts=cp.RATE_CHARTS
    )
    monitor.run()
    return monitor.detection()
