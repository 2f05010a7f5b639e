"""Step and journey indicators (docs/indicators.md), computed from one windowed aggregate.

Every source of data — the in-memory recorder, a JSONL event log, Prometheus range queries —
reduces to the same counts per time window (``cxmetrics.analysis.sources``): for each step its
duration histogram on the step's own bucket layout (``names.duration_buckets``), outcome x
timeliness class counts, good steps, accuracy check passes and failures, and transitions out of
the step; for each journey the instances started and the feedback given. The indicator math
below reads nothing else, so the three sources can only differ in the counts they feed it, never
in how the counts become numbers. Windows merge by adding their counts, which is associative:
indicators over a merged window equal indicators over the concatenated data.

Definitions (docs/indicators.md gives worked examples):

- quantiles: exact order statistics (linear interpolation, numpy's default) when the raw durations
  are at hand (events); otherwise interpolated linearly within the bucket that holds the rank, as
  Prometheus' ``histogram_quantile`` does (first bucket from 0; a rank in +Inf reads as the
  highest finite bound);
- the ratio indicators (timeliness, Apdex, errors, good steps, accuracy, conversion,
  abandonment) and the CX score: ``cxmetrics.analysis.catalogue``, which defines each once for
  the analyzer, the recording rules and the dashboards alike (an error is never satisfied or
  within target; ratios clamped to [0, 1]; a step without checks rescales its score; a score is
  capped while an objective burns at page severity);
- journey completion: arrivals at the last step (its steps minus last→last repeats) / journeys
  started;
- NPS: % promoters (9-10) - % detractors (0-6); CSAT: % of responses scoring 4-5;

A ratio whose denominator is zero is ``None``, never NaN.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..spec.model import Spec
from . import catalogue
from .counts import (
    QUANTILES,
    FeedbackKey,
    JourneyCounts,
    StepCounts,
    Window,
    merge_steps,
)

# ---------------------------------------------------------------------------------------------
# Distribution of durations


def quantile(counts: StepCounts, q: float) -> float | None:
    """The ``q`` quantile of the step's durations (see the module docstring); None when empty."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {q!r}")
    if counts.samples is not None:
        if not counts.samples:
            return None
        import numpy as np

        return float(np.quantile(np.asarray(counts.samples, dtype=np.float64), q))
    total = sum(counts.buckets)
    if total == 0:
        return None
    cumulative = _cumulative(counts.buckets)
    rank = q * total
    b = bisect_left(cumulative, rank)
    if b >= len(counts.bounds):
        return counts.bounds[-1]  # the rank is in +Inf: the highest finite bound, like Prometheus
    lower = counts.bounds[b - 1] if b > 0 else 0.0
    below = cumulative[b - 1] if b > 0 else 0
    inside = counts.buckets[b]
    return lower + (counts.bounds[b] - lower) * (rank - below) / inside


def share_within(counts: StepCounts, seconds: float) -> float | None:
    """Share of steps that took at most ``seconds``: exact with samples, else interpolated
    linearly inside the bucket holding ``seconds`` (exact on bucket boundaries)."""
    if counts.samples is not None:
        if not counts.samples:
            return None
        return sum(1 for s in counts.samples if s <= seconds) / len(counts.samples)
    total = sum(counts.buckets)
    if total == 0:
        return None
    b = bisect_left(counts.bounds, seconds)
    below = sum(counts.buckets[:b])
    if b >= len(counts.bounds):  # beyond the last finite bound: +Inf cannot be split
        return below / total
    lower = counts.bounds[b - 1] if b > 0 else 0.0
    fraction = (seconds - lower) / (counts.bounds[b] - lower) if seconds > lower else 0.0
    return (below + counts.buckets[b] * fraction) / total


def bucket_index(bounds: Sequence[float], seconds: float) -> int:
    """The bucket a duration falls in (``le`` semantics, as the runtime's slots count it)."""
    return bisect_left(bounds, seconds)


def _cumulative(values: Sequence[int]) -> list[int]:
    out, running = [], 0
    for value in values:
        running += value
        out.append(running)
    return out


# ---------------------------------------------------------------------------------------------
# Indicators


@dataclass(frozen=True)
class CheckIndicator:
    passed: int
    failed: int

    @property
    def rate(self) -> float | None:
        return _ratio(self.passed, self.passed + self.failed)


@dataclass(frozen=True)
class Feedback:
    """NPS (-100..100 points) and CSAT (0..100 %) of the responses counted."""

    nps: float | None
    nps_responses: int
    csat: float | None
    csat_responses: int


@dataclass(frozen=True)
class StepIndicators:
    journey: str
    step: str
    target: float
    tolerating: float
    volume: int
    quantiles: Mapping[float, float | None]  # 0.5, 0.9, 0.95, 0.99 → seconds
    exact_quantiles: bool  # from raw samples rather than bucket interpolation
    timeliness: float | None
    apdex: float | None
    error_rate: float | None
    good_ratio: float | None
    accuracy: float | None
    checks: Mapping[str, CheckIndicator]
    next_step: str | None
    conversion: float | None
    abandonment: float | None
    feedback: Feedback
    score: float | None


