"""``cxmetrics analyze`` through its real entry point, on generated bank event logs.

The logs are written with ``EventLog`` from a simulation of the example bank (its latency model
and its customers' abandonment): 8,000 journeys over about 67 minutes, once stable and once with
bill_detail 25% slower from minute 33 on.
"""

from __future__ import annotations

import json
import random
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from cxmetrics.emitters.eventlog import EventLog
from cxmetrics.events import CheckResult, Event, FeedbackRecord, JourneyStarted, StepRecord
from cxmetrics.spec import Spec
from examples.bank.app import LATENCY
from examples.bank.traffic import CHANNELS, JOURNEYS

from .conftest import EXAMPLE_SPEC, ROOT

CLI = ROOT / ".venv" / "bin" / "cxmetrics"
T0 = 1_700_000_000.0
SHIFT_AT = T0 + 2000.0
STEPS = {
    "bill_inquiry": ("login", "bill_total", "bill_detail"),
    "transfer": ("payee", "amount", "confirm", "receipt"),
    "contact_centre": ("call_answered", "issue_resolved"),
}
CHECKS = {
    "bill_detail": ("total_matches_details", "detail_consistent_with_total"),
    "confirm": ("limits_applied",),
    "receipt": ("receipt_matches_amount",),
    "issue_resolved": ("first_contact_resolution",),
}
PASS_RATE = {"first_contact_resolution": 0.75}


def bank_events(spec: Spec, journeys: int, seed: int, slower: dict[str, float]) -> list[Event]:
    """A journey every 0.5 s; steps as the bank app times them; ``slower`` from SHIFT_AT on."""
    rng = random.Random(seed)
    names = list(JOURNEYS)
    weights = [JOURNEYS[n][0] for n in names]
    events: list[Event] = []
    for i in range(journeys):
        name = rng.choices(names, weights=weights)[0]
        channel, jid, now = rng.choice(CHANNELS[name]), f"{i:032x}", T0 + 0.5 * i
        events.append(JourneyStarted(now, name, channel, jid))
        previous = None
        for (_, keep_going), step_name in zip(JOURNEYS[name][1], STEPS[name], strict=True):
            median, sigma = LATENCY[step_name]
            duration = rng.lognormvariate(0.0, sigma) * median
            if now >= SHIFT_AT:
                duration *= slower.get(step_name, 1.0)
            now += duration
            step = spec.journey(name).step(step_name)
            timeliness = (
                "satisfied"
                if duration <= step.target
                else "tolerating"
                if duration <= spec.tolerating(step)
                else "frustrated"
            )
            checks = tuple(
                CheckResult(c, rng.random() < PASS_RATE.get(c, 1.0))
                for c in CHECKS.get(step_name, ())
            )
            good = timeliness == "satisfied" and all(c.passed for c in checks)
            events.append(
                StepRecord(
                    now,
                    name,
                    step_name,
                    channel,
                    jid,
                    previous,
                    duration,
                    "ok",
                    timeliness,
                    good,
                    checks,
                )
            )
            previous, now = step_name, now + rng.uniform(0.05, 0.5)
            if rng.random() > keep_going:
                break
        if rng.random() < 0.2:
            events.append(FeedbackRecord(now, name, previous, jid, "nps", rng.randrange(0, 11)))
            events.append(FeedbackRecord(now, name, previous, jid, "csat", rng.randrange(1, 6)))
    return sorted(events, key=lambda e: e.time)


def write_log(path: Path, events: list[Event]) -> Path:
    log = EventLog(path)
    for event in events:
        log.emit(event)
    log.close()
    return path


@pytest.fixture(scope="module")
def logs(example_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("logs")
    return {
        "shifted": write_log(
            directory / "shifted.jsonl", bank_events(example_spec, 8000, 1, {"bill_detail": 1.25})
        ),
        "stable": write_log(directory / "stable.jsonl", bank_events(example_spec, 8000, 2, {})),
    }


def analyze(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "analyze", *map(str, args)], capture_output=True, text=True, timeout=60
    )


