"""Period over period without a server: calendar periods, the comparison of two simulated weeks
(bill_detail 25% slower and 5% of a check failing in the second), "no baseline yet", customers
affected as counts, and journey maps with skips, loops and back-steps."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

import pytest

from cxmetrics.analysis.affected import Affected, affected, journey_affected
from cxmetrics.analysis.comparison import Comparison, compare, two_proportions
from cxmetrics.analysis.counts import Window
from cxmetrics.analysis.paths import journey_map
from cxmetrics.analysis.periods import Period, calendar_period, previous_period
from cxmetrics.analysis.sources import from_events
from cxmetrics.instrument.events import CheckResult, Event, JourneyStarted, StepRecord
from cxmetrics.spec.model import Spec
from tests.helpers.bank_log import TWO_WEEKS_T0, WEEK, two_weeks

UTC = timezone.utc


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


# ---------------------------------------------------------------------------------------------
# periods


@pytest.mark.parametrize(
    ("kind", "at", "start", "end", "label", "key"),
    [
        (
            "week",
            ts(2024, 3, 18, 6),
            ts(2024, 3, 11),
            ts(2024, 3, 18),
            "week of 2024-03-11",
            "week-2024-03-11",
        ),
        (
            "week",
            ts(2024, 3, 18),
            ts(2024, 3, 11),
            ts(2024, 3, 18),
            "week of 2024-03-11",
            "week-2024-03-11",
        ),
        (
            "week",
            ts(2024, 3, 17, 23, 59),
            ts(2024, 3, 4),
            ts(2024, 3, 11),
            "week of 2024-03-04",
            "week-2024-03-04",
        ),
        (
            "day",
            ts(2024, 3, 1, 0, 30),
            ts(2024, 2, 29),
            ts(2024, 3, 1),
            "2024-02-29",
            "day-2024-02-29",
        ),
        (
            "month",
            ts(2024, 3, 18),
            ts(2024, 2, 1),
            ts(2024, 3, 1),
            "February 2024",
            "month-2024-02-01",
        ),
        (
            "month",
            ts(2024, 1, 5),
            ts(2023, 12, 1),
            ts(2024, 1, 1),
            "December 2023",
            "month-2023-12-01",
        ),
    ],
)
def test_calendar_periods_are_the_last_complete_one(
    kind: str,
    at: float,
    start: float,
    end: float,
    label: str,
    key: str,
) -> None:
    period = calendar_period(kind, at, UTC)
    assert (period.kind, period.start, period.end, period.label) == (kind, start, end, label)
    assert period.key == key


def test_previous_period_is_the_one_before() -> None:
    week = calendar_period("week", ts(2024, 3, 18, 6), UTC)
    assert previous_period(week, UTC) == Period(
        "week", ts(2024, 3, 4), ts(2024, 3, 11), "week of 2024-03-04", "week-2024-03-04"
    )
    march = calendar_period("month", ts(2024, 4, 2), UTC)
    assert previous_period(march, UTC) == Period(
        "month", ts(2024, 2, 1), ts(2024, 3, 1), "February 2024", "month-2024-02-01"
    )
    span = Period("range", 1000.0, 1600.0, "x")
    assert (previous_period(span).start, previous_period(span).end) == (400.0, 1000.0)
    assert previous_period(span).key == "range-1970-01-01T0006Z-1970-01-01T0016Z"


def test_two_proportions_matches_the_textbook_z_test() -> None:
    # 50/100 vs 40/100: pooled 0.45, z = 0.1 / sqrt(0.45 * 0.55 * 0.02) = 1.4213, p = 0.1552
    assert two_proportions(0.5, 100, 0.4, 100) == pytest.approx(0.15522, abs=1e-5)
    assert two_proportions(1.0, 100, 1.0, 100) is None
    assert two_proportions(1.0, 100, 0.0, 100) == pytest.approx(0.0, abs=1e-30)


# ---------------------------------------------------------------------------------------------
# two simulated weeks


def weeks(spec: Spec, fault: bool = True) -> Comparison:
    events = two_weeks(spec, fault=fault)
    current = calendar_period("week", TWO_WEEKS_T0 + 2 * WEEK + 3600, UTC)
    previous = previous_period(current, UTC)
    now, before = (
        from_events(spec, events, 3600, p.start, p.end).total() for p in (current, previous)
    )
    return compare(spec, now, before, (current, previous))


@pytest.fixture(scope="module")
def faulty(example_spec: Spec) -> Comparison:
    return weeks(example_spec)


def test_the_slower_failing_step_is_the_worst_and_only_it_changed(faulty: Comparison) -> None:
    worst = faulty.worst
    assert worst is not None and (worst.journey, worst.step) == ("bill_inquiry", "bill_detail")
    assert faulty.baseline
    assert sorted(c.indicator for c in worst.worse) == [
        "accuracy",
        "good_ratio",
        "p95",
        "timeliness",
    ]
    p95 = worst.changes["p95"]
    assert p95.relative == pytest.approx(0.25, abs=0.04)  # 25% injected
    assert p95.p_value is not None and p95.p_value < 1e-20
    assert worst.changes["accuracy"].current == pytest.approx(
        0.95 + 0.05 / 2, abs=0.01
    )  # one of two checks
    assert worst.more_bad == 145
    # nothing else is called significant: 8 steps x 6 tests at 1% without a false alarm
    others = [s for s in faulty.steps if s is not worst]
    assert [c for s in others for c in s.changes.values() if c.significant] == []


def test_two_quiet_weeks_have_no_worst_step(example_spec: Spec) -> None:
    quiet = weeks(example_spec, fault=False)
    assert quiet.baseline and quiet.worst is None
    assert [c for s in quiet.steps for c in s.changes.values() if c.significant and c.worse] == []


def test_customers_affected_are_counts(faulty: Comparison) -> None:
    detail = faulty.step("bill_inquiry", "bill_detail")
    assert detail.affected == Affected(failed_checks=124, frustrated=0, failed=0, abandoned=0)
    assert detail.affected_before == Affected()
    login = faulty.step("bill_inquiry", "login")
    assert (login.affected.abandoned, login.affected_before.abandoned) == (246, 239)
    bill = next(j for j in faulty.journeys if j.journey == "bill_inquiry")
    assert bill.affected == Affected(failed_checks=124, abandoned=632)


def test_no_baseline_yet_when_the_previous_period_had_no_traffic(example_spec: Spec) -> None:
    events = two_weeks(example_spec)
    current = calendar_period("week", TWO_WEEKS_T0 + WEEK + 3600, UTC)  # the first week
    previous = previous_period(current, UTC)
    now, before = (
        from_events(example_spec, events, 3600, p.start, p.end).total() for p in (current, previous)
    )
    comparison = compare(example_spec, now, before, (current, previous))
    assert not comparison.baseline and comparison.worst is None
    detail = comparison.step("bill_inquiry", "bill_detail").changes
    assert detail["p95"].previous is None and not detail["p95"].significant
    assert detail["volume"].previous == 0


# ---------------------------------------------------------------------------------------------
# customers affected and journey maps, from hand-made events


def step(
    t: float,
    name: str,
    jid: str,
    previous: str | None,
    *,
    duration: float = 0.1,
    timeliness: Literal["satisfied", "tolerating", "frustrated"] = "satisfied",
    checks: tuple[CheckResult, ...] = (),
    outcome: Literal["ok", "error"] = "ok",
) -> StepRecord:
    good = timeliness == "satisfied" and outcome == "ok" and all(c.passed for c in checks)
    return StepRecord(
        t, "transfer", name, "app", jid, previous, duration, outcome, timeliness, good, checks
    )


def transfers() -> list[Event]:
    """Five customers of transfer: straight through; payee skipping to confirm; amount twice
    (a loop); back from confirm to amount; leaving after payee with an error."""
    ok = (CheckResult("limits_applied", True),)
    paths = [
        ["payee", "amount", "confirm", "receipt"],
        ["payee", "confirm", "receipt"],
        ["payee", "amount", "amount", "confirm", "receipt"],
        ["payee", "amount", "confirm", "amount", "confirm", "receipt"],
        ["payee"],
    ]
    events: list[Event] = []
    for k, path in enumerate(paths):
        jid = f"{k:032x}"
        events.append(JourneyStarted(100.0 + k, "transfer", "app", jid))
        previous = None
        for n, name in enumerate(path):
            extra: dict[str, Any] = {}
            if name == "confirm":
                extra["checks"] = ok if k != 3 or n > 2 else (CheckResult("limits_applied", False),)
            if k == 4:
                extra["outcome"] = "error"
            if name == "receipt" and k == 0:
                extra.update(duration=9.0, timeliness="frustrated")
            events.append(step(101.0 + k + n * 0.1, name, jid, previous, **extra))
            previous = name
    return events


def test_journey_map_counts_skips_loops_and_back_steps(example_spec: Spec) -> None:
    window = from_events(example_spec, transfers(), 60).total()
    tmap = journey_map(example_spec.journey("transfer"), window)
    assert tmap.steps == ("payee", "amount", "confirm", "receipt")
    assert tmap.volume == (5, 5, 5, 4)
    assert tmap.matrix == (
        (0, 3, 1, 0),  # payee → amount ×3, skip to confirm ×1
        (0, 1, 4, 0),  # amount → amount (loop), → confirm
        (0, 1, 0, 4),  # confirm → amount (back-step), → receipt
        (0, 0, 0, 0),
    )
    assert tmap.entries == (5, 0, 0, 0)
    assert tmap.exits == (1, 0, 0, 4)
    assert [(m[0], m[1], m[3]) for m in tmap.moves if m[3] != "forward"] == [
        ("payee", "confirm", "skip"),
        ("amount", "amount", "loop"),
        ("confirm", "amount", "back"),
    ]
    top = tmap.paths[0]
    assert top.steps == ("payee", "amount", "confirm", "receipt") and top.completed
    assert top.share == pytest.approx(3 / 5 * 4 / 5 * 4 / 5)
    assert ("payee",) in [p.steps for p in tmap.paths]
    skip = next(p for p in tmap.paths if p.steps == ("payee", "confirm", "receipt"))
    assert skip.unusual == ("skips to confirm",)


def test_customers_affected_counts_each_kind(example_spec: Spec) -> None:
    window = from_events(example_spec, transfers(), 60).total()
    counts = affected(example_spec, window)
    assert counts[("transfer", "payee")] == Affected(failed=1, abandoned=1)
    assert counts[("transfer", "confirm")] == Affected(failed_checks=1)
    assert counts[("transfer", "receipt")] == Affected(frustrated=1)
    assert journey_affected(example_spec, window)["transfer"] == Affected(1, 1, 1, 1)
    empty = Window(0.0, 1.0, {}, {})
    assert affected(example_spec, empty)[("transfer", "payee")] == Affected()


def test_weeks_are_cut_at_local_midnight_across_a_clock_change() -> None:
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    week = calendar_period("week", datetime(2024, 4, 1, 6, tzinfo=paris).timestamp(), paris)
    assert week.start == datetime(2024, 3, 25, tzinfo=paris).timestamp()  # 23:00 UTC, CET
    assert week.end == datetime(2024, 4, 1, tzinfo=paris).timestamp()  # 22:00 UTC, CEST
    assert week.end - week.start == 7 * 86400 - 3600  # summer time began on the 31st
    assert (week.label, week.key) == ("week of 2024-03-25", "week-2024-03-25")
