"""The parts of ``cxmetrics watch`` that need no server: the state file, the alert it sends, the
range it reads and the verdict metrics."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from cxmetrics.rules import plan
from cxmetrics.rules.alerts import latency_rule
from cxmetrics.spec.model import Spec
from cxmetrics.watch import alertmanager, state
from cxmetrics.watch.alertmanager import Open
from cxmetrics.watch.exposition import Verdicts
from cxmetrics.watch.watcher import Settings, Watcher

REGRESSION = Open(
    "bill_inquiry", "bill_detail", 0.95, 1_800_000_000.0, 1_800_000_060.0,
    1.0, 1.2, 0.2, 0.15, 0.26, 1234, "web",
)  # fmt: skip


def test_the_state_file_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.json"
    saved = state.WatchState(
        1_799_999_000.0,
        {"k": state.SentAlert({"alertname": "A", "step": "s"}, 1_800_000_000.0, {"summary": "x"})},
    )
    state.save(path, saved)
    assert state.load(path) == (saved, None)
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_an_unreadable_state_file_is_a_first_start_said_so(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert state.load(path) == (state.WatchState(), None)
    path.write_text("{not json")
    loaded, why = state.load(path)
    assert loaded == state.WatchState()
    assert why is not None and why.startswith(f"{path} is not a watch state file")
    path.write_text(json.dumps({"version": 99}))
    assert state.load(path)[1] == f"{path} is not a watch state file (not a version 1 watch state)"


def test_the_alert_carries_the_rules_labels_and_annotations(example_spec: Spec) -> None:
    # judged per channel, as the rule is: the alert names the channel (it said "all" before)
    [p] = [p for p in plan(example_spec).steps if p.step.name == "bill_detail"]
    rule = latency_rule(p, 0.95, "web", None)
    labels = alertmanager.labels(p, REGRESSION)
    assert labels == {"alertname": "CxStepLatencyRegression", **rule.labels}
    assert labels == {
        "alertname": "CxStepLatencyRegression",
        "service": "bank_app",
        "journey": "bill_inquiry",
        "step": "bill_detail",
        "channel": "web",
        "severity": "ticket",
        "quantile": "0.95",
    }
    notes = alertmanager.annotation_texts(p, REGRESSION, None, REGRESSION.start)
    assert set(notes) == set(rule.annotations)
    assert notes["summary"] == "bill_inquiry/bill_detail on web: p95 latency +20% (1s → 1.2s)"
    assert notes["since"] == "2027-01-15 08:00:00 +0000 UTC"
    assert notes["change"] == "+20%"
    sent = alertmanager.payload(labels, notes, REGRESSION.start, REGRESSION.start + 90.5)
    assert sent["startsAt"] == "2027-01-15T08:00:00.000Z"
    assert sent["endsAt"] == "2027-01-15T08:01:30.500Z"


def _watcher(spec: Spec, **settings: float) -> Watcher:
    options = {"step": 60.0, "history": 3600.0, "delay": 30.0, **settings}
    return Watcher(spec, {}, Settings("http://127.0.0.1:1", **options))  # type: ignore[arg-type]


def test_the_range_slides_and_stays_anchored_while_a_regression_is_open(
    example_spec: Spec,
) -> None:
    watcher = _watcher(example_spec)
    now = 1_800_000_100.0  # 30 s delay: the last whole minute ends at ...060
    assert watcher.window(now) == (1_799_996_460.0, 1_800_000_060.0)
    watcher.state.anchor = 1_799_990_000.0
    assert watcher.window(now) == (1_799_989_980.0, 1_800_000_060.0)
    # never more windows than one range query returns: the oldest part is dropped
    watcher.state.anchor = 1_000_000_000.0
    start, end = watcher.window(now)
    assert (end - start) / 60.0 == 10_999.0


def test_the_verdict_metrics_say_zero_for_every_watched_step_and_size_the_open_one() -> None:
    verdicts = Verdicts()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(verdicts)
    before = generate_latest(registry).decode()
    assert "cx_regression_active{" not in before  # nothing judged yet: no verdict, no zero
    watched = [
        ("bill_inquiry", "bill_detail", "web", "latency", "", "0.95"),
        ("bill_inquiry", "bill_detail", "app", "latency", "", "0.95"),
        ("bill_inquiry", "bill_total", "web", "latency", "", "0.95"),
    ]
    verdicts.update(watched, [REGRESSION])
    lines = [
        line
        for line in generate_latest(registry).decode().splitlines()
        if line.startswith("cx_regression")
    ]
    common = 'indicator="latency",journey="bill_inquiry",quantile="0.95"'
    key = f'channel="web",check="",{common},step="bill_detail"'
    app = f'channel="app",check="",{common},step="bill_detail"'
    other = f'channel="web",check="",{common},step="bill_total"'
    assert lines == [
        f"cx_regression_active{{{key}}} 1.0",
        f"cx_regression_active{{{app}}} 0.0",
        f"cx_regression_active{{{other}}} 0.0",
        f"cx_regression_change{{{key}}} 0.2",
        f"cx_regression_change_low{{{key}}} 0.15",
        f"cx_regression_change_high{{{key}}} 0.26",
        f"cx_regression_since_timestamp_seconds{{{key}}} 1.8e+09",
    ]


def test_the_alert_names_the_quantile_the_regression_was_sized_on(example_spec: Spec) -> None:
    from cxmetrics.watch.watcher import _quantile

    assert (_quantile("p95", 0.9), _quantile("p50", 0.9), _quantile("p99.9", 0.9)) == (
        0.95,
        0.5,
        0.999,
    )
    watcher = _watcher(example_spec)
    watched = watcher.watched()
    assert ("bill_inquiry", "bill_detail", "app", "latency", "", "0.95") in watched
    assert ("bill_inquiry", "bill_detail", "app", "latency", "", "0.5") in watched
    channels = len(example_spec.channels)
    steps = list(example_spec.steps())
    # two quantiles, the error rate and each declared check, per step and channel
    per_channel = sum(3 + len(s.checks) for _, s in steps)
    assert len(watched) == channels * per_channel


def test_each_step_is_judged_on_the_channels_its_journey_declares(example_spec: Spec) -> None:
    plans = {(p.journey.name, p.step.name): p for p in plan(example_spec).steps}
    watcher = Watcher(example_spec, plans, Settings("http://127.0.0.1:1"))
    assert watcher.channels() == [
        c for c in example_spec.channels if any(c in p.channels for p in plans.values())
    ]
    watched = watcher.watched()
    for (journey, step), p in plans.items():
        judged = {c for j, s, c, *_ in watched if (j, s) == (journey, step)}
        assert judged == set(p.channels)
    assert Settings("http://127.0.0.1:1").history == 172_800.0  # two days: same-phase baselines


def test_an_improvement_is_exposed_apart_and_is_never_a_regression() -> None:
    verdicts = Verdicts()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(verdicts)
    faster = dataclasses.replace(
        REGRESSION, baseline=1.0, current=0.8, change=-0.2, change_low=-0.25, change_high=-0.15
    )
    watched = [
        ("bill_inquiry", "bill_detail", "web", "latency", "", "0.95"),
        ("bill_inquiry", "bill_detail", "app", "latency", "", "0.95"),
    ]
    verdicts.update(watched, [], [faster])
    lines = [
        line
        for line in generate_latest(registry).decode().splitlines()
        if line.startswith(("cx_regression", "cx_improvement"))
    ]
    common = 'indicator="latency",journey="bill_inquiry",quantile="0.95",step="bill_detail"'
    web, app = f'channel="web",check="",{common}', f'channel="app",check="",{common}'
    assert lines == [
        f"cx_regression_active{{{web}}} 0.0",
        f"cx_regression_active{{{app}}} 0.0",
        f"cx_improvement_active{{{web}}} 1.0",
        f"cx_improvement_active{{{app}}} 0.0",
        f"cx_improvement_change{{{web}}} -0.2",
    ]
