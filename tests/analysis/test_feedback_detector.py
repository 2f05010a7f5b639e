"""The detector judges NPS and CSAT like accuracy: per window, by the step the customers had
reached, with the journey's feedback ``min_responses`` as its minimum volume.

- CSAT: 90% of responses scoring 4-5 for two hours, then 60% — a ``csat`` regression on ``pay``,
  its baseline and current shares read back within a few points;
- NPS: the detractor share rises from 10% to 40% (promoters steady at 50%): ``nps`` regresses on
  subject ``detractors`` (NPS 40 → 10), not on ``promoters``;
- steady feedback: every feedback verdict ``stable``, no finding;
- with ``min_responses`` above everything the windows hold: ``insufficient_data``.
"""

from __future__ import annotations

import random

import pytest

from cxmetrics.analysis.analyzer import CSAT, NPS, analyze
from cxmetrics.analysis.sources import from_events
from cxmetrics.instrument.events import Event, FeedbackRecord
from cxmetrics.report.summary import finding_sentence
from cxmetrics.report.text import Clock
from cxmetrics.spec.load import parse_spec
from tests.helpers import feedback as fx

T0 = 1_700_000_000.0
MINUTES, CHANGE, PER_MINUTE = 240, 120, 20


def _spec(min_responses: int = 30) -> str:
    return fx.SPEC.replace("min_responses: 10", f"min_responses: {min_responses}")


def _events(scale: str, before: dict[int, float], after: dict[int, float]) -> list[Event]:
    rng = random.Random(7)
    out: list[Event] = []
    for minute in range(MINUTES):
        mix = before if minute < CHANGE else after
        scores, weights = list(mix), list(mix.values())
        for k in range(PER_MINUTE):
            score = rng.choices(scores, weights)[0]
            t = T0 + minute * 60 + k * 60 / PER_MINUTE
            out.append(FeedbackRecord(t, fx.JOURNEY, fx.LAST_STEP, "0" * 32, scale, score, "app"))  # type: ignore[arg-type]
    return out


def _run(events: list[Event], min_responses: int = 30):  # type: ignore[no-untyped-def]
    spec = parse_spec(_spec(min_responses), "<spec>")
    return analyze(spec, from_events(spec, events, step=60.0))


def _feedback_verdicts(analysis) -> dict[tuple[str, str | None], str]:  # type: ignore[no-untyped-def]
    return {
        (v.indicator, v.subject): v.verdict
        for v in analysis.verdicts
        if v.indicator in (CSAT, NPS) and v.step == fx.LAST_STEP
    }


def test_a_csat_drop_is_a_regression_of_the_step_customers_had_reached() -> None:
    analysis = _run(_events("csat", {5: 0.6, 4: 0.3, 2: 0.1}, {5: 0.4, 4: 0.2, 2: 0.4}))
    [finding] = analysis.findings
    assert (finding.journey, finding.step, finding.indicator, finding.subject) == (
        fx.JOURNEY,
        fx.LAST_STEP,
        CSAT,
        None,
    )
    assert finding.regression.baseline == pytest.approx(0.9, abs=0.03)
    assert finding.regression.current == pytest.approx(0.6, abs=0.05)
    assert T0 + (CHANGE - 10) * 60 <= finding.start_time <= T0 + (CHANGE + 10) * 60
    assert finding.end_time is None
    sentence = finding_sentence(finding, fx.LAST_STEP, Clock.for_range(T0, T0 + 4 * 3600, 60))
    assert sentence.startswith(f"Customers who had reached {fx.LAST_STEP} rated the journey lower")


def test_more_detractors_is_an_nps_regression_on_detractors_only() -> None:
    before = {10: 0.5, 8: 0.4, 3: 0.1}  # NPS 40
    after = {10: 0.5, 8: 0.1, 3: 0.4}  # NPS 10
    analysis = _run(_events("nps", before, after))
    assert [(f.indicator, f.subject) for f in analysis.findings] == [(NPS, "detractors")]
    assert _feedback_verdicts(analysis) == {
        (NPS, "promoters"): "stable",
        (NPS, "detractors"): "regressed",
    }
    [finding] = analysis.findings
    assert 1 - finding.regression.baseline == pytest.approx(0.1, abs=0.03)
    assert 1 - finding.regression.current == pytest.approx(0.4, abs=0.05)


def test_steady_feedback_is_stable_and_thin_feedback_is_not_judged() -> None:
    steady = _events("csat", {5: 0.6, 4: 0.3, 2: 0.1}, {5: 0.6, 4: 0.3, 2: 0.1})
    analysis = _run(steady)
    assert analysis.findings == ()
    assert _feedback_verdicts(analysis) == {(CSAT, None): "stable"}
    thin = _run(steady, min_responses=MINUTES * PER_MINUTE + 1)
    assert _feedback_verdicts(thin) == {(CSAT, None): "insufficient_data"}
