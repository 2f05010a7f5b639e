"""Same-phase baselines for raw samples: the analyzer reading an event log compares each step's
samples with the same time of day of its earlier days once they span two days (and its first day
holds ``SEASON_MIN_SAMPLES``), so a daily latency cycle is not taken for regressions and a +20%
change on top of one is found and sized as on a flat day; before that, the trailing baseline, and
``baselines`` says so and why."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from cxmetrics.analysis.analyzer import (
    LATENCY,
    Analysis,
    analyze,
    samples_baselines,
    samples_season,
)
from cxmetrics.analysis.sources import from_jsonl
from cxmetrics.instrument.events import Event, JourneyStarted, StepRecord
from cxmetrics.spec.model import Spec
from tests.helpers.bank_log import write_log

DAY = 86_400.0
T0 = 1_709_510_400.0  # 2024-03-04T00:00:00Z
#: bill_inquiry's steps: median (s) and lognormal sigma, as the example bank serves them
STEPS = (("login", 0.30, 0.35), ("bill_total", 0.40, 0.35), ("bill_detail", 0.60, 0.30))
CHANGE_AT = T0 + 2.5 * DAY  # the middle of the third day

SAME_PHASE = (
    "raw samples: same-phase baselines (each sample against the same time of day of up to 4"
    " earlier days); a step's first day is its baseline, not judged"
)


def _load(hours: float) -> float:
    """The daily cycle, -1 at 03:00 UTC to +1 at 15:00."""
    return math.sin(2.0 * math.pi * (hours / 24.0 - 0.375))


def _events(
    seed: int,
    days: float,
    slower: str | None = None,
    first_day: dict[str, int] | None = None,
    swing: float = 0.18,
) -> list[Event]:
    """bill_inquiry journeys over ``days`` from T0: one every 10 s at the afternoon peak, a third
    of that at night (arrivals follow the cycle), and every step's median latency swinging
    +-``swing`` with the same load; from CHANGE_AT on, ``slower`` takes 20% longer.
    ``first_day``: steps with only that many samples in their first day (a step barely used
    then)."""
    rng = random.Random(seed)
    events: list[Event] = []
    kept = dict.fromkeys(first_day or {}, 0)
    for i in range(int(days * DAY / 10.0)):
        now = T0 + 10.0 * i + rng.uniform(0.0, 10.0)
        load = _load((now - T0) / 3600.0)
        if rng.random() > (2.0 + load) / 3.0:
            continue
        jid, previous = f"{i:032x}", None
        events.append(JourneyStarted(now, "bill_inquiry", "app", jid))
        for step, median, sigma in STEPS:
            duration = rng.lognormvariate(0.0, sigma) * median * (1.0 + swing * load)
            if step == slower and now >= CHANGE_AT:
                duration *= 1.2
            now += duration
            if step in kept and now < T0 + DAY:
                kept[step] += 1
                if kept[step] > (first_day or {})[step]:
                    continue  # and not recorded
            record = (now, "bill_inquiry", step, "app", jid, previous, duration)
            events.append(StepRecord(*record, "ok", "satisfied", True))
            previous, now = step, now + 0.1
    return sorted(events, key=lambda e: e.time)


def _analyze(spec: Spec, path: Path, events: list[Event]) -> Analysis:
    return analyze(spec, from_jsonl(spec, write_log(path, events)))


def _latency(analysis: Analysis) -> list[tuple[str, float, float, float]]:
    """(step, change, start - CHANGE_AT, detected - CHANGE_AT) of every latency regression."""
    return [
        (
            f.step,
            round(f.regression.change, 3),
            round(f.start_time - CHANGE_AT),
            round(f.detected_time - CHANGE_AT),
        )
        for f in analysis.findings
        if f.indicator == LATENCY
    ]


def test_a_daily_cycle_in_an_event_log_raises_no_latency_regression(
    example_spec: Spec, tmp_path: Path
) -> None:
    # Against the trailing baseline (before): 9 regressions of +26..+33%, each step's every
    # afternoon peak from the first day on (the cycle is the baseline's own wander there).
    analysis = _analyze(example_spec, tmp_path / "cycle.jsonl", _events(seed=7, days=3.0))
    assert _latency(analysis) == []
    assert analysis.transient == 0
    assert analysis.baselines == SAME_PHASE
    assert analysis.to_json()["baselines"] == SAME_PHASE
    judged = {
        v.step: v.verdict
        for v in analysis.verdicts
        if v.indicator == LATENCY and v.journey == "bill_inquiry"
    }
    assert judged == dict.fromkeys(("login", "bill_total", "bill_detail"), "stable")


def test_a_twenty_percent_change_on_a_daily_cycle_is_found_on_its_step_only(
    example_spec: Spec, tmp_path: Path
) -> None:
    events = _events(seed=7, days=3.0, slower="bill_total")
    analysis = _analyze(example_spec, tmp_path / "change.jsonl", events)
    [(step, change, start, detected)] = _latency(analysis)
    assert step == "bill_total"
    assert abs(start) <= 900.0  # the change point within 15 minutes of the true start
    assert 0.0 <= detected <= 3600.0  # found within the hour
    assert 0.14 <= change <= 0.26  # +20% within +-30%
    assert (change, start, detected) == (0.222, -8, 535)
    assert analysis.baselines == SAME_PHASE


def test_one_day_of_samples_is_judged_against_the_trailing_baseline_and_says_why(
    example_spec: Spec, tmp_path: Path
) -> None:
    analysis = _analyze(example_spec, tmp_path / "day.jsonl", _events(seed=7, days=1.0))
    assert analysis.to_json()["baselines"] == (
        "raw samples: trailing baselines (same-phase baselines need 2 days of a step's samples,"
        " 200 of them in its first day; the longest spans 24 h)"
    )


def test_a_step_with_too_few_samples_in_its_first_day_keeps_the_trailing_baseline(
    example_spec: Spec, tmp_path: Path
) -> None:
    events = _events(seed=7, days=3.0, first_day={"bill_detail": 150})
    analysis = _analyze(example_spec, tmp_path / "sparse.jsonl", events)
    assert analysis.baselines == (
        f"{SAME_PHASE}; trailing baselines for the steps with less (same-phase baselines need 2"
        " days of a step's samples, 200 of them in its first day; bill_inquiry/bill_detail has"
        " 150 samples in its first day)"
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_the_change_is_found_on_other_seeds_too(
    example_spec: Spec, tmp_path: Path, seed: int
) -> None:
    events = _events(seed=seed, days=3.0, slower="bill_total")
    [(step, change, start, detected)] = _latency(
        _analyze(example_spec, tmp_path / "change.jsonl", events)
    )
    assert step == "bill_total"
    assert abs(start) <= 900.0 and 0.0 <= detected <= 3600.0 and 0.14 <= change <= 0.26


def test_baselines_name_each_step_left_on_the_trailing_baseline_and_why() -> None:
    need = "same-phase baselines need 2 days of a step's samples, 200 of them in its first day"
    two_days = [0.0] * 200 + [2 * DAY]
    assert samples_baselines({}, 3) == SAME_PHASE
    assert samples_baselines({}, 0) == "raw samples: none to judge (no step record in range)"
    assert samples_baselines({"j/a": [0.0, 100.0], "j/b": [0.0, 2 * DAY]}, 2) == (
        f"raw samples: trailing baselines ({need}; j/a spans 1.7 min, j/b has 1 sample in its"
        " first day)"
    )
    assert samples_baselines({"j/a": [0.0, 7_200.0]}, 2) == (
        f"{SAME_PHASE}; trailing baselines for the steps with less ({need}; j/a spans 2 h)"
    )
    assert samples_season(two_days) == DAY
    assert samples_season(two_days[1:]) is None  # 199 in the first day
    assert samples_season([*two_days[:-1], 2 * DAY - 1.0]) is None  # a second short of 2 days
