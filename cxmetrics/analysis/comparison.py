"""Period over period: every step's and journey's indicators in one period against the previous,
with the change, its direction for customers and whether it is significant.

Both periods go through the same indicator math (``indicators.compute`` on each period's merged
window, from the same source): a comparison can only differ from two separate analyses by how
the two are set side by side. Significance, at ``ALPHA`` (two-sided):

- shares (on time, accuracy, errors, good steps, going on, abandonment, completion): a
  two-proportion z-test on the counts behind them;
- latency (the p95): the previous period's p95 is the bar; the share of customers above it now is
  tested against the share above it then (≈ 5%), with the same z-test — a test of the quantile
  that is reported, valid for exact samples and for histogram buckets alike;
- volume: compared, never called significant (more or less traffic is not better or worse).

A previous period without traffic is "no baseline yet", not a change. The worst step is the one
whose good-step share fell the most significantly, ranked by the customers it cost: this
period's volume times the drop in the good share ("more customers had a bad step").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..spec.model import Spec
from .affected import Affected, affected, journey_affected
from .counts import Window
from .indicators import Indicators, StepIndicators, compute, share_within
from .periods import Period
from .stats import norm_sf

ALPHA = 0.01
#: indicator → (label, higher is better); the order of tables and sentences
STEP_INDICATORS: dict[str, tuple[str, bool]] = {
    "volume": ("customers", True),
    "p95": ("p95", False),
    "timeliness": ("on time", True),
    "accuracy": ("accuracy", True),
    "error_rate": ("errors", False),
    "good_ratio": ("good steps", True),
    "conversion": ("go on", True),
}


@dataclass(frozen=True)
class Change:
    indicator: str
    current: float | None
    previous: float | None
    significant: bool
    worse: bool | None  # None: unchanged, unknown, or volume (neither better nor worse)
    p_value: float | None = None

    @property
    def relative(self) -> float | None:
        if self.current is None or self.previous is None or self.previous == 0:
            return None
        return self.current / self.previous - 1.0


@dataclass(frozen=True)
class StepComparison:
    journey: str
    step: str
    changes: dict[str, Change]
    affected: Affected
    affected_before: Affected
    more_bad: int  # customers with a bad step beyond the previous period's share; may be < 0

    @property
    def worse(self) -> list[Change]:
        return [c for c in self.changes.values() if c.significant and c.worse]

    @property
    def better(self) -> list[Change]:
        return [c for c in self.changes.values() if c.significant and c.worse is False]


@dataclass(frozen=True)
class JourneyComparison:
    journey: str
    started: Change
    completion: Change
    affected: Affected
    affected_before: Affected


@dataclass(frozen=True)
class Comparison:
    current: Period
    previous: Period
    baseline: bool  # some step ran in the previous period
    steps: tuple[StepComparison, ...]
    journeys: tuple[JourneyComparison, ...]

    def step(self, journey: str, step: str) -> StepComparison:
        return next(s for s in self.steps if (s.journey, s.step) == (journey, step))

    @property
    def worst(self) -> StepComparison | None:
        """The step whose good share fell most significantly, by customers it cost."""
        hit = [s for s in self.steps if s.changes["good_ratio"].significant and s.more_bad > 0]
        hit = [s for s in hit if s.changes["good_ratio"].worse]
        return max(hit, key=lambda s: s.more_bad, default=None)


def compare(
    spec: Spec, current: Window, previous: Window, periods: tuple[Period, Period]
) -> Comparison:
    """``current`` against ``previous`` (each a period's merged window, from the same source)."""
    now, before = compute(spec, current), compute(spec, previous)
    baseline = any(r.volume for r in before.steps)  # a journey started on the edge is not traffic
    hit_now, hit_before = affected(spec, current), affected(spec, previous)
    steps = []
    for row in now.steps:
        key = (row.journey, row.step)
        old = before.step(*key)
        changes = _step_changes(row, old, current, previous)
        bad_now = _bad(row)
        bad_before = _bad(old)
        more_bad = (
            round(row.volume * (bad_now - bad_before))
            if bad_now is not None and bad_before is not None
            else 0
        )
        steps.append(StepComparison(*key, changes, hit_now[key], hit_before[key], more_bad))
    return Comparison(
        periods[0],
        periods[1],
        baseline,
        tuple(steps),
        _journeys(spec, now, before, current, previous),
    )


def _bad(row: StepIndicators) -> float | None:
    return None if row.good_ratio is None else 1.0 - row.good_ratio


def _step_changes(
    row: StepIndicators, old: StepIndicators, current: Window, previous: Window
) -> dict[str, Change]:
    key = (row.journey, row.step)
    checked_now = sum(p + f for p, f in row_checks(row))
    checked_before = sum(p + f for p, f in row_checks(old))
    changes = {
        "volume": Change("volume", row.volume, old.volume, False, None),
        "p95": _latency(row, old, current, previous, key),
    }
    denominators = {
        "timeliness": (row.volume, old.volume),
        "accuracy": (checked_now, checked_before),
        "error_rate": (row.volume, old.volume),
        "good_ratio": (row.volume, old.volume),
        "conversion": (row.volume, old.volume),
    }
    for name, (n1, n0) in denominators.items():
        higher_better = STEP_INDICATORS[name][1]
        changes[name] = _share(name, getattr(row, name), n1, getattr(old, name), n0, higher_better)
    return changes


def row_checks(row: StepIndicators) -> list[tuple[int, int]]:
    return [(c.passed, c.failed) for c in row.checks.values()]


def _share(
    name: str,
    now: float | None,
    n_now: int,
    before: float | None,
    n_before: int,
    higher_better: bool,
) -> Change:
    if now is None or before is None or not n_now or not n_before:
        return Change(name, now, before, False, None)
    now, before = min(now, 1.0), min(before, 1.0)  # conversion: transitions may land late
    p = two_proportions(now, n_now, before, n_before)
    significant = p is not None and p < ALPHA
    worse = None if now == before else (now < before) == higher_better
    return Change(name, now, before, significant, worse, p)


def two_proportions(p1: float, n1: int, p0: float, n0: int) -> float | None:
    """Two-sided p-value that two shares differ (pooled z-test); None when it cannot be told."""
    pooled = (p1 * n1 + p0 * n0) / (n1 + n0)
    variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n0)
    if variance <= 0:
        return None if p1 == p0 else 0.0
    return min(1.0, 2.0 * norm_sf(abs(p1 - p0) / math.sqrt(variance)))


