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
