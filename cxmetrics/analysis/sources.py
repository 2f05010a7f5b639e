"""Where the analyzer's data comes from: recorded events or Prometheus, as one ``Timeline``.

Every source reduces to the same form (``cxmetrics.analysis.indicators``): a grid of equal windows
``(edges[k], edges[k + 1]]`` and, per window, the counts of every declared step and journey.

- **Events** (the in-memory ``Recorder``, a JSONL event log): each step record is binned by its
  end time into its window and by its duration into the step's bucket layout
  (``names.duration_buckets``); the raw durations are kept too, in arrival order, for exact
  quantiles and the sample-level detector. Timeliness classes and good steps are taken as the app
  recorded them, exactly like the Prometheus counters. A transition A→B is counted in A's counts,
  in the window in which B ended.
- **Prometheus** (``cxmetrics.analysis.prometheus``): the raw counters are read at the window edges
  with one range query per family and differenced per series.

Records of journeys or steps the spec does not declare (``other``) are not analysed; they are
counted in ``Timeline.ignored``. Records of an event log that are not valid records at all (bad
JSON, wrong types, impossible times or durations, far outside the bulk of the log) are skipped
by the reader (``cxmetrics.exposition.eventlog.read_log``), counted in ``Timeline.skipped`` with
the first reasons in ``Timeline.problems``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from .._exceptions import CxError
from ..exposition.memory import Recorder
from ..instrument.events import Event, FeedbackRecord, JourneyStarted, StepRecord
from ..spec.model import Spec
from ..spec.names import TIMELINESS_CLASSES
from .catalogue import COMPLAINT
from .counts import FeedbackKey, JourneyCounts, StepCounts, Window, merge_windows
from .indicators import bucket_index

DEFAULT_STEP = 60.0


@dataclass(frozen=True)
class Timeline:
    """Per-window counts over ``(edges[0], edges[-1]]``; ``windows[k]`` covers
    ``(edges[k], edges[k + 1]]``."""

    edges: tuple[float, ...]
    windows: tuple[Window, ...]
    source: str
    ignored: int = 0
    # Of an event log: records read, bad records skipped, and the first reasons (file:line: why).
    records: int = 0
    skipped: int = 0
    problems: tuple[str, ...] = ()

    @property
    def start(self) -> float:
        return self.edges[0]

    @property
    def end(self) -> float:
        return self.edges[-1]

    @property
    def step(self) -> float:
        return self.edges[1] - self.edges[0]

    def total(self) -> Window:
        return merge_windows(self.windows)


def grid(start: float, end: float, step: float) -> tuple[float, ...]:
    """Window edges: ``start`` rounded down and ``end`` rounded up to multiples of ``step``, at
    least one window."""
    if not step > 0 or not math.isfinite(step):
        raise CxError(f"the window step must be a positive number of seconds, got {step!r}")
    if end < start:
        raise CxError("the end of the range is before its start")
    first = math.floor(start / step) * step
    count = max(math.ceil((end - first) / step), 1)
    return tuple(first + k * step for k in range(count + 1))


class _StepBuilder:
    __slots__ = (
        "bounds",
        "buckets",
        "checks",
        "classes",
        "good",
        "samples",
        "times",
        "transitions",
    )

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)
        self.classes = [0] * 6
        self.good = 0
        self.checks: dict[str, list[int]] = {}
        self.transitions: dict[str, int] = {}
        self.samples: list[float] = []
        self.times: list[float] = []

    def add(self, record: StepRecord) -> None:
        self.buckets[bucket_index(self.bounds, record.duration)] += 1
        cls = TIMELINESS_CLASSES.index(record.timeliness)
        self.classes[cls + (3 if record.outcome == "error" else 0)] += 1
        self.good += 1 if record.good else 0
        for check in record.checks:
            self.checks.setdefault(check.name, [0, 0])[0 if check.passed else 1] += 1
        self.samples.append(record.duration)
        self.times.append(record.time)

    def freeze(self) -> StepCounts:
        return StepCounts(
            self.bounds,
            tuple(self.buckets),
            tuple(self.classes),
            self.good,
            {name: (p, f) for name, (p, f) in self.checks.items()},
            dict(self.transitions),
            tuple(self.samples),
            tuple(self.times),
        )


@dataclass
class _WindowBuilder:
    steps: dict[tuple[str, str], _StepBuilder] = field(default_factory=dict)
    started: dict[str, int] = field(default_factory=dict)
    feedback: dict[str, dict[FeedbackKey, int]] = field(default_factory=dict)
    complaints: dict[str, int] = field(default_factory=dict)


def step_layouts(spec: Spec) -> dict[tuple[str, str], tuple[float, ...]]:
    """Each declared step's bucket layout, as the runtime derives it."""
    return {(j.name, s.name): spec.duration_bounds(s) for j, s in spec.steps()}


