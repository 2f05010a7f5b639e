"""Which series exist when: declared combinations from the start, everything else on first use,
and the labels each family carries (channel, segment, reason, category)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest

import cxmetrics
from cxmetrics.exposition.eventlog import EventLog, read_events
from cxmetrics.instrument import steps as steps_module
from cxmetrics.instrument.events import Event, FeedbackRecord, JourneyStarted, StepRecord
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.model import Spec
from cxmetrics.testing import Recording

CARDS = """
version: 1
service: cards
channels: [app, web]
segments: [vip, mass]
reasons: [card_blocked]
journeys:
  - name: card_activation
    reasons: [otp_expired]
    steps:
      - name: enter_card
        target: 500ms
      - name: verify_otp
        target: 1s
        checks:
          - name: otp_matches
          - name: card_active
      - name: activated
        target: 300ms
"""


@pytest.fixture
def cards() -> Spec:
    return parse_spec(CARDS, "<cards>")


@pytest.fixture
def crec(cards: Spec) -> Iterator[Recording]:
    recording = Recording(cards)
    try:
        yield recording
    finally:
        recording.close()


def exposed(rec: Recording) -> list[str]:
    return [
        line
        for line in generate_latest(rec.registry).decode().splitlines()
        if line.startswith("cx_")
    ]


# The spec without segments and reasons: what main could load.
PLAIN = "\n".join(
    line for line in CARDS.splitlines() if not line.lstrip().startswith(("segments", "reasons"))
)


def test_an_idle_process_exposes_only_what_the_spec_declares() -> None:
    # On main this spec exposed 649 lines before any traffic, 642 of them zero and 364 of them
    # 'other' combinations.
    crec = Recording(parse_spec(PLAIN, "<cards>"))
    try:
        lines = exposed(crec)
    finally:
        crec.close()
    assert [line for line in lines if '"other"' in line] == []
    # per step and channel (3 × 2): 6 step counters + 1 good, and the duration histogram's 23
    # bounds + +Inf, sum and count (6 histograms, 156 lines); 2 checks × 2 results × 2 channels; 2 relative-error
    # the two consecutive transitions per channel; starts per channel; target and tolerating per
    # step; undeclared kinds (6); the spec's info; the thresholds and policy the generic rules join
    # (objective, min_change, min_volume, policy per step, an objective per check, the next step
    # of the first two); the journey-time histogram per channel (16 bounds + +Inf, sum and count:
    # 2 × 19). Pass/fail checks have no relative errors: their relative-error histograms appear
    # only if one is ever recorded.
    assert len(lines) == 42 + 156 + 8 + 4 + 2 + 6 + 6 + 1 + (4 * 3 + 2 + 2) + 38
    # targets, tolerating, info, and the spec series
    assert sum(1 for line in lines if not line.endswith(" 0.0")) == 7 + 16


def test_an_undeclared_channel_appears_on_first_use_as_a_whole_slot(crec: Recording) -> None:
    with cxmetrics.journey("card_activation", channel="fax") as j, j.step("enter_card"):
        pass
    lines = exposed(crec)
    other = [line for line in lines if 'channel="other"' in line]
    # the slot of (enter_card, other, none): its 6 step counters and good steps appear together
    # (no ratio ever misses its numerator or denominator), plus the transition to the next step
    # at zero (conversion from enter_card on that channel reads 0, not absent), the start, and the
    # duration histogram of that channel (23 bounds + +Inf, sum and count).
    assert len([line for line in other if line.startswith("cx_steps_total")]) == 6
    assert len([line for line in other if line.startswith("cx_good_steps_total")]) == 1
    assert (
        crec.value(
            "cx_step_transitions_total",
            journey="card_activation",
            from_step="enter_card",
            to_step="verify_otp",
            channel="other",
        )
        == 0
    )
    assert len([line for line in other if "cx_step_transitions_total" in line]) == 1
    assert crec.value("cx_journeys_started_total", channel="other", segment="none") == 1
    assert len(other) == 6 + 1 + 1 + 1 + 26
    assert crec.value("cx_undeclared_names_total", kind="channel") == 1


def test_segment_labels_steps_checks_transitions_feedback_and_travels(
    crec: Recording,
) -> None:
    with cxmetrics.journey("card_activation", segment="vip", channel="web") as j:
        with j.step("enter_card"):
            pass
        with j.step("verify_otp") as s:
            s.check("otp_matches", True)
        j.feedback(csat=4, category="praise")
        context = j.context()
    assert context.segment == "vip"
    resumed = cxmetrics.journey("card_activation", context=context)
    assert resumed.segment == "vip"
    v = crec.value
    web_vip = {"journey": "card_activation", "channel": "web", "segment": "vip"}
    assert v("cx_steps_total", **web_vip, step="enter_card") == 1
    assert v("cx_good_steps_total", **web_vip, step="verify_otp") == 1
    assert v("cx_accuracy_checks_total", **web_vip, check="otp_matches", result="pass") == 1
    assert (
        v("cx_step_transitions_total", **web_vip, from_step="enter_card", to_step="verify_otp") == 1
    )
    assert v("cx_journeys_started_total", **web_vip) == 1
    assert v("cx_feedback_responses_total", **web_vip, scale="csat", score="4") == 1
    assert (
        v(
            "cx_feedback_topics_total",
            **web_vip,
            category="praise",
            reason="none",
            step="verify_otp",
        )
        == 1
    )
    # the histogram carries journey and step only (the series budget): every segment in it
    assert v("cx_step_duration_seconds_count", journey="card_activation", step="enter_card") == 1
    assert [s.segment for s in crec.recorder.steps] == ["vip", "vip"]


def test_an_undeclared_segment_is_folded_to_other_and_counted(crec: Recording) -> None:
    with cxmetrics.journey("card_activation") as j:
        j.segment = "customer_4111111111111111"
        with j.step("enter_card"):
            pass
    assert j.segment == "other"
    assert crec.value("cx_steps_total", step="enter_card", segment="other") == 1
    assert crec.value("cx_undeclared_names_total", kind="segment") == 1
    assert "4111" not in generate_latest(crec.registry).decode()


def test_fail_reasons_are_bounded_labels(crec: Recording) -> None:
    with cxmetrics.journey("card_activation", channel="app") as j:
        for reason in ("otp_expired", "card_blocked", "otp_expired", "typo_in_code", None):
            with j.step("verify_otp") as s:
                s.fail(reason=reason)
        with pytest.raises(ZeroDivisionError), j.step("activated"):
            1 / 0  # noqa: B018
    v = crec.value
    fails = {"journey": "card_activation", "step": "verify_otp", "channel": "app"}
    assert v("cx_step_failures_total", **fails, reason="otp_expired") == 2
    assert v("cx_step_failures_total", **fails, reason="card_blocked") == 1  # a global reason
    assert v("cx_step_failures_total", **fails, reason="other") == 1
    assert v("cx_steps_total", **fails, outcome="error") == 5  # one without a reason
    assert v("cx_steps_total", step="activated", outcome="error") == 1
    assert v("cx_undeclared_names_total", kind="reason") == 1
    failures = [line for line in exposed(crec) if line.startswith("cx_step_failures_total")]
    assert len(failures) == 3  # a reason's series appears with its first failure; none: no series
    assert [s.reason for s in crec.recorder.steps] == [
        "otp_expired",
        "card_blocked",
        "otp_expired",
        "other",
        "none",
        "none",
    ]


def test_feedback_categories_and_reasons(crec: Recording) -> None:
    with cxmetrics.journey("card_activation") as j:
        with j.step("enter_card"):
            pass
        j.feedback(category="problem", reason="otp_expired")
        j.feedback(nps=2, category="problem", reason="made_up")
        j.feedback(category="complaint")  # not a category: ignored and counted, never raised
    v = crec.value
    topic = {"journey": "card_activation", "step": "enter_card", "category": "problem"}
    assert v("cx_feedback_topics_total", **topic, reason="otp_expired") == 1
    assert v("cx_feedback_topics_total", **topic, reason="other") == 1
    assert v("cx_feedback_responses_total", scale="nps", score="2") == 1
    assert v("cx_internal_errors_total", component="feedback") == 1
    assert [(f.category, f.reason, f.scale) for f in crec.recorder.feedback] == [
        ("problem", "otp_expired", None),
        ("problem", "other", None),
        (None, None, "nps"),
    ]


def test_segment_reason_and_category_survive_the_event_log(tmp_path: Path) -> None:
    t = 1_700_000_000.0
    events: list[Event] = [
        JourneyStarted(t, "card_activation", "web", "a" * 32, "vip"),
        StepRecord(
            t,
            "card_activation",
            "verify_otp",
            "web",
            "a" * 32,
            None,
            0.2,
            "error",
            "satisfied",
            False,
            segment="vip",
            reason="otp_expired",
        ),
        FeedbackRecord(
            t,
            "card_activation",
            "verify_otp",
            "a" * 32,
            None,
            None,
            "web",
            "vip",
            "problem",
            "otp_expired",
        ),
        FeedbackRecord(t, "card_activation", None, "a" * 32, "nps", 3),  # as older logs had it
    ]
    log = EventLog(tmp_path / "e.jsonl", flush_interval=0)
    for event in events:
        log.emit(event)
    log.close()
    assert list(read_events(tmp_path / "e.jsonl")) == events
    # the fields at their defaults are left out: a log without segments is as compact as before
    last = (tmp_path / "e.jsonl").read_text().splitlines()[-1]
    assert "segment" not in last and "category" not in last and "channel" not in last


class ScriptedClock:
    """``perf_counter`` stand-in: the step started next lasts ``duration`` seconds."""

    def __init__(self) -> None:
        self.now, self.duration, self.starting = 0.0, 0.0, True

    def __call__(self) -> float:
        if not self.starting:
            self.now += self.duration
        self.starting = not self.starting
        return self.now


def test_the_fleet_specs_series_in_its_worst_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """50 journeys × 10 steps × 3 channels, every combination with both outcomes and all three
    timeliness classes, an undeclared step and check per journey and channel: 91,919 series on
    main (90,569 before any traffic). The duration histogram per channel (latency judged per
    channel) costs 3 × 550 × 26 of them: over the 30 k goal; docs/metrics.md has the arithmetic
    and the decision. The end-to-end journey time adds 50 × 3 × 19 = 2,850 (idle and worst)."""
    journeys = [
        {
            "name": f"j{j:02d}",
            "steps": [
                {"name": f"s{s:02d}", "target": f"{100 * (1 + s % 5)}ms"}
                | ({"checks": [{"name": "amount_ok"}]} if s == 9 else {})
                for s in range(10)
            ],
        }
        for j in range(50)
    ]
    spec = Spec.model_validate(
        {"service": "fleet", "channels": ["app", "web", "phone"], "journeys": journeys}
    )
    clock = ScriptedClock()
    monkeypatch.setattr(steps_module, "_perf", clock)
    rec = Recording(spec)
    try:
        idle = sum(len(f.samples) for f in rec.registry.collect())
        for journey in spec.journeys:
            for channel in spec.channels:
                for factor, error in itertools.product((0.5, 2.0, 8.0), (False, True)):
                    with cxmetrics.journey(journey.name, channel=channel) as j:
                        for step in journey.steps:
                            clock.duration = step.target * factor
                            with j.step(step.name) as s:
                                for check in step.checks:
                                    s.check(check.name, not error)
                                if error:
                                    s.fail()
                with cxmetrics.journey(journey.name, channel=channel) as j:
                    clock.duration = 0.01
                    with j.step("undeclared_step") as s:
                        s.check("undeclared_check", True)
                    j.feedback(csat=3)
        worst = sum(len(f.samples) for f in rec.registry.collect())
    finally:
        rec.close()
    # the spec series the generic rules join add 2,500: 4 per step, one per check, one per
    # consecutive pair (500 × 4 + 50 + 450); the journey-time histogram 2,850
    assert (idle, worst) == (54_807 + 2_850, 60_207 + 2_850)
