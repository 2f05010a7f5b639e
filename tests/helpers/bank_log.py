"""Synthetic event logs of the example bank, for the analyzer and report tests.

The bank app's latency model (``examples.bank.app.LATENCY``) and its customers' abandonment
(``examples.bank.traffic.JOURNEYS``): one journey every ``spacing`` (0.5) s from ``t0``; from ``shift_at`` on,
the steps in ``slower`` take that factor longer and the checks in ``failing`` fail at that rate.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path

from cxmetrics.exposition.eventlog import EventLog
from cxmetrics.instrument.events import (
    CheckResult,
    Event,
    FeedbackRecord,
    JourneyStarted,
    StepRecord,
    Timeliness,
)
from cxmetrics.spec.model import Spec
from examples.bank.app import LATENCY
from examples.bank.traffic import CHANNELS, JOURNEYS

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
ALWAYS_FAILING = {"first_contact_resolution": 0.25}  # a quarter of callers need a second call


def bank_events(
    spec: Spec,
    journeys: int,
    *,
    seed: int,
    t0: float,
    shift_at: float,
    slower: Mapping[str, float] | None = None,
    failing: Mapping[str, float] | None = None,
    feedback: bool = False,
    spacing: float = 0.5,
) -> list[Event]:
    """The events of ``journeys`` simulated customers, one every ``spacing`` seconds, in time
    order."""
    rng = random.Random(seed)
    names = [n for n in JOURNEYS if n in STEPS]  # the journeys simulated here, same mix
    weights = [JOURNEYS[n][0] for n in names]
    events: list[Event] = []
    for i in range(journeys):
        name = rng.choices(names, weights=weights)[0]
        channel, jid, now = rng.choice(CHANNELS[name]), f"{i:032x}", t0 + spacing * i
        events.append(JourneyStarted(now, name, channel, jid))
        previous = None
        for (_, keep_going), step_name in zip(JOURNEYS[name][1], STEPS[name], strict=True):
            median, sigma = LATENCY[step_name]
            faulty = now >= shift_at
            duration = rng.lognormvariate(0.0, sigma) * median
            if faulty:
                duration *= (slower or {}).get(step_name, 1.0)
            now += duration
            step = spec.journey(name).step(step_name)
            timeliness: Timeliness = (
                "satisfied"
                if duration <= step.target
                else "tolerating"
                if duration <= spec.tolerating(step)
                else "frustrated"
            )
            rates = {**ALWAYS_FAILING, **((failing or {}) if faulty else {})}
            checks = tuple(
                CheckResult(c, rng.random() >= rates.get(c, 0.0)) for c in CHECKS.get(step_name, ())
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
        if feedback and rng.random() < 0.2:
            events.append(FeedbackRecord(now, name, previous, jid, "nps", rng.randrange(0, 11)))
            events.append(FeedbackRecord(now, name, previous, jid, "csat", rng.randrange(1, 6)))
    return sorted(events, key=lambda e: e.time)


def write_log(path: Path, events: list[Event]) -> Path:
    log = EventLog(path)
    for event in events:
        log.emit(event)
    log.close()
    return path


#: Two simulated weeks, Monday 2024-03-04 00:00 UTC to Monday 2024-03-18 00:00 UTC, for period
#: over period: one journey every TWO_WEEKS_SPACING seconds; in the second week bill_detail is 25%
#: slower and 5% of its total_matches_details checks fail.
WEEK = 7 * 86400.0
TWO_WEEKS_T0 = 1709510400.0  # 2024-03-04T00:00:00Z, a Monday
TWO_WEEKS_SPACING = 120.0


def two_weeks(spec: Spec, *, fault: bool = True, seed: int = 1) -> list[Event]:
    return bank_events(
        spec,
        int(2 * WEEK / TWO_WEEKS_SPACING),
        seed=seed,
        t0=TWO_WEEKS_T0,
        shift_at=TWO_WEEKS_T0 + WEEK if fault else float("inf"),
        slower={"bill_detail": 1.25},
        failing={"total_matches_details": 0.05},
        spacing=TWO_WEEKS_SPACING,
    )
