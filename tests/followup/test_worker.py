"""The worker against a real redis-server and a real receiver: signed deliveries, retries after a
500, dead letters listed by the CLI and counted in metrics."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import cxmetrics
from cxmetrics import config
from cxmetrics.followup import delivery
from cxmetrics.followup.tracker import Tracker
from cxmetrics.instrument.redaction import make_redactor
from cxmetrics.spec.load import parse_spec
from tests.helpers.followup_app import CUSTOMER_KEY, spec_text
from tests.helpers.followup_procs import CLI, SECRET, Receiver, start_worker, stop
from tests.helpers.redis_server import RedisServer, free_port
from tests.helpers.servers import wait_for


def test_signature_verifies_and_rejects_tampering_and_replay() -> None:
    body = b'{"followups":[]}'
    header = delivery.sign(b"k", body, now=1_000_000.0)
    assert delivery.verify(b"k", header, body, now=1_000_100.0)
    assert not delivery.verify(b"other", header, body, now=1_000_100.0)
    assert not delivery.verify(b"k", header, body + b" ", now=1_000_100.0)
    assert not delivery.verify(b"k", header, body, now=1_000_000.0 + delivery.TOLERANCE + 1)
    assert not delivery.verify(b"k", "t=abc", body)
    assert not delivery.verify(b"k", None, body)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path / "redis").start()
    try:
        yield srv
    finally:
        srv.stop()


def _stall(spec_text_: str, url: str, customers: list[str]) -> None:
    """Customers reach the key step and stall there (written through the app-side tracker)."""
    spec = parse_spec(spec_text_)
    tracker = Tracker(spec, url)
    cxmetrics.configure(
        spec, registry=CollectorRegistry(), spans="off", customer_key=CUSTOMER_KEY, sinks=[tracker]
    )
    for customer in customers:
        j = cxmetrics.journey("loan_application", channel="web")
        j.identify(customer)
        with j.step("apply"):
            pass
        with j.step("upload_documents"):
            pass
    config.shutdown()
    assert tracker.wait(10.0)
    tracker.close()


def _metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


LABELS = (("journey", "loan_application"), ("service", "bank"), ("step", "upload_documents"))


@pytest.mark.slow
def test_receiver_500_then_200_is_retried_and_delivered_once(
    tmp_path: Path, server: RedisServer
) -> None:
    receiver = Receiver(tmp_path, fail_first=1)
    text = spec_text(webhook=receiver.url, after="1s")
    (tmp_path / "spec.yaml").write_text(text)
    metrics_port = free_port()
    worker = start_worker(
        tmp_path,
        tmp_path / "spec.yaml",
        server.url,
        "worker",
        "--backoff",
        "0.3",
        "--metrics-port",
        str(metrics_port),
    )
    try:
        t0 = time.time()
        _stall(text, server.url, ["customer-7"])
        wait_for(lambda: receiver.stats()["accepted"] == 1, 30, "the delivery")
        time.sleep(1.0)  # nothing more arrives
        assert receiver.stats() == {
            "requests": 2,
            "accepted": 1,
            "duplicates": 0,
            "unsigned": 0,
            "failed": 1,
        }
        (item,) = receiver.items()
        assert set(item) == {
            "idempotency_key",
            "journey",
            "step",
            "stalled_since",
            "channel",
            "segment",
            "customer_ref",
        }
        assert (item["journey"], item["step"], item["channel"], item["segment"]) == (
            "loan_application",
            "upload_documents",
            "web",
            "retail",
        )
        assert item["customer_ref"] == make_redactor(CUSTOMER_KEY, None)("customer-7")
        assert t0 - 1 <= _epoch(item["stalled_since"]) <= time.time()
        samples = _metrics(metrics_port)
        assert samples[("cx_followups_retried_total", LABELS)] == 1
        assert samples[("cx_followups_sent_total", LABELS)] == 1
        assert samples[("cx_followups_lag_seconds_count", LABELS)] == 1
        assert samples[("cx_followups_tracked", LABELS)] == 0
        assert samples[("cx_followups_dead_letters", LABELS)] == 0
    finally:
        stop(worker)
        receiver.stop()


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


@pytest.mark.slow
def test_what_keeps_failing_is_parked_listed_and_counted(
    tmp_path: Path, server: RedisServer
) -> None:
    receiver = Receiver(tmp_path, fail_first=1000)
    text = spec_text(webhook=receiver.url, after="1s")
    (tmp_path / "spec.yaml").write_text(text)
    metrics_port = free_port()
    worker = start_worker(
        tmp_path,
        tmp_path / "spec.yaml",
        server.url,
        "worker",
        "--backoff",
        "0.1",
        "--max-attempts",
        "3",
        "--batch",
        "1",
        "--metrics-port",
        str(metrics_port),
    )
    try:
        _stall(text, server.url, ["customer-1", "customer-2"])
        wait_for(lambda: receiver.stats()["failed"] == 6, 30, "three attempts each")
        wait_for(
            lambda: _metrics(metrics_port).get(("cx_followups_dead_letters", LABELS)) == 2,
            10,
            "two dead letters",
        )
        samples = _metrics(metrics_port)
        assert samples[("cx_followups_retried_total", LABELS)] == 4
        assert (
            samples[
                (
                    "cx_followups_dead_lettered_total",
                    tuple(sorted((*LABELS, ("reason", "attempts")))),
                )
            ]
            == 2
        )
        assert samples.get(("cx_followups_sent_total", LABELS), 0) == 0
    finally:
        stop(worker)
        receiver.stop()
    listing = subprocess.run(
        [
            CLI,
            "followup",
            "dead",
            "--spec",
            str(tmp_path / "spec.yaml"),
            "--redis",
            server.url,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    letters = [json.loads(line) for line in listing.stdout.splitlines()]
    assert [(d["journey"], d["step"], d["reason"], d["attempts"]) for d in letters] == [
        ("loan_application", "upload_documents", "attempts", 3)
    ] * 2
    assert {d["error"] for d in letters} == {"webhook answered 500"}
    assert listing.stderr.strip() == "2 dead letter(s)"


@pytest.mark.slow
def test_unsigned_or_forged_deliveries_are_refused(tmp_path: Path) -> None:
    receiver = Receiver(tmp_path)
    try:
        body = delivery.body([{"idempotency_key": "k", "journey": "x"}])
        statuses = []
        for header in (
            "",
            delivery.sign(b"not-the-secret", body),
            delivery.sign(SECRET.encode(), body),
        ):
            request = urllib.request.Request(
                receiver.url,
                data=body,
                headers={delivery.SIGNATURE_HEADER: header} if header else {},
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as r:
                    statuses.append(r.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        assert statuses == [401, 401, 200]
        assert receiver.stats() == {
            "requests": 3,
            "accepted": 1,
            "duplicates": 0,
            "unsigned": 2,
            "failed": 0,
        }
    finally:
        receiver.stop()
