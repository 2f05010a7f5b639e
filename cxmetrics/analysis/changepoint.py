"""The detector's data forms: how raw samples, histogram windows and rates become CUSUM
increments, baselines and comparisons (`Series` and `Reference` per form). The statistical
primitives they use are in `cxmetrics.analysis.stats`; docs/regression.md explains the method.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .policy import Policy

from .stats import (
    LOG_FLOOR,
    FloatArray,
    change_point,
    cusum_threshold,
    detectable_shift,
    histogram_quantile,
    hodges_lehmann,
    mann_whitney_sf,
    norm_ppf,
    norm_sf,
    quantile_sketch,
    robust_log_sigma,
    siegmund_threshold,
    slot_scores,
    sorted_quantile,
    untied_score_sd,
)

# ================================================================================================
# data forms: how raw samples, histogram windows and rates become CUSUM increments

#: Charts are tuned to shifts of min_change times these (a ladder: small shifts are caught late,
#: large ones early; the false-alarm budget is split evenly across the charts).
CHART_MULTIPLES = (1.0, 2.0, 5.0)
#: Exceedance charts: Bernoulli CUSUMs on "sample above the baseline's quantile q" for q = the
#: policy's quantile and the median, tuned to that quantile moving by min_change x
#: CHART_MULTIPLES. They see what the rank charts average away: a change confined to the tail or
#: to the share of a slow mode (cache misses). The rank charts keep their DESIGN_MARGIN of the
#: policy's false-alarm rate; the exceedance charts get EXCEED_SHARE of the rate on top (Wald's
#: bound, exact up to the baseline's p0, which is taken at its upper bound).
EXCEED_MEDIAN = 0.5
EXCEED_SHARE = 0.25
#: Tail charts: rank CUSUMs on the samples above the baseline's 1 - TAIL_SPREAD (1 - q) quantile
#: (p90 for q = 0.95) alone, each scored against the baseline's samples above it. A change
#: confined to the tail (a slow mode getting slower) barely moves the share above p95 (5% ->
#: 8% for a slow 10% getting x1.3), but moves every tail sample: within the tail it is a shift
#: of ~0.9 sd. Samples below the threshold add nothing; the charts' false-alarm rate per tail
#: sample is their share of the budget divided by the tail's share of the samples.
TAIL_SPREAD = 2.0
#: ... and run once the baseline's tail holds this many samples (500 baseline samples at p90): a
#: handful of tail samples would let the charts run on the biggest shifts only, and their
#: excursions would hold a young baseline back (step 2 of docs/regression.md) for nothing.
TAIL_MIN_SAMPLES = 50
#: Overdispersion: the baseline is cut, in arrival order, into blocks of at least this many
#: samples; the variance of their standardized score sums (1 for independent samples) is the
#: dispersion factor phi. A daily cycle, correlated wander or bursts inside the baseline make
#: phi > 1, and the charts then need phi times the evidence (scores scaled by 1/sqrt(phi),
#: exceedance log-likelihoods by 1/phi). phi is measured on blocks of 200 and on groups of 5
#: blocks (1,000 samples: slower wander), the larger kept. Below DISPERSION_MIN_BLOCKS blocks
#: (2,000 samples) phi is not estimated and samples are taken as independent.
DISPERSION_BLOCK = 200
DISPERSION_MIN_BLOCKS = 10
DISPERSION_GROUPS = (1, 5)
#: A change is a regression only beyond this many sds of the baseline's own level wander.
WANDER_Z = 5.0
#: rank charts, exceedance charts of the reported quantile and of the median, tail charts
LATENCY_CHARTS = 4 * len(CHART_MULTIPLES)
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
#: Slow drift: a trailing baseline trails a drift (it is on average ~5,500 samples old), so the
#: monitor also keeps *anchors*, baselines captured every ANCHOR_EVERY samples (once they hold
#: ANCHOR_MIN_SAMPLES) and held for up to ANCHOR_SPAN samples, and at every re-estimation compares
#: the latest DRIFT_RECENT samples with the oldest anchor (step 2b of docs/regression.md). The
#: comparison may spend DRIFT_SHARE of the policy's false-alarm rate per sample between checks.
ANCHOR_EVERY = 5_000
ANCHOR_SPAN = 50_000
ANCHOR_MIN_SAMPLES = 5_000
DRIFT_RECENT = 5_000
DRIFT_SHARE = 0.25
#: ... and the trailing baseline is moved along a rise measured at LAG_Z standard errors between
#: it and the oldest anchor, once their samples' centres are LAG_MIN_GAP samples apart.
LAG_Z = 2.0
LAG_MIN_GAP = 5_000
BLOCK_SAMPLES = 1000  # samples per vectorized CUSUM step
POWER_Z = 0.8416  # 80% power
#: The latency charts are designed for half the policy's false-alarm rate: Siegmund's
#: approximation and the baseline-error correction are approximations, and the policy's rate is
#: a ceiling, not a target to hit on average (the benchmark measures the result).
DESIGN_MARGIN = 0.5


@dataclass(frozen=True)
class Tail:
    """The baseline's upper tail, for the tail charts: its sample count, the robust sigma and
    score sd of its log latencies, and per dispersion block its standardized score sums and
    counts (arrival order)."""

    n: float
    sigma: float | None
    sd: float
    blocks: tuple[FloatArray, FloatArray] | None


@dataclass(frozen=True)
class Comparison:
    current: float
    change: float
    p_value: float
    matters: bool
    #: 95% confidence interval of `change` (same units)
    low: float = math.nan
    high: float = math.nan
    #: the baseline's value of the statistic compared (None: the reference's reported baseline)
    baseline: float | None = None


#: two-sided 95% normal quantile, for the reported size's confidence interval
CI_Z = 1.96


def quantile_log_se(quantile: Callable[[float], float], n: float, q: float) -> float:
    """Standard error of ln(quantile q) estimated from n samples: the order-statistic interval
    q +- 1.96 sqrt(q (1 - q) / n), read through the sample's own quantile function."""
    half = CI_Z * math.sqrt(q * (1.0 - q) / max(n, 1.0))
    lo = quantile(max(q - half, 0.0))
    hi = quantile(min(q + half, 1.0))
    if not (lo > 0.0 and hi > 0.0 and math.isfinite(lo) and math.isfinite(hi)):
        return math.inf
    return (math.log(hi) - math.log(lo)) / (2.0 * CI_Z)


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
    def recovery(
        self, lo: int, hi: int, regressed: tuple[int, int], chart: int = 0
    ) -> tuple[FloatArray, float]:
        """Increments and threshold of the CUSUM that declares the step back near its baseline;
        `regressed` is the span known to be regressed so far, `chart` the chart that alarmed."""
        ...

    @abstractmethod
    def compare(self, lo: int, hi: int, chart: int = 0, alarm: int | None = None) -> Comparison:
        """The segment against the baseline, sized on the statistic chart `chart` watches.
        `alarm`: when `lo` is the change point located for an alarm, the unit whose crossing
        raised it (a size may leave out the units that selected the change point)."""

    def quantile(self, chart: int) -> float | None:
        """The latency quantile chart `chart` is about (None for rates)."""
        return None

    def scores(self, lo: int, hi: int) -> tuple[FloatArray, FloatArray]:
        """Per unit: sum of unit-variance scores (mean zero at baseline), and sample counts."""
        raise TypeError(f"{type(self).__name__} locates its change point by its own likelihood")

    def signal(self, chart: int) -> str:
        """What chart `chart` watches, as reported."""
        return "rate"

    def min_shift(self) -> float:
        """The smallest shift that matters, in the units of `scores`."""
        raise TypeError(f"{type(self).__name__} locates its change point by its own likelihood")

    def change_point(self, lo: int, hi: int, chart: int = 0) -> int:
        """Maximum-likelihood start, in [lo, hi), of a shift that lasts to hi, for the chart
        that alarmed."""
        y, m = self.scores(lo, hi)
        return lo + change_point(y, m, self.min_shift())

    @abstractmethod
    def detectable_change(self, n_current: int) -> float | None: ...

    #: the form supports the drift check (`drift_z`)
    drifts = False

    def drift_z(self, lo: int, hi: int) -> float | None:
        """How far the units [lo, hi) sit above this baseline, in standard errors that count the
        baseline's own level wander between two distant periods (None: cannot tell)."""
        return None

    def drift_shift(self, lo: int, hi: int) -> tuple[float, float] | None:
        """`drift_z` and the log-latency shift it measures (None: cannot tell)."""
        return None

    def shifted(self, factor: float) -> Reference | None:
        """The same baseline with every sample multiplied by `factor` (None: not supported)."""
        return None


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


