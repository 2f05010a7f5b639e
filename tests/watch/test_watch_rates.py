"""``cxmetrics watch`` on the rates, from per-window counters as the Prometheus source returns
them (no server): an accuracy check's failure rate and a step's error rate are judged per channel,
exposed with their ``indicator`` (and ``check``) and alerted as ``CxStepAccuracyRegression`` /
``CxStepErrorRegression`` once open for the policy's ``for``; a restart on the state file keeps
them, with their start, and nothing else is judged regressed."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from cxmetrics.analysis.counts import StepCounts, Window
from cxmetrics.analysis.sources import Timeline, grid, step_layouts
from cxmetrics.rules import plan
from cxmetrics.rules.templates import format_value
from cxmetrics.spec import names
from cxmetrics.spec.model import Spec
from cxmetrics.watch import alertmanager
from cxmetrics.watch.alertmanager import Open
from cxmetrics.watch.watcher import Settings, Watcher

STEP = 60.0
FAULT_AT = 1_800_000_000.0  # a window edge
#: channel → ((step, check or "errors") → failure share from FAULT_AT on); 0.1% before it
FAULTS = {
    "web": {("bill_detail", "total_matches_details"): 0.10, ("confirm", "errors"): 0.5},
    "app": {("confirm", "errors"): 0.05},
}
PER_WINDOW = 200  # steps of each declared step, per channel and window ...
#: ... except here: 4 a window, so the fault's 10 minutes hold 40 steps, fewer than the policy's
#: min_volume (100): however bad, no verdict
SCARCE = {("web", "confirm"): 4}
BASE = 0.001


def _recorded(spec: Spec, url: str, start: float, end: float, step: float, match: str) -> Timeline:
    """Every declared step's counters per window of one channel (the read's ``channel`` matcher),
    drawn from a generator seeded with the channel and the window's start: the same window reads
    the same counts in every read, as Prometheus' raw counters do."""
    channel = match.split(f'{names.CHANNEL}="')[1].split('"')[0]
    edges = grid(start, end, step)
    layouts = step_layouts(spec)
    faults = FAULTS.get(channel, {})
    windows = []
    for k in range(len(edges) - 1):
        rng = np.random.default_rng([spec.channels.index(channel), int(edges[k])])
        faulty = edges[k] >= FAULT_AT
        steps = {}
        for journey, s in spec.steps():
            volume = SCARCE.get((channel, s.name), PER_WINDOW)
            bounds = layouts[(journey.name, s.name)]
            buckets = [0] * (len(bounds) + 1)
            for i, n in enumerate(rng.multinomial(volume, [0.5, 0.4, 0.1])):
                buckets[i] = int(n)
            share = faults.get((s.name, "errors"), BASE) if faulty else BASE
            errors = int(rng.binomial(volume, share))
            checks = {}
            for check in s.checks:
                share = faults.get((s.name, check.name), BASE) if faulty else BASE
                failed = int(rng.binomial(volume, share))
                checks[check.name] = (volume - failed, failed)
            steps[(journey.name, s.name)] = StepCounts(
                bounds,
                tuple(buckets),
                (volume - errors, 0, 0, errors, 0, 0),
                volume - errors,
                checks,
            )
        windows.append(Window(edges[k], edges[k + 1], steps, {}))
    return Timeline(edges, tuple(windows), "recorded counters")


def _watcher(spec: Spec, state: Path) -> Watcher:
    plans = {(p.journey.name, p.step.name): p for p in plan(spec).steps}
    settings = Settings(
        "http://127.0.0.1:1", step=STEP, interval=STEP, history=1500.0, delay=0.0,
        state_path=state, dashboard_url="https://grafana.example",
    )  # fmt: skip
    return Watcher(spec, plans, settings, source=_recorded)


