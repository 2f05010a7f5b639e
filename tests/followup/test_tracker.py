"""The app-side tracker on a real redis-server: register on the key step, clear on a later one,
never resurrect an instance that moved on, and never fail or wait when Redis is down."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis
from prometheus_client import CollectorRegistry

import cxmetrics
from cxmetrics import config
from cxmetrics.followup import store
from cxmetrics.followup.tracker import Tracker, plans
from cxmetrics.instrument.events import StepRecord
from cxmetrics.instrument.redaction import make_redactor
from cxmetrics.instrument.state import STATE
from cxmetrics.spec.load import parse_spec
from tests.helpers.followup_app import CUSTOMER_KEY, spec_text
from tests.helpers.redis_server import RedisServer, free_port

SPEC = parse_spec(spec_text(after="2h", until="1d"))
PART = ("loan_application", "upload_documents")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path / "redis").start()
    try:
        yield srv
    finally:
        srv.stop()


def _partition(instance: str) -> store.Partition:
    return store.Partition(*PART, store.shard_of(instance))


def _tracker() -> Tracker:
    runtime = STATE.runtime
    assert runtime is not None
    (tracker,) = [s for s in runtime.step_hooks if isinstance(s, Tracker)]
    return tracker


def test_plans_register_on_key_step_and_clear_on_later_steps() -> None:
    assert plans(SPEC) == {
        ("loan_application", "upload_documents"): (("upload_documents", 7200.0), ()),
        ("loan_application", "sign"): (None, ("upload_documents",)),
    }


@pytest.mark.slow
def test_key_step_registers_and_later_step_clears(server: RedisServer) -> None:
    cxmetrics.configure(
        SPEC,
        registry=CollectorRegistry(),
        spans="off",
        customer_key=CUSTOMER_KEY,
        followup=server.url,
    )
    db = redis.Redis.from_url(server.url, decode_responses=True)
    stalled = cxmetrics.journey("loan_application", channel="app", segment="vip")
    stalled.identify("customer-1")
    moving = cxmetrics.journey("loan_application", channel="app")
    for j in (stalled, moving):
        with j.step("apply"):
            pass
        with j.step("upload_documents"):
            pass
    before_sign = time.time()
    with moving.step("sign"):
        pass
    assert _tracker().wait(10.0)

    part = _partition(stalled.journey_id)
    due = db.zscore(part.key("due"), stalled.journey_id)
    since, channel, segment, customer = store.decode(
        cast("str", db.hget(part.key("data"), stalled.journey_id))
    )
    assert due == pytest.approx(since + 7200.0, abs=0.002)
    assert (channel, segment) == ("app", "vip")  # the instance's own segment goes out
    assert customer == make_redactor(CUSTOMER_KEY, None)("customer-1")

    moved = _partition(moving.journey_id)
    assert db.zscore(moved.key("due"), moving.journey_id) is None
    assert db.hget(moved.key("data"), moving.journey_id) is None
    assert cast("float", db.zscore(moved.key("prog"), moving.journey_id)) >= round(before_sign, 3)
    assert sum(cast("int", db.zcard(p.key("due"))) for p in store.partitions(SPEC)) == 1


def _record(step: str, instance: str, at: float) -> StepRecord:
    return StepRecord(
        at, "loan_application", step, "app", instance, None, 0.1, "ok", "satisfied", True
    )


@pytest.mark.slow
def test_a_registration_written_after_the_clear_does_not_resurrect(
    server: RedisServer,
) -> None:
    """Two processes: the next step's clear reaches Redis before the key step's registration."""
    late, early = Tracker(SPEC, server.url), Tracker(SPEC, server.url)
    try:
        now = time.time()
        early.emit(_record("sign", "a" * 32, now))
        assert early.wait(10.0)
        late.emit(_record("upload_documents", "a" * 32, now - 1.0))
        late.emit(_record("upload_documents", "b" * 32, now - 1.0))
        assert late.wait(10.0)
    finally:
        late.close()
        early.close()
    db = redis.Redis.from_url(server.url, decode_responses=True)
    due = {
        m for p in store.partitions(SPEC) for m in cast("list[str]", db.zrange(p.key("due"), 0, -1))
    }
    assert due == {"b" * 32}


@pytest.mark.slow
def test_redis_down_never_fails_or_blocks_and_counts_drops() -> None:
    registry = CollectorRegistry()
    dead = f"redis://127.0.0.1:{free_port()}/0"
    tracker = Tracker(SPEC, dead, queue_size=100)
    tracker.expose(registry)
    cxmetrics.configure(SPEC, registry=registry, spans="off", sinks=[tracker])
    t0 = time.perf_counter()
    for i in range(1000):
        j = cxmetrics.journey("loan_application", channel="app")
        j.identify(f"customer-{i}")
        with j.step("apply"):
            pass
        with j.step("upload_documents"):
            pass
    elapsed = time.perf_counter() - t0
    config.shutdown()
    assert elapsed < 2.0  # 1,000 journeys never waited on a connect timeout
    assert tracker.store_errors >= 1
    dropped = {"op": "register", "reason": "queue_full"}
    assert registry.get_sample_value("cx_followups_dropped_total", dropped) == 900
    assert registry.get_sample_value("cx_followups_queued") == 100
    tracker.close()
    assert tracker.dropped[("any", "shutdown")] == 100


def test_the_stored_payload_carries_the_segment_and_reads_older_payloads() -> None:
    """The follow-up carried the spec's ``segment`` tag only, never the instance's segment."""
    assert store.encode(12.5, "web", "vip", "c0ffee") == "12.500|web|vip|c0ffee"
    assert store.decode("12.500|web|vip|c0ffee") == (12.5, "web", "vip", "c0ffee")
    assert store.decode("12.500|web|none|") == (12.5, "web", "none", None)
    # written by a tracker before segments were carried: read as no segment
    assert store.decode("12.500|web|c0ffee") == (12.5, "web", "none", "c0ffee")
