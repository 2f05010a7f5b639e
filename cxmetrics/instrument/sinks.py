"""The sink protocol: something that takes whole records (steps, journey starts, feedback)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .events import Event


@runtime_checkable
class Sink(Protocol):
    """Receives every event while configured. ``emit`` must be thread-safe and should not block."""

    def emit(self, event: Event) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class StepHook(Protocol):
    """A sink that only needs to know which instance finished which step (the follow-up
    tracker): the runtime calls ``note_step`` instead of building a ``StepRecord`` for it, and
    sends it no other event. ``note_step`` must be thread-safe and must not block."""

    def note_step(
        self,
        journey: str,
        step: str,
        journey_id: str,
        channel: str,
        segment: str,
        customer_ref: str | None,
    ) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
