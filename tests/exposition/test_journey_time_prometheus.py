"""The end-to-end journey time from Prometheus equals the event log's: one process serves
``/metrics`` to a real Prometheus (scraping every second) and writes an event log; three
journeys of the bank's ``bill_inquiry`` run their steps in two "requests" each, the context
passed as a signed ``baggage`` header between them. The mean journey time read through
``catalogue.journey_time_promql`` (the histogram's ``_sum`` over its ``_count``) equals
``analysis.journey_time`` over the event log within 5 ms (the context carries whole ms), and the
histogram counted three journeys."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import cxmetrics
from cxmetrics.analysis import catalogue, promapi
from cxmetrics.analysis.journey_time import journey_times
from cxmetrics.exposition.eventlog import read_log
from cxmetrics.local import stack
from cxmetrics.spec import names
from cxmetrics.spec.load import load_spec
from tests.helpers.paths import EXAMPLE_SPEC
from tests.helpers.servers import wait_for

pytestmark = pytest.mark.slow  # starts Prometheus

MATCH = {names.JOURNEY: "bill_inquiry"}


def _journey(pause: float) -> None:
    """Request 1 runs login; request 2, ``pause`` later, resumes from the header and runs the
    rest."""
    j = cxmetrics.journey("bill_inquiry")
    with j, j.step("login"):
        time.sleep(0.05)
    headers: dict[str, str] = {}
    j.inject(headers)
    time.sleep(pause)
    again = cxmetrics.journey("bill_inquiry", headers=headers)
    assert again.journey_id == j.journey_id
    with again:
        with again.step("bill_total"):
            pass
        with again.step("bill_detail"):
            time.sleep(0.05)


def test_the_prometheus_mean_journey_time_equals_the_event_logs(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    events = tmp_path / "events.jsonl"
    cxmetrics.configure(EXAMPLE_SPEC, registry=registry, spans="off", event_log=events, strict=True)
    httpd, thread = cxmetrics.start_http_server(0, registry=registry)
    server = stack.prometheus(tmp_path / "prom", [f"127.0.0.1:{httpd.server_port}"])
    try:
        with server.start(60):
            url = server.url
            count = f'sum({names.JOURNEY_DURATION}_count{{journey="bill_inquiry"}})'

            def scraped(n: float) -> bool:
                rows = promapi.query(url, count)
                return bool(rows) and float(rows[0]["value"][1]) == n

            wait_for(lambda: scraped(0.0), 60, "a first scrape at zero")
            for pause in (0.2, 0.4, 0.6):
                _journey(pause)
            wait_for(lambda: scraped(3.0), 60, "three journey times scraped")
            cxmetrics.shutdown()  # flushes the event log
            expr = catalogue.journey_time_promql(None, "5m", MATCH)
            [row] = promapi.query(url, expr)
            from_prometheus = float(row["value"][1])
    finally:
        cxmetrics.shutdown()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    timed = journey_times(load_spec(EXAMPLE_SPEC), read_log(events).events)["bill_inquiry"]
    assert timed.completed == 3
    assert timed.mean is not None and 0.4 < timed.mean < 2.0
    assert from_prometheus == pytest.approx(timed.mean, abs=0.005)
