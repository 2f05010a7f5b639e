"""Two services sharing a journey and step name (``checkout/pay``) with different targets, scraped
by one real Prometheus that loads both services' generated rules: each service's recording rules
and alerts see only its own series. Without a ``service`` matcher both rule files recorded the
same series from pooled buckets of two layouts, and an alert could not say which service."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cxmetrics.analysis import promapi
from cxmetrics.local import stack
from cxmetrics.rules import build, render
from cxmetrics.spec import names
from cxmetrics.spec.load import load_spec
from tests.helpers.service_process import running, spec_file

pytestmark = pytest.mark.slow  # starts Prometheus and two app processes

POLICY = {"window": "10s", "baseline": "trailing 30s", "for": "3s", "min_volume": 20}


def _query(url: str, promql: str) -> list[dict[str, Any]]:
    return promapi.query(url, promql)


def test_two_services_sharing_a_step_name_never_mix(tmp_path: Path) -> None:
    alpha = spec_file(tmp_path, "alpha", "100ms", POLICY)
    beta = spec_file(tmp_path, "beta", "2s", POLICY)
    rule_files = []
    for spec in (alpha, beta):
        path = tmp_path / f"{spec.stem}-rules.yml"
        path.write_text(render(build(load_spec(spec))))
        rule_files.append(path)
    a_port, b_port = stack.free_port(), stack.free_port()
    targets = [f"127.0.0.1:{a_port}", f"127.0.0.1:{b_port}"]
    # alpha slows from 20 ms to 70 ms after 35 s; beta stays at 20 ms
    with (
        running(alpha, a_port, 20, 70, 35.0),
        running(beta, b_port, 20, 20, 1e9),
        stack.prometheus(tmp_path / "prom", targets, rule_files).start() as prom,
    ):
        alerts = f'ALERTS{{alertname="{names.ALERT_LATENCY}",alertstate="firing"}}'
        deadline = time.monotonic() + 120
        firing: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not firing:
            time.sleep(2)
            firing = _query(prom.url, alerts)
        p95 = _query(prom.url, names.rec_quantile(0.95, names.RECENT))
        rates = _query(prom.url, names.REC_STEP_RATE)
        firing = _query(prom.url, alerts)
    assert firing, "alpha's latency regression never fired"
    assert {a["metric"]["service"] for a in firing} == {"alpha"}
    assert {(a["metric"]["journey"], a["metric"]["step"]) for a in firing} == {("checkout", "pay")}
    # one series per service from each rule file, never a pooled one
    assert sorted(s["metric"]["service"] for s in p95) == ["alpha", "beta"]
    assert sorted(s["metric"]["service"] for s in rates) == ["alpha", "beta"]
    by_service = {s["metric"]["service"]: float(s["value"][1]) for s in p95}
    assert 0.06 < by_service["alpha"] < 0.1  # 70 ms steps, read in alpha's own (100 ms) layout
    # 20 ms steps all in the first bucket of beta's own (2 s) layout: le = T/16 = 0.125 s
    assert by_service["beta"] <= 0.125
