"""Exact Prometheus samples from a fresh registry, and promtool's verdict on the exposition."""

from __future__ import annotations

import itertools
import subprocess
from decimal import Decimal

import pytest
from prometheus_client import generate_latest

import cxmetrics
from cxmetrics._binaries import require_binary
from cxmetrics.instrument import steps as steps_module
from cxmetrics.spec.names import duration_buckets
from cxmetrics.testing import Recording


class FakeClock:
    """perf_counter stand-in: each step lasts exactly the next scripted duration."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 1000.0
        self.durations = durations
        self.starting = True

    def __call__(self) -> float:
        if not self.starting:
            self.now += self.durations.pop(0)
        self.starting = not self.starting
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock([0.5, 1.2, 7.0])
    monkeypatch.setattr(steps_module, "_perf", fake)
    return fake


def scripted_journey() -> None:
    with cxmetrics.journey("bill_inquiry", channel="web") as j:
        with j.step("bill_total") as s:
            s.fingerprint(Decimal("100.10"))
        with j.step("bill_detail") as s:
            s.reconcile(
                "total_matches_details", expected=Decimal("100.10"), actual=Decimal("100.00")
            )
            s.consistent("detail_consistent_with_total", Decimal("100.1"))
        with j.step("login"):
            pass


def test_exact_samples_for_a_scripted_journey(rec: Recording, clock: FakeClock) -> None:
    scripted_journey()
    v = rec.value
    base = {"journey": "bill_inquiry", "channel": "web"}
    # bill_total: 0.5 s against T = 1 s: satisfied and good.
    assert v("cx_steps_total", **base, step="bill_total", outcome="ok", timeliness="satisfied") == 1
    assert v("cx_good_steps_total", **base, step="bill_total") == 1
    # bill_detail: 1.2 s against T = 1.5 s: timely but the reconcile failed, so not good.
    assert (
        v("cx_steps_total", **base, step="bill_detail", outcome="ok", timeliness="satisfied") == 1
    )
    assert v("cx_good_steps_total", **base, step="bill_detail") == 0
    # login: 7 s against T = 0.8 s, tolerating 3.2 s: frustrated.
    assert v("cx_steps_total", **base, step="login", outcome="ok", timeliness="frustrated") == 1
    acc = {"journey": "bill_inquiry", "step": "bill_detail"}
    assert v("cx_accuracy_checks_total", **acc, check="total_matches_details", result="fail") == 1
    assert v("cx_accuracy_checks_total", **acc, check="total_matches_details", result="pass") == 0
    assert (
        v("cx_accuracy_checks_total", **acc, check="detail_consistent_with_total", result="pass")
        == 1
    )
    # relative error 0.10/100.10 = 0.000999 lands in the (0.0001, 0.001] bucket; it is the sum.
    rel = {**acc, "check": "total_matches_details"}
    assert v("cx_accuracy_relative_error_ratio_bucket", **rel, le="0.0001") == 0
    assert v("cx_accuracy_relative_error_ratio_bucket", **rel, le="0.001") == 1
    assert v("cx_accuracy_relative_error_ratio_sum", **rel) == pytest.approx(0.1 / 100.1)
    # duration histogram of bill_detail (all channels): 1.2 s falls in one bucket of its layout.
    dur = {"journey": "bill_inquiry", "step": "bill_detail"}
    bounds = duration_buckets(1.5, 6.0)
    assert v("cx_step_duration_seconds_count", **dur) == 1
    assert v("cx_step_duration_seconds_sum", **dur) == pytest.approx(1.2)
    below = max(b for b in bounds if b < 1.2)
    above = min(b for b in bounds if b >= 1.2)
    assert v("cx_step_duration_seconds_bucket", **dur, le=repr(below)) == 0
    assert v("cx_step_duration_seconds_bucket", **dur, le=repr(above)) == 1
    assert v("cx_step_duration_seconds_bucket", **dur, le="1.5") == 1
    assert v("cx_step_duration_seconds_bucket", **dur, le="+Inf") == 1
    trans = {"journey": "bill_inquiry"}
    assert (
        v("cx_step_transitions_total", **trans, from_step="bill_total", to_step="bill_detail") == 1
    )
    assert v("cx_step_transitions_total", **trans, from_step="bill_detail", to_step="login") == 1
    assert v("cx_step_transitions_total", **trans, from_step="login", to_step="bill_total") == 0
    assert v("cx_journeys_started_total", journey="bill_inquiry", channel="web") == 1
    assert v("cx_journeys_started_total", journey="bill_inquiry", channel="app") == 0
    assert v("cx_step_target_seconds", journey="bill_inquiry", step="bill_detail") == 1.5
    assert v("cx_step_tolerating_seconds", journey="bill_inquiry", step="login") == 3.2
    # the recorder saw the same thing
    steps = rec.recorder.steps
    assert [(s.step, s.timeliness, s.good, s.previous_step) for s in steps] == [
        ("bill_total", "satisfied", True, None),
        ("bill_detail", "satisfied", False, "bill_total"),
        ("login", "frustrated", False, "bill_detail"),
    ]
    assert len({s.journey_id for s in steps}) == 1


def test_bucket_layout_has_exact_target_and_tolerating_boundaries() -> None:
    bounds = duration_buckets(0.8, 3.2)
    assert 0.8 in bounds and 3.2 in bounds
    assert len(bounds) == 23  # T/16, 21 fine bounds T/4 … 4T, 8T
    assert bounds == tuple(sorted(bounds))
    fine = [b for b in bounds if 0.2 <= b <= 3.2]
    ratios = [b / a for a, b in itertools.pairwise(fine)]
    assert max(ratios) < 1.15  # about 15% resolution from T/4 to 4T
    assert len(duration_buckets(0.8, 2.0)) == 24  # a tolerating threshold off the grid is added


@pytest.mark.slow
def test_promtool_check_metrics_is_silent(rec: Recording, clock: FakeClock) -> None:
    scripted_journey()
    promtool = require_binary("promtool")
    # promtool reads the Prometheus text format (OpenMetrics is checked by the scrape tests).
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(rec.registry),
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    assert result.stdout.decode() + result.stderr.decode() == ""


def test_feedback_counts_by_journey_and_last_step(rec: Recording) -> None:
    with cxmetrics.journey("bill_inquiry") as j:
        j.feedback(csat=2)
        with j.step("bill_total"):
            pass
        j.feedback(csat=5, nps=9)
        j.feedback(nps=11)  # out of range: ignored and counted, never raised
        j.feedback(csat=True)
    fb = {"journey": "bill_inquiry"}
    assert rec.value("cx_feedback_responses_total", **fb, step="none", scale="csat", score="2") == 1
    assert (
        rec.value("cx_feedback_responses_total", **fb, step="bill_total", scale="csat", score="5")
        == 1
    )
    assert (
        rec.value("cx_feedback_responses_total", **fb, step="bill_total", scale="nps", score="9")
        == 1
    )
    assert rec.value("cx_internal_errors_total", component="feedback") >= 2
    assert [(f.scale, f.score, f.step) for f in rec.recorder.feedback] == [
        ("csat", 2, None),
        ("csat", 5, "bill_total"),
        ("nps", 9, "bill_total"),
    ]


def test_undeclared_names_fold_into_other_and_are_counted(rec: Recording) -> None:
    with cxmetrics.journey("bill_inquiry", channel="fax") as j, j.step("bill_totl") as s:
        s.check("made_up", True)
    with cxmetrics.journey("mystery") as j, j.step("anything"):
        pass
    v = rec.value
    assert (
        v(
            "cx_steps_total",
            journey="bill_inquiry",
            step="other",
            channel="other",
            outcome="ok",
            timeliness="satisfied",
        )
        == 1
    )
    assert (
        v(
            "cx_accuracy_checks_total",
            journey="bill_inquiry",
            step="other",
            check="other",
            result="pass",
        )
        == 1
    )
    assert (
        v(
            "cx_steps_total",
            journey="other",
            step="other",
            channel="app",
            outcome="ok",
            timeliness="satisfied",
        )
        == 1
    )
    for kind, count in (("journey", 1), ("step", 1), ("check", 1), ("channel", 1)):
        assert v("cx_undeclared_names_total", kind=kind) == count


def test_ten_thousand_random_step_names_keep_series_bounded(rec: Recording) -> None:
    import random

    def series() -> int:
        return sum(len(m.samples) for m in rec.registry.collect())

    with cxmetrics.journey("bill_inquiry") as j:
        for _ in range(2):  # the second one also creates the other → other transition
            with j.step("nope") as s:
                s.check("nope", False)
    before = series()
    rng = random.Random(3)
    for _ in range(10_000):
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_-!é ") for _ in range(12))
        with j.step(name) as s:
            s.check(name, False)
    assert series() == before
    assert rec.value("cx_undeclared_names_total", kind="step") == 10_002
    assert (
        rec.value(
            "cx_steps_total",
            journey="bill_inquiry",
            step="other",
            channel="app",
            outcome="ok",
            timeliness="satisfied",
        )
        == 10_002
    )