class WindowSeries(Series):
    """A series whose units are windows holding many samples: ``cum[u]`` is the number of
    samples in the windows before ``u``."""

    cum: FloatArray

    def samples(self, lo: int, hi: int) -> int:
        return round(self.cum[hi] - self.cum[lo]) if hi > lo else 0

    def units_back(self, pos: int, n_samples: int) -> int:
        target = self.cum[pos] - n_samples
        return min(max(int(np.searchsorted(self.cum, target, side="right")) - 1, 0), pos)


# --------------------------------------------------------------------------------------------
# latency: shared normal-score machinery


class ScoreReference(Reference):
    """Baseline for latency: expected normal scores of new samples against the baseline sample.

    A shift of the log-latency distribution by d moves the mean standardized score by
    sd * d / sigma (sd < 1 only when ties or buckets hide information), so a chart tuned to a
    relative change c uses k = sd * ln(1 + c) / (2 sigma).
    """

    def __init__(
        self,
        n: float,
        sigma: float | None,
        sd: float,
        baseline: float,
        policy: Policy,
        share_above: Callable[[float], float],
        thresholds: FloatArray,
        blocks: tuple[FloatArray, FloatArray, FloatArray] | None = None,
        tail: Tail | None = None,
    ) -> None:
        """`share_above(x)`: the baseline's share of samples above x; `thresholds`: the
        baseline's quantiles at `exceed_levels`; `blocks`: per block of the baseline in arrival
        order, its sum of scores (divided by sd), its sample count, and its samples above each
        threshold (levels x blocks), for the dispersion factors."""
        self.n, self.baseline, self.policy = n, baseline, policy
        p_levels = np.array([share_above(float(t)) for t in thresholds])
        self.phi, phi_ex = dispersion(blocks, p_levels)
        self.wander = 0.0  # sd of the baseline's own log level between blocks (set below)
        sd_info = sd / math.sqrt(self.phi)
        alpha = DESIGN_MARGIN * policy.false_alarm_rate
        multiples = np.array(CHART_MULTIPLES)
        calibrated = not (sigma is None or sd < 1e-6)
        if sigma is None or sd < 1e-6:  # no spread: relative shifts cannot be calibrated
            sigma, sd, sd_info = 1.0, 1.0, 1.0
            self.k = np.zeros(len(CHART_MULTIPLES))
            rank_h = np.full(len(CHART_MULTIPLES), math.inf)
        else:
            self.k = sd_info * np.log1p(policy.min_change * multiples) / (2.0 * sigma)
            rank_h = split_thresholds(self.k, alpha, n)
            sd = sd * math.sqrt(self.phi)
            self.wander = sigma * wander(blocks)
        self.sigma, self.sd, self.sd_info = sigma, sd, sd_info
        # Exceedance charts. The baseline's share above its own quantile is exact by
        # construction, the population's is not: p0 is taken at its 99.87% upper bound, so an
        # unlucky baseline cannot make normal traffic look worse (as the rate charts do).
        # The share expected above the threshold after the quantile moves by c is read from the
        # baseline itself (its share above threshold / (1 + c)): the local density at the
        # quantile, whatever the shape (a lognormal, a slow mode, a cache-miss mix).
        p0 = np.array([share_above(float(t)) for t in thresholds])
        p0 = np.clip(p0, 1e-9, 1.0 - 1e-9)
        inflate = np.minimum(3.0 * np.sqrt(p0 * (1.0 - p0) / max(n, 1.0)), 0.999 - p0)
        p0u = p0 + inflate
        z0 = np.array([norm_ppf(1.0 - float(p)) for p in p0u])
        grown = 1.0 + policy.min_change * multiples
        p1 = (
            np.array([[share_above(float(t) / g) for g in grown] for t in thresholds])
            + inflate[:, None]
        )
        # never less than the lognormal reading (a sparse baseline's empty tail reads as 0)
        shift = np.log1p(policy.min_change * multiples) / sigma
        p1_model = np.array([[norm_sf(float(z) - float(d)) for d in shift] for z in z0])
        p1 = np.clip(np.maximum(p1, np.minimum(p1_model, p0u[:, None] * 1.05)), 1e-9, 0.999)
        p1 = np.maximum(p1, p0u[:, None] * (1.0 + 1e-6))
        self.p0u = p0u
        self.ea = np.log(p1 / p0u[:, None]) / phi_ex[:, None]  # quasi-likelihood
        self.eb = np.log((1.0 - p1) / (1.0 - p0u[:, None])) / phi_ex[:, None]
        levels = self.exceed_levels()
        used = np.array([i == 0 or q != levels[0] for i, q in enumerate(levels)])
        used &= calibrated & (p0 > 1e-9) & (p0 < 1.0 - 1e-9) & np.isfinite(z0)
        j = max(int(used.sum()) * len(CHART_MULTIPLES), 1)
        tail_ok = (
            calibrated
            and tail is not None
            and tail.sigma is not None
            and tail.sd > 1e-6
            and tail.n >= TAIL_MIN_SAMPLES
            and 1.0 - (1.0 - policy.quantile) * TAIL_SPREAD > EXCEED_MEDIAN
        )
        j = max((int(used.sum()) + int(tail_ok)) * len(CHART_MULTIPLES), 1)
        ex_alpha = EXCEED_SHARE * policy.false_alarm_rate / j
        ex_h = np.where(used, math.log(1.0 / ex_alpha), math.inf)
        self.tail_k = np.zeros(len(CHART_MULTIPLES))
        tail_h = np.full(len(CHART_MULTIPLES), math.inf)
        self.tail_sd, self.tail_n = 1.0, 0.0
        if tail_ok:
            assert tail is not None and tail.sigma is not None
            # (the exceedance row is a placeholder: only the scores' factor is used)
            phi_t, _ = dispersion(
                None if tail.blocks is None else (*tail.blocks, np.zeros((1, tail.blocks[0].size))),
                np.array([0.5]),
            )
            self.tail_sd, self.tail_n = tail.sd * math.sqrt(phi_t), tail.n
            self.tail_k = tail.sd / math.sqrt(phi_t) * np.log1p(policy.min_change * multiples)
            self.tail_k /= 2.0 * tail.sigma
            per_tail_sample = min(ex_alpha * n / tail.n, 0.5)
            tail_h = np.array(
                [
                    math.inf
                    if (x := cusum_threshold(float(k), per_tail_sample, tail.n)) is None
                    else x
                    for k in self.tail_k
                ]
            )
        self.h = np.concatenate([rank_h, np.repeat(ex_h, len(CHART_MULTIPLES)), tail_h])

    def exceed_levels(self) -> tuple[float, float]:
        return (self.policy.quantile, EXCEED_MEDIAN)

    def quantile(self, chart: int) -> float | None:
        """An exceedance chart's quantile; the reported one for the rank charts."""
        if chart < len(CHART_MULTIPLES):
            return self.policy.quantile
        return self.exceed_levels()[self._level(chart)]

    @staticmethod
    def _level(chart: int) -> int:
        """The exceedance level a chart watches (the rank and tail charts count as the
        reported quantile's)."""
        level = max(chart - len(CHART_MULTIPLES), 0) // len(CHART_MULTIPLES)
        return 0 if level >= 2 else level

    @staticmethod
    def _is_tail(chart: int) -> bool:
        return chart >= 3 * len(CHART_MULTIPLES)

    @abstractmethod
    def tail_scores(self, lo: int, hi: int) -> tuple[FloatArray, FloatArray]:
        """Per unit: sum of unit-variance scores of its tail samples against the baseline's
        tail, and its tail sample count."""

    def change_point(self, lo: int, hi: int, chart: int = 0) -> int:
        if chart < len(CHART_MULTIPLES):
            return super().change_point(lo, hi, chart)
        if self._is_tail(chart):
            y, m = self.tail_scores(lo, hi)
            return lo + change_point(y / self.tail_sd, m, 2.0 * float(self.tail_k[0]))
        # Bernoulli likelihood of the exceedances (a tail change barely moves the rank scores)
        level = self._level(chart)
        _, n = self.scores(lo, hi)
        e = self.exceedances(lo, hi)[level]
        p0 = float(self.p0u[level])
        p_min = min(p0 * (1.0 + self.policy.min_change), 1.0 - 1e-9)
        bad = np.cumsum(e[::-1])[::-1]
        tot = np.maximum(np.cumsum(n[::-1])[::-1], 1e-12)
        p = np.clip(bad / tot, p_min, 1.0 - 1e-12)
        llr = bad * np.log(p / p0) + (tot - bad) * np.log((1.0 - p) / (1.0 - p0))
        return lo + int(np.argmax(llr))

    @abstractmethod
    def exceedances(self, lo: int, hi: int) -> FloatArray:
        """Per exceedance level and unit: samples above the baseline's threshold."""

    def signal(self, chart: int) -> str:
        """What chart `chart` watches, as reported: a rank shift or a quantile's exceedances."""
        if chart < len(CHART_MULTIPLES):
            return "rank shift"
        if self._is_tail(chart):
            return "tail shift"
        level = self.exceed_levels()[self._level(chart)]
        return f"p{level * 100:.10g} exceedances"

    def min_shift(self) -> float:
        return 2.0 * float(self.k[0])

    def increments(self, lo: int, hi: int) -> FloatArray:
        y, n = self.scores(lo, hi)
        rank = y[None, :] - self.k[:, None] * n[None, :]
        e = self.exceedances(lo, hi)  # levels x units
        ex = self.ea[:, :, None] * e[:, None, :] + self.eb[:, :, None] * (n - e)[:, None, :]
        yt, mt = self.tail_scores(lo, hi)
        tail = yt[None, :] / self.tail_sd - self.tail_k[:, None] * mt[None, :]
        return np.asarray(np.concatenate([rank, ex.reshape(-1, hi - lo), tail]), dtype=np.float64)

    def recovery(
        self, lo: int, hi: int, regressed: tuple[int, int], chart: int = 0
    ) -> tuple[FloatArray, float]:
        alpha = DESIGN_MARGIN * self.policy.false_alarm_rate
        level = self._level(chart)
        if math.isfinite(float(self.h[len(CHART_MULTIPLES) * (1 + level)])):
            # Back = the affected quantile's exceedance share is back at the baseline's, against
            # "still at the smallest change that matters" (likelihood ratio, Wald threshold):
            # the reported quantile, whatever chart found the change (the mean rank score can be
            # back while the tail is not, e.g. a cache-miss share that stays high).
            _, n = self.scores(lo, hi)
            e = self.exceedances(lo, hi)[level]
            a, b = -float(self.ea[level, 0]), -float(self.eb[level, 0])
            return np.asarray(a * e + b * (n - e), dtype=np.float64), math.log(1.0 / alpha)
        # Back near baseline = the mean score has fallen below half the smallest change that
        # matters (k of the first chart). Not half the estimated regressed level: that estimate
        # is biased upwards by the alarm that selected it, and would declare recovery too soon.
        y, n = self.scores(lo, hi)
        c = float(self.k[0])
        if c <= 0.0:
            return np.full(hi - lo, math.inf), 0.0
        h = siegmund_threshold(c, alpha)
        return np.asarray(c * n - y, dtype=np.float64), h

    drifts = True

    def drift_z(self, lo: int, hi: int) -> float | None:
        """The segment's mean standardized score against this baseline, in standard errors: the
        segment's sampling (overdispersed, as the charts see it), the baseline's estimation error,
        and twice the baseline's level wander squared (two periods far apart each wander)."""
        found = self.drift_shift(lo, hi)
        return None if found is None else found[0]

    def drift_shift(self, lo: int, hi: int) -> tuple[float, float] | None:
        if self.k[0] <= 0.0:
            return None
        y, m = self.scores(lo, hi)
        s, n_seg = float(y.sum()), float(m.sum())
        if n_seg <= 0.0:
            return None
        per_log = self.sd_info / self.sigma  # mean score per unit of log shift
        level = self.wander * per_log * n_seg
        z = s / math.sqrt(n_seg + n_seg * n_seg / self.n + 2.0 * level * level)
        return z, s / n_seg / per_log

    def detectable_change(self, n_current: int) -> float | None:
        if n_current <= 0:
            return None
        shifts = [
            detectable_shift(float(k), float(h), n_current, POWER_Z)
            for k, h in zip(self.k, self.h[: self.k.size], strict=True)
            if math.isfinite(h)
        ]
        if not shifts:
            return None
        return math.expm1(min(shifts) * self.sigma / self.sd_info)

    def _judge(
        self,
        current: float,
        hl: float,
        n_seg: float,
        p_value: float,
        q_se: float,
        baseline: float | None = None,
    ) -> Comparison:
        """`q_se`: standard error of ln(quantile) of baseline and segment combined; `baseline`:
        the baseline's value of the quantile compared (default: the reported one's)."""
        base = self.baseline if baseline is None else baseline
        change = current / base - 1.0 if base > 0 else math.inf
        se = self.sigma * math.sqrt(math.pi / 3.0 * (1.0 / self.n + 1.0 / max(n_seg, 1.0)))
        upper = math.expm1(hl + 1.645 * se)
        low = high = math.nan
        if base > 0 and current > 0 and math.isfinite(q_se):
            log_ratio = math.log(current / base)
            low = math.expm1(log_ratio - CI_Z * q_se)
            high = math.expm1(log_ratio + CI_Z * q_se)
        # Only a worsening of the reported quantile is a regression: the rank CUSUM also rises
        # when the bulk slows while the tail tightens, and that p95 is better, not worse.
        # Nor is a move the baseline's own level makes anyway: with AR(1)-like wander of sd w
        # between blocks, a level WANDER_Z * w above the baseline is the baseline's own weather.
        matters = (
            change > 0.0
            and (upper >= self.policy.min_change or change >= self.policy.min_change)
            and math.log1p(change) > WANDER_Z * self.wander
        )
        return Comparison(current, change, p_value, matters, low, high, base)


