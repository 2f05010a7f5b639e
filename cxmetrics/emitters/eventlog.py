"""A JSONL event log: one JSON object per line, appended, readable by ``cxmetrics analyze``.

Writes never raise into the app: a failed write (disk full, file removed) is counted in
``cx_internal_errors_total{component="eventlog"}``, logged once, and retried on the next event.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from typing import IO

from .._state import internal_error
from ..events import Event, from_dict, to_dict


class EventLog:
    """Append events to ``path`` (created with its parent directory if missing)."""

    def __init__(self, path: str | os.PathLike[str], flush_every: int = 256) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._flush_every = flush_every
        self._pending = 0
        self._file: IO[str] | None = None

    def _open(self) -> IO[str]:
        if self._file is None:
            parent = os.path.dirname(self.path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        return self._file

    def emit(self, event: Event) -> None:
        line = json.dumps(to_dict(event), separators=(",", ":")) + "\n"
        with self._lock:
            try:
                handle = self._open()
                handle.write(line)
                self._pending += 1
                if self._pending >= self._flush_every:
                    handle.flush()
                    self._pending = 0
            except OSError as exc:
                self._file = None
                internal_error(
                    "eventlog", exc, f"cxmetrics: cannot write event log {self.path}: {exc}"
                )

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                try:
                    self._file.flush()
                    self._pending = 0
                except OSError as exc:
                    internal_error("eventlog", exc)

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_events(path: str | os.PathLike[str]) -> Iterator[Event]:
    """Events of a JSONL log in file order. Raises ``ValueError`` naming the bad line."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield from_dict(json.loads(line))
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"{os.fspath(path)}:{number}: not a cxmetrics event: {exc}"
                ) from None
