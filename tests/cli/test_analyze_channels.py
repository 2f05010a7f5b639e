"""``cxmetrics analyze --json`` breaks conversion and feedback down by channel: a hand-computed
log of ``bill_inquiry`` on two channels.

- app: 4 instances start and log in, 3 go on to bill_total (conversion 3/4); NPS responses on
  bill_total 10, 9, 3 → (2 promoters − 1 detractor) / 3 = 33.3 points;
- web: 2 instances log in, 1 goes on (1/2); one NPS response 6 → −100 points.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cxmetrics.cli import cli
from cxmetrics.instrument.events import FeedbackRecord, JourneyStarted, StepRecord, to_dict
from tests.helpers.paths import EXAMPLE_SPEC

T0 = 1_700_000_000.0


def _log(path: Path) -> Path:
    events: list[object] = []
    plan = [("app", True), ("app", True), ("app", True), ("app", False), ("web", True)]
    plan += [("web", False)]
    scores = {"app": [10, 9, 3], "web": [6]}
    for k, (channel, goes_on) in enumerate(plan):
        jid = f"{k:032x}"
        t = T0 + 10 * k
        events.append(JourneyStarted(t, "bill_inquiry", channel, jid))
        events.append(
            StepRecord(
                t + 1, "bill_inquiry", "login", channel, jid, None, 0.2, "ok", "satisfied", True
            )
        )
        if goes_on:
            events.append(
                StepRecord(
                    t + 2,
                    "bill_inquiry",
                    "bill_total",
                    channel,
                    jid,
                    "login",
                    0.3,
                    "ok",
                    "satisfied",
                    True,
                )
            )
            if scores[channel]:
                score = scores[channel].pop(0)
                events.append(
                    FeedbackRecord(t + 3, "bill_inquiry", "bill_total", jid, "nps", score, channel)
                )
    with open(path, "w") as out:
        for event in events:
            out.write(json.dumps(to_dict(event)) + "\n")  # type: ignore[arg-type]
    return path


def test_analyze_json_gives_conversion_and_nps_per_channel(tmp_path: Path) -> None:
    log = _log(tmp_path / "events.jsonl")
    result = CliRunner().invoke(
        cli, ["analyze", str(EXAMPLE_SPEC), "--events", str(log), "--json", "--step", "10s"]
    )
    assert result.exit_code in (0, 4), result.output
    data = json.loads(result.stdout)
    channels = data["by_channel"]
    assert sorted(channels) == ["app", "web"]
    app, web = channels["app"], channels["web"]
    assert app["steps"]["bill_inquiry/login"]["conversion"] == pytest.approx(3 / 4)
    assert web["steps"]["bill_inquiry/login"]["conversion"] == pytest.approx(1 / 2)
    assert app["steps"]["bill_inquiry/bill_total"]["nps"] == pytest.approx(100 / 3)
    assert app["steps"]["bill_inquiry/bill_total"]["nps_responses"] == 3
    assert web["steps"]["bill_inquiry/bill_total"]["nps"] == pytest.approx(-100.0)
    assert app["journeys"]["bill_inquiry"]["started"] == 4
    assert app["journeys"]["bill_inquiry"]["nps"] == pytest.approx(100 / 3)
    assert web["journeys"]["bill_inquiry"]["started"] == 2
    assert web["journeys"]["bill_inquiry"]["nps"] == pytest.approx(-100.0)