def dispersion(
    blocks: tuple[FloatArray, FloatArray, FloatArray] | None, p_levels: FloatArray
) -> tuple[float, FloatArray]:
    """Dispersion factors (>= 1) of the scores and of each level's exceedances, from the
    baseline's blocks; 1 when there are too few blocks to tell. The estimate is discounted by
    two of its standard errors (sqrt(2/m) for m blocks), so independent samples stay at 1."""
    ones = np.ones(p_levels.size)
    if blocks is None:
        return 1.0, ones
    phi, phi_ex = 1.0, ones
    for group in DISPERSION_GROUPS:  # blocks of 200, and of 1,000 for slower wander
        y, m, e = _merge(blocks, group)
        keep = m > 0
        y, m, e = y[keep], m[keep], e[:, keep]
        if y.size < DISPERSION_MIN_BLOCKS:
            continue
        discount = 1.0 + 2.0 * math.sqrt(2.0 / y.size)
        phi = max(float(np.mean(y * y / m)) / discount, phi)
        p = np.clip(p_levels, 1e-9, 1.0 - 1e-9)[:, None]
        z2 = (e - p * m) ** 2 / (m * p * (1.0 - p))
        phi_ex = np.maximum(np.mean(z2, axis=1) / discount, phi_ex)
    return phi, np.asarray(phi_ex, dtype=np.float64)


