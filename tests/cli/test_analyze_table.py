"""The analyze table for people: names whole and numbers uncut at 80 and 120 columns, numbers
written by the one formatter (``cxmetrics.report.text``)."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from cxmetrics.instrument.events import CheckResult, Event, JourneyStarted, StepRecord
from cxmetrics.report import text
from tests.helpers.bank_log import write_log
from tests.helpers.paths import ROOT

CLI = ROOT / ".venv" / "bin" / "cxmetrics"
SPEC = ROOT / "tests" / "data" / "card_activation.yaml"
NAMES = ["card_activation/enter_card", "card_activation/verify_otp", "card_activation/activated"]
# verify_otp takes 999.7 ms: its p95 is just under 1 s (once printed "1e+03ms")
STEPS = [("enter_card", 0.3, ()), ("verify_otp", 0.9997, ("otp_matches",)),
         ("activated", 0.1, ("limit_matches_product",))]  # fmt: skip


def card_events(n: int, seed: int) -> list[Event]:
    rng, t0, events = random.Random(seed), 1_700_000_000.0, []
    for i in range(n):
        jid, now = f"{i:032x}", t0 + 2.0 * i
        events.append(JourneyStarted(now, "card_activation", "app", jid))
        previous = None
        for step, median, checks in STEPS:
            spread = 0.0 if step == "verify_otp" else 0.05
            duration = median * rng.lognormvariate(0.0, spread)
            now += duration
            results = tuple(CheckResult(c, True) for c in checks)
            ok = duration <= {"enter_card": 0.5, "verify_otp": 1.0, "activated": 0.3}[step]
            timeliness = "satisfied" if ok else "tolerating"
            record = (now, "card_activation", step, "app", jid, previous, duration, "ok")
            events.append(StepRecord(*record, timeliness, ok, results))  # type: ignore[arg-type]
            previous = step
    return sorted(events, key=lambda e: e.time)


@pytest.fixture(scope="module")
def card_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_log(tmp_path_factory.mktemp("cards") / "cards.jsonl", card_events(600, seed=3))


@pytest.mark.slow
@pytest.mark.parametrize("columns", [80, 120])
def test_analyze_table_keeps_names_whole_and_numbers_uncut(card_log: Path, columns: int) -> None:
    result = subprocess.run(
        [str(CLI), "analyze", str(SPEC), "--events", str(card_log)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": str(columns)},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert "…" not in result.stdout
    for name in NAMES:
        assert any(f"│ {name} " in line for line in lines), name
    assert "e+" not in result.stdout  # no 1e+03ms
    assert "600" in result.stdout  # the volume, whole
    # what latency was compared with, as --json's "baselines" says (20 minutes of samples)
    [said] = [line for line in lines if line.startswith("Latency judged on ")]
    assert said.startswith("Latency judged on raw samples: trailing baselines"), said


def test_durations_just_under_a_unit_round_up_to_it() -> None:
    assert [text.duration(s) for s in (0.9996, 0.9994, 59.97, 0.0421)] == [
        "1 s",
        "999 ms",
        "1.0 min",
        "42.1 ms",
    ]


def test_confidence_never_claims_certainty() -> None:
    assert [text.confidence(c) for c in (0.99999, 0.9995, 0.9994, 0.95)] == [
        ">99.9%",
        ">99.9%",
        "99.9%",
        "95.0%",
    ]


def test_changes_of_rates_are_percentage_points_and_latency_relative() -> None:
    assert text.size("accuracy", 1.0, 0.939, 0.061) == "−6.1 pp"
    assert text.size("conversion", 0.92, 0.9, 0.0217) == "−2.0 pp"
    assert text.size("latency", 0.8, 1.0, 0.25) == "+25%"
