"""End to end on real servers: bank app → Prometheus (generated rules) → Alertmanager → webhook.

The example spec with windows shortened by an override (20 s window, 60 s trailing baseline,
5 s ``for``, 60 steps per channel, +15%: a channel's p95 on a shared machine moves
by 10% on its own), the app time-compressed ×0.5, a 1 s scrape/evaluation. After a baseline, a +20%
latency fault goes into ``bill_detail``; the webhook must receive ``CxStepLatencyRegression``
for that step, with baseline, current value and change, and no alert may name another step.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.responses import Response

from cxmetrics.analysis import promapi
from cxmetrics.local import stack
from cxmetrics.rules import build, render, write_atomic
from cxmetrics.rules.overlay import parse_with_overrides
from cxmetrics.spec import names
from examples.bank.app import SPEC_PATH, create_app
from tests.helpers.paths import ROOT
from tests.helpers.servers import serve_app

# Every test here starts a server or a subprocess; a latency alert is judged, so it never runs
# beside another test that keeps the cores busy (make test's parallel workers).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("timing")]

# Latencies ×0.5 (bill_detail p95 ≈ 0.5 s) and many concurrent customers for the volume: CPU
# contention delays every wake-up by milliseconds, so at ×0.02 (p95 ≈ 20 ms) a busy machine
# alone moves each step's p95 by more than the 10% threshold, on every step at once.
TIME_SCALE = 0.5
DASHBOARDS = "http://grafana.test:3000"
OVERRIDE = f"""
dashboard_url: {DASHBOARDS}/
defaults:
  regression:
    window: 20s
    baseline: trailing 60s
    min_volume: 60
    min_change: 0.15
    for: 5s
"""
BILL_DETAIL = {"journey": "bill_inquiry", "step": "bill_detail"}


class Webhook:
    """An Alertmanager webhook receiver on a free loopback port, keeping every alert posted."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.alerts.extend(json.loads(body)["alerts"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", stack.free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.alerts)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@contextmanager
def bill_inquiry_customers(base_url: str, seconds: float, concurrency: int = 8) -> Iterator[None]:
    """Customers walking bill_inquiry (login → bill_total → bill_detail) with
    ``examples.bank.traffic``, in a process of their own so the client never competes with the
    app for this process' GIL (which would show up as step latency)."""
    code = (
        "import asyncio\nfrom examples.bank import traffic\n"
        f"asyncio.run(traffic.run({base_url!r}, {seconds}, {concurrency}, seed=11, "
        "journey='bill_inquiry'))"
    )
    driver = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.DEVNULL)
    try:
        yield
        assert driver.poll() is None, f"traffic driver exited early ({driver.returncode})"
    finally:
        driver.kill()
        driver.wait(10)


def exposition_off_the_loop(app: Any, registry: CollectorRegistry) -> Any:
    """The app, with ``/metrics`` rendered in a worker thread rather than on the event loop.

    The example app renders its exposition (~280 kB) inline; at a 1 s scrape that stalls every
    request in flight for tens of milliseconds once a second, which a p95 sees. Same registry,
    same port and path — only where the rendering runs differs.
    """

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics":
            body = await asyncio.to_thread(generate_latest, registry)
            await Response(body, media_type=CONTENT_TYPE_LATEST)(scope, receive, send)
            return
        await app(scope, receive, send)

    return wrapped


def _value(prom_url: str, promql: str) -> float | None:
    result = promapi.query(prom_url, promql)
    return float(result[0]["value"][1]) if result else None


def _seconds(text: str) -> float:
    """Back from Prometheus' humanizeDuration (``502.2ms``, ``1.2s``)."""
    match = re.fullmatch(r"([0-9.]+)(ms|s)", text)
    assert match, text
    return float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)


