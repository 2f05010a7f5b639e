"""Exemplars reach the step view's latency panel through a real Prometheus.

The bank app (spans always on, so every step has a sampled trace) serves /metrics as OpenMetrics
when the scraper asks for it; a real Prometheus with ``--enable-feature=exemplar-storage`` scrapes
it; the latency panel's own p95 query, with Grafana's variables substituted, is sent to
``/api/v1/query_exemplars`` as Grafana does for a panel with exemplars on, and must come back with
exemplars carrying a 32-hex-digit ``trace_id`` on the selected step's buckets.

Measured on main: the app served the text format only, which cannot carry exemplars (0 exemplars
in a run).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from cxmetrics.analysis import promapi
from cxmetrics.dashboards import build_dashboards
from cxmetrics.local import stack
from cxmetrics.spec.model import Spec
from examples.bank import traffic
from examples.bank.app import create_app
from tests.helpers.grafana_variables import substitute
from tests.helpers.servers import serve_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def sampled_traces() -> None:
    """An OpenTelemetry SDK as the global provider, as an app exporting traces would have: the
    app's steps then run in sampled spans whose trace ids become exemplars."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())


TIME_SCALE = 0.02
OPENMETRICS = "application/openmetrics-text"


def exemplars(base: str, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}"})
    with urllib.request.urlopen(f"{base}/api/v1/query_exemplars?{params}", timeout=10) as answer:
        data = json.loads(answer.read())
    assert data["status"] == "success", data
    result: list[dict[str, Any]] = data["data"]
    return result


def test_the_app_serves_openmetrics_with_trace_ids_when_asked(example_spec: Spec) -> None:
    app = create_app(example_spec, time_scale=TIME_SCALE, seed=3, spans="always")
    with serve_app(app, stack.free_port()) as url:
        asyncio.run(traffic.run(url, duration=1.5, concurrency=4, seed=1))
        request = urllib.request.Request(f"{url}/metrics", headers={"accept": OPENMETRICS})
        with urllib.request.urlopen(request, timeout=10) as answer:
            kind = answer.headers["content-type"]
            body = answer.read().decode()
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:
            plain_kind = answer.headers["content-type"]
            plain = answer.read().decode()
    assert kind.startswith(OPENMETRICS) and body.endswith("# EOF\n")
    assert re.search(
        r'cx_step_duration_seconds_bucket\{.*\} \d+\.0 # \{trace_id="[0-9a-f]{32}"\}', body
    )
    assert plain_kind.startswith("text/plain") and "# {" not in plain


def test_an_exemplar_reaches_the_latency_panel_query(
    example_spec: Spec, tmp_path_factory: pytest.TempPathFactory
) -> None:
    board = next(b for b in build_dashboards(example_spec) if b["uid"] == "cx-bill_inquiry-steps")
    panel = next(p for p in board["panels"] if p["title"] == "Latency of the step: p50, p95, p99")
    target = next(t for t in panel["targets"] if t["legendFormat"] == "{{step}} p95")
    assert target["exemplar"] is True
    expr = substitute(target["expr"], window="30s", step="bill_detail")
    app = create_app(example_spec, time_scale=TIME_SCALE, seed=3, spans="always")
    port = stack.free_port()
    with serve_app(app, port) as url:
        prom = stack.prometheus(tmp_path_factory.mktemp("prometheus"), [f"127.0.0.1:{port}"])
        with prom.start(60):
            deadline = time.monotonic() + 20
            while not promapi.query(prom.url, "up == 1"):  # counters seen from zero on
                assert time.monotonic() < deadline, "Prometheus did not scrape the app"
                time.sleep(0.25)
            start = time.time()
            asyncio.run(traffic.run(url, duration=4.0, concurrency=6, seed=2))
            time.sleep(2.5)  # two more scrapes
            deadline = time.monotonic() + 20
            found: list[dict[str, Any]] = []
            while time.monotonic() < deadline and not found:
                found = exemplars(prom.url, expr, start - 5, time.time() + 5)
                time.sleep(0.5)
            assert promapi.query(prom.url, expr.replace("30s", "1m")), "the panel has data"
    assert found, "no exemplar for the latency panel's query"
    labels = {tuple(sorted(s["seriesLabels"].items())) for s in found}
    assert all(dict(s)["step"] == "bill_detail" for s in labels)
    traces = [e["labels"]["trace_id"] for s in found for e in s["exemplars"]]
    assert traces and all(re.fullmatch(r"[0-9a-f]{32}", t) for t in traces)
