"""Every panel query of every generated dashboard runs against a real Prometheus.

The bank app runs under uvicorn (time compressed 50x), simulated customers drive it for a few
seconds with some accuracy failures and errors switched on, and a real Prometheus scrapes it every
second, evaluating the rules ``cxmetrics.rules`` generates for the same spec plus a probe alert
(``CxDashboardProbe``, always firing with journey/step labels) so the ``ALERTS`` panels have a
real series. Each query, with Grafana's variables substituted (``$__rate_interval`` -> 30s,
``$__range`` -> 1m, ``$channel`` -> All), must execute and return at least one series; the only
exceptions are the regression baselines (the same window a day earlier: no data in a test run),
the feedback panels (the example app asks for none) and accuracy on steps without checks. The step
view's queries run once per step of the journey (``$step``). The comparisons with a week (or the
regression baseline) earlier must answer NaN, shown as "no baseline yet". Were ``cxmetrics.rules``
absent, rule-backed queries would only have to execute; their names are checked against
``names.py`` in ``test_dashboards.py``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cxmetrics.analysis import catalogue, promapi
from cxmetrics.dashboards import build_dashboards
from cxmetrics.local import stack
from cxmetrics.spec import names
from cxmetrics.spec.model import Spec
from examples.bank import traffic
from examples.bank.app import create_app
from tests.helpers import grafana_variables
from tests.helpers.servers import serve_app

pytestmark = pytest.mark.slow  # every test here starts a server or a subprocess

TIME_SCALE = 0.02
PROBE_ALERT = "CxDashboardProbe"
RULES_AVAILABLE = importlib.util.find_spec("cxmetrics.rules") is not None


def substitute(expr: str, step: str = "", channel: str = ".*") -> str:
    """``expr`` as Grafana sends it for a 1m range (``$step``: the step view's selection)."""
    return grafana_variables.substitute(
        expr, window="1m", rate_interval="30s", step=step, channel=channel
    )


def all_queries(spec: Spec) -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) for every panel target and annotation."""
    out = []
    for board in build_dashboards(spec):
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                out.append((board["uid"], panel["title"], target["expr"]))
        for annotation in board["annotations"]["list"]:
            if "expr" in annotation:
                out.append((board["uid"], f"annotation {annotation['name']}", annotation["expr"]))
    return out


def _rule_files(spec: Spec, workdir: Path) -> list[Path]:
    """A probe alert that always fires with journey/step labels, so the ALERTS panels have a
    real series to show; plus the generated rules once ``cxmetrics.rules`` exists."""
    probe = {
        "groups": [
            {
                "name": "cx-dashboard-probe",
                "rules": [
                    {
                        "alert": PROBE_ALERT,
                        "expr": f"{names.STEP_TARGET} > 0",
                        "labels": {"severity": "ticket"},
                    }
                ],
            }
        ]
    }
    path = workdir / "probe.rules.yml"
    path.write_text(yaml.safe_dump(probe))
    if not RULES_AVAILABLE:
        return [path]
    from cxmetrics import rules

    generated = workdir / "cx.rules.yml"
    generated.write_text(rules.render(rules.build(spec)))
    return [path, generated]


def _post_json(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


@pytest.fixture(scope="module")
def prometheus_with_data(
    example_spec: Spec,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("prometheus")
    port = stack.free_port()
    app = create_app(example_spec, time_scale=TIME_SCALE, seed=11, spans="off")
    with serve_app(app, port) as url:
        _post_json(
            f"{url}/admin/faults",
            {
                "accuracy": {
                    "total_matches_details": 0.1,
                    "limits_applied": 0.1,
                    "receipt_matches_amount": 0.1,
                },
                "errors": {
                    "bill_total": 0.05,
                    "bill_detail": 0.05,
                    "confirm": 0.05,
                    "call_answered": 0.05,
                },
            },
        )
        prom = stack.prometheus(
            workdir,
            [f"127.0.0.1:{port}"],
            rule_files=_rule_files(example_spec.scaled(TIME_SCALE), workdir),
        ).start()
        try:
            # Counters are only seen to increase from Prometheus's first sample of them on:
            # traffic before the first scrape would be invisible to increase()/rate().
            _wait_for_first_scrape(prom.url)
            asyncio.run(traffic.run(url, duration=14.0, concurrency=12, seed=3))
            _wait_for_two_scrapes_of_everything(prom.url)
            yield prom.url
        finally:
            prom.stop()


def _wait_for_first_scrape(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if promapi.query(url, "up == 1"):
            return
        time.sleep(0.25)
    raise AssertionError("Prometheus did not scrape the app within 20 s")


def _wait_for_two_scrapes_of_everything(url: str) -> None:
    """Until every journey's last step has been scraped twice after traffic stopped, and the
    probe alert fires."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ready = promapi.query(url, f'count_over_time({names.STEPS}{{step="issue_resolved"}}[30s])')
        firing = promapi.query(url, f'ALERTS{{alertname="{PROBE_ALERT}",alertstate="firing"}}')
        if ready and min(float(r["value"][1]) for r in ready) >= 3 and firing:
            return
        time.sleep(0.5)
    raise AssertionError("Prometheus did not scrape the test traffic in time")


