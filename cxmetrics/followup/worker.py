"""The follow-up worker behind ``cxmetrics followup run``.

Any number of workers may run against one store. Each pass claims due instances partition by
partition with one script call (``store.CLAIM``): the claimed instances' scores move to the end
of a lease, so no other worker takes them while the lease lasts, and a worker that dies leaves
them to be claimed again once it ends. A delivered instance is removed (``ACK``); a failed one is
scheduled again with exponential backoff, or parked as a dead letter after ``max_attempts`` or
once ``until`` has passed since the stall (``FAIL``). Delivery is therefore at least once: a
worker that dies after a target accepted a follow-up but before the ack makes it deliver again,
with the same idempotency key.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis
import urllib3
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisClusterException

from ..spec import names
from ..spec.model import FollowUp, Spec
from . import delivery, store

log = logging.getLogger("cxmetrics")
# What a store round trip may raise: a single Redis's errors, and a cluster's own (no node
# reachable, slots not covered) which redis-py does not derive from RedisError.
STORE_ERRORS = (redis.RedisError, RedisClusterException)


@dataclass(frozen=True, slots=True)
class Claimed:
    part: store.Partition
    instance: str
    due: float
    raw: str | None  # the stored payload (None: cleared between claim and read)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    journey: str
    step: str
    instance_key: str  # idempotency key, not the instance id
    when: float
    reason: str
    attempts: int
    since: float | None
    error: str


class Worker:
    def __init__(
        self,
        spec: Spec,
        url: str,
        secret: bytes,
        *,
        registry: CollectorRegistry | None = None,
        lease: float = 30.0,
        claim: int = 500,
        batch: int = 100,
        concurrency: int = 16,
        max_attempts: int = 8,
        backoff: float = 1.0,
        backoff_cap: float = 300.0,
        timeout: float = 10.0,
        shards: int = store.SHARDS,
        prefix: str = store.PREFIX,
    ) -> None:
        self.spec = spec
        self.secret = secret
        self.lease, self.claim_limit, self.batch = lease, claim, max(1, batch)
        self.max_attempts, self.backoff, self.backoff_cap = max_attempts, backoff, backoff_cap
        self.prefix = prefix
        self.service = spec.service  # on every series, as on the app's: services never mix
        self.parts = list(store.partitions(spec, shards, prefix))
        self.policies: dict[tuple[str, str], tuple[FollowUp, str | None]] = {}
        for journey in spec.journeys:
            for step in journey.key_steps:
                assert step.followup is not None
                self.policies[(journey.name, step.name)] = (
                    step.followup,
                    journey.segment(step),
                )
        self.db = store.connect(url, timeout)
        self._claim = store.Script(self.db, store.CLAIM)
        self._ack = store.Script(self.db, store.ACK)
        self._fail = store.Script(self.db, store.FAIL)
        self.http = urllib3.PoolManager(
            maxsize=concurrency, block=True, timeout=timeout, retries=False
        )
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="cxmetrics-followup")
        self.registry = registry if registry is not None else CollectorRegistry()
        meta = names.FOLLOWUP_METRICS
        labels = [names.SERVICE, names.JOURNEY, names.STEP]

        def counter(name: str, extra: tuple[str, ...] = ()) -> Counter:
            return Counter(name, meta[name][2], [*labels, *extra], registry=self.registry)

        self.sent = counter(names.FOLLOWUPS_SENT)
        self.retried = counter(names.FOLLOWUPS_RETRIED)
        self.dead_lettered = counter(names.FOLLOWUPS_DEAD_LETTERED, (names.REASON,))
        self.store_errors = Counter(
            names.FOLLOWUPS_STORE_ERRORS,
            meta[names.FOLLOWUPS_STORE_ERRORS][2],
            [names.COMPONENT],
            registry=self.registry,
        )
        self.lag = Histogram(
            names.FOLLOWUPS_LAG,
            meta[names.FOLLOWUPS_LAG][2],
            labels,
            buckets=names.FOLLOWUP_LAG_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(self))

    # -- one pass ------------------------------------------------------------------------------
    def run(self, stop: Any = None, poll: float = 0.2) -> None:
        """Claim and deliver until ``stop.is_set()`` (forever without ``stop``)."""
        while stop is None or not stop.is_set():
            try:
                done = self.pass_once()
            except STORE_ERRORS as exc:
                self.store_errors.labels("worker").inc()
                log.warning("cxmetrics followup: store unavailable (%r); retrying", exc)
                time.sleep(1.0)
                continue
            if not done:
                time.sleep(poll)

    def pass_once(self) -> int:
        """One round over every partition (from a random one); returns how many were handled."""
        handled = 0
        start = random.randrange(len(self.parts)) if self.parts else 0
        for part in self.parts[start:] + self.parts[:start]:
            claimed = self.claim(part)
            if claimed:
                self.handle(claimed)
                handled += len(claimed)
        return handled

    def claim(self, part: store.Partition) -> list[Claimed]:
        now = time.time()
        out = self._claim(
            keys=[part.key("due"), part.key("data")], args=[now, self.lease, self.claim_limit]
        )
        return [
            Claimed(
                part,
                out[i].decode(),
                float(out[i + 1]),
                out[i + 2].decode() if out[i + 2] else None,
            )
            for i in range(0, len(out), 3)
        ]

    def handle(self, claimed: list[Claimed]) -> None:
        """Deliver instances claimed from one partition, then settle them in one round trip."""
        if not claimed:
            return
        part = claimed[0].part
        policy, segment = self.policies[(part.journey, part.step)]
        now = time.time()
        acks: list[str] = []
        expired: list[str] = []
        ready: list[tuple[Claimed, dict[str, Any]]] = []
        for c in claimed:
            if c.raw is None:  # cleared after the claim: the customer moved on
                acks += (c.instance, "")
                continue
            since, channel, seg, customer = store.decode(c.raw)
            if now > since + policy.until:
                expired += (c.instance, "not delivered before 'until'")
                continue
            key = delivery.idempotency_key(part.journey, part.step, c.instance, since)
            fields = delivery.item(
                policy.fields,
                key,
                part.journey,
                part.step,
                since,
                channel,
                seg
                if seg != names.NONE
                else segment,  # the instance's segment, else the spec's tag
                customer,
            )
            ready.append((c, fields))
        chunks = [ready[i : i + self.batch] for i in range(0, len(ready), self.batch)]
        failed: list[str] = []
        sent: list[Claimed] = []
        for chunk, error in zip(chunks, self.pool.map(self._deliver, chunks), strict=True):
            for c, _ in chunk:
                if error is None:
                    acks += (c.instance, c.raw or "")
                    sent.append(c)
                else:
                    failed += (c.instance, error[:200].replace("|", "/"))
        pipe = self.db.pipeline(transaction=False)
        settle = [part.key("due"), part.key("data"), part.key("tries")]
        if acks:
            self._ack(keys=settle, args=acks, client=pipe)
        for ids, reason in ((failed, ""), (expired, "expired")):
            if ids:
                args: list[str | float] = [
                    now,
                    self.max_attempts,
                    self.backoff,
                    self.backoff_cap,
                    reason,
                    *ids,
                ]
                self._fail(keys=part.fail_keys, args=args, client=pipe)
        replies = pipe.execute()
        labels = (self.service, part.journey, part.step)
        delivered_at = time.time()
        for c in sent:
            self.lag.labels(*labels).observe(max(0.0, delivered_at - c.due))
        if sent:
            self.sent.labels(*labels).inc(len(sent))
        for outcome in (o.decode() for r in replies if isinstance(r, list) for o in r):
            if outcome == "retry":
                self.retried.labels(*labels).inc()
            else:
                self.dead_lettered.labels(*labels, outcome).inc()

    def _deliver(self, chunk: list[tuple[Claimed, dict[str, Any]]]) -> str | None:
        """Deliver one chunk to its targets; ``None`` when every target accepted it."""
        first = chunk[0][0].part
        policy, _ = self.policies[(first.journey, first.step)]
        items = [i for _, i in chunk]
        try:
            if policy.webhook is not None:
                payload = delivery.body(items)
                response = self.http.request(
                    "POST",
                    policy.webhook,
                    body=payload,
                    headers={
                        "content-type": "application/json",
                        delivery.SIGNATURE_HEADER: delivery.sign(self.secret, payload),
                    },
                )
                if response.status >= 300:
                    return f"webhook answered {response.status}"
            if policy.queue is not None:
                pipe = self.db.pipeline(transaction=False)
                for i in items:
                    pipe.xadd(
                        delivery.queue_key(policy.queue, self.prefix),
                        {k: "" if v is None else str(v) for k, v in i.items()},
                    )
                pipe.execute()
        except (urllib3.exceptions.HTTPError, *STORE_ERRORS) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    # -- inspection -----------------------------------------------------------------------------
    def dead_letters(self) -> Iterator[DeadLetter]:
        for part in self.parts:
            info: dict[bytes, bytes] = self.db.hgetall(part.key("deadinfo"))
            dead: list[tuple[bytes, float]] = self.db.zrange(
                part.key("dead"), 0, -1, withscores=True
            )
            for instance, when in dead:
                raw = info.get(instance, b"").decode()
                reason, attempts, rest = ([*raw.split("|", 2), "", "", ""])[:3]
                since: float | None = None
                error = rest
                if rest.count("|") >= 3:
                    payload, error = rest.rsplit("|", 1)
                    since = store.decode(payload)[0]
                key = delivery.idempotency_key(
                    part.journey, part.step, instance.decode(), since or 0.0
                )
                yield DeadLetter(
                    part.journey, part.step, key, when, reason, int(attempts or 0), since, error
                )

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.http.clear()
        self.db.close()


class _StoreCollector(Collector):
    """Gauges read from the store at scrape time (the same from every worker: aggregate with
    ``max``, not ``sum``)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        meta = names.FOLLOWUP_METRICS
        labels = [names.SERVICE, names.JOURNEY, names.STEP]
        families = {
            n: GaugeMetricFamily(n, meta[n][2], labels=labels)
            for n in (
                names.FOLLOWUPS_TRACKED,
                names.FOLLOWUPS_DUE,
                names.FOLLOWUPS_OLDEST_DUE,
                names.FOLLOWUPS_DEAD_LETTERS,
            )
        }
        now = time.time()
        totals: dict[tuple[str, str], list[float]] = {}
        try:
            pipe = self.worker.db.pipeline(transaction=False)
            for part in self.worker.parts:
                pipe.zcard(part.key("due"))
                pipe.zcount(part.key("due"), "-inf", now)
                pipe.zrange(part.key("due"), 0, 0, withscores=True)
                pipe.zcard(part.key("dead"))
            replies = pipe.execute()
        except STORE_ERRORS:
            self.worker.store_errors.labels("metrics").inc()
            return
        for i, part in enumerate(self.worker.parts):
            tracked, due, oldest, dead = replies[4 * i : 4 * i + 4]
            t = totals.setdefault((part.journey, part.step), [0, 0, 0.0, 0])
            t[0] += tracked
            t[1] += due
            if oldest and oldest[0][1] <= now:
                t[2] = max(t[2], now - oldest[0][1])
            t[3] += dead
        service = self.worker.service
        for (journey, step), (tracked, due, oldest_age, dead) in sorted(totals.items()):
            families[names.FOLLOWUPS_TRACKED].add_metric([service, journey, step], tracked)
            families[names.FOLLOWUPS_DUE].add_metric([service, journey, step], due)
            families[names.FOLLOWUPS_OLDEST_DUE].add_metric([service, journey, step], oldest_age)
            families[names.FOLLOWUPS_DEAD_LETTERS].add_metric([service, journey, step], dead)
        yield from families.values()
