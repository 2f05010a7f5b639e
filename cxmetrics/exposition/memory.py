"""An in-memory sink: every event, in order, for tests and embedded analysis."""

from __future__ import annotations

import threading

from ..instrument.events import Event, FeedbackRecord, JourneyStarted, StepRecord


class Recorder:
    """Keeps every event it is given. Thread-safe; ``clear()`` between test phases."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []

    def emit(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def clear(self) -> None:
        with self._lock:
            self._events.clear()

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    @property
    def steps(self) -> list[StepRecord]:
        return [e for e in self.events if isinstance(e, StepRecord)]

    @property
    def journeys(self) -> list[JourneyStarted]:
        return [e for e in self.events if isinstance(e, JourneyStarted)]

    @property
    def feedback(self) -> list[FeedbackRecord]:
        return [e for e in self.events if isinstance(e, FeedbackRecord)]

    def step_names(self, journey: str | None = None) -> list[str]:
        """``journey/step`` (or just ``step`` when ``journey`` is given) of each step, in order."""
        return [
            s.step if journey else f"{s.journey}/{s.step}"
            for s in self.steps
            if journey is None or s.journey == journey
        ]
