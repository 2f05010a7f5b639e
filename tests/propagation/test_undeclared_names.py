"""An undeclared journey name may carry data (``journey_4111111111111111``): it is folded to
``other`` before it reaches the event log or the baggage header."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

import cxmetrics
from tests.helpers.paths import EXAMPLE_SPEC

CARD = "4111111111111111"


def test_an_undeclared_journey_name_reaches_neither_the_event_log_nor_baggage(
    tmp_path: Path,
) -> None:
    log = tmp_path / "events.jsonl"
    assert cxmetrics.configure(EXAMPLE_SPEC, registry=CollectorRegistry(), event_log=log)
    with cxmetrics.journey(f"journey_{CARD}", channel="app") as j:
        with j.step("bill_total"):
            pass
        j.feedback(csat=4)
        headers: dict[str, str] = {}
        cxmetrics.inject(headers)
        j.inject(headers)
        outgoing = {"baggage": "k=v"}
        j.inject(outgoing)
    baggage = j.baggage()
    cxmetrics.shutdown()
    text = log.read_text(encoding="utf-8")
    assert text.count('"journey":"other"') == 3, text
    assert CARD not in text
    assert baggage.startswith("cx.journey=other,cx.id=")
    assert headers["baggage"].startswith("cx.journey=other,cx.id=")
    assert outgoing["baggage"].startswith("k=v,cx.journey=other,cx.id=")
    assert CARD not in baggage + headers["baggage"] + outgoing["baggage"] + repr(j)
