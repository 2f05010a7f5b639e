"""The indicator math: exact values on hand-computed fixtures, and its algebraic properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxmetrics.analysis.catalogue import SCORE_CAP, cx_score
from cxmetrics.analysis.counts import StepCounts, Window, merge_steps, merge_windows
from cxmetrics.analysis.indicators import compute, quantile, share_within
from cxmetrics.analysis.sources import from_events
from cxmetrics.instrument.events import (
    CheckResult,
    Event,
    FeedbackRecord,
    JourneyStarted,
    Outcome,
    StepRecord,
    Timeliness,
)
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.model import Spec

SHOP = parse_spec(
    """\
service: shop
journeys:
  - name: shop
    steps:
      - name: browse
        target: 1s
      - name: pay
        target: 2s
        checks:
          - name: amount_ok
      - name: receipt
        target: 500ms
"""
)
# Tolerating thresholds (4T): browse 4 s, pay 8 s, receipt 2 s.


def _step(
    t: float,
    jid: str,
    step: str,
    previous: str | None,
    duration: float,
    timeliness: Timeliness,
    outcome: Outcome = "ok",
    checks: tuple[CheckResult, ...] = (),
) -> StepRecord:
    good = timeliness == "satisfied" and outcome == "ok" and all(c.passed for c in checks)
    return StepRecord(
        t, "shop", step, "app", jid, previous, duration, outcome, timeliness, good, checks
    )


def _fixture() -> list[Event]:
    ok, bad = (CheckResult("amount_ok", True),), (CheckResult("amount_ok", False),)
    return [
        # j1: browse → pay → receipt, all satisfied; a promoter, satisfied
        JourneyStarted(1000.0, "shop", "app", "j1"),
        _step(1001.0, "j1", "browse", None, 0.5, "satisfied"),
        _step(1002.0, "j1", "pay", "browse", 1.0, "satisfied", checks=ok),
        _step(1003.0, "j1", "receipt", "pay", 0.2, "satisfied"),
        FeedbackRecord(1004.0, "shop", "receipt", "j1", "nps", 10),
        FeedbackRecord(1004.0, "shop", "receipt", "j1", "csat", 5),
        # j2: tolerating browse and pay, the amount is wrong, gives up; a detractor, unhappy
        JourneyStarted(1010.0, "shop", "app", "j2"),
        _step(1011.0, "j2", "browse", None, 2.0, "tolerating"),
        _step(1012.0, "j2", "pay", "browse", 3.0, "tolerating", checks=bad),
        FeedbackRecord(1013.0, "shop", "pay", "j2", "nps", 3),
        FeedbackRecord(1013.0, "shop", "pay", "j2", "csat", 2),
        # j3: a frustrated browse, gives up; passive, satisfied
        JourneyStarted(1020.0, "shop", "app", "j3"),
        _step(1021.0, "j3", "browse", None, 5.0, "frustrated"),
        FeedbackRecord(1022.0, "shop", "browse", "j3", "nps", 8),
        FeedbackRecord(1022.0, "shop", "browse", "j3", "csat", 4),
        # j4: a fast failed browse, retried, then pay and a frustrated receipt
        JourneyStarted(1030.0, "shop", "app", "j4"),
        _step(1031.0, "j4", "browse", None, 0.8, "satisfied", outcome="error"),
        _step(1032.0, "j4", "browse", "browse", 0.6, "satisfied"),
        _step(1033.0, "j4", "pay", "browse", 1.5, "satisfied", checks=ok),
        _step(1034.0, "j4", "receipt", "pay", 3.0, "frustrated"),
        # j5: browse exactly at T, then pay fails slowly; a promoter anyway
        JourneyStarted(1040.0, "shop", "app", "j5"),
        _step(1041.0, "j5", "browse", None, 1.0, "satisfied"),
        _step(1042.0, "j5", "pay", "browse", 9.0, "frustrated", outcome="error"),
        FeedbackRecord(1043.0, "shop", "pay", "j5", "nps", 9),
    ]


def test_step_indicators_by_hand() -> None:
    indicators = compute(SHOP, from_events(SHOP, _fixture()).total())
    browse = indicators.step("shop", "browse")
    # durations 0.5 2.0 5.0 0.8 0.6 1.0; sorted 0.5 0.6 0.8 1.0 2.0 5.0
    assert browse.volume == 6
    assert browse.exact_quantiles is True
    assert browse.quantiles[0.5] == pytest.approx(0.9)  # between 0.8 and 1.0
    assert browse.quantiles[0.9] == pytest.approx(3.5)  # 2.0 + 0.5 x 3.0
    assert browse.quantiles[0.95] == pytest.approx(4.25)
    assert browse.quantiles[0.99] == pytest.approx(4.85)
    assert browse.timeliness == pytest.approx(3 / 6)  # the failed fast browse is not timely
    assert browse.apdex == pytest.approx((3 + 1 / 2) / 6)  # ... but frustrated for Apdex
    assert browse.error_rate == pytest.approx(1 / 6)
    assert browse.good_ratio == pytest.approx(3 / 6)
    assert browse.accuracy is None
    assert browse.next_step == "pay"
    assert browse.conversion == pytest.approx(4 / 6)  # j1 j2 j4 j5 went on to pay
    assert browse.abandonment == pytest.approx(1 - 5 / 6)  # j4's retry is not abandonment
    # no accuracy checks: apdex and success keep their weights 0.5 : 0.2 (65.5), but half the
    # steps are bad against a 95% objective (a 10x burn, a page): capped
    assert SCORE_CAP < 100 * (7 / 12 * 0.5 + 5 / 6 * 0.2) / 0.7
    assert browse.score == SCORE_CAP
    assert (browse.feedback.nps, browse.feedback.csat) == (0.0, 100.0)

    pay = indicators.step("shop", "pay")
    assert pay.volume == 4
    assert pay.quantiles[0.5] == pytest.approx(2.25)  # 1.0 1.5 3.0 9.0
    assert pay.quantiles[0.9] == pytest.approx(7.2)
    assert pay.timeliness == pytest.approx(0.5)
    assert pay.apdex == pytest.approx((2 + 1 / 2) / 4)
    assert pay.error_rate == pytest.approx(0.25)
    assert pay.good_ratio == pytest.approx(0.5)
    assert pay.accuracy == pytest.approx(2 / 3)
    assert (pay.checks["amount_ok"].passed, pay.checks["amount_ok"].failed) == (2, 1)
    assert pay.conversion == pytest.approx(0.5)
    assert pay.abandonment == pytest.approx(0.5)
    assert pay.score == SCORE_CAP  # 66.25 uncapped; good ratio 0.5 burns 10x
    assert (pay.feedback.nps, pay.feedback.nps_responses) == (0.0, 2)
    assert (pay.feedback.csat, pay.feedback.csat_responses) == (0.0, 1)

    receipt = indicators.step("shop", "receipt")
    assert (receipt.volume, receipt.timeliness, receipt.apdex) == (2, 0.5, 0.5)
    assert (receipt.next_step, receipt.conversion, receipt.abandonment) == (None, None, None)
    assert receipt.score == SCORE_CAP  # 64.3 uncapped


def test_journey_indicators_by_hand() -> None:
    shop = compute(SHOP, from_events(SHOP, _fixture()).total()).journey("shop")
    assert (shop.started, shop.volume, shop.completed) == (5, 12, 2)
    assert shop.completion == pytest.approx(2 / 5)
    # over all 12 steps: ok satisfied 6, ok tolerating 2, ok frustrated 2, error 2
    assert shop.apdex == pytest.approx((6 + 2 / 2) / 12)
    assert shop.error_rate == pytest.approx(2 / 12)
    assert shop.good_ratio == pytest.approx(6 / 12)
    assert shop.accuracy == pytest.approx(2 / 3)
    assert shop.score == SCORE_CAP  # 67.5 uncapped; its steps burn at page severity
    # NPS: 10, 3, 8, 9 → 2 promoters, 1 detractor of 4; CSAT: 5, 2, 4 → 2 of 3 score 4-5
    assert shop.feedback.nps == pytest.approx(25.0)
    assert shop.feedback.csat == pytest.approx(200 / 3)


def test_empty_step_has_no_ratios() -> None:
    shop = compute(SHOP, from_events(SHOP, _fixture()[:1]).total())
    browse = shop.step("shop", "browse")
    assert browse.volume == 0
    assert browse.quantiles == {0.5: None, 0.9: None, 0.95: None, 0.99: None}
    assert (browse.apdex, browse.timeliness, browse.conversion, browse.score) == (
        None,
        None,
        None,
        None,
    )
    assert shop.journey("shop").completion == 0.0


# Bucket interpolation, as Prometheus' histogram_quantile: bounds 0.5 1 2 4 (+Inf), counts 2 3 3 1 1.
BUCKETS = StepCounts((0.5, 1.0, 2.0, 4.0), (2, 3, 3, 1, 1))


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.1, 0.25),  # rank 1 in [0, 0.5] holding 2
        (0.5, 1.0),  # rank 5: the top of (0.5, 1]
        (0.6, 4 / 3),  # rank 6: 1 of 3 into (1, 2]
        (0.9, 4.0),  # rank 9: the top of (2, 4]
        (0.95, 4.0),  # in +Inf: the highest finite bound
    ],
)
def test_bucket_quantiles_by_hand(q: float, expected: float) -> None:
    assert quantile(BUCKETS, q) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.25, 0.1), (0.5, 0.2), (0.75, 0.35), (1.0, 0.5), (3.0, 0.85), (4.0, 0.9), (100.0, 0.9)],
)
def test_bucket_share_within_by_hand(seconds: float, expected: float) -> None:
    assert share_within(BUCKETS, seconds) == pytest.approx(expected)


def test_cx_score_formula() -> None:
    w = SHOP.defaults.score
    assert cx_score(0.9, 0.99, 0.01, w) == pytest.approx(
        100 * (0.9 * 0.5 + 0.99 * 0.3 + 0.99 * 0.2)
    )
    assert cx_score(0.9, None, 0.0, w) == pytest.approx(100 * (0.45 + 0.2) / 0.7)
    assert cx_score(None, None, None, w) is None
    # an objective burning at page severity: never healthy
    assert cx_score(0.9, 0.99, 0.01, w, burning=True) == SCORE_CAP


def test_merging_different_layouts_is_refused() -> None:
    with pytest.raises(ValueError, match="different bucket layouts"):
        merge_steps([BUCKETS, StepCounts((1.0,), (0, 0))])


# ---------------------------------------------------------------------------------------------
# Properties

counts = st.integers(min_value=0, max_value=1000)
BOUNDS = (0.1, 0.2, 0.4, 0.8, 1.6)


@st.composite
def step_counts(draw: st.DrawFn, exact: bool = False) -> StepCounts:
    samples = draw(st.lists(st.floats(0.0, 10.0), max_size=30)) if exact else None
    buckets = tuple(draw(st.lists(counts, min_size=len(BOUNDS) + 1, max_size=len(BOUNDS) + 1)))
    return StepCounts(
        BOUNDS,
        buckets,
        tuple(draw(st.lists(counts, min_size=6, max_size=6))),
        draw(counts),
        draw(st.dictionaries(st.sampled_from(["a", "b"]), st.tuples(counts, counts))),
        draw(st.dictionaries(st.sampled_from(["next", "self"]), counts)),
        tuple(samples) if samples is not None else None,
        tuple(range(len(samples))) if samples is not None else None,
    )


@given(step_counts())
def test_apdex_and_ratios_are_in_unit_interval(c: StepCounts) -> None:
    row = compute(SHOP, Window(0, 1, {("shop", "browse"): c}, {})).step("shop", "browse")
    for value in (row.apdex, row.timeliness, row.error_rate, row.accuracy):
        assert value is None or 0.0 <= value <= 1.0
    assert row.score is None or 0.0 <= row.score <= 100.0


@given(st.one_of(step_counts(), step_counts(exact=True)), st.floats(0, 20), st.floats(0, 20))
def test_compliance_is_monotonic_in_the_threshold(c: StepCounts, t1: float, t2: float) -> None:
    low, high = sorted((t1, t2))
    a, b = share_within(c, low), share_within(c, high)
    if a is None or b is None:
        assert a is b is None
    else:
        assert 0.0 <= a <= b <= 1.0


@given(st.one_of(step_counts(), step_counts(exact=True)), st.floats(0.01, 0.99))
def test_quantile_is_monotonic_and_inverts_compliance(c: StepCounts, q: float) -> None:
    value = quantile(c, q)
    if value is None:
        return
    assert quantile(c, min(q + 0.005, 0.999)) >= value  # type: ignore[operator]
    if c.samples is None:  # interpolation inverts exactly inside a bucket
        assert share_within(c, value) == pytest.approx(q, abs=1e-9) or value == BOUNDS[-1]


@given(step_counts(exact=True), step_counts(exact=True), step_counts(exact=True))
def test_step_merge_is_associative(a: StepCounts, b: StepCounts, c: StepCounts) -> None:
    assert a.merge(b).merge(c) == a.merge(b.merge(c)) == merge_steps([a, b, c])


SHOP_STEPS = ("browse", "pay", "receipt")


@st.composite
def shop_events(draw: st.DrawFn) -> list[Event]:
    """Random shop traffic: journeys walking a prefix of the steps, with retries and feedback."""
    events: list[Event] = []
    t = 1000.0
    for j in range(draw(st.integers(0, 12))):
        jid = f"j{j}"
        events.append(JourneyStarted(t, "shop", "app", jid))
        previous = None
        for step in draw(st.lists(st.sampled_from(SHOP_STEPS), max_size=5)):
            t += draw(st.floats(0.0, 30.0))
            duration = draw(st.floats(0.0, 20.0))
            checks = (CheckResult("amount_ok", draw(st.booleans())),) if step == "pay" else ()
            timeliness: Timeliness = draw(
                st.sampled_from(("satisfied", "tolerating", "frustrated"))
            )
            outcome: Outcome = draw(st.sampled_from(("ok", "error")))
            events.append(_step(t, jid, step, previous, duration, timeliness, outcome, checks))
            previous = step
        if draw(st.booleans()):
            events.append(FeedbackRecord(t, "shop", previous, jid, "nps", draw(st.integers(0, 10))))
        t += draw(st.floats(0.0, 30.0))
    return events


@settings(max_examples=60, deadline=None)
@given(shop_events(), st.sampled_from([1.0, 7.0, 60.0]))
def test_windows_add_up_to_the_whole(events: list[Event], step: float) -> None:
    if not events:
        return
    whole = from_events(SHOP, events, step=1e6).total()
    windowed = from_events(SHOP, events, step=step)
    merged = windowed.total()
    assert merged.steps == whole.steps
    assert merged.journeys == whole.journeys
    assert compute(SHOP, merged) == compute(SHOP, whole)


@settings(max_examples=60, deadline=None)
@given(shop_events(), shop_events(), shop_events())
def test_window_merge_is_associative_and_equals_the_concatenation(
    a: list[Event], b: list[Event], c: list[Event]
) -> None:
    def shifted(events: list[Event], by: float) -> list[Event]:
        return [type(e)(**{**_fields(e), "time": e.time + by}) for e in events]  # type: ignore[arg-type]

    b, c = shifted(b, 1e5), shifted(c, 2e5)
    parts = [
        from_events(SHOP, x, step=1e6, start=lo, end=lo + 1e5).total()
        for x, lo in ((a, 0.0), (b, 1e5), (c, 2e5))
    ]
    wa, wb, wc = parts
    left, right = wa.merge(wb).merge(wc), wa.merge(wb.merge(wc))
    assert left == right == merge_windows(parts)
    whole = from_events(SHOP, a + b + c, step=1e6, start=0.0, end=3e5).total()
    assert left.steps == whole.steps and left.journeys == whole.journeys
    assert compute(SHOP, left) == compute(SHOP, whole)


def _fields(event: Event) -> dict[str, object]:
    from dataclasses import fields

    return {f.name: getattr(event, f.name) for f in fields(event) if f.name != "kind"}


def test_spec_fixture_is_what_the_hand_values_assume() -> None:
    assert isinstance(SHOP, Spec)
    assert [SHOP.tolerating(s) for s in SHOP.journey("shop").steps] == [4.0, 8.0, 2.0]