def from_events(
    spec: Spec,
    events: Iterable[Event],
    step: float = DEFAULT_STEP,
    start: float | None = None,
    end: float | None = None,
    source: str = "events",
) -> Timeline:
    """Bin ``events`` into windows of ``step`` seconds over ``(start, end]`` (default: the events'
    own time span). Events outside the range are left out; the rest are taken in time order
    (a stable sort: a log written by many threads still yields samples in arrival order)."""
    selected = sorted(
        (e for e in events if (start is None or e.time > start) and (end is None or e.time <= end)),
        key=lambda e: e.time,
    )
    if not selected and (start is None or end is None):
        raise CxError(f"{source}: no events to analyse")
    times = [e.time for e in selected]
    lo = start if start is not None else min(times)
    hi = end if end is not None else max(times)
    edges = grid(lo, hi, step)
    layouts = step_layouts(spec)
    journeys = {j.name for j in spec.journeys}
    builders = [_WindowBuilder() for _ in range(len(edges) - 1)]
    ignored = 0
    for event in selected:
        window = builders[_window_index(edges, event.time)]
        if event.journey not in journeys:
            ignored += 1
        elif isinstance(event, StepRecord):
            previous = (event.journey, event.previous_step or "")
            if previous in layouts:  # a transition out of a declared step, to wherever it went
                came_from = _builder(window, previous, layouts[previous])
                came_from.transitions[event.step] = came_from.transitions.get(event.step, 0) + 1
            key = (event.journey, event.step)
            if key in layouts:
                _builder(window, key, layouts[key]).add(event)
            else:
                ignored += 1
        elif isinstance(event, JourneyStarted):
            window.started[event.journey] = window.started.get(event.journey, 0) + 1
        elif isinstance(event, FeedbackRecord):
            if event.scale and event.score is not None:
                counts = window.feedback.setdefault(event.journey, {})
                fkey = (event.step, event.scale, event.score)
                counts[fkey] = counts.get(fkey, 0) + 1
            if event.category == COMPLAINT:
                window.complaints[event.journey] = window.complaints.get(event.journey, 0) + 1
    windows = tuple(
        _freeze(edges[k], edges[k + 1], b, layouts, journeys) for k, b in enumerate(builders)
    )
    return Timeline(edges, windows, source, ignored)


def _builder(
    window: _WindowBuilder, key: tuple[str, str], layout: tuple[float, ...]
) -> _StepBuilder:
    found = window.steps.get(key)
    if found is None:
        found = window.steps[key] = _StepBuilder(layout)
    return found


def _window_index(edges: Sequence[float], time: float) -> int:
    step = edges[1] - edges[0]
    index = math.ceil((time - edges[0]) / step) - 1
    return min(max(index, 0), len(edges) - 2)


def _freeze(
    start: float,
    end: float,
    builder: _WindowBuilder,
    layouts: dict[tuple[str, str], tuple[float, ...]],
    journeys: set[str],
) -> Window:
    steps = {
        key: builder.steps[key].freeze() if key in builder.steps else StepCounts.empty(layout, True)
        for key, layout in layouts.items()
    }
    return Window(
        start,
        end,
        steps,
        {
            j: JourneyCounts(
                builder.started.get(j, 0),
                builder.feedback.get(j, {}),
                builder.complaints.get(j, 0),
            )
            for j in sorted(journeys)
        },
    )


def from_recorder(spec: Spec, recorder: Recorder, step: float = DEFAULT_STEP) -> Timeline:
    """The events an in-memory ``Recorder`` (``cxmetrics.testing``) holds."""
    return from_events(spec, recorder.events, step, source="recorder")


def from_jsonl(
    spec: Spec,
    path: str | os.PathLike[str],
    step: float = DEFAULT_STEP,
    since: float | None = None,
) -> Timeline:
    """The events of a JSONL event log; ``since`` keeps only the last ``since`` seconds of it."""
    from ..exposition.eventlog import read_log

    name = os.fspath(path)
    try:
        read = read_log(name)
    except OSError as exc:
        raise CxError(f"cannot read event log {name}: {exc.strerror or exc}") from exc
    events = read.events
    if not events:
        if read.skipped:
            raise CxError(
                f"{name}: none of its {read.records:,} records is valid; the first: "
                + "; ".join(read.problems)
            )
        raise CxError(f"{name}: the event log holds no events")
    start = None
    if since is not None:
        start = max(e.time for e in events) - since
    timeline = from_events(spec, events, step, start=start, source=name)
    return replace(
        timeline, records=read.records, skipped=read.skipped, problems=tuple(read.problems)
    )
