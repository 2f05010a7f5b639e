"""The analyzer judges each step's error rate like its other rates: per window, the share of ok
steps (``catalogue.SUCCESS``) through the detector's Bernoulli CUSUM, with the step's
``min_volume``. ``cxmetrics watch`` reads these same verdicts (``CxStepErrorRegression``).

- ``pay`` fails 0.5% of its steps for two hours, then 5%: one ``errors`` regression on ``pay``,
  starting within ten minutes of the change, its success rate read back within a point, and the
  report's sentence says so; ``browse`` (steady) has none;
- steady errors everywhere: every ``errors`` verdict ``stable``, no finding.
"""

from __future__ import annotations

import random

import pytest

from cxmetrics.analysis.analyzer import ERRORS, Analysis, analyze
from cxmetrics.analysis.sources import from_events
from cxmetrics.instrument.events import Event, StepRecord
from cxmetrics.report.summary import finding_sentence
from cxmetrics.report.text import Clock
from cxmetrics.spec.load import parse_spec
from tests.helpers import feedback as fx

T0 = 1_700_000_000.0
MINUTES, CHANGE, PER_MINUTE = 240, 120, 30


def _events(after: float) -> list[Event]:
    """Both steps of every journey instance; ``pay`` fails 0.5% of the time, then ``after``."""
    rng = random.Random(11)
    out: list[Event] = []
    for minute in range(MINUTES):
        failing = 0.005 if minute < CHANGE else after
        for k in range(PER_MINUTE):
            t = T0 + minute * 60 + k * 60 / PER_MINUTE
            jid = f"{minute:08x}{k:024x}"
            for step, share, previous in (
                ("browse", 0.005, None),
                (fx.LAST_STEP, failing, "browse"),
            ):
                error = rng.random() < share
                out.append(
                    StepRecord(
                        t,
                        fx.JOURNEY,
                        step,
                        "app",
                        jid,
                        previous,
                        0.2,
                        "error" if error else "ok",
                        "satisfied",
                        not error,
                    )
                )
    return out


def _run(events: list[Event]) -> Analysis:
    spec = parse_spec(fx.SPEC, "<spec>")
    return analyze(spec, from_events(spec, events, step=60.0))


def test_a_step_that_starts_failing_is_an_errors_regression_of_that_step() -> None:
    analysis = _run(_events(0.05))
    errors = [f for f in analysis.findings if f.indicator == ERRORS]
    [finding] = errors
    assert (finding.journey, finding.step, finding.subject) == (fx.JOURNEY, fx.LAST_STEP, None)
    assert finding.regression.baseline == pytest.approx(0.995, abs=0.01)
    assert finding.regression.current == pytest.approx(0.95, abs=0.01)
    assert T0 + (CHANGE - 10) * 60 <= finding.start_time <= T0 + (CHANGE + 10) * 60
    assert finding.end_time is None
    sentence = finding_sentence(finding, fx.LAST_STEP, Clock.for_range(T0, T0 + 4 * 3600, 60))
    assert sentence.startswith(f"{fx.LAST_STEP} failed more often at ")
    verdicts = {v.step: v.verdict for v in analysis.verdicts if v.indicator == ERRORS}
    assert verdicts == {"browse": "stable", fx.LAST_STEP: "regressed"}


def test_steady_errors_are_no_regression() -> None:
    analysis = _run(_events(0.005))
    assert [f for f in analysis.findings if f.indicator == ERRORS] == []
    verdicts = {v.step: v.verdict for v in analysis.verdicts if v.indicator == ERRORS}
    assert verdicts == {"browse": "stable", fx.LAST_STEP: "stable"}
