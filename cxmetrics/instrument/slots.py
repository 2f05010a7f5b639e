"""Label slots for every journey, step, channel, segment and check: the counts the exposition reads.

Built from the spec at ``configure()`` (resolved at declaration, not per call:
docs/architecture.md). What the spec declares — each journey's steps on each of its channels,
segment ``none`` — is allocated up front, so those series are exposed at zero from the first scrape
(a counter that starts at 0 lets ``rate()`` count its first event). Everything else — the ``other``
step, channel and journey, declared segments, undeclared checks and reasons — is created on first
use (``JourneySlot.make``), so an idle process exposes no ``other`` combinations (docs/metrics.md,
"Series budget"). The per-step hot path is ``StepSlot.record``: one bisect, one lock, a handful of
integer increments. Its lock is taken with ``acquire()`` / ``release()`` in ``try`` / ``finally``:
what ``with`` does, at two calls instead of four. The Prometheus collector reads these slots at
scrape time; nothing else owns a count.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..spec.names import (
    FEEDBACK_CATEGORIES,
    JOURNEY_DURATION_BUCKETS,
    NONE,
    OTHER,
    RELATIVE_ERROR_BUCKETS,
    duration_buckets,
)

if TYPE_CHECKING:
    from ..spec.model import Check, Spec

FEEDBACK_SCALES = {"csat": (1, 5), "nps": (0, 10)}


class CheckSlot:
    """Counts for one accuracy check of one step."""

    __slots__ = ("against", "buckets", "counts", "kind", "lock", "name", "sum", "tolerance")

    def __init__(self, check: Check | None) -> None:
        self.name = check.name if check else OTHER
        self.kind = check.kind if check else "check"
        self.tolerance = check.tolerance if check else 0.0
        self.against = check.against if check else None
        self.lock = threading.Lock()
        self.counts = [0, 0]  # pass, fail
        self.buckets = [0] * (len(RELATIVE_ERROR_BUCKETS) + 1)
        self.sum = 0.0

    def record(self, passed: bool, relative_error: float | None) -> None:
        lock = self.lock
        lock.acquire()
        try:
            self.counts[0 if passed else 1] += 1
            if relative_error is not None:
                self.buckets[bisect_left(RELATIVE_ERROR_BUCKETS, relative_error)] += 1
                self.sum += relative_error
        finally:
            lock.release()


class StepSlot:
    """Counts for one (journey, step, channel, segment): duration buckets, classes, good,
    arrivals, failure reasons. The exposition sums the buckets of a step over its channels and
    segments (the histogram carries journey and step only: docs/metrics.md, "Series budget")."""

    __slots__ = (
        "bounds",
        "buckets",
        "channel",
        "checks",
        "counts",
        "edge",
        "exemplars",
        "failures",
        "from_counts",
        "good",
        "i_target",
        "i_tolerating",
        "index",
        "journey",
        "lock",
        "other_check",
        "reasons",
        "segment",
        "span_attributes",
        "span_name",
        "step",
        "sum",
        "target",
        "tolerating",
    )

    def __init__(
        self,
        journey: str,
        step: str,
        channel: str,
        index: int,
        n_steps: int,
        target: float,
        tolerating: float,
        checks: tuple[Check, ...],
        segment: str = NONE,
        reasons: dict[str, int] | None = None,
        bounds: tuple[float, ...] | None = None,
    ) -> None:
        from ..spec.names import ATTR_CHANNEL, ATTR_JOURNEY, ATTR_STEP, ATTR_TARGET, span_name

        self.journey, self.step, self.channel, self.index = journey, step, channel, index
        self.segment = segment
        # The journey's first step (its start starts the journey's clock) and/or its last (its
        # end stops it): the only steps that look at the journey's time.
        self.edge = (1 if index == 0 else 0) | (2 if index == n_steps - 1 else 0) if n_steps else 0
        self.target, self.tolerating = target, tolerating
        # One layout per step (``Spec.duration_bounds``: every segment's and channel's target an
        # exact bound), this slot's own target and tolerating threshold classify within it.
        self.bounds = bounds if bounds is not None else duration_buckets(target, tolerating)
        self.i_target = self.bounds.index(target)
        self.i_tolerating = self.bounds.index(tolerating)
        self.lock = threading.Lock()
        self.buckets = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.counts = [0] * 6  # (ok, error) x (satisfied, tolerating, frustrated)
        self.good = 0
        # Arrivals by previous step: index n_steps is "other", n_steps + 1 is "no previous step".
        self.from_counts = [0] * (n_steps + 2)
        # The journey's reason codes (name → index, shared by its slots); failures[index] counts
        # errors by reason: the declared ones, then "other", then "none" (index -1).
        self.reasons: dict[str, int] = reasons if reasons is not None else {}
        self.failures = [0] * (len(self.reasons) + 2)
        self.exemplars: list[tuple[str, float, float] | None] = [None] * (len(self.bounds) + 1)
        self.checks = {c.name: CheckSlot(c) for c in checks}
        self.other_check = CheckSlot(None)
        self.span_name = span_name(journey, step)
        self.span_attributes: dict[str, Any] = {
            ATTR_JOURNEY: journey,
            ATTR_STEP: step,
            ATTR_CHANNEL: channel,
            ATTR_TARGET: target,
        }

    def record(
        self,
        duration: float,
        error: bool,
        accurate: bool,
        previous: int,
        exemplar: tuple[str, float, float] | None = None,
        reason: int = -1,
    ) -> int:
        """Count one finished step; return its timeliness class (0, 1, 2)."""
        i = bisect_left(self.bounds, duration)
        cls = 0 if i <= self.i_target else (1 if i <= self.i_tolerating else 2)
        lock = self.lock
        lock.acquire()
        try:
            self.buckets[i] += 1
            self.sum += duration
            if error:
                self.counts[3 + cls] += 1
                self.failures[reason] += 1
            else:
                self.counts[cls] += 1
                if cls == 0 and accurate:
                    self.good += 1
            self.from_counts[previous] += 1
            if exemplar is not None:
                self.exemplars[i] = exemplar
        finally:
            lock.release()
        return cls

    def reason_names(self) -> tuple[str, ...]:
        """The ``reason`` label of each entry of ``failures``."""
        return (*self.reasons, OTHER, NONE)


Build = Callable[[int, str, str, str], StepSlot]  # (index, step name, channel, segment)


class JourneySlot:
    """All slots of one journey: ``steps[channel][segment][step]`` (``None`` until first use,
    except what the spec declares), plus starts, channel switches and feedback."""

    __slots__ = (
        "build",
        "channel_index",
        "channels",
        "declared_channels",
        "durations",
        "feedback",
        "index",
        "lock",
        "n_steps",
        "name",
        "reason_index",
        "reasons",
        "segment_index",
        "segments",
        "started",
        "step_index",
        "step_names",
        "steps",
        "switches",
        "targets",
        "topics",
    )

    def __init__(
        self,
        name: str,
        step_names: tuple[str, ...],
        channels: tuple[str, ...],
        build: Build,
        declared_channels: tuple[str, ...] = (),
        segments: tuple[str, ...] = (),
        reasons: tuple[str, ...] = (),
        targets: tuple[tuple[float, float], ...] = (),
    ) -> None:
        self.name = name
        self.targets = targets  # (target, tolerating) of each declared step
        self.step_names = (*step_names, OTHER)
        self.n_steps = len(step_names)
        self.step_index = {s: i for i, s in enumerate(step_names)}
        self.channels = channels
        self.channel_index = {c: i for i, c in enumerate(channels)}
        self.declared_channels = tuple(self.channel_index[c] for c in declared_channels)
        # Segment 0 is "none" (the app set none), then the declared ones, then "other".
        self.segments = (NONE, *segments, OTHER)
        self.segment_index = {s: i for i, s in enumerate(self.segments)}
        self.reasons = reasons
        self.reason_index = {r: i for i, r in enumerate(reasons)}
        self.build = build
        self.lock = threading.Lock()
        self.steps: list[list[list[StepSlot | None]]] = [
            [[None] * (self.n_steps + 1) for _ in self.segments] for _ in channels
        ]
        for ch in self.declared_channels:
            for i in range(self.n_steps):
                self.steps[ch][0][i] = build(i, self.step_names[i], channels[ch], NONE)
        self.started = [[0] * len(self.segments) for _ in channels]
        self.switches = [[0] * len(channels) for _ in channels]  # [from channel][to channel]
        # End-to-end journey time per channel (of the last step): buckets of
        # JOURNEY_DURATION_BUCKETS (+Inf last) and the sum.
        self.durations = [([0] * (len(JOURNEY_DURATION_BUCKETS) + 1), [0.0]) for _ in channels]
        # (channel, segment, scale, score) → count per last step index (feedback made on use)
        self.feedback: dict[tuple[int, int, str, int], list[int]] = {}
        # (channel, segment, category index, reason index) → count per last step index; reason
        # indexes as in StepSlot.failures (declared, then other, then none = -1)
        self.topics: dict[tuple[int, int, int, int], list[int]] = {}

    def make(self, channel: int, segment: int, index: int) -> StepSlot:
        """The slot of step ``index`` on ``channel`` / ``segment``, created on first use (under the
        journey's lock: two threads never create one twice)."""
        row = self.steps[channel][segment]
        with self.lock:
            slot = row[index]
            if slot is None:
                slot = row[index] = self.build(
                    index, self.step_names[index], self.channels[channel], self.segments[segment]
                )
        return slot

    def slots(self) -> list[StepSlot]:
        """Every slot created so far."""
        return [s for by_segment in self.steps for row in by_segment for s in row if s is not None]

    def previous_name(self, index: int) -> str | None:
        return None if index == self.n_steps + 1 else self.step_names[index]

    def reason(self, name: object) -> int:
        """The index of reason ``name`` in ``StepSlot.failures``: declared, ``other`` or -1
        (``none``, no reason given)."""
        if name is None:
            return -1
        index = self.reason_index.get(name) if type(name) is str else None
        return len(self.reasons) if index is None else index

    def observe_journey(self, channel: int, seconds: float) -> None:
        """One instance's end-to-end time (first step start to last step end)."""
        i = bisect_left(JOURNEY_DURATION_BUCKETS, seconds)
        buckets, total = self.durations[channel]
        with self.lock:
            buckets[i] += 1
            total[0] += seconds

    def count_feedback(self, channel: int, segment: int, scale: str, score: int, last: int) -> None:
        with self.lock:
            per_step = self.feedback.get((channel, segment, scale, score))
            if per_step is None:
                per_step = self.feedback[(channel, segment, scale, score)] = [0] * (
                    self.n_steps + 2
                )
            per_step[last] += 1

    def count_topic(
        self, channel: int, segment: int, category: int, reason: int, last: int
    ) -> None:
        key = (channel, segment, category, reason % (len(self.reasons) + 2))
        with self.lock:
            per_step = self.topics.get(key)
            if per_step is None:
                per_step = self.topics[key] = [0] * (self.n_steps + 2)
            per_step[last] += 1


CATEGORY_INDEX = {c: i for i, c in enumerate(FEEDBACK_CATEGORIES)}


def build_journeys(spec: Spec) -> dict[str, JourneySlot]:
    """Slots for every declared journey plus the ``other`` journey for undeclared names."""
    channels = (*spec.channels, OTHER)
    out: dict[str, JourneySlot] = {}
    for journey in spec.journeys:
        steps = journey.steps
        reasons = spec.journey_reasons(journey)
        reason_index = {r: i for i, r in enumerate(reasons)}

        def build(
            i: int,
            s: str,
            channel: str,
            segment: str,
            *,
            _j: str = journey.name,
            _steps: Any = steps,
            _reasons: dict[str, int] = reason_index,
        ) -> StepSlot:
            if i < len(_steps):
                st = _steps[i]
                target, tolerating = spec.thresholds(st, channel, segment)
                return StepSlot(
                    _j,
                    s,
                    channel,
                    i,
                    len(_steps),
                    target,
                    tolerating,
                    st.checks,
                    segment,
                    _reasons,
                    spec.duration_bounds(st),
                )
            default = _steps[-1]  # undeclared steps borrow the journey's last target
            return StepSlot(
                _j,
                OTHER,
                channel,
                i,
                len(_steps),
                default.target,
                spec.tolerating(default),
                (),
                segment,
                _reasons,
                spec.duration_bounds(default),
            )

        out[journey.name] = JourneySlot(
            journey.name,
            journey.step_names,
            channels,
            build,
            journey.channels or spec.channels,
            spec.segments,
            reasons,
            tuple((st.target, spec.tolerating(st)) for st in steps),
        )

    def build_other(i: int, s: str, channel: str, segment: str) -> StepSlot:
        # Undeclared journeys have no target of their own; 1 s is a neutral, documented default.
        return StepSlot(
            OTHER, OTHER, channel, 0, 0, 1.0, spec.defaults.tolerating_factor, (), segment
        )

    out[OTHER] = JourneySlot(OTHER, (), channels, build_other, (), spec.segments)
    return out
