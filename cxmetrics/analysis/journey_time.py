"""End-to-end journey time over an event log: for each instance that reached its journey's last
step, from the start of its first step (end time − duration) to the end of its last step.

Exact over raw events, as a complement to the per-step durations. Instances that have not
reached the last step are not timed (still in flight, or abandoned: see
``cxmetrics.analysis.conversion``). Not yet a live metric: a process sees one step, and the
first step's start would have to travel in the journey context (docs/indicators.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..instrument.events import Event, StepRecord
from ..spec.model import Spec


@dataclass(frozen=True)
class JourneyTime:
    journey: str
    completed: int  # instances that reached the last step within the range
    p50: float | None
    p90: float | None
    mean: float | None


def journey_times(
    spec: Spec, events: Iterable[Event], start: float | None = None, end: float | None = None
) -> dict[str, JourneyTime]:
    """Per journey: the instances whose last step ended in ``(start, end]``, timed end to end."""
    last = {j.name: j.steps[-1].name for j in spec.journeys}
    first_start: dict[tuple[str, str], float] = {}
    finished: dict[str, list[float]] = {name: [] for name in last}
    for event in sorted((e for e in events if isinstance(e, StepRecord)), key=lambda e: e.time):
        if event.journey not in last:
            continue
        key = (event.journey, event.journey_id)
        began = event.time - event.duration
        first_start[key] = min(first_start.get(key, began), began)
        inside = (start is None or event.time > start) and (end is None or event.time <= end)
        if event.step == last[event.journey] and inside:
            finished[event.journey].append(event.time - first_start.pop(key))
    return {name: _summary(name, times) for name, times in finished.items()}


def _summary(journey: str, times: list[float]) -> JourneyTime:
    if not times:
        return JourneyTime(journey, 0, None, None, None)
    import numpy as np

    values = np.asarray(times, dtype=np.float64)
    return JourneyTime(
        journey,
        len(times),
        float(np.quantile(values, 0.5)),
        float(np.quantile(values, 0.9)),
        float(values.mean()),
    )
