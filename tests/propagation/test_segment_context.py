"""The customer segment travels in the journey context, covered by its MAC."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

import cxmetrics
from cxmetrics.propagation.codec import JourneyContext, Rejected, decode, encode
from cxmetrics.propagation.integrity import ContextKeys
from cxmetrics.spec.load import parse_spec
from tests.helpers.keys import CONTEXT_KEY

SPEC = """version: 1
service: cards
channels: [app, web]
segments: [vip, mass]
journeys:
  - name: card_activation
    steps:
      - {name: enter_card, target: 500ms}
      - {name: verify_otp, target: 1s}
"""


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    registry = CollectorRegistry()
    cxmetrics.configure(
        parse_spec(SPEC, "<cards>"), registry=registry, spans="off", context_key=CONTEXT_KEY
    )
    try:
        yield registry
    finally:
        cxmetrics.shutdown()


def test_segment_round_trips_through_baggage_and_resumes(registry: CollectorRegistry) -> None:
    with cxmetrics.journey("card_activation", segment="vip") as j, j.step("enter_card"):
        pass
    baggage = j.baggage()
    assert ",cx.seg=vip," in baggage
    context = decode(baggage)
    assert isinstance(context, JourneyContext) and context.segment == "vip"
    resumed = cxmetrics.journey("card_activation", headers={"baggage": baggage})
    assert (resumed.segment, resumed.journey_id) == ("vip", j.journey_id)
    with resumed, resumed.step("verify_otp"):
        pass
    sample = registry.get_sample_value(
        "cx_step_transitions_total",
        {
            "service": "cards",
            "journey": "card_activation",
            "from_step": "enter_card",
            "to_step": "verify_otp",
            "channel": "app",
            "segment": "vip",
        },
    )
    assert sample == 1
    # the slow general path reads the same (a member order the fast path does not take)
    reordered = ",".join(sorted(baggage.split(",")))
    assert decode(reordered) == context


def test_a_segment_changed_by_the_client_is_not_trusted(registry: CollectorRegistry) -> None:
    j = cxmetrics.journey("card_activation", segment="mass")
    forged = j.baggage().replace("cx.seg=mass", "cx.seg=vip")
    resumed = cxmetrics.journey("card_activation", headers={"baggage": forged})
    assert resumed.journey_id != j.journey_id  # a new instance: the forged context was ignored
    assert resumed.segment == "none"
    keys = ContextKeys({"k1": CONTEXT_KEY})
    signed = encode(JourneyContext("card_activation", "ab" * 16, segment="vip"), "", keys.mac)
    context = decode(signed)
    assert isinstance(context, JourneyContext) and keys.verify(context) is None
    tampered = decode(signed.replace("cx.seg=vip", "cx.seg=mass"))
    assert isinstance(tampered, JourneyContext) and keys.verify(tampered) == "bad_mac"


def test_a_malformed_segment_is_rejected() -> None:
    assert decode("cx.journey=card_activation,cx.id=" + "ab" * 16 + ",cx.seg=VIP!") == Rejected(
        "bad_segment"
    )
