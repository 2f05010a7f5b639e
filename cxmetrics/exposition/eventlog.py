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
import math
import os
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

from ..instrument.events import (
    ContactRecord,
    Event,
    JourneyStarted,
    StepRecord,
    from_dict,
    to_dict,
)
from ..instrument.state import internal_error
from ..spec.names import FEEDBACK_CATEGORIES, TIMELINESS_CLASSES

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


# -- reading -----------------------------------------------------------------------------------

EARLIEST = 946_684_800.0  # 2000-01-01T00:00:00Z: no cxmetrics record is older
AHEAD = 86_400.0  # a record may be ahead of the reader's clock by a day (clock skew), no more
MAX_DURATION = 366 * 86_400.0  # a step longer than a year is not a measurement
MAX_LINE = 1 << 20  # bytes: a record is a few hundred
BULK = 0.01  # the bulk of a log: its records between the 1st and 99th percentile of time
MAX_REACH = 400 * 86_400.0  # and never more than 400 days either side of the median
MAX_PROBLEMS = 5


@dataclass
class LogRead:
    """What ``read_log`` made of a file: the valid events in file order, how many records
    (non-blank lines) it read, how many it skipped, and the first reasons as ``file:line: why``."""

    events: list[Event]
    records: int
    skipped: int
    problems: list[str]


