"""Conversion and abandonment judged after a window, so instances still in flight are not
counted as abandoned (docs/indicators.md, "Conversion windows").

The catalogue's conversion divides the transitions out of a step by the step's finishes over the
same range: an instance that finished the step a minute before the end of the data and is still
on its way to the next one counts as abandoned. With the journey's ``conversion_window`` W, a
finish of step A at time t is *judged* only once ``t + W`` is within the data (``as_of``, the
latest event time); it *continued* when the instance's next step record came from A within W,
and *converted* when that next step is the one after A in the journey. Finishes whose window is
still open are ``in_flight``: neither numerator nor denominator.

Exact here, over raw events. PromQL, from counters, can only approximate it (``promql``): it
divides the transitions of the last R by the step's finishes of the R before ``offset W``; the
residual bias is documented with the function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise

from ..instrument.events import Event, StepRecord
from ..spec import names
from ..spec.model import Spec
from .catalogue import Matcher, clamp, count_promql


@dataclass(frozen=True)
class Judged:
    """One step's finishes over a range, judged after the journey's conversion window."""

    finished: int  # finishes whose window closed within the data
    continued: int  # of them, followed by another step of the instance within the window
    converted: int  # of them, followed by the journey's next step within the window
    in_flight: int  # finishes whose window was still open at the end of the data

    @property
    def conversion(self) -> float | None:
        return clamp(self.converted / self.finished) if self.finished else None

    @property
    def abandonment(self) -> float | None:
        return clamp(1.0 - self.continued / self.finished) if self.finished else None


def judged(
    spec: Spec,
    events: Iterable[Event],
    start: float | None = None,
    end: float | None = None,
    as_of: float | None = None,
) -> dict[tuple[str, str], Judged]:
    """Per declared step of a journey with a ``conversion_window``: its finishes in
    ``(start, end]`` judged as of ``as_of`` (default: the latest event's time)."""
    windows = {j.name: j.conversion_window for j in spec.journeys if j.conversion_window}
    following = {(j.name, a.name): b.name for j in spec.journeys for a, b in pairwise(j.steps)}
    instances: dict[tuple[str, str], list[StepRecord]] = {}
    latest = float("-inf")
    for event in events:
        latest = max(latest, event.time)
        if isinstance(event, StepRecord) and event.journey in windows:
            instances.setdefault((event.journey, event.journey_id), []).append(event)
    if as_of is None:
        as_of = latest
    tallies: dict[tuple[str, str], list[int]] = {
        (j.name, s.name): [0, 0, 0, 0] for j in spec.journeys if j.name in windows for s in j.steps
    }
    for (journey, _), records in instances.items():
        window = windows[journey]
        assert window is not None
        records.sort(key=lambda r: r.time)
        for k, record in enumerate(records):
            key = (journey, record.step)
            if key not in tallies or not _inside(record.time, start, end):
                continue
            tally = tallies[key]
            if record.time + window > as_of:
                tally[3] += 1
                continue
            tally[0] += 1
            after = records[k + 1] if k + 1 < len(records) else None
            if (
                after is not None
                and after.previous_step == record.step
                and after.time - record.time <= window
            ):
                tally[1] += 1
                if after.step == following.get(key):
                    tally[2] += 1
    return {key: Judged(*tally) for key, tally in tallies.items()}


def _inside(time: float, start: float | None, end: float | None) -> bool:
    return (start is None or time > start) and (end is None or time <= end)


def promql(
    journey: str,
    step: str,
    to_step: str,
    window: str,
    conversion_window: str,
    scope: Mapping[str, Matcher] | None = None,
) -> str:
    """Conversion A → B as closely as counters allow: the transitions of the last ``window``
    over A's finishes of the ``window`` that ended ``conversion_window`` ago, clamped.

    Residual bias (tested in tests/analysis/test_conversion.py): under steady traffic the two
    ranges hold the same number of instances, so the ratio is the conversion of judged finishes;
    it errs by the traffic's change over ``conversion_window`` (rising traffic reads high,
    falling reads low), and transitions later than the window still count in the numerator
    (the analyzer leaves them out). ``scope``: more matchers for both sides (the service)."""
    moves = {**(scope or {}), names.JOURNEY: journey, names.FROM_STEP: step, names.TO_STEP: to_step}
    numerator = count_promql(names.TRANSITIONS, window, moves)
    finished = {**(scope or {}), names.JOURNEY: journey, names.STEP: step}
    denominator = count_promql(names.STEPS, window, finished, offset=conversion_window)
    return f"clamp(({numerator} or 0 * {denominator}) / ({denominator} > 0), 0, 1)"
