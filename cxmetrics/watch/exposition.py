"""The watch's own /metrics: its verdicts (``cx_regression_*``) and its health (``cx_watch_*``),
as declared in ``cxmetrics.spec.names.WATCH_METRICS``.

Every judged indicator of every declared step and channel — each latency quantile, the error
rate, each declared accuracy check — has a ``cx_regression_active`` series (0 or 1) from the first
successful read on, so "no regression" is a value, not an absence; the size, interval and start
series exist only while a regression is open. The labels are ``names.VERDICT_LABELS``: a label
that does not apply to the indicator (``check`` for latency, ``quantile`` for the rates) is empty.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..analysis.analyzer import LATENCY
from ..spec import names
from .alertmanager import Open

#: A verdict's label values, in ``names.VERDICT_LABELS`` order (``Open.key``).
Key = tuple[str, str, str, str, str, str]


@dataclass
class Health:
    reads: int = 0
    read_failures: int = 0
    alert_failures: int = 0
    last_read: float | None = None


@dataclass(eq=False)  # hashable by identity: the registry keys its collectors
class Verdicts(Collector):
    """What the last successful read found; swapped whole under a lock."""

    watched: tuple[Key, ...] = ()
    open: tuple[Open, ...] = ()
    better: tuple[Open, ...] = ()  # open improvements: faster, never regressions
    judged: bool = False
    health: Health = field(default_factory=Health)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update(
        self,
        watched: Iterable[Key],
        found: Iterable[Open],
        better: Iterable[Open] = (),
    ) -> None:
        with self.lock:
            self.watched, self.open, self.judged = tuple(watched), tuple(found), True
            self.better = tuple(better)

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            watched, found, judged, better = self.watched, self.open, self.judged, self.better
            health = Health(**{k: getattr(self.health, k) for k in Health.__dataclass_fields__})

        def family(name: str) -> GaugeMetricFamily:
            _, labels, help_text = names.WATCH_METRICS[name]
            return GaugeMetricFamily(name, help_text, labels=list(labels))

        active = family(names.REGRESSION_ACTIVE)
        sizes = {
            name: family(name)
            for name in (
                names.REGRESSION_CHANGE,
                names.REGRESSION_CHANGE_LOW,
                names.REGRESSION_CHANGE_HIGH,
                names.REGRESSION_SINCE,
            )
        }
        improved = family(names.IMPROVEMENT_ACTIVE)
        improved_by = family(names.IMPROVEMENT_CHANGE)
        by_key = {r.key: r for r in found}
        better_by = {r.key: r for r in better}
        if judged:
            for watched_key in watched:
                key = list(watched_key)
                r = by_key.get(watched_key)
                active.add_metric(key, 1.0 if r is not None else 0.0)
                if r is not None:
                    sizes[names.REGRESSION_CHANGE].add_metric(key, r.change)
                    sizes[names.REGRESSION_CHANGE_LOW].add_metric(key, r.change_low)
                    sizes[names.REGRESSION_CHANGE_HIGH].add_metric(key, r.change_high)
                    sizes[names.REGRESSION_SINCE].add_metric(key, r.start)
                if watched_key[3] != LATENCY:
                    continue  # improvements are latency's only
                b = better_by.get(watched_key)
                improved.add_metric(key, 1.0 if b is not None else 0.0)
                if b is not None:
                    improved_by.add_metric(key, b.change)
        yield active
        yield from sizes.values()
        yield improved
        yield improved_by
        for name, value in (
            (names.WATCH_READS, health.reads),
            (names.WATCH_READ_FAILURES, health.read_failures),
            (names.WATCH_ALERT_FAILURES, health.alert_failures),
        ):
            help_text = names.WATCH_METRICS[name][2]
            yield CounterMetricFamily(name.removesuffix("_total"), help_text, value=value)
        if health.last_read is not None:
            help_text = names.WATCH_METRICS[names.WATCH_LAST_READ][2]
            yield GaugeMetricFamily(names.WATCH_LAST_READ, help_text, value=health.last_read)


def serve(verdicts: Verdicts, address: str, port: int) -> tuple[Any, threading.Thread]:
    """/metrics on ``address:port`` in a daemon thread; ``server.shutdown()`` stops it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(verdicts)
    server, thread = start_http_server(port, address, registry)
    return server, thread