def read_log(path: str | os.PathLike[str], max_problems: int = MAX_PROBLEMS) -> LogRead:
    """Every valid event of a JSONL log; bad records are skipped, counted and named.

    A record is skipped when it is not UTF-8, not JSON (or nested too deeply, or longer than
    1 MiB), not an object of a known kind with fields of the right types, has a time that is not
    a finite number of seconds between 2000-01-01 and a day after the reader's clock, a duration
    that is not finite or outside [0, 366 days], or a feedback score off its scale. A last line
    cut short (no newline, not valid) is a truncated write, skipped like any other bad record.

    Then, so that one far-off timestamp cannot make the analysis allocate windows by the
    million, records far outside the bulk of the log are skipped too: the bulk is the range from
    the 1st to the 99th percentile of the records' times; a record is kept within one bulk width
    (at least an hour) of it, and never more than 400 days from the median time.
    Raises ``OSError`` when the file cannot be read.
    """
    name = os.fspath(path)
    kept: list[tuple[int, Event]] = []
    bad: list[tuple[int, str]] = []  # the first max_problems of each pass, by line
    skipped = records = 0
    latest = time.time() + AHEAD
    with open(name, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            records += 1
            try:
                event = _parse(raw, latest)
            except ValueError as exc:
                skipped += 1
                if len(bad) < max_problems:
                    cut = not raw.endswith(b"\n")
                    bad.append(
                        (
                            number,
                            f"truncated last line, cut short while being written? ({exc})"
                            if cut
                            else str(exc),
                        )
                    )
                continue
            kept.append((number, event))
    far = _outliers(kept)
    if far:
        skipped += len(far)
        bad += [
            (number, f"time {kept[k][1].time:.0f} is far outside the bulk of the log")
            for k, number in far[:max_problems]
        ]
        dropped = {k for k, _ in far}
        kept = [item for k, item in enumerate(kept) if k not in dropped]
    bad.sort()
    problems = [f"{name}:{number}: {why}" for number, why in bad[:max_problems]]
    return LogRead([e for _, e in kept], records, skipped, problems)


def _outliers(kept: list[tuple[int, Event]]) -> list[tuple[int, int]]:
    """(index in ``kept``, line) of the records far outside the bulk of the log's times."""
    if not kept:
        return []
    times = sorted(e.time for _, e in kept)
    n = len(times)
    lo = times[int(BULK * (n - 1))]
    hi = times[math.ceil((1 - BULK) * (n - 1))]
    median = times[n // 2]
    width = max(hi - lo, 3600.0)
    first = max(lo - width, median - MAX_REACH)
    last = min(hi + width, median + MAX_REACH)
    return [(k, number) for k, (number, e) in enumerate(kept) if not first <= e.time <= last]


def _parse(raw: bytes, latest: float) -> Event:
    """One line as an event, or ``ValueError`` saying what is wrong with it."""
    if len(raw) > MAX_LINE:
        raise ValueError(f"a line of {len(raw):,} bytes; a record is a few hundred")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"not a cxmetrics event: a JSON {_json_type(data)}, not an object")
    try:
        event = from_dict(data)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a cxmetrics event: {exc}") from None
    _validate(event, latest)
    return event


def _json_type(value: object) -> str:
    return {list: "array", str: "string", type(None): "null", bool: "boolean"}.get(
        type(value), "number"
    )


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _validate(event: Event, latest: float) -> None:
    if not _number(event.time):
        raise ValueError(f"time {event.time!r} is not a finite number of seconds")
    if not EARLIEST <= event.time <= latest:
        raise ValueError(
            f"time {event.time!r} is not between 2000-01-01 and a day after this machine's clock"
        )
    strings: dict[str, object] = {"journey": event.journey, "journey_id": event.journey_id}
    optional: dict[str, object] = {}
    if isinstance(event, StepRecord):
        strings.update(step=event.step, channel=event.channel, segment=event.segment)
        optional.update(
            previous_step=event.previous_step, customer_ref=event.customer_ref, reason=event.reason
        )
        if not _number(event.duration) or not 0 <= event.duration <= MAX_DURATION:
            raise ValueError(f"duration {event.duration!r} is not a number of seconds in [0, 366d]")
        if event.outcome not in ("ok", "error"):
            raise ValueError(f"outcome {event.outcome!r} is not 'ok' or 'error'")
        if event.timeliness not in TIMELINESS_CLASSES:
            raise ValueError(f"timeliness {event.timeliness!r} is not one of {TIMELINESS_CLASSES}")
        if not isinstance(event.good, bool):
            raise ValueError(f"good {event.good!r} is not true or false")
        for check in event.checks:
            if not isinstance(check.name, str) or not isinstance(check.passed, bool):
                raise ValueError(f"check {check!r} needs a name and passed true/false")
            if check.relative_error is not None and not _number(check.relative_error):
                raise ValueError(f"check {check.name!r}: relative_error is not a finite number")
    elif isinstance(event, JourneyStarted):
        strings.update(channel=event.channel, segment=event.segment)
    elif isinstance(event, ContactRecord):
        _validate_contact(event)
        strings.update(channel=event.channel)
        optional.update(queue=event.queue, customer_ref=event.customer_ref)
    else:
        strings.update(channel=event.channel, segment=event.segment)
        optional.update(step=event.step, category=event.category, reason=event.reason)
        if event.category is not None and event.category not in FEEDBACK_CATEGORIES:
            raise ValueError(
                f"feedback category {event.category!r} is not one of {FEEDBACK_CATEGORIES}"
            )
        if not (event.scale is None and event.score is None and event.category is not None):
            _validate_score(event.scale, event.score)
    for field_name, value in strings.items():
        if not isinstance(value, str):
            raise ValueError(f"{field_name} {value!r} is not a string")
    for field_name, value in optional.items():
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{field_name} {value!r} is not a string or null")


def _validate_score(scale: object, score: object) -> None:
    if scale not in SCALES:
        raise ValueError(f"feedback scale {scale!r} is not 'csat' or 'nps'")
    low, high = SCALES[scale]
    if not isinstance(score, int) or isinstance(score, bool):
        raise ValueError(f"feedback score {score!r} is not an integer")
    if not low <= score <= high:
        raise ValueError(f"{scale} score {score} is not in {low}..{high}")


SCALES = {"csat": (1, 5), "nps": (0, 10)}
CONTACT_DISPOSITIONS = ("answered", "abandoned", "failed")


def _validate_contact(event: ContactRecord) -> None:
    if event.disposition not in CONTACT_DISPOSITIONS:
        raise ValueError(f"disposition {event.disposition!r} is not one of {CONTACT_DISPOSITIONS}")
    if not _number(event.offered) or not 0 <= event.time - event.offered <= MAX_DURATION:
        raise ValueError(f"offered {event.offered!r} is not a time up to 366 days before the end")
    if not _number(event.wait) or not 0 <= event.wait <= event.time - event.offered + 1e-6:
        raise ValueError(f"wait {event.wait!r} is not a number of seconds within the call")
    answered = event.disposition == "answered"
    if answered != (event.handle is not None):
        raise ValueError("handle is given for answered calls, and only for them")
    if event.handle is not None and (not _number(event.handle) or event.handle < 0):
        raise ValueError(f"handle {event.handle!r} is not a number of seconds")
    for flag in ("transferred", "ticket", "complaint"):
        if not isinstance(getattr(event, flag), bool):
            raise ValueError(f"{flag} {getattr(event, flag)!r} is not true or false")


def read_events(path: str | os.PathLike[str]) -> Iterator[Event]:
    """Events of a JSONL log in file order. Raises ``ValueError`` naming the first bad line
    (``read_log`` skips bad records instead)."""
    name = os.fspath(path)
    latest = time.time() + AHEAD
    with open(name, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield _parse(raw, latest)
            except ValueError as exc:
                raise ValueError(f"{name}:{number}: {exc}") from None
