"""Segments and reason codes in the spec: bounded vocabularies, errors that name line and fix."""

from __future__ import annotations

import pytest

from cxmetrics._exceptions import SpecError
from cxmetrics.spec.load import parse_spec

SPEC = """version: 1
service: cards
channels: [app]
{top}
journeys:
  - name: card_activation
{journey}
    steps:
      - name: enter_card
        target: 500ms
"""


def problem(top: str = "", journey: str = "") -> str:
    with pytest.raises(SpecError) as caught:
        parse_spec(SPEC.format(top=top, journey=journey), "cx.yaml")
    return str(caught.value).splitlines()[1].strip()


def test_segments_and_reasons_load_and_journey_reasons_follow_the_spec_s() -> None:
    spec = parse_spec(
        SPEC.format(
            top="segments: [vip, mass]\nreasons: [card_blocked]",
            journey="    reasons: [otp_expired]",
        ),
        "cx.yaml",
    )
    assert spec.segments == ("vip", "mass")
    journey = spec.journey("card_activation")
    assert spec.journey_reasons(journey) == ("card_blocked", "otp_expired")


def test_a_misspelled_key_suggests_the_right_one() -> None:
    assert problem(top="segment: [vip]") == (
        "cx.yaml:4: segment: unknown field 'segment' (did you mean 'segments'?)"
    )
    assert problem(journey="    reason: [otp_expired]") == (
        "cx.yaml:7: journeys[card_activation].reason: unknown field 'reason' "
        "(did you mean 'reasons'?)"
    )


@pytest.mark.parametrize("word", ["other", "none"])
def test_reserved_words_are_refused_with_a_fix(word: str) -> None:
    assert problem(top=f"segments: [vip, {word}]") == (
        f"cx.yaml:4: segments: '{word}' is reserved (other: undeclared segments, none: no "
        "segment given); rename the segment"
    )


def test_a_reason_declared_twice_points_at_the_journey() -> None:
    assert problem(top="reasons: [otp_expired]", journey="    reasons: [otp_expired]") == (
        "cx.yaml:7: journeys[card_activation].reasons: reason 'otp_expired' is declared in the "
        "spec's reasons already (they apply to every journey); remove it here"
    )
    assert problem(top="segments: [vip, vip]") == (
        "cx.yaml:4: segments: segment 'vip' is declared twice; names must be unique"
    )
