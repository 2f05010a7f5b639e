"""A JSONL event log: one JSON object per line, appended, readable by ``cxmetrics analyze``.

Writes never raise into the app. Durability, in the order things can go wrong:

- **Buffering.** Lines are buffered in memory and appended with plain ``os.write`` calls when
  ``flush_every`` events are waiting, and by a background thread every ``flush_interval``
  seconds (default 1 s) whatever the traffic: a process killed outright (``kill -9``, OOM) loses
  at most the last interval.
- **Exit.** Every open log is flushed and closed at interpreter exit (``atexit``). A server that
  handles SIGTERM by shutting down gracefully and then re-raising the signal (uvicorn does) never
  reaches ``atexit``: the ASGI middleware flushes every open log when the server's lifespan
  shutdown begins, after the last request was answered; without the middleware, call
  ``cxmetrics.shutdown()`` in the app's lifespan shutdown. WSGI servers (gunicorn, uWSGI) exit
  their workers normally, so ``atexit`` runs.
- **fsync.** A flush hands the lines to the kernel, which survives the process but not a power
  loss. ``fsync=True`` also ``fsync``s after every flush (at most once per interval under steady
  traffic); the file is always fsynced before it is rotated and when it is closed.
- **Rotation.** When the file would grow past ``max_bytes`` (default 64 MiB), it is renamed
  ``PATH.1`` (``PATH.1`` becomes ``PATH.2``… up to ``backups``, the oldest is removed) and a new
  file is started, always at a line boundary.
- **Bounded memory.** What is not yet written stays buffered up to ``max_buffer_bytes``; beyond
  that new events are dropped and counted in ``cx_internal_errors_total{component=
  "eventlog_dropped"}`` (and ``EventLog.dropped``).
- **Failures.** A failed write (disk full, file removed, directory gone) is counted in
  ``cx_internal_errors_total{component="eventlog"}`` and logged once; the file is reopened and
  the buffer written ``retry_after`` seconds later, so the log recovers by itself.
- **After close.** A step that was running when its log was closed (``configure()`` called again,
  ``shutdown()``) still gets its line: it is appended straight to the file.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator

from ..instrument.events import Event, from_dict, to_dict
from ..instrument.state import internal_error

log = logging.getLogger("cxmetrics")

_OPEN: weakref.WeakSet[EventLog] = weakref.WeakSet()
_OPEN_LOCK = threading.Lock()


def flush_open_logs(close: bool = False) -> None:
    """Flush (or close) every event log open in this process. Never raises."""
    with _OPEN_LOCK:
        logs = list(_OPEN)
    for event_log in logs:
        try:
            if close:
                event_log.close()
            else:
                event_log.flush()
        except Exception as exc:  # pragma: no cover - flush/close already swallow OSError
            internal_error("eventlog", exc)


atexit.register(flush_open_logs, True)


class EventLog:
    """Append events to ``path`` (created with its parent directory if missing)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        flush_every: int = 256,
        retry_after: float = 1.0,
        max_buffer_bytes: int = 8 << 20,
        *,
        flush_interval: float = 1.0,
        max_bytes: int = 64 << 20,
        backups: int = 5,
        fsync: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._flush_every = flush_every
        self._retry_after = retry_after
        self._max_bytes = max_buffer_bytes
        self._rotate_at = max_bytes
        self._backups = backups
        self._fsync = fsync
        self._buffer = bytearray()  # lines not yet written, oldest first
        self._lines = 0
        self._fd: int | None = None
        self._size = 0  # of the open file
        # After a failed write: not before this monotonic time, and the file that holds the head
        # of a line cut in the middle (its tail must not start another file).
        self._retry_at: float | None = None
        self._cut_in: tuple[int, int] | None = None
        self._dropped = 0
        self._closed = False
        self._stop = threading.Event()
        with _OPEN_LOCK:
            _OPEN.add(self)
        self._flusher: threading.Thread | None = None
        if flush_interval > 0:
            self._flusher = threading.Thread(
                target=_flush_periodically,
                args=(weakref.ref(self), self._stop, flush_interval),
                name="cxmetrics-eventlog",
                daemon=True,
            )
            self._flusher.start()

    @property
    def dropped(self) -> int:
        """Events lost so far: the buffer was full, or could not be written before close."""
        return self._dropped

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
                due = self._closed or self._lines >= self._flush_every
                if self._retry_at is not None:
                    due = time.monotonic() >= self._retry_at
                if due:
                    failure = self._write()
                    if self._closed and failure is None:
                        self._sync_and_close()
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
            if failure is None and self._fsync and self._fd is not None:
                failure = self._sync()
        self._report(failure)

    def close(self) -> None:
        """Write what is buffered, fsync and close the file; stop the flusher thread. Events
        emitted afterwards are still appended, one write each."""
        self._stop.set()
        with _OPEN_LOCK:
            _OPEN.discard(self)
        with self._lock:
            self._closed = True
            failure = self._write() if self._buffer else None
            # Still buffered means the last write failed: nothing will write it any more.
            lost = self._buffer.count(b"\n")
            self._buffer.clear()
            self._lines = 0
            self._dropped += lost
            self._sync_and_close()
        self._report(failure)
        for _ in range(lost):
            internal_error("eventlog_dropped")
        flusher = self._flusher
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join(5)

    # -- writing (under the lock) -------------------------------------------------------------
    def _write(self) -> OSError | None:
        written = 0  # bytes of the current chunk already written
        try:
            fd = self._open()
            tail_first = False
            if self._cut_in is not None:
                if self._identity(fd) != self._cut_in:
                    # The head of the first line went to a file that is no longer at this path.
                    del self._buffer[: self._buffer.find(b"\n") + 1]
                    self._dropped += 1
                else:
                    tail_first = True  # the rest of that line goes to the same file, first
                self._cut_in = None
            while self._buffer:
                chunk = self._next_chunk(tail_first)
                tail_first = False
                if chunk == 0:
                    fd = self._rotate()
                    continue
                view = memoryview(self._buffer)
                try:
                    while written < chunk:
                        written += os.write(fd, view[written:chunk])
                finally:
                    view.release()
                del self._buffer[:chunk]
                self._size += chunk
                written = 0
        except OSError as exc:
            if written:
                cut = self._buffer[written - 1] != ord("\n")
                self._cut_in = self._identity(self._fd) if cut and self._fd is not None else None
                del self._buffer[:written]
                self._size += written
            self._lines = self._buffer.count(b"\n")
            self._close_fd()
            self._retry_at = time.monotonic() + self._retry_after
            return exc
        self._lines = 0
        if self._retry_at is not None:
            self._retry_at = None
            log.warning(
                "cxmetrics: event log %s writable again; buffered events written "
                "(%d dropped while it was not)",
                self.path,
                self._dropped,
            )
        return None

    def _next_chunk(self, tail_first: bool) -> int:
        """Bytes of the buffer to write to the open file next, whole lines only; 0: rotate
        first (the file is not empty and the next line would take it past ``max_bytes``)."""
        buffer = self._buffer
        if tail_first:
            return buffer.find(b"\n") + 1 or len(buffer)
        room = self._rotate_at - self._size
        if len(buffer) <= room:
            return len(buffer)
        fits = buffer.rfind(b"\n", 0, max(room, 0)) + 1
        if fits:
            return fits
        if self._size:
            return 0
        return buffer.find(b"\n") + 1 or len(buffer)  # one line larger than max_bytes: alone

    def _rotate(self) -> int:
        """Rename PATH to PATH.1 (shifting older ones), open a new PATH; returns its fd."""
        self._sync_and_close()
        if self._backups <= 0:
            os.unlink(self.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}.{self._backups}")
            for n in range(self._backups - 1, 0, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(f"{self.path}.{n}", f"{self.path}.{n + 1}")
            os.rename(self.path, f"{self.path}.1")
        return self._open()

    def _open(self) -> int:
        if self._fd is None:
            parent = os.path.dirname(self.path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(self.path, flags, 0o644)
            try:
                self._size = os.fstat(self._fd).st_size
            except OSError:
                self._size = 0
        return self._fd

    def _sync(self) -> OSError | None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                return exc
        return None

    def _sync_and_close(self) -> None:
        self._sync()
        self._close_fd()

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


def _flush_periodically(ref: weakref.ref[EventLog], stop: threading.Event, interval: float) -> None:
    # A weak reference: an EventLog dropped without close() is not kept alive by its thread.
    while not stop.wait(interval):
        event_log = ref()
        if event_log is None:
            return
        try:
            event_log.flush()
        except Exception as exc:  # pragma: no cover - flush swallows OSError already
            internal_error("eventlog", exc)
        del event_log


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