def _per_step(spec: Spec, uid: str, expr: str) -> list[str]:
    """The steps the query is run for: each step of the journey where it reads ``$step``."""
    if "$step" not in expr:
        return [""]
    return list(spec.journey(uid.removeprefix("cx-").removesuffix("-steps")).step_names)


def test_every_panel_query_returns_series(example_spec: Spec, prometheus_with_data: str) -> None:
    empty, rule_backed = [], []
    queries = all_queries(example_spec)
    for uid, title, expr in queries:
        for step in _per_step(example_spec, uid, expr):
            result = promapi.query(prometheus_with_data, substitute(expr, step))  # raises on error
            uses_rules = "cx:" in expr
            if uses_rules:
                rule_backed.append(expr)
            if result:
                continue
            if uses_rules and (not RULES_AVAILABLE or f"_{names.BASELINE}" in expr):
                continue  # executed without error; names checked in test_dashboards.py
            if uid.endswith("-followups"):
                continue  # the follow-up workers' metrics: test_followups_dashboard.py scrapes one
            if uid.endswith("-contact"):
                continue  # imported calls: test_contact_dashboard.py backfills hand-computed ones
            if names.FEEDBACK in expr:
                continue  # the example app asks for no feedback (the two-week test has some)
            if "Accuracy" in title or "accuracy" in title or "check" in title:
                journey = uid.split("-")[1]
                checked = [s for s in example_spec.journey(journey).steps if s.checks]
                if not [s for s in checked if s.name == step or not step]:
                    continue  # a step (journey) without checks: no accuracy series, by design
            empty.append(f"{uid} / {title} [{step}]: {expr}")
    assert empty == [], "panel queries without a series:\n" + "\n".join(empty)
    assert len(queries) > 200 and rule_backed  # the test really covered the dashboards


def test_a_fresh_install_says_no_baseline_yet_not_no_traffic(
    example_spec: Spec, prometheus_with_data: str
) -> None:
    """Measured on main: "p95 vs baseline" and "Conversion change vs baseline" had no series
    (shown as "no traffic") during the first day. Now every comparison with a period that has no
    data answers NaN where the current period has data, which the panels show as "no baseline
    yet"."""
    compared = 0
    for board in build_dashboards(example_spec):
        for panel in board["panels"]:
            mappings = panel.get("fieldConfig", {}).get("defaults", {}).get("mappings", [])
            if not any(m["type"] == "special" for m in mappings):
                continue
            expr = panel["targets"][0]["expr"]
            steps = _per_step(example_spec, board["uid"], expr)
            if f"_{names.BASELINE}" in expr:  # the regression baseline: a day ago
                steps = steps[:1]
            for step in steps:
                result = promapi.query(prometheus_with_data, substitute(expr, step))
                values = [r["value"][1] for r in result]
                assert values and set(values) == {"NaN"}, (board["uid"], panel["title"], step)
                compared += 1
    # home: 3 week-over-week panels; each overview (4): 3 and the conversion change; each step
    # view: 3 per step (12 steps) and the p95 against the regression baseline (first step only)
    assert compared == 3 + 4 * 4 + 3 * 12 + 4


