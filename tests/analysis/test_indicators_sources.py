"""Events into the analyzer's one form: the in-memory recorder and the JSONL log agree exactly."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import cxmetrics
from cxmetrics import CxError, config
from cxmetrics.analysis.indicators import compute
from cxmetrics.analysis.sources import from_events, from_jsonl, from_recorder
from cxmetrics.exposition.eventlog import EventLog
from cxmetrics.exposition.memory import Recorder
from cxmetrics.spec.model import Spec

JOURNEYS = 300


def _drive(spec: Spec, path: Path) -> tuple[Recorder, dict[str, int]]:
    """Real instrumentation writing to a recorder and an event log at once."""
    recorder, log = Recorder(), EventLog(path)
    config.configure(
        spec,
        registry=CollectorRegistry(),
        sinks=[recorder, log],
        spans="off",
        strict=True,
    )
    rng = random.Random(11)
    seen = {"detail": 0, "detail_wrong": 0, "total": 0, "payee_errors": 0, "feedback": 0}
    for _ in range(JOURNEYS):
        with cxmetrics.journey("bill_inquiry", channel=rng.choice(["app", "web"])) as j:
            with j.step("login"):
                pass
            if rng.random() < 0.8:
                seen["total"] += 1
                with j.step("bill_total") as s:
                    s.fingerprint(Decimal("10.00"))
                if rng.random() < 0.9:
                    seen["detail"] += 1
                    wrong = rng.random() < 0.1
                    seen["detail_wrong"] += wrong
                    shown = Decimal("10.01") if wrong else Decimal("10.00")
                    with j.step("bill_detail") as s:
                        s.reconcile(
                            "total_matches_details", expected=Decimal("10.00"), actual=shown
                        )
                        s.consistent("detail_consistent_with_total", shown)
            if rng.random() < 0.3:
                seen["feedback"] += 1
                j.feedback(nps=rng.randrange(0, 11), csat=rng.randrange(1, 6))
    for _ in range(20):
        transfer = cxmetrics.journey("transfer")
        with pytest.raises(RuntimeError), transfer.step("payee"):
            seen["payee_errors"] += 1
            raise RuntimeError("payee service down")
    config.shutdown()  # flushes the sinks it was given; closing them is ours
    log.close()
    return recorder, seen


def test_jsonl_gives_the_same_windows_and_indicators_as_the_recorder(
    tmp_path: Path, example_spec: Spec
) -> None:
    path = tmp_path / "events.jsonl"
    recorder, seen = _drive(example_spec, path)
    from_memory = from_recorder(example_spec, recorder, step=0.05)
    from_log = from_jsonl(example_spec, path, step=0.05)
    assert from_log.edges == from_memory.edges
    assert from_log.windows == from_memory.windows  # every count, sample and time
    indicators = compute(example_spec, from_log.total())
    assert indicators == compute(example_spec, from_memory.total())

    login = indicators.step("bill_inquiry", "login")
    assert (login.volume, login.conversion) == (JOURNEYS, seen["total"] / JOURNEYS)
    detail = indicators.step("bill_inquiry", "bill_detail")
    assert detail.volume == seen["detail"]
    checks = detail.checks
    assert (checks["total_matches_details"].passed, checks["total_matches_details"].failed) == (
        seen["detail"] - seen["detail_wrong"],
        seen["detail_wrong"],
    )
    assert checks["detail_consistent_with_total"].failed == seen["detail_wrong"]
    assert detail.good_ratio == (seen["detail"] - seen["detail_wrong"]) / seen["detail"]
    journey = indicators.journey("bill_inquiry")
    assert (journey.started, journey.completed) == (JOURNEYS, seen["detail"])
    assert journey.feedback.nps_responses == journey.feedback.csat_responses == seen["feedback"]
    payee = indicators.step("transfer", "payee")
    assert (payee.volume, payee.error_rate, payee.apdex) == (seen["payee_errors"], 1.0, 0.0)


def test_events_bin_by_end_time_into_half_open_windows(example_spec: Spec) -> None:
    from cxmetrics.instrument.events import StepRecord

    def login(t: float) -> StepRecord:
        return StepRecord(
            t, "bill_inquiry", "login", "app", "x", None, 0.1, "ok", "satisfied", True
        )

    timeline = from_events(example_spec, [login(60.0), login(60.5), login(120.0), login(120.1)])
    assert timeline.edges == (60.0, 120.0, 180.0)
    volumes = [w.steps[("bill_inquiry", "login")].volume for w in timeline.windows]
    assert volumes == [3, 1]  # (60, 120] holds 120.0; the first event sits on the left edge


def test_undeclared_names_are_counted_not_analysed(example_spec: Spec) -> None:
    from cxmetrics.instrument.events import StepRecord

    records = [
        StepRecord(1.0, "bill_inquiry", "login", "app", "a", None, 0.1, "ok", "satisfied", True),
        StepRecord(2.0, "bill_inquiry", "other", "app", "a", "login", 0.1, "ok", "satisfied", True),
        StepRecord(3.0, "other", "other", "app", "b", None, 0.1, "ok", "satisfied", True),
    ]
    timeline = from_events(example_spec, records)
    assert timeline.ignored == 2
    login = timeline.total().steps[("bill_inquiry", "login")]
    assert (login.volume, dict(login.transitions)) == (1, {"other": 1})


def test_bad_event_logs_are_clear_errors(tmp_path: Path, example_spec: Spec) -> None:
    with pytest.raises(CxError, match=r"cannot read event log .*missing\.jsonl"):
        from_jsonl(example_spec, tmp_path / "missing.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(CxError, match="holds no events"):
        from_jsonl(example_spec, empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(
            {
                "kind": "journey",
                "time": 1.0,
                "journey": "bill_inquiry",
                "channel": "app",
                "journey_id": "a",
            }
        )
        + "\n{not json\n"
    )
    with pytest.raises(CxError, match=r"bad\.jsonl: none of its 2 records is valid") as caught:
        from_jsonl(example_spec, bad)
    assert "bad.jsonl:1: time 1.0 is not between 2000-01-01" in str(caught.value)
    assert "bad.jsonl:2: not JSON" in str(caught.value)
