"""The app process's side of follow-ups: a sink that registers and clears key-step deadlines.

``configure(followup="redis://…")`` adds a ``Tracker`` to the runtime's sinks. On a key step it
queues a registration (the instance is due ``after`` from now); on any later step of the journey,
a clear. ``emit`` only appends to a bounded in-memory queue; a background thread drains it every
``interval`` in batches, one script call per store partition, all pipelined in one round trip.

The app never waits on Redis and never fails because of it: when the queue is full a write is
dropped and counted (``cx_followups_dropped_total``); when Redis is slow or down the batch stays
queued and is retried with backoff (``cx_followups_store_errors_total``), so a short outage or a
restart loses nothing as long as the queue has room.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..instrument.events import Event, StepRecord
from ..instrument.state import internal_error, log_once
from ..spec import names
from ..spec.model import Spec
from . import store
from .store import encode

log = logging.getLogger("cxmetrics")
_now = time.time

# (registration or None, steps whose registration a step clears)
_Plan = tuple[tuple[str, float] | None, tuple[str, ...]]
_Write = tuple[str, _Plan, str, float, str, str, "str | None"]


def plans(spec: Spec) -> dict[tuple[str, str], _Plan]:
    """For each step that touches a follow-up: what it registers and what it clears."""
    out: dict[tuple[str, str], _Plan] = {}
    for journey in spec.journeys:
        keys = journey.key_steps
        if not keys:
            continue
        index = {s.name: i for i, s in enumerate(journey.steps)}
        for i, step in enumerate(journey.steps):
            clears = tuple(k.name for k in keys if index[k.name] < i)
            register = (step.name, step.followup.after) if step.followup is not None else None
            if register or clears:
                out[(journey.name, step.name)] = (register, clears)
    return out


class Tracker:
    """A ``Sink`` writing follow-up deadlines to Redis off the hot path."""

    def __init__(
        self,
        spec: Spec,
        url: str,
        *,
        queue_size: int = 100_000,
        interval: float = 0.05,
        batch: int = 2_000,
        shards: int = store.SHARDS,
        prefix: str = store.PREFIX,
        timeout: float = 1.0,
    ) -> None:
        self._plans = plans(spec)
        self._bound = queue_size
        self._interval = interval
        self._batch = batch
        self._shards = shards
        self._prefix = prefix
        self._queue: collections.deque[_Write] = collections.deque()
        self._keys: dict[tuple[str, str, int], list[str]] = {}
        self._inflight = 0  # taken off the queue by a write not finished yet (counts to the bound)
        self.dropped: dict[tuple[str, str], int] = {}
        self.store_errors = 0
        self.written = 0
        self._lock = threading.Lock()
        self._exposed: tuple[CollectorRegistry, Collector] | None = None
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._client = store.connect(url, timeout)
        self._apply = store.Script(self._client, store.APPLY)
        self._thread = threading.Thread(target=self._run, name="cxmetrics-followup", daemon=True)
        self._thread.start()

    # -- hot path ----------------------------------------------------------------------------
    def note_step(
        self,
        journey: str,
        step: str,
        journey_id: str,
        channel: str,
        segment: str,
        customer_ref: str | None,
    ) -> None:
        """A step finished (``instrument.sinks.StepHook``: the runtime calls this instead of
        building a record): queue what it registers or clears, if anything."""
        plan = self._plans.get((journey, step))
        if plan is None:
            return
        if len(self._queue) + self._inflight >= self._bound:
            self._drop("register" if plan[0] else "clear", "queue_full")
            return
        self._queue.append((journey, plan, journey_id, _now(), channel, segment, customer_ref))

    def emit(self, event: Event) -> None:
        """The same from a whole record (the tracker used as a plain sink, or replayed)."""
        if type(event) is not StepRecord:
            return
        plan = self._plans.get((event.journey, event.step))
        if plan is None:
            return
        if len(self._queue) + self._inflight >= self._bound:
            self._drop("register" if plan[0] else "clear", "queue_full")
            return
        self._queue.append(
            (
                event.journey,
                plan,
                event.journey_id,
                event.time,
                event.channel,
                event.segment,
                event.customer_ref,
            )
        )

    def _drop(self, op: str, reason: str, n: int = 1) -> None:
        with self._lock:
            self.dropped[(op, reason)] = self.dropped.get((op, reason), 0) + n

    # -- background writer --------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            if not self._queue:
                self._idle.set()
                self._stop.wait(self._interval)
                continue
            self._idle.clear()
            if backoff:
                self._stop.wait(backoff)
            taken = self._take()
            try:
                self._write(taken)
            except Exception as exc:
                self._queue.extendleft(reversed(taken))  # kept, in order, for the next try
                self._inflight = 0
                with self._lock:
                    self.store_errors += 1
                log_once(
                    "followup:store",
                    "cxmetrics: follow-up store unavailable (%r); writes stay queued and are "
                    "retried, counted in cx_followups_store_errors_total",
                    exc,
                )
                backoff = min(max(backoff * 2, 0.1), 2.0)
            else:
                self._inflight = 0
                backoff = 0.0
                self.written += len(taken)
                if len(self._queue) < self._batch:
                    self._stop.wait(self._interval)

    def _take(self) -> list[_Write]:
        # Counted in flight before it leaves the queue: the bound ``emit`` checks never dips.
        n = self._inflight = min(self._batch, len(self._queue))
        pop = self._queue.popleft
        return [pop() for _ in range(n)]

    def _write(self, writes: list[_Write]) -> None:
        lines: dict[tuple[str, str, int], list[str]] = {}
        shards, shard_of = self._shards, store.shard_of
        for journey, (register, clears), instance, at, channel, segment, customer in writes:
            shard = shard_of(instance, shards)
            if register is not None:
                step, after = register
                lines.setdefault((journey, step, shard), []).append(
                    f"r {instance} {at + after:.3f} {encode(at, channel, segment, customer)}"
                )
            for step in clears:
                lines.setdefault((journey, step, shard), []).append(f"c {instance} {at:.3f}")
        cutoff = f"{time.time() - store.PROGRESS_HORIZON:.3f}"
        pipe = self._client.pipeline(transaction=False)
        for where, batch in lines.items():
            keys = self._keys.get(where)
            if keys is None:
                keys = self._keys[where] = store.Partition(*where, self._prefix).apply_keys
            self._apply(keys=keys, args=[cutoff, "\n".join(batch)], client=pipe)
        pipe.execute()

    # -- sink protocol ------------------------------------------------------------------------
    def flush(self) -> None:
        self.wait(5.0)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the queue to be written; ``True`` when it was."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._queue and self._idle.is_set():
                return True
            time.sleep(0.01)
        return not self._queue

    def close(self) -> None:
        self.wait(2.0)
        self._stop.set()
        self._thread.join(5.0)
        left = len(self._queue)
        if left:
            self._drop("any", "shutdown", left)
            self._queue.clear()
            log.warning("cxmetrics: %d follow-up writes not stored at shutdown", left)
        self._client.close()
        if self._exposed is not None:
            registry, collector = self._exposed
            self._exposed = None
            with contextlib.suppress(KeyError):
                registry.unregister(collector)

    # -- metrics ------------------------------------------------------------------------------
    def expose(self, registry: CollectorRegistry) -> None:
        collector = _TrackerCollector(self)
        registry.register(collector)
        self._exposed = (registry, collector)


class _TrackerCollector(Collector):
    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def collect(self) -> Iterator[Metric]:
        t = self.tracker
        meta = names.FOLLOWUP_METRICS
        dropped = CounterMetricFamily(
            names.FOLLOWUPS_DROPPED.removesuffix("_total"),
            meta[names.FOLLOWUPS_DROPPED][2],
            labels=list(meta[names.FOLLOWUPS_DROPPED][1]),
        )
        with t._lock:
            counts = dict(t.dropped)
            errors = t.store_errors
        for (op, reason), n in sorted(counts.items()):
            dropped.add_metric([op, reason], n)
        yield dropped
        yield GaugeMetricFamily(
            names.FOLLOWUPS_QUEUED, meta[names.FOLLOWUPS_QUEUED][2], value=len(t._queue)
        )
        store_errors = CounterMetricFamily(
            names.FOLLOWUPS_STORE_ERRORS.removesuffix("_total"),
            meta[names.FOLLOWUPS_STORE_ERRORS][2],
            labels=[names.COMPONENT],
        )
        store_errors.add_metric(["tracker"], errors)
        yield store_errors


def tracker_sinks(spec: Spec, url: str | None, strict: bool) -> tuple[Tracker, ...]:
    """The tracker ``configure(followup=url)`` adds to the sinks (none without a key step)."""
    if url is None or not plans(spec):
        return ()
    try:
        return (Tracker(spec, url),)
    except Exception as exc:  # redis not installed, a malformed URL
        if strict:
            raise
        internal_error("followup", exc, f"cxmetrics: follow-ups not tracked: {exc!r}")
        return ()


def expose(sinks: tuple[object, ...], registry: CollectorRegistry) -> None:
    """Register the collector of each tracker among ``sinks`` (after the previous runtime's
    collectors were unregistered); a tracker unregisters it when closed."""
    for sink in sinks:
        if isinstance(sink, Tracker):
            try:
                sink.expose(registry)
            except ValueError as exc:
                internal_error("registry", exc)
