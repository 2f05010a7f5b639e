"""Pre-bound, pre-allocated counters for every declared journey, step, channel and check.

Built once from the spec at ``configure()`` (resolved at declaration, not per call:
docs/architecture.md). The per-step hot path is ``StepSlot.record``: one bisect, one lock, a handful
of integer increments. Its lock is taken with ``acquire()`` / ``release()`` in ``try`` /
``finally``: what ``with`` does, at two calls instead of four. The Prometheus collector reads these
slots at scrape time; nothing else owns a count.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from ..spec.names import OTHER, RELATIVE_ERROR_BUCKETS, duration_buckets

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
    """Counts for one (journey, step, channel): duration histogram, classes, good, arrivals."""

    __slots__ = (
        "bounds",
        "buckets",
        "channel",
        "checks",
        "counts",
        "exemplars",
        "from_counts",
        "good",
        "i_target",
        "i_tolerating",
        "index",
        "journey",
        "lock",
        "other_check",
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
    ) -> None:
        from ..spec.names import ATTR_CHANNEL, ATTR_JOURNEY, ATTR_STEP, ATTR_TARGET, span_name

        self.journey, self.step, self.channel, self.index = journey, step, channel, index
        self.target, self.tolerating = target, tolerating
        self.bounds = duration_buckets(target, tolerating)
        self.i_target = self.bounds.index(target)
        self.i_tolerating = self.bounds.index(tolerating)
        self.lock = threading.Lock()
        self.buckets = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.counts = [0] * 6  # (ok, error) x (satisfied, tolerating, frustrated)
        self.good = 0
        # Arrivals by previous step: index n_steps is "other", n_steps + 1 is "no previous step".
        self.from_counts = [0] * (n_steps + 2)
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
    ) -> int:
        """Count one finished step; return its timeliness class (0, 1, 2)."""
        i = bisect_left(self.bounds, duration)
        cls = 0 if i <= self.i_target else (1 if i <= self.i_tolerating else 2)
        lock = self.lock
        lock.acquire()
        try:
            self.buckets[i] += 1
            self.sum += duration
            self.counts[3 + cls if error else cls] += 1
            if cls == 0 and accurate and not error:
                self.good += 1
            self.from_counts[previous] += 1
            if exemplar is not None:
                self.exemplars[i] = exemplar
        finally:
            lock.release()
        return cls


class JourneySlot:
    """All slots of one journey: ``steps[channel_index][step_index]``, plus starts and feedback."""

    __slots__ = (
        "channels",
        "feedback",
        "index",
        "lock",
        "n_steps",
        "name",
        "started",
        "step_index",
        "step_names",
        "steps",
        "switches",
    )

    def __init__(
        self, name: str, step_names: tuple[str, ...], channels: tuple[str, ...], build: Any
    ) -> None:
        self.name = name
        self.step_names = (*step_names, OTHER)
        self.n_steps = len(step_names)
        self.step_index = {s: i for i, s in enumerate(step_names)}
        self.channels = channels
        self.steps: list[list[StepSlot]] = [
            [build(i, s, channel) for i, s in enumerate(self.step_names)] for channel in channels
        ]
        self.lock = threading.Lock()
        self.started = [0] * len(channels)
        self.switches = [[0] * len(channels) for _ in channels]  # [from channel][to channel]
        # feedback[(scale, score)][last step index]
        self.feedback: dict[tuple[str, int], list[int]] = {
            (scale, score): [0] * (self.n_steps + 2)
            for scale, (low, high) in FEEDBACK_SCALES.items()
            for score in range(low, high + 1)
        }

    def previous_name(self, index: int) -> str | None:
        return None if index == self.n_steps + 1 else self.step_names[index]


def build_journeys(spec: Spec) -> dict[str, JourneySlot]:
    """Slots for every declared journey plus the ``other`` journey for undeclared names."""
    channels = (*spec.channels, OTHER)
    out: dict[str, JourneySlot] = {}
    for journey in spec.journeys:
        steps = journey.steps

        def build(
            i: int, s: str, channel: str, *, _j: str = journey.name, _steps: Any = steps
        ) -> StepSlot:
            if i < len(_steps):
                st = _steps[i]
                return StepSlot(
                    _j, s, channel, i, len(_steps), st.target, spec.tolerating(st), st.checks
                )
            default = _steps[-1]  # undeclared steps borrow the journey's last target
            return StepSlot(
                _j, OTHER, channel, i, len(_steps), default.target, spec.tolerating(default), ()
            )

        out[journey.name] = JourneySlot(journey.name, journey.step_names, channels, build)

    def build_other(i: int, s: str, channel: str) -> StepSlot:
        # Undeclared journeys have no target of their own; 1 s is a neutral, documented default.
        return StepSlot(OTHER, OTHER, channel, 0, 0, 1.0, spec.defaults.tolerating_factor, ())

    other = JourneySlot(OTHER, (), channels, build_other)
    out[OTHER] = other
    return out