def wander(blocks: tuple[FloatArray, FloatArray, FloatArray] | None) -> float:
    """The sd of the baseline's own level between blocks, beyond what sampling explains, in
    standardized-score units (multiply by sigma for log latency): the excess of the blocks' mean
    score variance over 1/m, the larger of blocks of 200 and 1,000 samples; 0 when there are too
    few blocks to tell. Not discounted for its noise (unlike `dispersion`): it understates a slow
    wander anyway, a baseline of 10,000 samples holding only ~10 correlation times of one that
    lasts ~1,000 samples."""
    if blocks is None:
        return 0.0
    out = 0.0
    for group in DISPERSION_GROUPS:
        y, m, _ = _merge(blocks, group)
        keep = m > 0
        y, m = y[keep], m[keep]
        if y.size < DISPERSION_MIN_BLOCKS:
            continue
        excess = float(np.mean((y / m) ** 2)) - float(np.mean(1.0 / m))
        out = max(out, math.sqrt(max(excess, 0.0)))
    return out


def _merge(
    blocks: tuple[FloatArray, FloatArray, FloatArray], group: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Sum `group` consecutive blocks (a trailing incomplete group is dropped)."""
    y, m, e = blocks
    if group == 1:
        return y, m, e
    full = (y.size // group) * group
    return (
        y[:full].reshape(-1, group).sum(axis=1),
        m[:full].reshape(-1, group).sum(axis=1),
        e[:, :full].reshape(e.shape[0], -1, group).sum(axis=2),
    )


def _blocks(
    scores: FloatArray, counts: FloatArray, above: FloatArray, by: FloatArray | None = None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Group consecutive units into blocks of at least DISPERSION_BLOCK samples (of `by`'s
    samples when given: the tail's blocks are cut by all samples, counted by tail samples)."""
    size = counts if by is None else by
    cum = np.cumsum(size)
    block = np.floor(cum / DISPERSION_BLOCK).astype(np.int64)
    block = np.concatenate([[0], block[:-1]])  # a unit belongs to the block it starts in
    n_blocks = int(block[-1]) + 1 if block.size else 0
    y = np.bincount(block, weights=scores, minlength=n_blocks)
    m = np.bincount(block, weights=counts, minlength=n_blocks)
    e = np.array([np.bincount(block, weights=a, minlength=n_blocks) for a in above])
    e = e.reshape(len(above), n_blocks)
    full = np.bincount(block, weights=size, minlength=n_blocks) >= 0.5 * DISPERSION_BLOCK
    f64 = np.float64
    return (
        np.asarray(y[full], dtype=f64),
        np.asarray(m[full], dtype=f64),
        np.asarray(e[:, full], dtype=f64),
    )


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
        return SampleReference(self, np.sort(values), self.policy, values)


class SampleReference(ScoreReference):
    def __init__(
        self, series: SampleSeries, ref: FloatArray, policy: Policy, ordered: FloatArray
    ) -> None:
        """`ref`: the baseline sorted; `ordered`: the same samples in arrival order."""
        self.series, self.ref, self.ordered = series, ref, ordered
        n = ref.size
        sigma = robust_log_sigma(lambda q: float(sorted_quantile(ref, q)))
        if n > 1 and bool(np.any(ref[1:] == ref[:-1])):
            own = self._raw_scores(ref)
            sd = float(np.sqrt(np.mean(own * own)))
        else:
            sd = untied_score_sd(n)
        baseline = float(sorted_quantile(ref, policy.quantile))
        self.thresholds = np.array([baseline, float(sorted_quantile(ref, EXCEED_MEDIAN))])

        def share_above(x: float) -> float:
            return float(n - np.searchsorted(ref, x, side="right")) / max(n, 1)

        above = (ordered[None, :] > self.thresholds[:, None]).astype(np.float64)
        own = self._raw_scores(ordered) / max(sd, 1e-12)
        blocks = _blocks(own, np.ones(ordered.size), above)
        # the tail: the baseline's samples above its 1 - TAIL_SPREAD (1 - q) quantile
        self.tail_at = float(sorted_quantile(ref, 1.0 - (1.0 - policy.quantile) * TAIL_SPREAD))
        self.tail_ref = ref[ref > self.tail_at]
        tail = None
        if self.tail_ref.size >= 2:
            t_ref = self.tail_ref
            t_sigma = robust_log_sigma(lambda q: float(sorted_quantile(t_ref, q)))
            t_own = self._tail_raw(t_ref)
            t_sd = float(np.sqrt(np.mean(t_own * t_own)))
            in_tail = ordered > self.tail_at
            t_scores = np.where(in_tail, self._tail_raw(ordered) / max(t_sd, 1e-12), 0.0)
            t_blocks = _blocks(
                t_scores,
                in_tail.astype(np.float64),
                np.zeros((0, ordered.size)),
                np.ones(ordered.size),
            )
            tail = Tail(float(t_ref.size), t_sigma, t_sd, t_blocks[:2])
        super().__init__(n, sigma, sd, baseline, policy, share_above, self.thresholds, blocks, tail)
        self.log_sketch = np.log(np.maximum(quantile_sketch(ref), LOG_FLOOR))

    def shifted(self, factor: float) -> Reference | None:
        return SampleReference(self.series, self.ref * factor, self.policy, self.ordered * factor)

    def exceedances(self, lo: int, hi: int) -> FloatArray:
        x = self.series.values(lo, hi)
        return np.asarray(x[None, :] > self.thresholds[:, None], dtype=np.float64)

    def _tail_raw(self, x: FloatArray) -> FloatArray:
        left = np.searchsorted(self.tail_ref, x, side="left").astype(np.int64)
        right = np.searchsorted(self.tail_ref, x, side="right").astype(np.int64)
        return slot_scores(left, right, self.tail_ref.size)

    def tail_scores(self, lo: int, hi: int) -> tuple[FloatArray, FloatArray]:
        x = self.series.values(lo, hi)
        in_tail = x > self.tail_at
        if self.tail_ref.size < 2:
            return np.zeros(x.size), np.zeros(x.size)
        y = np.where(in_tail, self._tail_raw(x), 0.0)
        return np.asarray(y, dtype=np.float64), in_tail.astype(np.float64)

    def _raw_scores(self, x: FloatArray) -> FloatArray:
        left = np.searchsorted(self.ref, x, side="left").astype(np.int64)
        right = np.searchsorted(self.ref, x, side="right").astype(np.int64)
        return slot_scores(left, right, self.ref.size)

    def scores(self, lo: int, hi: int) -> tuple[FloatArray, FloatArray]:
        y = self._raw_scores(self.series.values(lo, hi)) / self.sd
        return y, np.ones(hi - lo)

    def compare(self, lo: int, hi: int, chart: int = 0, alarm: int | None = None) -> Comparison:
        q = self.quantile(chart) or self.policy.quantile
        seg = np.sort(self.series.values(lo, hi))
        current = float(sorted_quantile(seg, q))
        both, inverse = np.unique(np.concatenate([self.ref, seg]), return_inverse=True)
        ref_counts = np.bincount(inverse[: self.ref.size], minlength=both.size).astype(np.float64)
        seg_counts = np.bincount(inverse[self.ref.size :], minlength=both.size).astype(np.float64)
        p_value = mann_whitney_sf(ref_counts, seg_counts)
        seg_sketch = np.log(np.maximum(quantile_sketch(seg), LOG_FLOOR))
        ones_r, ones_s = np.ones(self.log_sketch.size), np.ones(seg_sketch.size)
        hl = hodges_lehmann(self.log_sketch, ones_r, seg_sketch, ones_s)
        q_se = math.hypot(
            quantile_log_se(lambda p: float(sorted_quantile(self.ref, p)), self.ref.size, q),
            quantile_log_se(lambda p: float(sorted_quantile(seg, p)), seg.size, q),
        )
        base = float(sorted_quantile(self.ref, q))
        return self._judge(current, hl, float(seg.size), p_value, q_se, base)


# --------------------------------------------------------------------------------------------
# latency from histogram windows


class HistogramSeries(WindowSeries):
    def __init__(self, bounds: FloatArray, counts: FloatArray, policy: Policy) -> None:
        self.policy, self.counts = policy, counts
        last = bounds[-1] * (bounds[-1] / bounds[-2]) if bounds.size > 1 else 2.0 * bounds[-1]
        first = bounds[0] * (bounds[0] / bounds[1]) if bounds.size > 1 and bounds[0] > 0 else 0.0
        self.edges = np.concatenate([[0.0], bounds, [bounds[-1]]])  # +Inf reads as the last bound
        mids = np.sqrt(np.concatenate([[first], bounds]) * np.concatenate([bounds, [last]]))
        self.log_mids = np.log(np.maximum(mids, LOG_FLOOR))
        # the buckets' edges in logs, the first and the +Inf bucket one grid step wide
        self.log_edges = np.log(np.maximum(np.concatenate([[first], bounds, [last]]), LOG_FLOOR))
        self.cum = np.concatenate([[0.0], np.cumsum(counts.sum(axis=1))])

    def n_units(self) -> int:
        return int(self.counts.shape[0])

    def extend(self, counts: FloatArray) -> None:
        """Append windows (same buckets)."""
        self.counts = np.concatenate([self.counts, counts])
        self.cum = np.concatenate([self.cum, self.cum[-1] + np.cumsum(counts.sum(axis=1))])

    def mean_logs(self, counts: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Per window: its mean log latency (bucket midpoints) and its sample count."""
        n = counts.sum(axis=1)
        mean = np.where(n > 0, counts @ self.log_mids / np.maximum(n, 1e-12), 0.0)
        return np.asarray(mean, dtype=np.float64), np.asarray(n, dtype=np.float64)

    def rescaled(self, counts: FloatArray, factors: FloatArray) -> FloatArray:
        """The windows as if every sample of window w were divided by ``factors[w]``: each
        window's cumulative counts, log-linear inside a bucket (as `histogram_quantile` reads
        them), read at the bucket bounds times its factor. Counts stay on the same buckets."""
        if self.log_edges.size < 3:
            return counts
        cum = np.concatenate([np.zeros((counts.shape[0], 1)), np.cumsum(counts, axis=1)], axis=1)
        inner = self.log_edges[1:-1]
        out = np.empty_like(counts)
        for w in range(counts.shape[0]):
            if factors[w] == 1.0:
                out[w] = counts[w]
                continue
            at = np.interp(inner + math.log(factors[w]), self.log_edges, cum[w])
            out[w] = np.diff(np.concatenate([[0.0], at, [cum[w, -1]]]))
        return np.maximum(out, 0.0)

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
        windows = self.counts[lo:hi][start:][weight[start:] > 0]
        hist = windows.sum(axis=0)
        if hist.sum() < self.policy.min_samples:
            return None
        return HistogramReference(self, hist, self.policy, windows)


class HistogramReference(ScoreReference):
    def __init__(
        self, series: HistogramSeries, hist: FloatArray, policy: Policy, windows: FloatArray
    ) -> None:
        """`windows`: the baseline's windows (counts per bucket) in time order; `hist` their sum."""
        self.series, self.hist, self.windows = series, hist, windows
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
        # per level, the share of each bucket above the threshold (the bucket holding it
        # counts by log-linear position, as histogram_quantile reads it)
        thresholds = np.array(
            [histogram_quantile(edges, hist, q) for q in (policy.quantile, EXCEED_MEDIAN)]
        )
        self.exceed_weights = np.array([_above_weights(edges, float(t)) for t in thresholds])

        def share_above(x: float) -> float:
            return float(_above_weights(edges, x) @ hist) / n

        own = windows @ self.bucket_scores / max(sd, 1e-12)
        sizes = windows.sum(axis=1)
        blocks = _blocks(own, sizes, self.exceed_weights @ windows.T)
        # the tail: the buckets above the one holding the 1 - TAIL_SPREAD (1 - q) quantile
        at = histogram_quantile(edges, hist, 1.0 - (1.0 - policy.quantile) * TAIL_SPREAD)
        first = int(np.searchsorted(edges[:-1], at, side="left"))  # first lower edge >= at
        self.tail_scores_b = np.zeros(hist.size)
        self.tail_mask = np.zeros(hist.size)
        tail = None
        t_hist = hist[first:]
        t_n = float(t_hist.sum())
        if t_n >= 2 and first < hist.size:
            t_int = max(round(t_n), 1)
            t_below = np.cumsum(t_hist) - t_hist
            t_left = np.floor(t_below * t_int / t_n).astype(np.int64)
            t_right = np.minimum(np.floor((t_below + t_hist) * t_int / t_n).astype(np.int64), t_int)
            t_sc = slot_scores(t_left, t_right, t_int)
            t_sd = float(np.sqrt(np.sum(t_hist * t_sc**2) / t_n))
            self.tail_scores_b[first:] = t_sc
            self.tail_mask[first:] = 1.0
            t_edges = edges[first:]
            t_sigma = robust_log_sigma(lambda q: histogram_quantile(t_edges, t_hist, q))
            t_own = windows @ self.tail_scores_b / max(t_sd, 1e-12)
            t_blocks = _blocks(t_own, windows @ self.tail_mask, np.zeros((0, sizes.size)), sizes)
            tail = Tail(t_n, t_sigma, t_sd, t_blocks[:2])
        super().__init__(n, sigma, sd, baseline, policy, share_above, thresholds, blocks, tail)
        self.unit_scores = self.bucket_scores / self.sd

    def shifted(self, factor: float) -> Reference | None:
        windows = self.series.rescaled(self.windows, np.full(self.windows.shape[0], 1.0 / factor))
        return HistogramReference(self.series, windows.sum(axis=0), self.policy, windows)

    def tail_scores(self, lo: int, hi: int) -> tuple[FloatArray, FloatArray]:
        c = self.series.counts[lo:hi]
        return np.asarray(c @ self.tail_scores_b, dtype=np.float64), np.asarray(
            c @ self.tail_mask, dtype=np.float64
        )

    def exceedances(self, lo: int, hi: int) -> FloatArray:
        c = self.series.counts[lo:hi]
        return np.asarray(self.exceed_weights @ c.T, dtype=np.float64)

    def scores(self, lo: int, hi: int) -> tuple[FloatArray, FloatArray]:
        c = self.series.counts[lo:hi]
        return np.asarray(c @ self.unit_scores, dtype=np.float64), c.sum(axis=1)

    def compare(self, lo: int, hi: int, chart: int = 0, alarm: int | None = None) -> Comparison:
        q = self.quantile(chart) or self.policy.quantile
        seg = self.series.counts[lo:hi].sum(axis=0)
        current = histogram_quantile(self.series.edges, seg, q)
        p_value = mann_whitney_sf(self.hist, seg)
        mids = self.series.log_mids
        hl = hodges_lehmann(mids, self.hist, mids, seg)
        edges = self.series.edges
        q_se = math.hypot(
            quantile_log_se(lambda p: histogram_quantile(edges, self.hist, p), self.n, q),
            quantile_log_se(lambda p: histogram_quantile(edges, seg, p), float(seg.sum()), q),
        )
        base = histogram_quantile(edges, self.hist, q)
        return self._judge(current, hl, float(seg.sum()), p_value, q_se, base)


def _above_weights(edges: FloatArray, x: float) -> FloatArray:
    """Per bucket, the share of its samples above x: 1 or 0, and for the bucket holding x its
    log-linear position (linear in a bucket starting at zero), as histogram_quantile reads it."""
    lo_e, hi_e = edges[:-1], edges[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(
            lo_e > 0,
            np.log(np.maximum(hi_e, LOG_FLOOR) / max(x, LOG_FLOOR))
            / np.log(np.maximum(hi_e, LOG_FLOOR) / np.maximum(lo_e, LOG_FLOOR)),
            (hi_e - x) / np.maximum(hi_e - lo_e, 1e-300),
        )
    w = np.where(lo_e >= x, 1.0, np.where(hi_e <= x, 0.0, frac))
    return np.asarray(np.clip(np.nan_to_num(w, nan=0.0), 0.0, 1.0), dtype=np.float64)
