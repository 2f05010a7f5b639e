"""A hand-computed voice-of-the-customer fixture for journey ``buy`` of service ``shop``.

NPS: 6 promoters (score 10), 2 passives (8), 2 detractors (3) → 100 × (6 − 2) / 10 = 40.
CSAT: 4 × 5, 3 × 4, 2 × 3, 1 × 1 → 7 of 10 scored 4-5 → 70%.
Complaints: 3 feedbacks of category ``problem`` (2 ``praise`` besides) over 20 journeys started
→ complaint rate 0.15.
"""

from __future__ import annotations

from typing import Final

from cxmetrics.instrument.events import Event, FeedbackRecord, JourneyStarted

SERVICE, JOURNEY, LAST_STEP = "shop", "buy", "pay"
NPS_RESPONSES: Final = {10: 6, 8: 2, 3: 2}
CSAT_RESPONSES: Final = {5: 4, 4: 3, 3: 2, 1: 1}
TOPICS: Final = {"problem": 3, "praise": 2}
STARTED: Final = 20
NPS, CSAT, COMPLAINT_RATE = 40.0, 70.0, 0.15

SPEC: Final = f"""\
service: {SERVICE}
journeys:
  - name: {JOURNEY}
    feedback: {{window: 10m, baseline: 1h, min_responses: 10, max_drop: 20, for: 1m,
               objectives: {{nps: 50}}}}
    steps:
      - name: browse
        target: 1s
      - name: {LAST_STEP}
        target: 2s
"""


def events(t0: float) -> list[Event]:
    """The fixture as the runtime's records: 20 starts, then the responses and topics."""
    out: list[Event] = []
    t = t0
    for i in range(STARTED):
        out.append(JourneyStarted(t0 + i, JOURNEY, "app", f"{i:032x}"))
    for scale, responses in (("nps", NPS_RESPONSES), ("csat", CSAT_RESPONSES)):
        for score, n in responses.items():
            for _ in range(n):
                t += 37.0
                out.append(
                    FeedbackRecord(t, JOURNEY, LAST_STEP, "0" * 32, scale, score, "app")  # type: ignore[arg-type]
                )
    for category, n in TOPICS.items():
        for _ in range(n):
            t += 41.0
            out.append(
                FeedbackRecord(
                    t,
                    JOURNEY,
                    LAST_STEP,
                    "0" * 32,
                    None,
                    None,
                    "app",
                    "none",
                    category,  # type: ignore[arg-type]
                    "none",
                )
            )
    return out
