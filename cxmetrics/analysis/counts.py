"""The one windowed aggregate every source reduces to, and how windows merge.

Per time window: for each step its duration histogram on the step's own bucket layout
(``names.duration_buckets``), outcome × timeliness class counts, good steps, accuracy check passes
and failures, and transitions out of the step; for each journey the instances started and the
feedback given. Windows merge by adding counts — associative, so indicators over a merged window
equal indicators over the concatenated data. ``cxmetrics.analysis.sources`` builds these;
``cxmetrics.analysis.indicators`` turns them into numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

K = TypeVar("K")

QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)
#: Index of each (outcome, timeliness) class in ``StepCounts.classes``.
OK_SATISFIED, OK_TOLERATING, OK_FRUSTRATED, ERROR_SATISFIED, ERROR_TOLERATING, ERROR_FRUSTRATED = (
    range(6)
)
FeedbackKey = tuple[str | None, str, int]  # (last step or None, "csat" | "nps", score)


@dataclass(frozen=True)
class StepCounts:
    """What one step did in one window. ``samples``/``times`` (durations and end times, in
    arrival order) are there when the source had raw events, ``None`` otherwise."""

    bounds: tuple[float, ...]
    buckets: tuple[int, ...]  # non-cumulative, len(bounds) + 1 (the last is +Inf)
    # (ok, error) x (satisfied, tolerating, frustrated)
    classes: tuple[int, ...] = (0,) * 6
    good: int = 0
    checks: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # name → (passed, failed)
    transitions: Mapping[str, int] = field(default_factory=dict)  # next step → count
    samples: tuple[float, ...] | None = None
    times: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.buckets) != len(self.bounds) + 1:
            raise ValueError(
                f"{len(self.bounds)} bounds need {len(self.bounds) + 1} buckets, "
                f"got {len(self.buckets)}"
            )
        if len(self.classes) != 6:
            raise ValueError("classes are (ok, error) x (satisfied, tolerating, frustrated): 6")

    @classmethod
    def empty(cls, bounds: Sequence[float], exact: bool = False) -> StepCounts:
        return cls(
            tuple(bounds),
            (0,) * (len(bounds) + 1),
            samples=() if exact else None,
            times=() if exact else None,
        )

    @property
    def volume(self) -> int:
        return sum(self.classes)

    def merge(self, other: StepCounts) -> StepCounts:
        return merge_steps((self, other))


def merge_steps(parts: Sequence[StepCounts]) -> StepCounts:
    """Add the counts of ``parts`` (in time order: exact samples are concatenated)."""
    if not parts:
        raise ValueError("nothing to merge")
    bounds = parts[0].bounds
    for part in parts[1:]:
        if part.bounds != bounds:
            raise ValueError(
                "cannot merge step counts with different bucket layouts "
                f"({len(bounds)} vs {len(part.bounds)} bounds); was the target "
                "changed inside the analysed range?"
            )
    exact = all(p.samples is not None and p.times is not None for p in parts)
    return StepCounts(
        bounds,
        tuple(map(sum, zip(*(p.buckets for p in parts), strict=True))),
        tuple(map(sum, zip(*(p.classes for p in parts), strict=True))),
        sum(p.good for p in parts),
        _add_pairs(p.checks for p in parts),
        _add_counts(p.transitions for p in parts),
        tuple(s for p in parts for s in (p.samples or ())) if exact else None,
        tuple(t for p in parts for t in (p.times or ())) if exact else None,
    )


@dataclass(frozen=True)
class JourneyCounts:
    """What one journey did in one window besides its steps."""

    started: int = 0
    feedback: Mapping[FeedbackKey, int] = field(default_factory=dict)
    complaints: int = 0  # feedback of the complaint category (catalogue.COMPLAINT)

    def merge(self, other: JourneyCounts) -> JourneyCounts:
        return merge_journeys((self, other))


def merge_journeys(parts: Sequence[JourneyCounts]) -> JourneyCounts:
    return JourneyCounts(
        sum(p.started for p in parts),
        _add_counts(p.feedback for p in parts),
        sum(p.complaints for p in parts),
    )


@dataclass(frozen=True)
class Window:
    """Counts of every step (``(journey, step)``) and journey over ``(start, end]``."""

    start: float
    end: float
    steps: Mapping[tuple[str, str], StepCounts]
    journeys: Mapping[str, JourneyCounts]

    def merge(self, other: Window) -> Window:
        return merge_windows((self, other))


def merge_windows(windows: Sequence[Window]) -> Window:
    """One window covering ``windows`` (given in time order)."""
    if not windows:
        raise ValueError("nothing to merge")
    step_keys = list(dict.fromkeys(k for w in windows for k in w.steps))
    journey_keys = list(dict.fromkeys(k for w in windows for k in w.journeys))
    return Window(
        min(w.start for w in windows),
        max(w.end for w in windows),
        {k: merge_steps([w.steps[k] for w in windows if k in w.steps]) for k in step_keys},
        {
            k: merge_journeys([w.journeys[k] for w in windows if k in w.journeys])
            for k in journey_keys
        },
    )


def _add_counts(maps: Iterable[Mapping[K, int]]) -> dict[K, int]:
    out: dict[K, int] = {}
    for mapping in maps:
        for key, value in mapping.items():
            out[key] = out.get(key, 0) + value
    return out


def _add_pairs(maps: Iterable[Mapping[str, tuple[int, int]]]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for mapping in maps:
        for key, (passed, failed) in mapping.items():
            old = out.get(key, (0, 0))
            out[key] = (old[0] + passed, old[1] + failed)
    return out