def test_customers_affected_are_whole_numbers(
    example_spec: Spec, prometheus_with_data: str
) -> None:
    """Measured on main: "Failing checks" showed 29.65 (an extrapolated increase)."""
    board = next(b for b in build_dashboards(example_spec) if b["uid"] == "cx-bill_inquiry-steps")
    titles = ("Failing checks by check", "Customers with a bad step", "Failed steps")
    seen = []
    for panel in board["panels"]:
        if panel["title"] in titles:
            expr = substitute(panel["targets"][0]["expr"], "bill_detail")
            values = [float(r["value"][1]) for r in promapi.query(prometheus_with_data, expr)]
            assert values and all(v == int(v) for v in values), (panel["title"], values)
            assert panel["fieldConfig"]["defaults"]["decimals"] == 0
            seen.append(panel["title"])
    assert sorted(seen) == sorted(titles)


def test_channel_variable_filters_the_channel_panels(
    example_spec: Spec, prometheus_with_data: str
) -> None:
    board = next(b for b in build_dashboards(example_spec) if b["uid"] == "cx-bill_inquiry-steps")
    panel = next(p for p in board["panels"] if p["title"] == "Steps per second by channel")
    expr = panel["targets"][0]["expr"].replace("$step", "bill_detail")

    def busy_channels(channel: str) -> set[str]:
        result = promapi.query(prometheus_with_data, substitute(expr, channel=channel))
        return {r["metric"]["channel"] for r in result if float(r["value"][1]) > 0}

    assert busy_channels(".*") == {"app", "web"}  # "All": the channels the traffic used
    assert busy_channels("web") == {"web"}
    assert busy_channels("app|web") == {"app", "web"}  # a multi-value selection
    assert busy_channels("branch") == set()


def test_cx_score_panel_computes_the_documented_formula(
    example_spec: Spec, prometheus_with_data: str
) -> None:
    board = next(b for b in build_dashboards(example_spec) if b["uid"] == "cx-bill_inquiry-steps")
    panel = next(p for p in board["panels"] if p["title"] == "CX score")
    at = time.time()

    def value(expr: str) -> float:
        result = promapi.query(prometheus_with_data, substitute(expr, "bill_detail"), time_s=at)
        assert len(result) == 1, expr
        return float(result[0]["value"][1])

    def total(metric: str, **labels: str) -> float:
        matchers = ",".join(
            f'{k}="{v}"'
            for k, v in {"journey": "bill_inquiry", "step": "bill_detail", **labels}.items()
        )
        return value(f"sum(increase({metric}{{{matchers}}}[1m]))")

    steps = total(names.STEPS)
    apdex = (
        total(names.STEPS, outcome="ok", timeliness="satisfied")
        + total(names.STEPS, outcome="ok", timeliness="tolerating") / 2
    ) / steps
    accuracy = total(names.ACCURACY_CHECKS, result="pass") / total(names.ACCURACY_CHECKS)
    success = total(names.STEPS, outcome="ok") / steps
    assert 0 < accuracy < 1 and 0 < success < 1 and 0 < apdex <= 1  # the faults are visible
    journey = example_spec.journey("bill_inquiry")
    step = journey.step("bill_detail")
    burning = 1 - total(names.GOOD_STEPS) / steps > catalogue.page_share(
        example_spec.objectives(journey, step).good_ratio
    ) or any(
        total(names.ACCURACY_CHECKS, check=c.name, result="fail")
        / total(names.ACCURACY_CHECKS, check=c.name)
        > catalogue.page_share(example_spec.check_objective(journey, step, c))
        for c in step.checks
    )
    w = example_spec.defaults.score
    expected = catalogue.cx_score(apdex, accuracy, 1 - success, w, burning)
    assert value(panel["targets"][0]["expr"]) == pytest.approx(expected, rel=1e-9)