def _active(watcher: Watcher) -> list[str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(watcher.verdicts)
    return [
        line
        for line in generate_latest(registry).decode().splitlines()
        if line.startswith(names.REGRESSION_ACTIVE + "{") and line.endswith(" 1.0")
    ]


ACCURACY = (
    'cx_regression_active{channel="web",check="total_matches_details",indicator="accuracy",'
    'journey="bill_inquiry",quantile="",step="bill_detail"} 1.0'
)
ERRORS = (
    'cx_regression_active{channel="app",check="",indicator="errors",journey="transfer",'
    'quantile="",step="confirm"} 1.0'
)


def test_rate_regressions_are_judged_per_channel_exposed_and_alerted_after_for(
    example_spec: Spec, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state.json"
    watcher = _watcher(example_spec, state)
    # before the fault: every verdict judged, none open
    assert watcher.tick(FAULT_AT)
    assert _active(watcher) == []
    assert watcher.state.alerts == {}
    # the detector is sure at the end of the fault's first window: open for the policy's 5m
    # (``for``) one window later
    assert watcher.tick(FAULT_AT + 60.0 + 300.0 - STEP)
    assert _active(watcher) == []
    assert watcher.state.alerts == {}
    assert watcher.tick(FAULT_AT + 60.0 + 300.0)
    assert _active(watcher) == [ACCURACY, ERRORS]
    sent = {a.labels[names.ALERTNAME]: a for a in watcher.state.alerts.values()}
    assert set(sent) == {"CxStepAccuracyRegression", "CxStepErrorRegression"}
    accuracy, errors = sent["CxStepAccuracyRegression"], sent["CxStepErrorRegression"]
    assert accuracy.labels == {
        "alertname": "CxStepAccuracyRegression",
        "service": "bank_app",
        "journey": "bill_inquiry",
        "step": "bill_detail",
        "channel": "web",
        "check": "total_matches_details",
        "severity": "ticket",
    }
    assert errors.labels == {
        "alertname": "CxStepErrorRegression",
        "service": "bank_app",
        "journey": "transfer",
        "step": "confirm",
        "channel": "app",
        "severity": "ticket",
    }
    # the change point is the fault's window, within a window
    # the change point is the fault's first window; the sizes are the recorded counts'
    assert (accuracy.starts_at, errors.starts_at) == (FAULT_AT, FAULT_AT)
    assert accuracy.annotations["summary"] == (
        "bill_inquiry/bill_detail on web: check total_matches_details fails 9.333% (was"
        " 0.02941%), pass rate -9.307% [-11%, -7.693%] since 2027-01-15 08:00:00 +0000 UTC"
    )
    assert errors.annotations["summary"] == (
        "transfer/confirm on app: error rate 4.25% (was 0.08824%), success rate -4.165%"
        " [-5.369%, -3.055%] since 2027-01-15 08:00:00 +0000 UTC"
    )
    for alert, share in ((accuracy, 0.10), (errors, 0.05)):
        current = float(alert.annotations["current"].removesuffix("%")) / 100
        assert abs(current - share) < share / 3, alert.annotations
        assert alert.annotations["since"] == format_value("timestamp", alert.starts_at)
    assert accuracy.annotations["dashboard"] == (
        "https://grafana.example/d/cx-bill_inquiry-steps?var-step=bill_detail&var-channel=web"
    )
    # a restart on the state file: the same two alerts, with their start; nothing new
    before = dict(watcher.state.alerts)
    with caplog.at_level(logging.INFO, logger="cxmetrics.watch"):
        restarted = _watcher(example_spec, state)
    assert "resuming with 2 alert(s) firing" in caplog.text
    assert restarted.tick(FAULT_AT + 420.0)
    assert _active(restarted) == [ACCURACY, ERRORS]
    assert {k: a.starts_at for k, a in restarted.state.alerts.items()} == {
        k: a.starts_at for k, a in before.items()
    }


def test_the_rate_alerts_annotations(example_spec: Spec) -> None:
    [p] = [p for p in plan(example_spec).steps if p.step.name == "bill_detail"]
    found = Open(
        "bill_inquiry", "bill_detail", None, 1_800_000_000.0, 1_800_000_060.0,
        0.999, 0.9, 0.0991, 0.08, 0.12, 4321, "web", "accuracy", "total_matches_details",
    )  # fmt: skip
    assert found.key == (
        "bill_inquiry", "bill_detail", "web", "accuracy", "total_matches_details", "",
    )  # fmt: skip
    notes = alertmanager.annotation_texts(p, found, "https://g.example/", found.start)
    assert notes == {
        "summary": "bill_inquiry/bill_detail on web: check total_matches_details fails 10% (was"
        " 0.1%), pass rate -9.91% [-12%, -8%] since 2027-01-15 08:00:00 +0000 UTC",
        "description": "The failure share of accuracy check total_matches_details of step"
        " bill_detail in journey bill_inquiry on channel web rose from 0.1% to 10% since"
        " 2027-01-15 08:00:00 +0000 UTC: its pass rate fell by 9.91% (95% interval 8% to 12%),"
        " over 4321 web checks since then.",
        "baseline": "0.1%",
        "current": "10%",
        "change": "-9.91%",
        "since": "2027-01-15 08:00:00 +0000 UTC",
        "runbook_url": "docs/runbook.md#cxstepaccuracyregression",
        "dashboard": "https://g.example/d/cx-bill_inquiry-steps?var-step=bill_detail"
        "&var-channel=web",
    }
    errors = Open(
        "bill_inquiry", "bill_detail", None, 1_800_000_000.0, 1_800_000_060.0,
        0.99, 0.95, 0.0404, 0.03, 0.05, 1000, "app", "errors",
    )  # fmt: skip
    notes = alertmanager.annotation_texts(p, errors, None, errors.start)
    assert notes["summary"] == (
        "bill_inquiry/bill_detail on app: error rate 5% (was 1%), success rate -4.04%"
        " [-5%, -3%] since 2027-01-15 08:00:00 +0000 UTC"
    )
    assert notes["runbook_url"] == "docs/runbook.md#cxsteperrorregression"
    assert "dashboard" not in notes
    assert alertmanager.labels(p, errors) == {
        "alertname": "CxStepErrorRegression",
        "service": "bank_app",
        "journey": "bill_inquiry",
        "step": "bill_detail",
        "channel": "app",
        "severity": "ticket",
    }
