"""A JSONL event log: one JSON object per line, appended, readable by ``cxmetrics analyze``.

Writes never raise into the app. Lines are buffered in memory and appended in batches
(``flush_every`` events) with plain ``os.write`` calls, so a failed write loses nothing: what was
not written stays buffered (up to ``max_buffer_bytes``; beyond that new events are dropped and
counted in ``cx_internal_errors_total{component="eventlog_dropped"}``). A failure (disk full, file
removed, directory gone) is counted in ``cx_internal_errors_total{component="eventlog"}`` and
logged once; the file is reopened and the buffer written at the next event ``retry_after``
seconds later, so the log recovers by itself when the fault clears.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator

from ..instrument.events import Event, from_dict, to_dict
from ..instrument.state import internal_error

log = logging.getLogger("cxmetrics")


class EventLog:
    """Append events to ``path`` (created with its parent directory if missing)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        flush_every: int = 256,
        retry_after: float = 1.0,
        max_buffer_bytes: int = 8 << 20,
    ) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._flush_every = flush_every
        self._retry_after = retry_after
        self._max_bytes = max_buffer_bytes
        self._buffer = bytearray()  # lines not yet written, oldest first
        self._lines = 0
        self._fd: int | None = None
        # After a failed write: not before this monotonic time, and the file that holds the head
        # of a line cut in the middle (its tail must not start another file).
        self._retry_at: float | None = None
        self._cut_in: tuple[int, int] | None = None
        self._dropped = 0

    def emit(self, event: Event) -> None:
        line = (json.dumps(to_dict(event), separators=(",", ":")) + "\n").encode()
        failure: OSError | None = None
        with self._lock:
            if len(self._buffer) + len(line) > self._max_bytes:
                self._dropped += 1
                dropped = True
            else:
                dropped = False
                self._buffer += line
                self._lines += 1
                due = self._lines >= self._flush_every
                if self._retry_at is not None:
                    due = time.monotonic() >= self._retry_at
                if due:
                    failure = self._write()
        if dropped:
            internal_error(
                "eventlog_dropped",
                None,
                f"cxmetrics: event log {self.path} unwritable and its buffer full "
                f"({self._max_bytes} bytes); dropping events until it can be written",
            )
        self._report(failure)

    def flush(self) -> None:
        """Write every buffered event now (also retried after a failure, whatever the time)."""
        with self._lock:
            failure = self._write() if self._buffer else None
        self._report(failure)

    def close(self) -> None:
        self.flush()
        with self._lock:
            # Still buffered means the last write failed: nothing can write it any more.
            lost = self._buffer.count(b"\n")
            self._buffer.clear()
            self._lines = 0
            self._dropped += lost
            self._close_fd()
        for _ in range(lost):
            internal_error("eventlog_dropped")

    # -- writing (under the lock) -------------------------------------------------------------
    def _write(self) -> OSError | None:
        written = 0
        try:
            fd = self._open()
            if self._cut_in is not None and self._identity(fd) != self._cut_in:
                # The head of the first line went to a file that is no longer at this path.
                del self._buffer[: self._buffer.find(b"\n") + 1]
                self._dropped += 1
                self._cut_in = None
            view = memoryview(self._buffer)
            try:
                while written < len(view):
                    written += os.write(fd, view[written:])
            finally:
                view.release()
        except OSError as exc:
            if written:
                cut = self._buffer[written - 1] != ord("\n")
                self._cut_in = self._identity(fd) if cut else None
            del self._buffer[:written]
            self._lines = self._buffer.count(b"\n")
            self._close_fd()
            self._retry_at = time.monotonic() + self._retry_after
            return exc
        self._buffer.clear()
        self._lines = 0
        self._cut_in = None
        if self._retry_at is not None:
            self._retry_at = None
            log.warning(
                "cxmetrics: event log %s writable again; buffered events written "
                "(%d dropped while it was not)",
                self.path,
                self._dropped,
            )
        return None

    def _open(self) -> int:
        if self._fd is None:
            parent = os.path.dirname(self.path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(self.path, flags, 0o644)
        return self._fd

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    @staticmethod
    def _identity(fd: int) -> tuple[int, int] | None:
        try:
            st = os.fstat(fd)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _report(self, failure: OSError | None) -> None:
        if failure is not None:
            internal_error(
                "eventlog",
                failure,
                f"cxmetrics: cannot write event log {self.path}: {failure}; events are kept "
                "in memory and written when it can be written again (further failures are "
                "counted only)",
            )


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