@dataclass(frozen=True)
class JourneyIndicators:
    journey: str
    started: int
    volume: int  # steps of every step of the journey
    completed: int
    completion: float | None
    apdex: float | None
    error_rate: float | None
    good_ratio: float | None
    accuracy: float | None
    feedback: Feedback
    score: float | None
    complaints: int = 0
    complaint_rate: float | None = None  # catalogue.COMPLAINT_RATE


@dataclass(frozen=True)
class Indicators:
    steps: tuple[StepIndicators, ...]
    journeys: tuple[JourneyIndicators, ...]

    def step(self, journey: str, step: str) -> StepIndicators:
        for row in self.steps:
            if (row.journey, row.step) == (journey, step):
                return row
        raise KeyError(f"{journey}/{step}")

    def journey(self, journey: str) -> JourneyIndicators:
        for row in self.journeys:
            if row.journey == journey:
                return row
        raise KeyError(journey)


def compute(spec: Spec, window: Window) -> Indicators:
    """Indicators of every step and journey of ``spec`` over ``window``."""
    weights = spec.defaults.score
    step_rows: list[StepIndicators] = []
    journey_rows: list[JourneyIndicators] = []
    for journey in spec.journeys:
        jcounts = window.journeys.get(journey.name, JourneyCounts())
        names = journey.step_names
        per_step: list[StepCounts] = []
        any_burning = False
        for index, step in enumerate(journey.steps):
            tolerating = spec.tolerating(step)
            counts = window.steps.get((journey.name, step.name)) or StepCounts.empty(
                spec.duration_bounds(step)
            )
            per_step.append(counts)
            next_step = names[index + 1] if index + 1 < len(names) else None
            apdex = catalogue.value(catalogue.APDEX, counts)
            accuracy = catalogue.value(catalogue.ACCURACY, counts)
            error_rate = catalogue.value(catalogue.ERRORS, counts)
            burning = catalogue.burning(spec, journey, step, counts)
            any_burning = any_burning or burning
            step_rows.append(
                StepIndicators(
                    journey.name,
                    step.name,
                    step.target,
                    tolerating,
                    counts.volume,
                    {q: quantile(counts, q) for q in QUANTILES},
                    counts.samples is not None,
                    catalogue.value(catalogue.TIMELINESS, counts),
                    apdex,
                    error_rate,
                    catalogue.value(catalogue.GOOD, counts),
                    accuracy,
                    {name: CheckIndicator(*pf) for name, pf in sorted(counts.checks.items())},
                    next_step,
                    catalogue.value(catalogue.CONVERSION, counts, to_step=next_step)
                    if next_step
                    else None,
                    catalogue.value(catalogue.ABANDONMENT, counts) if next_step else None,
                    feedback({k: v for k, v in jcounts.feedback.items() if k[0] == step.name}),
                    catalogue.cx_score(apdex, accuracy, error_rate, weights, burning),
                )
            )
        pooled = merge_steps([_unbucketed(c) for c in per_step])
        last = per_step[-1]
        completed = last.volume - last.transitions.get(names[-1], 0)
        apdex = catalogue.value(catalogue.APDEX, pooled)
        accuracy = catalogue.value(catalogue.ACCURACY, pooled)
        error_rate = catalogue.value(catalogue.ERRORS, pooled)
        journey_rows.append(
            JourneyIndicators(
                journey.name,
                jcounts.started,
                pooled.volume,
                completed,
                _ratio(completed, jcounts.started),
                apdex,
                error_rate,
                catalogue.value(catalogue.GOOD, pooled),
                accuracy,
                feedback(jcounts.feedback),
                catalogue.cx_score(apdex, accuracy, error_rate, weights, any_burning),
                jcounts.complaints,
                catalogue.complaint_value(jcounts.complaints, jcounts.started),
            )
        )
    return Indicators(tuple(step_rows), tuple(journey_rows))


def _unbucketed(counts: StepCounts) -> StepCounts:
    """Class and check counts only: steps of one journey have different bucket layouts."""
    return StepCounts((), (0,), counts.classes, counts.good, counts.checks, {})


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def feedback(counts: Mapping[FeedbackKey, int]) -> Feedback:
    """NPS and CSAT (``catalogue.NPS``, ``catalogue.CSAT``) of feedback counts keyed
    ``(last step, scale, score)``."""
    by_scale: dict[str, dict[int, int]] = {s.scale: {} for s in catalogue.SCORES}
    for (_, scale, score), count in counts.items():
        if scale in by_scale:
            by_scale[scale][score] = by_scale[scale].get(score, 0) + count
    nps, csat = by_scale[catalogue.NPS.scale], by_scale[catalogue.CSAT.scale]
    return Feedback(
        catalogue.score_value(catalogue.NPS, nps),
        sum(nps.values()),
        catalogue.score_value(catalogue.CSAT, csat),
        sum(csat.values()),
    )
