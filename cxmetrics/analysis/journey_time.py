"""End-to-end journey time over an event log: for each instance that reached its journey's last
step, from the start of the journey's first step (end time − duration; its earliest run) to the
end of its last step — the definition the runtime measures live into
``cx_journey_duration_seconds``, the first step's start carried in the signed journey context.

An instance is timed at its first arrival at the last step after a run of the first step (a
repeated last step is not timed again; an instance seen only from a later step — its context
lost or rejected on the way — is not timed at all, live or here). Instances that have not
reached the last step are not timed (still in flight, or abandoned: see
``cxmetrics.analysis.conversion``). ``catalogue.journey_time_promql`` gives the mean from
Prometheus exactly, and quantiles interpolated in the histogram's buckets; the journey
overview's "Journey time" panels read it.
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
    first = {j.name: j.steps[0].name for j in spec.journeys}
    first_start: dict[tuple[str, str], float] = {}
    finished: dict[str, list[float]] = {name: [] for name in last}
    for event in sorted((e for e in events if isinstance(e, StepRecord)), key=lambda e: e.time):
        if event.journey not in last:
            continue
        key = (event.journey, event.journey_id)
        if event.step == first[event.journey]:
            began = event.time - event.duration
            first_start[key] = min(first_start.get(key, began), began)
        if event.step == last[event.journey] and key in first_start:
            began = first_start.pop(key)
            if (start is None or event.time > start) and (end is None or event.time <= end):
                finished[event.journey].append(event.time - began)
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
