"""The analyzer applies the spec's regression policy to what the detector finds: a worsening
that recovered before it had lasted the policy's ``for`` is transient (counted, not listed), as an
alert with the same ``for`` would never have fired; one still going at the end of the data is
listed whatever its age. The newest window's conversion is not judged: its customers may still
be between steps."""

from __future__ import annotations

import random

import pytest

from cxmetrics.analysis.analyzer import analyze
from cxmetrics.analysis.sources import from_events
from cxmetrics.instrument.events import StepRecord
from cxmetrics.spec.model import Spec

RATE = 10  # logins per second
MEDIAN, SIGMA = 0.1, 0.5


def _with_for(spec: Spec, seconds: float) -> Spec:
    regression = spec.defaults.regression.model_copy(update={"for_": seconds})
    return spec.model_copy(
        update={"defaults": spec.defaults.model_copy(update={"regression": regression})}
    )


def _record(t: float, step: str, jid: str, previous: str | None, duration: float) -> StepRecord:
    return StepRecord(
        t, "bill_inquiry", step, "app", jid, previous, duration, "ok", "satisfied", True
    )


def _logins(seconds: int, slow_from: float, slow_until: float, seed: int = 3) -> list[StepRecord]:
    """Logins at ``RATE``/s for ``seconds``, 50% slower in [slow_from, slow_until)."""
    rng = random.Random(seed)
    records = []
    for i in range(seconds * RATE):
        t = 1_700_000_000.0 + i / RATE
        duration = rng.lognormvariate(0.0, SIGMA) * MEDIAN
        if slow_from <= i / RATE < slow_until:
            duration *= 1.5
        records.append(_record(t, "login", f"{i:032x}", None, duration))
    return records


def _latency_findings(spec: Spec, records: list[StepRecord]) -> tuple[list[float | None], int]:
    analysis = analyze(spec, from_events(spec, records, step=10.0))
    found = [f for f in analysis.findings if f.indicator == "latency"]
    assert {(f.journey, f.step) for f in found} <= {("bill_inquiry", "login")}
    durations = [None if f.end_time is None else f.end_time - f.start_time for f in found]
    return durations, analysis.transient


@pytest.fixture(scope="module")
def blip() -> list[StepRecord]:
    return _logins(900, 400.0, 460.0)  # one minute, 600 logins, 50% slower


def test_a_recovered_worsening_shorter_than_for_is_transient(
    example_spec: Spec, blip: list[StepRecord]
) -> None:
    assert _latency_findings(_with_for(example_spec, 120.0), blip) == ([], 1)


def test_a_recovered_worsening_that_lasted_for_is_listed_with_its_end(
    example_spec: Spec, blip: list[StepRecord]
) -> None:
    durations, transient = _latency_findings(_with_for(example_spec, 30.0), blip)
    assert transient == 0
    assert len(durations) == 1 and durations[0] is not None
    assert 50.0 <= durations[0] <= 70.0  # the minute it lasted, to the detector's resolution


def test_a_worsening_still_going_at_the_end_is_listed_whatever_for_says(
    example_spec: Spec,
) -> None:
    ongoing = _logins(600, 540.0, 600.0)  # the last minute
    assert _latency_findings(_with_for(example_spec, 3600.0), ongoing) == ([None], 0)


def _logins_then_totals(
    seconds: int, continuing: float, from_second: float, unknown_after: float
) -> list[StepRecord]:
    """20 logins a second, each followed 0.2 s later by bill_total — from ``from_second`` on only
    for a ``continuing`` share of customers; customers logging in after ``unknown_after`` have
    not reached bill_total yet when the data ends."""
    rng = random.Random(5)
    records = []
    for i in range(seconds * 20):
        t, jid = 1_700_000_000.0 + i / 20, f"{i:032x}"
        records.append(_record(t, "login", jid, None, 0.1))
        goes_on = i / 20 < from_second or rng.random() < continuing
        if goes_on and i / 20 < unknown_after:
            records.append(_record(t + 0.2, "bill_total", jid, "login", 0.2))
    return records


def _conversion_findings(spec: Spec, records: list[StepRecord]) -> list[tuple[str, bool]]:
    analysis = analyze(spec, from_events(spec, records, step=10.0))
    return [(f.step, f.end_time is None) for f in analysis.findings if f.indicator == "conversion"]


def test_the_newest_window_is_not_judged_for_conversion(example_spec: Spec) -> None:
    """Customers of the last window have not done their next step yet: not a conversion drop."""
    records = _logins_then_totals(600, 1.0, 600.0, unknown_after=595.0)
    assert _conversion_findings(example_spec, records) == []


def test_a_conversion_drop_before_the_newest_window_is_found(example_spec: Spec) -> None:
    records = _logins_then_totals(600, 0.5, 400.0, unknown_after=595.0)
    assert _conversion_findings(example_spec, records) == [("login", True)]
