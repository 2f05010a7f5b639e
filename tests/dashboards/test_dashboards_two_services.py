"""Two services sharing a journey and step name (``checkout/pay``), scraped by one real
Prometheus: each service's dashboards show only its own steps.

alpha answers in 20 ms against a 1 s target (every step on time, satisfied, good); beta in 60 ms
against a 10 ms target (every step frustrated: past its 40 ms tolerating threshold). The step
view's panels of each, with ``$service`` set to the dashboard's own service, must read exactly
that service's values. Without the service matcher both dashboards pooled the two services'
steps and read a mix (and alpha's p95 read beta's buckets of another layout).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cxmetrics.analysis import promapi
from cxmetrics.dashboards import build_dashboards
from cxmetrics.local import stack
from cxmetrics.spec import names
from cxmetrics.spec.load import load_spec
from tests.helpers.grafana_variables import substitute
from tests.helpers.service_process import running, spec_file

pytestmark = pytest.mark.slow  # starts Prometheus and two app processes

# panel title → (alpha's value, beta's value); beta's CX score: Apdex 0 and success 1, no checks
# (weights 0.5 and 0.2 rescaled), not capped by its burning good-step objective since it is
# already below the cap of 50
EXPECTED = {
    "Within target": (1.0, 0.0),
    "Apdex": (1.0, 0.0),
    "Error rate": (0.0, 0.0),
    "Good steps": (1.0, 0.0),
    "CX score": (100.0, 100 * 0.2 / 0.7),
}
P95 = "{{step}} p95"


def _panels(spec: Path) -> dict[str, str]:
    """The step view's panel queries: title → expression (the p95 target by its legend)."""
    board = next(b for b in build_dashboards(load_spec(spec)) if b["uid"] == "cx-checkout-steps")
    out = {}
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            if panel["title"] in EXPECTED:
                out[panel["title"]] = target["expr"]
            elif target.get("legendFormat") == P95:
                out[P95] = target["expr"]
    return out


def _read(url: str, expr: str, service: str) -> list[float]:
    query = substitute(expr, window="1m", rate_interval="1m", step="pay", service=service)
    return [float(row["value"][1]) for row in promapi.query(url, query)]


def test_each_service_s_dashboard_shows_only_its_own_steps(tmp_path: Path) -> None:
    alpha, beta = spec_file(tmp_path, "alpha", "1s"), spec_file(tmp_path, "beta", "10ms")
    panels = {"alpha": _panels(alpha), "beta": _panels(beta)}
    assert sorted(panels["alpha"]) == sorted([*EXPECTED, P95])
    a_port, b_port = stack.free_port(), stack.free_port()
    targets = [f"127.0.0.1:{a_port}", f"127.0.0.1:{b_port}"]
    with (
        running(alpha, a_port, 20, 20, 1e9),
        running(beta, b_port, 60, 60, 1e9),
        stack.prometheus(tmp_path / "prom", targets).start() as prom,
    ):
        # 20 steps of each, and three scrapes for increase() to work on
        scrapes = f"min by (service) (count_over_time({names.STEPS}[1m]))"
        steps = f"sum by (service) ({names.STEPS}) >= 20 and on (service) {scrapes} >= 3"
        deadline = time.monotonic() + 60
        while len(promapi.query(prom.url, steps)) < 2:
            assert time.monotonic() < deadline, "Prometheus did not scrape both services"
            time.sleep(0.5)
        read = {
            (service, title): _read(prom.url, expr, service)
            for service, queries in panels.items()
            for title, expr in queries.items()
        }
    for title, (a, b) in EXPECTED.items():
        assert read[("alpha", title)] == [pytest.approx(a)], title
        assert read[("beta", title)] == [pytest.approx(b)], title
    # each p95 from its own bucket layout: alpha's first bucket is T/16 = 62.5 ms; beta's 60 ms
    # steps lie between its tolerating threshold 40 ms and the coarse bound 8T = 80 ms
    [alpha_p95], [beta_p95] = read[("alpha", P95)], read[("beta", P95)]
    assert 0 < alpha_p95 <= 0.0625
    assert 0.04 < beta_p95 <= 0.08
