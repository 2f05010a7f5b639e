"""Per-segment and per-channel targets (``by_segment`` / ``by_channel`` on a step): the runtime
classifies each step against the target of the customer's segment, else of the channel, else
the step's; every slot of the step shares one bucket layout in which each of those targets and
tolerating thresholds is an exact boundary; the analyzer reads the classes as the app counted
them.

``bill_detail``: target 2 s (tolerating 8 s), ``vip`` 1 s (tolerating 4 s), ``phone`` 5 s.
Before this change the spec refused ``by_segment`` and every customer was judged on 2 s."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import cxmetrics
from cxmetrics.analysis.analyzer import analyze
from cxmetrics.analysis.sources import from_recorder
from cxmetrics.instrument import steps as steps_module
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.model import Spec
from cxmetrics.testing import Recording

SPEC = """\
service: bank
channels: [app, phone]
segments: [vip, mass]
journeys:
  - name: bills
    steps:
      - name: bill_detail
        target: 2s
        by_segment: {vip: {target: 1s}}
        by_channel: {phone: {target: 5s}}
"""


class Clock:
    """``perf_counter`` stand-in: each step lasts ``duration`` seconds."""

    def __init__(self) -> None:
        self.now, self.duration, self.starting = 0.0, 0.0, True

    def __call__(self) -> float:
        if not self.starting:
            self.now += self.duration
        self.starting = not self.starting
        return self.now


@pytest.fixture
def spec() -> Spec:
    return parse_spec(SPEC, "<bank>")


@pytest.fixture
def rec(spec: Spec, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Recording, Clock]]:
    clock = Clock()
    monkeypatch.setattr(steps_module, "_perf", clock)
    recording = Recording(spec)
    try:
        yield recording, clock
    finally:
        recording.close()


def _step(clock: Clock, seconds: float, channel: str, segment: str | None) -> str:
    clock.duration = seconds
    with cxmetrics.journey("bills", channel=channel, segment=segment) as j:
        s = j.step("bill_detail")
        s.start()
        s.finish()
    return str(s.timeliness)


def test_the_thresholds_come_from_the_segment_then_the_channel(spec: Spec) -> None:
    step = spec.journey("bills").step("bill_detail")
    assert spec.thresholds(step) == (2.0, 8.0)
    assert spec.thresholds(step, "app", "vip") == (1.0, 4.0)
    assert spec.thresholds(step, "phone", "mass") == (5.0, 20.0)
    assert spec.thresholds(step, "phone", "vip") == (1.0, 4.0)  # the segment's promise first
    bounds = spec.duration_bounds(step)
    assert {1.0, 2.0, 4.0, 5.0, 8.0, 20.0} <= set(bounds)


def test_each_customer_is_judged_against_their_own_target(
    rec: tuple[Recording, Clock], spec: Spec
) -> None:
    recording, clock = rec
    assert _step(clock, 1.5, "app", "vip") == "tolerating"  # vip: 1 s
    assert _step(clock, 1.5, "app", "mass") == "satisfied"  # default: 2 s
    assert _step(clock, 1.5, "app", None) == "satisfied"
    assert _step(clock, 4.5, "phone", "mass") == "satisfied"  # phone: 5 s
    assert _step(clock, 4.5, "app", "mass") == "tolerating"
    assert _step(clock, 4.5, "phone", "vip") == "frustrated"  # vip on the phone: 1 s, 4 s
    value = recording.value
    steps = "cx_steps_total"
    assert value(steps, segment="vip", timeliness="tolerating") == 1
    assert value(steps, segment="vip", timeliness="frustrated") == 1
    assert value(steps, channel="phone", segment="mass", timeliness="satisfied") == 1
    assert value("cx_good_steps_total", segment="mass") == 2
    # one layout: the channel's histogram adds its segments' buckets
    le = [
        s.labels["le"]
        for f in recording.registry.collect()
        for s in f.samples
        if s.name == "cx_step_duration_seconds_bucket" and s.labels["channel"] == "app"
    ]
    assert len(le) == len(spec.duration_bounds(spec.journey("bills").step("bill_detail"))) + 1
    analysis = analyze(spec, from_recorder(spec, recording.recorder))
    row = analysis.indicators.step("bills", "bill_detail")
    assert row.timeliness == pytest.approx(3 / 6)
    assert row.apdex == pytest.approx((3 + 2 * 0.5) / 6)


def test_variants_name_declared_segments_and_channels_with_file_and_line() -> None:
    from cxmetrics._exceptions import SpecError

    bad = SPEC.replace("by_segment: {vip:", "by_segment: {vpi:").replace(
        "by_channel: {phone:", "by_channel: {fax:"
    )
    with pytest.raises(SpecError) as caught:
        parse_spec(bad, "bank.yaml")
    text = str(caught.value)
    assert (
        "bank.yaml:9: journeys[bills].steps[bill_detail].by_segment: unknown segment 'vpi' "
        "(did you mean 'vip'?)" in text
    )
    assert (
        "bank.yaml:10: journeys[bills].steps[bill_detail].by_channel: unknown channel 'fax'" in text
    )
    tight = SPEC.replace("{vip: {target: 1s}}", "{vip: {target: 1s, tolerating: 500ms}}")
    with pytest.raises(SpecError, match=r"bank\.yaml:9: .*tolerating must be longer than target"):
        parse_spec(tight, "bank.yaml")