def _latency(
    row: StepIndicators,
    old: StepIndicators,
    current: Window,
    previous: Window,
    key: tuple[str, str],
) -> Change:
    now, before = row.quantiles[0.95], old.quantiles[0.95]
    if now is None or before is None:
        return Change("p95", now, before, False, None)
    now_counts, before_counts = current.steps.get(key), previous.steps.get(key)
    if now_counts is None or before_counts is None:
        return Change("p95", now, before, False, None)
    within_now = share_within(now_counts, before)
    within_before = share_within(before_counts, before)
    if within_now is None or within_before is None:
        return Change("p95", now, before, False, None)
    p = two_proportions(1.0 - within_now, row.volume, 1.0 - within_before, old.volume)
    worse = None if now == before else now > before
    return Change("p95", now, before, p is not None and p < ALPHA, worse, p)


def _journeys(
    spec: Spec, now: Indicators, before: Indicators, current: Window, previous: Window
) -> tuple[JourneyComparison, ...]:
    hit_now, hit_before = journey_affected(spec, current), journey_affected(spec, previous)
    out = []
    for row in now.journeys:
        old = before.journey(row.journey)
        started = Change("started", row.started, old.started, False, None)
        completion = _share(
            "completion", row.completion, row.started, old.completion, old.started, True
        )
        out.append(
            JourneyComparison(
                row.journey, started, completion, hit_now[row.journey], hit_before[row.journey]
            )
        )
    return tuple(out)