def test_latency_shift_on_bill_detail_is_found_and_named(logs: dict[str, Path]) -> None:
    result = analyze(EXAMPLE_SPEC, "--events", logs["shifted"], "--json")
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    found = report["regressions"]
    assert {f"{r['journey']}/{r['step']}" for r in found} == {"bill_inquiry/bill_detail"}
    first = found[0]
    assert (first["indicator"], first["statistic"]) == ("latency", "p95")
    assert 0.15 <= first["change"] <= 0.35  # +25% injected
    assert first["current"] > first["baseline"] > 0.8  # p95 of the bank's bill_detail ≈ 0.98 s
    start = datetime.fromisoformat(first["start"]).timestamp()
    assert abs(start - SHIFT_AT) <= 120  # a change point estimate: within ~100 bill_detail steps
    assert first["confidence"] >= 0.99
    assert first["affected"] > 100
    assert "shift is detectable" in first["sensitivity"]
    detail = next(s for s in report["steps"] if s["step"] == "bill_detail")
    assert detail["exact_quantiles"] is True
    assert detail["quantiles"]["p95"] > 1.0  # the whole log's p95 moved above 1 s
    verdicts = {(v["step"], v["indicator"], v["subject"]): v["verdict"] for v in report["verdicts"]}
    assert verdicts[("bill_detail", "latency", None)] == "regressed"
    assert verdicts[("bill_total", "latency", None)] == "stable"
    assert verdicts[("bill_total", "conversion", "bill_detail")] == "stable"


def test_stable_log_exits_0(logs: dict[str, Path]) -> None:
    result = analyze(EXAMPLE_SPEC, "--events", logs["stable"], "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["regressions"] == []
    assert {s["journey"] for s in report["steps"]} == {"bill_inquiry", "transfer", "contact_centre"}
    login = next(s for s in report["steps"] if s["step"] == "login")
    assert login["next_step"] == "bill_total"
    assert 0.90 <= login["conversion"] <= 0.94  # the simulated customers continue with p = 0.92


def test_table_names_the_step_the_size_and_since_when(logs: dict[str, Path]) -> None:
    result = analyze(EXAMPLE_SPEC, "--events", logs["shifted"])
    assert result.returncode == 3, result.stderr
    out = result.stdout
    assert out.index("Steps") < out.index("Journeys") < out.index("Regressions")
    rows = [line for line in out.splitlines() if "latency p95" in line]
    assert rows and all(
        row.startswith("│ bill_inquiry/bill_detail │ latency p95 │") for row in rows
    )
    since = datetime.fromtimestamp(SHIFT_AT).astimezone().strftime("%H:%M")
    assert since in rows[0]  # "since 22:46:4x", local time


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--events", "missing.jsonl"), "cannot read event log missing.jsonl"),
        ((), "give exactly one data source"),
        (("--events", "x.jsonl", "--prometheus", "http://x"), "give exactly one data source"),
        (("--events", "bad.jsonl"), "bad.jsonl:1: not a cxmetrics event"),
        (("--events", "bad.jsonl", "--step", "soon"), "'soon' is not a duration"),
        (("--events", "bad.jsonl", "--bogus"), "No such option '--bogus'"),
    ],
)
def test_bad_input_exits_1_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"kind": "nothing"}\n')
    result = analyze(EXAMPLE_SPEC, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_invalid_spec_exits_1_naming_the_line(tmp_path: Path) -> None:
    spec = tmp_path / "cxmetrics.yaml"
    spec.write_text("service: shop\njourneys:\n  - name: shop\n    steps: []\n")
    result = analyze(spec, "--events", "x.jsonl")
    assert result.returncode == 1
    assert f"{spec}:4: journeys[shop].steps: needs at least one entry" in result.stderr
