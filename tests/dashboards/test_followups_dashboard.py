"""The follow-up view: one per journey with key steps, Grafana-schema valid, every query built
from the catalogue (counters) or the workers' gauges aggregated with ``max``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cxmetrics.analysis import promapi
from cxmetrics.dashboards import build_dashboards
from cxmetrics.dashboards.followups import gauge
from cxmetrics.local import stack
from cxmetrics.spec import names
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.model import Spec
from tests.dashboards.test_dashboards import schema_errors
from tests.helpers.followup_app import spec_text
from tests.helpers.followup_procs import (
    Receiver,
    app_result,
    start_app,
    start_worker,
    stop,
)
from tests.helpers.grafana_variables import substitute
from tests.helpers.redis_server import RedisServer, free_port
from tests.helpers.servers import wait_for

KEY = ("loan_application", "upload_documents")

SEL = 'service="$service",journey="loan_application",step="upload_documents"'


def _board(spec: Spec) -> dict[str, Any]:
    [board] = [b for b in build_dashboards(spec) if b["uid"].endswith("-followups")]
    return board


def test_the_follow_up_view_of_the_example_bank(example_spec: Spec) -> None:
    board = _board(example_spec)
    assert board["uid"] == "cx-loan_application-followups"
    assert board["title"] == "loan_application: follow-ups"
    assert schema_errors(board) == []
    panels = [(p["title"], [t["expr"] for t in p.get("targets", [])]) for p in board["panels"]]
    gauge = "max by (journey, step) (NAME{" + SEL + "})"
    counted = "sum by (journey, step) (increase(NAME{" + SEL + "}[$__rate_interval]))"
    assert panels == [
        ("upload_documents: followed up after 2h, late after 15m due", []),
        ("Due now", [gauge.replace("NAME", "cx_followups_due")]),
        ("Oldest due has waited", [gauge.replace("NAME", "cx_followups_oldest_due_seconds")]),
        ("Dead letters", [gauge.replace("NAME", "cx_followups_dead_letters")]),
        ("Waiting at the step", [gauge.replace("NAME", "cx_followups_tracked")]),
        (
            "Sent, retried, dead-lettered",
            [
                counted.replace("NAME", "cx_followups_sent_total"),
                counted.replace("NAME", "cx_followups_retried_total"),
                counted.replace("NAME", "cx_followups_dead_lettered_total"),
            ],
        ),
        (
            "Lag: the oldest due follow-up's wait",
            [gauge.replace("NAME", "cx_followups_oldest_due_seconds")],
        ),
    ]
    lag = next(p for p in board["panels"] if p["title"] == "Oldest due has waited")
    steps = lag["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["value"], s["color"]) for s in steps] == [
        (0.0, "green"),
        (450.0, "orange"),
        (900.0, "red"),
    ]
    [annotation] = [a for a in board["annotations"]["list"] if "expr" in a]
    assert annotation["expr"] == (
        'ALERTS{alertname="CxFollowUpLag",alertstate="firing",service="$service",'
        'journey="loan_application"}'
    )


def test_journeys_without_key_steps_get_no_follow_up_view() -> None:
    spec = parse_spec(
        "service: s\njourneys:\n  - name: j\n    steps:\n      - {name: a, target: 1s}\n"
    )
    assert [b["uid"] for b in build_dashboards(spec)] == [
        "cx-s-home",
        "cx-j-overview",
        "cx-j-steps",
    ]


@pytest.mark.slow
def test_every_followup_panel_query_returns_series_from_a_real_worker(tmp_path: Path) -> None:
    """A real redis-server, two app processes registering 14 stalls, a worker (its metrics on a
    port) delivering them to the receiver, whose first answer is a 500 (one retry), and a real
    Prometheus scraping the worker: each panel query of the follow-up view returns its series."""
    receiver = Receiver(tmp_path, fail_first=1)
    text = spec_text(webhook=receiver.url, after="1s")
    (tmp_path / "spec.yaml").write_text(text)
    server = RedisServer(tmp_path / "redis").start()
    metrics = free_port()
    worker = start_worker(
        tmp_path,
        tmp_path / "spec.yaml",
        server.url,
        "worker",
        "--metrics-port",
        str(metrics),
        "--backoff",
        "0.2",
    )
    prom = stack.prometheus(tmp_path / "prom", [f"127.0.0.1:{metrics}"]).start()
    try:
        results = [app_result(start_app(server.url, k * 100, 100, 7)) for k in range(2)]
        assert sum(r["stalled"] for r in results) == 14
        wait_for(lambda: receiver.stats()["accepted"] >= 14, 60, "14 deliveries")
        sent = f'sum({names.FOLLOWUPS_SENT}{{journey="loan_application"}})'
        wait_for(
            lambda: [float(r["value"][1]) for r in promapi.query(prom.url, sent)] == [14.0],
            30,
            "Prometheus to scrape the worker's 14 deliveries",
        )
        time.sleep(2.5)  # two more scrapes: increase() over the window needs samples after
        spec = parse_spec(text)
        board = _board(spec)

        def run(expr: str) -> list[dict[str, Any]]:
            query = substitute(expr, window="1m", rate_interval="30s", service=spec.service)
            return promapi.query(prom.url, query)

        empty = []
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                if not run(target["expr"]):
                    empty.append(f"{panel['title']}: {target['expr']}")
        # Nothing was given up in this run: no dead-lettered series exists yet (the query ran).
        assert empty == [
            "Sent, retried, dead-lettered: sum by (journey, step) (increase("
            'cx_followups_dead_lettered_total{service="$service",journey="loan_application",'
            'step="upload_documents"}[$__rate_interval]))'
        ]
        due = run(gauge(names.FOLLOWUPS_DUE, *KEY))
        assert [float(r["value"][1]) for r in due] == [0.0]
        retried = f"sum({names.FOLLOWUPS_RETRIED})"
        assert float(promapi.query(prom.url, retried)[0]["value"][1]) >= 1
    finally:
        prom.stop()
        stop(worker)
        receiver.stop()
        server.stop()
