"""The rate data form of the detector: per-window good/total counts (accuracy, conversion) as
Bernoulli likelihood-ratio CUSUMs against a baseline failure rate. The latency forms and the
shared `Series`/`Reference` contract are in `cxmetrics.analysis.changepoint`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy import special

if TYPE_CHECKING:
    from .policy import Policy

from .changepoint import (
    CI_Z,
    JUMP_MARGIN,
    POWER_Z,
    RATE_JUMP,
    RATE_MULTIPLES,
    RATE_REFERENCE_EVENTS,
    Comparison,
    Reference,
    WindowSeries,
)
from .stats import FloatArray, norm_sf

# --------------------------------------------------------------------------------------------
# rates

#: A rate regression is sized without the change point's and the alarm's windows while they hold
#: at most this share of the span's events (`RateReference._sized`).
SELECTED_SHARE = 0.25


class RateSeries(WindowSeries):
    reference_size = RATE_REFERENCE_EVENTS

    def __init__(self, good: FloatArray, total: FloatArray, policy: Policy) -> None:
        self.good, self.total, self.policy = good, total, policy
        self.bad = total - good
        self.cum = np.concatenate([[0.0], np.cumsum(total)])

    def n_units(self) -> int:
        return int(self.total.size)

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

    def change_point(self, lo: int, hi: int, chart: int = 0) -> int:
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

    def _sized(self, lo: int, hi: int, alarm: int | None) -> tuple[float, float]:
        """Events and bad events the size of [lo, hi) is read on: when `lo` is the change point
        located for the alarm raised in window `alarm`, without those two windows, if they hold
        at most SELECTED_SHARE of the span's events. The maximum-likelihood start lies just
        before a window with a failure (the failures were seen to start there), and the alarm's
        window holds the failure that crossed the threshold: read with them, the size at the
        first report is inflated (docs/regression.md, step 9). The selection adds about one
        failure to each; in windows that are a large share of the span (a jump found within a
        window or two) that is little beside their own failures, and leaving them out would cost
        more than it removes."""
        total, bad = self.series.total, self.series.bad
        m, b = float(total[lo:hi].sum()), float(bad[lo:hi].sum())
        if alarm is None or not lo < alarm < hi:
            return m, b
        selected = float(total[lo] + total[alarm])
        if selected > SELECTED_SHARE * m:
            return m, b
        return m - selected, b - float(bad[lo] + bad[alarm])

    def increments(self, lo: int, hi: int) -> FloatArray:
        bad, good = self.series.bad[lo:hi], self.series.good[lo:hi]
        return np.asarray(
            self.a[:, None] * bad[None, :] + self.b[:, None] * good[None, :], dtype=np.float64
        )

    def recovery(
        self, lo: int, hi: int, regressed: tuple[int, int], chart: int = 0
    ) -> tuple[FloatArray, float]:
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

    def compare(self, lo: int, hi: int, chart: int = 0, alarm: int | None = None) -> Comparison:
        m = float(self.series.total[lo:hi].sum())
        bad = float(self.series.bad[lo:hi].sum())
        if m <= 0.0:
            return Comparison(math.nan, 0.0, 1.0, False)
        pooled = (bad + self.n * (1.0 - self.baseline)) / (m + self.n)
        se = math.sqrt(max(pooled * (1.0 - pooled) * (1.0 / m + 1.0 / self.n), 1e-300))
        p_value = norm_sf((bad / m - (1.0 - self.baseline)) / se)
        bad0 = self.n * (1.0 - self.baseline)
        log_or = math.log((bad + 0.5) * (self.n - bad0 + 0.5) / ((m - bad + 0.5) * (bad0 + 0.5)))
        se_or = math.sqrt(
            1 / (bad + 0.5) + 1 / (m - bad + 0.5) + 1 / (bad0 + 0.5) + 1 / (self.n - bad0 + 0.5)
        )
        matters = math.expm1(log_or + 1.645 * se_or) >= self.policy.min_change
        # The size, read without the windows the alarm selected (`_sized`); whether the change
        # matters is judged on every event, so detection is as before.
        m, bad = self._sized(lo, hi, alarm)
        current = 1.0 - bad / m
        change = (self.baseline - current) / self.baseline if self.baseline > 0 else 0.0
        # 95% interval of the drop in good rate (Agresti-Caffo: one good and one bad event added
        # to each side), relative to the baseline like `change`
        p_seg, p_base = (bad + 1.0) / (m + 2.0), (bad0 + 1.0) / (self.n + 2.0)
        se_d = math.sqrt(p_seg * (1 - p_seg) / (m + 2.0) + p_base * (1 - p_base) / (self.n + 2.0))
        scale = self.baseline if self.baseline > 0 else math.nan
        low = (p_seg - p_base - CI_Z * se_d) / scale
        high = (p_seg - p_base + CI_Z * se_d) / scale
        return Comparison(current, change, p_value, matters, low, high)

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
