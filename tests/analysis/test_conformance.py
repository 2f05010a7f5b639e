"""Conformance: every catalogue indicator of every step, from four sources, on one real run.

The bank app (uvicorn, time compressed 50x) writes its event log while a real Prometheus scrapes it
every second and evaluates the rules ``cxmetrics.rules`` generates for the example spec. Simulated
customers on several channels drive it for ~10 s with accuracy faults and errors switched on, and
abandon journeys as they do in the example traffic. Then, for every step:

- (a) the analyzer on the event log, (b) the analyzer on Prometheus (raw counter differences),
- (c) the recording rule's value, (d) the dashboard panel's query through the Prometheus API

must agree within ``TOLERANCE`` (ratios; ``100 x TOLERANCE`` for the 0-100 CX score). Every
series starts at 0 at the first scrape and all share scrape timestamps, so Prometheus'
extrapolation scales numerator and denominator alike: the ratios are equal up to float rounding.
The table (indicator x source) is printed (``pytest -s``); a failure names indicator, step and
the four values. Not covered here: two app instances and a restart (one process, one instance).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cxmetrics import config
from cxmetrics._binaries import PROMETHEUS, require_binary
from cxmetrics.analysis import promapi
from cxmetrics.analysis.indicators import Indicators, StepIndicators, compute
from cxmetrics.analysis.prometheus import from_prometheus
from cxmetrics.analysis.sources import from_jsonl
from cxmetrics.dashboards import build_dashboards
from cxmetrics.local import stack
from cxmetrics.rules import build, render
from cxmetrics.spec import names
from cxmetrics.spec.model import Spec
from examples.bank import traffic
from examples.bank.app import create_app
from tests.helpers.servers import serve_app

pytestmark = pytest.mark.slow
TIME_SCALE = 0.02
TOLERANCE = 1e-9
WINDOW = "10m"  # the rules' regression window; the whole run lies inside it
VARIABLES = {"$__rate_interval": WINDOW, "$__range": WINDOW, "$channel": ".*"}
# indicator → (recording rule, steps-dashboard panel title)
STEP_INDICATORS = {
    "timeliness": (names.REC_TIMELINESS, "Within target"),
    "apdex": (names.REC_APDEX, "Apdex"),
    "error_rate": (names.REC_ERRORS, "Error rate"),
    "good_ratio": (names.REC_GOOD, "Good steps"),
    "score": (None, "CX score"),
}


@dataclass
class Run:
    events: Indicators
    prometheus: Indicators
    rules: dict[tuple[str, str, str], float]  # (indicator, journey/step, subject) → value
    panels: dict[tuple[str, str, str], float]


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _wait(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _expr(expr: str, step: str = "") -> str:
    expr = expr.replace("$step", step)  # the step view's selected step
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


def _panel_values(spec: Spec, url: str, at: float) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = {}
    for board in build_dashboards(spec):
        journey = board["uid"].split("-")[1]
        if board["uid"].endswith("-home"):
            continue
        for panel in board["panels"]:
            targets = panel.get("targets", [])
            if board["uid"].endswith("-steps"):
                for step in spec.journey(journey).step_names:
                    for indicator, (_, title) in STEP_INDICATORS.items():
                        if panel["title"] == title:
                            expr = _expr(targets[0]["expr"], step)
                            for row in promapi.query(url, expr, time_s=at):
                                out[(indicator, f"{journey}/{step}", "")] = float(row["value"][1])
                    if panel["title"] == "Accuracy by check over time":
                        expr = _expr(targets[0]["expr"], step)
                        for row in promapi.query(url, expr, time_s=at):
                            key = ("accuracy", f"{journey}/{step}", row["metric"]["check"])
                            out[key] = float(row["value"][1])
            elif panel["title"] == "Conversion to the next step":
                for target in targets:
                    a, b = target["legendFormat"].split(" → ")
                    for row in promapi.query(url, _expr(target["expr"]), time_s=at):
                        out[("conversion", f"{journey}/{a}", b)] = float(row["value"][1])
    return out


def _rule_values(url: str, at: float) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = {}
    for indicator, (record, _) in STEP_INDICATORS.items():
        if record is None:
            continue
        for row in promapi.query(url, record, time_s=at):
            m = row["metric"]
            out[(indicator, f"{m['journey']}/{m['step']}", "")] = float(row["value"][1])
    for row in promapi.query(url, names.REC_ACCURACY, time_s=at):
        m = row["metric"]
        out[("accuracy", f"{m['journey']}/{m['step']}", m["check"])] = float(row["value"][1])
    for row in promapi.query(url, names.REC_CONVERSION, time_s=at):
        m = row["metric"]
        out[("conversion", f"{m['journey']}/{m['step']}", m["to_step"])] = float(row["value"][1])
    return out


@pytest.fixture(scope="module")
def run(example_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    require_binary(PROMETHEUS)  # missing: fails with the apt-get command
    workdir: Path = tmp_path_factory.mktemp("conformance")
    log_path = workdir / "events.jsonl"
    rules = workdir / "rules.yml"
    rules.write_text(render(build(example_spec)))
    registry = CollectorRegistry()
    app = create_app(
        example_spec, registry, time_scale=TIME_SCALE, seed=7, spans="off", event_log=str(log_path)
    )
    scaled = example_spec.scaled(TIME_SCALE)
    port = stack.free_port()
    begin = time.time()
    try:
        with serve_app(app, port) as url:
            _post(
                f"{url}/admin/faults",
                {"accuracy": {"total_matches_details": 0.1}, "errors": {"bill_total": 0.05}},
            )
            prometheus = stack.prometheus(workdir / "prometheus", [f"127.0.0.1:{port}"], [rules])
            with prometheus.start() as prom:
                _wait(lambda: promapi.query(prom.url, "cx_steps_total"), 20, "the first scrape")
                time.sleep(1.5)  # a second scrape at zero: no series starts mid-traffic
                asyncio.run(traffic.run(url, duration=10.0, concurrency=10, seed=11))
                total = sum(
                    s.value for f in registry.collect() for s in f.samples if s.name == names.STEPS
                )
                _wait(
                    lambda: (
                        [
                            float(r["value"][1])
                            for r in promapi.query(prom.url, f"sum({names.STEPS})")
                        ]
                        == [total]
                    ),
                    15,
                    "Prometheus to scrape the last steps",
                )
                time.sleep(2.5)  # the rules evaluated after the last scrape
                at = time.time()
                rule_values = _rule_values(prom.url, at)
                panel_values = _panel_values(example_spec, prom.url, at)
                timeline = from_prometheus(scaled, prom.url, begin - 2.0, at, 1.0)
    finally:
        config.shutdown()  # closes the app's event log
    yield Run(
        compute(scaled, from_jsonl(scaled, log_path).total()),
        compute(scaled, timeline.total()),
        rule_values,
        panel_values,
    )


def _analyzer(rows: Indicators, indicator: str, step: str, subject: str) -> float | None:
    journey, name = step.split("/")
    row: StepIndicators = rows.step(journey, name)
    if indicator == "accuracy":
        return row.checks[subject].rate if subject in row.checks else None
    if indicator == "conversion":
        return row.conversion if row.next_step == subject else None
    value = getattr(row, indicator)
    return None if value is None else float(value)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"


def test_every_indicator_agrees_across_event_log_prometheus_rules_and_panels(run: Run) -> None:
    keys = sorted(set(run.rules) | set(run.panels))
    assert len({k[1] for k in keys}) == 12  # every step of the example spec ran
    lines = [
        f"{'indicator':<11} {'step':<34} {'subject':<30} events     prometheus rule       panel"
    ]
    mismatches = []
    for indicator, step, subject in keys:
        values = [
            _analyzer(run.events, indicator, step, subject),
            _analyzer(run.prometheus, indicator, step, subject),
            run.rules.get((indicator, step, subject)),
            run.panels.get((indicator, step, subject)),
        ]
        lines.append(
            f"{indicator:<11} {step:<34} {subject:<30} "
            + " ".join(f"{_fmt(v):<10}" for v in values)
        )
        known = [v for v in values if v is not None]
        scale = 100.0 if indicator == "score" else 1.0
        expected_sources = 3 if indicator == "score" else 4  # no recording rule for the score
        if len(known) != expected_sources or max(known) - min(known) > TOLERANCE * scale:
            mismatches.append(f"{indicator} {step} {subject}: {values}")
    print("\n".join(lines))
    assert mismatches == []