def test_latency_fault_reaches_the_webhook_for_that_step_only(tmp_path: Path) -> None:
    began = time.monotonic()
    spec = parse_with_overrides(SPEC_PATH.read_text(), [OVERRIDE], str(SPEC_PATH))
    rules = tmp_path / "rules.yml"
    write_atomic(rules, render(build(spec.scaled(TIME_SCALE))))
    port = stack.free_port()
    registry = CollectorRegistry()
    app = create_app(spec, registry=registry, time_scale=TIME_SCALE, seed=3, spans="off")
    webhook = Webhook()
    am = stack.alertmanager(tmp_path / "am", webhook.url)
    prom = stack.prometheus(
        tmp_path / "prom", [f"127.0.0.1:{port}"], [rules], alertmanager_url=am.url, interval="1s"
    )
    try:
        am.start()
        prom.start()
        with (
            serve_app(exposition_off_the_loop(app, registry), port) as url,
            bill_inquiry_customers(url, seconds=85, concurrency=40),
        ):
            baseline_volume = (
                f'{names.REC_STEP_RATE_BASELINE}{{step="bill_detail"}} * 60 '
                f">= 20 and on (journey, step) "
                f"{names.rec_quantile(0.95, names.BASELINE)}"
            )
            deadline = time.monotonic() + 45
            while _value(prom.url, baseline_volume) is None:
                assert time.monotonic() < deadline, "no bill_detail baseline in Prometheus"
                time.sleep(0.5)
            time.sleep(15)  # let the baseline cover a warmed-up app, not its first seconds
            assert webhook.received() == [], [
                (a["labels"], a["annotations"]["summary"]) for a in webhook.received()
            ]
            httpx.post(
                f"{url}/admin/faults", json={"latency": {"bill_detail": 1.2}}
            ).raise_for_status()
            injected = datetime.now(timezone.utc)

            deadline = time.monotonic() + 40
            fired: list[dict[str, Any]] = []
            while not fired:
                assert time.monotonic() < deadline, f"no alert; webhook got {webhook.received()}"
                fired = [
                    a
                    for a in webhook.received()
                    if a["labels"]["alertname"] == names.ALERT_LATENCY
                    and a["labels"]["quantile"] == "0.95"
                ]
                time.sleep(0.25)
            firing_elsewhere = promapi.query(
                prom.url, 'ALERTS{alertstate="firing",step!="bill_detail"}'
            )
        received = webhook.received()
    finally:
        prom.stop()
        am.stop()
        webhook.close()

    assert firing_elsewhere == []
    assert {(a["labels"]["journey"], a["labels"]["step"]) for a in received} == {
        ("bill_inquiry", "bill_detail")
    }
    assert {a["labels"]["alertname"] for a in received} == {names.ALERT_LATENCY}
    alert = fired[0]
    assert alert["status"] == "firing"
    channel = alert["labels"]["channel"]  # judged per channel; the fault slows every one
    assert channel in ("app", "web", "phone", "branch")
    assert alert["labels"] == {
        "alertname": names.ALERT_LATENCY,
        "service": "bank_app",
        **BILL_DETAIL,
        "channel": channel,
        "severity": "ticket",
        "quantile": "0.95",
    }
    notes = alert["annotations"]
    baseline, current = _seconds(notes["baseline"]), _seconds(notes["current"])
    change = re.fullmatch(r"\+([0-9.]+)%", notes["change"])
    assert change, notes["change"]
    assert 0.15 < float(change.group(1)) / 100 < 0.5
    # the annotation values are 4-digit roundings of the recorded p95s and their ratio
    assert abs(current / baseline - 1 - float(change.group(1)) / 100) < 0.01
    # bill_detail p95 at ×0.5: 0.6 s·e^(1.645·0.3)·0.5 ≈ 0.49 s, plus scheduling overhead
    assert 0.4 < baseline < 0.7 and current > baseline * 1.1
    assert notes["summary"] == (
        f"bill_inquiry/bill_detail on {channel}: p95 latency {notes['change']} "
        f"({notes['baseline']} → {notes['current']})"
    )
    since = datetime.strptime(notes["since"], "%Y-%m-%d %H:%M:%S %z UTC")
    assert injected.replace(microsecond=0) <= since <= datetime.now(timezone.utc)
    # the generic rule's templates, rendered by Prometheus for this alert's step and channel
    assert notes["dashboard"] == (
        f"{DASHBOARDS}/d/cx-bill_inquiry-steps?var-step=bill_detail&var-channel={channel}"
    )
    assert notes["description"].startswith(
        f"The p95 latency of step bill_detail in journey bill_inquiry on channel {channel} over "
        "the last 20s is above its baseline (the 1m before it) by more than the +15% threshold, "
        "measured on "
    )
    assert time.monotonic() - began < 90
