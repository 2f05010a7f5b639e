"""Drop-off judged after a journey's conversion window, on the journey overview (issue 20 item 4
with the conversion window of issue 19): a journey that declares ``conversion_window`` gets the
panel, with the windowed PromQL form of ``cxmetrics.analysis.conversion``; one without does not."""

from __future__ import annotations

from typing import Any

from cxmetrics.dashboards import build_dashboards
from cxmetrics.spec.load import parse_spec

SPEC = """\
service: s
journeys:
  - name: calls
    conversion_window: 30m
    steps:
      - name: answered
        target: 20s
      - name: resolved
        target: 5m
  - name: plain
    steps:
      - name: a
        target: 1s
      - name: b
        target: 1s
"""
TITLE = "Conversion judged after the window"


def _panels(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["title"]: p for p in board["panels"] if p["type"] != "row"}


def test_a_journey_with_a_conversion_window_shows_conversion_judged_after_it() -> None:
    boards = {b["uid"]: b for b in build_dashboards(parse_spec(SPEC, "<spec>"))}
    panel = _panels(boards["cx-calls-overview"])[TITLE]
    [target] = panel["targets"]
    assert target["legendFormat"] == "answered → resolved"
    assert target["expr"] == (
        'clamp((sum (increase(cx_step_transitions_total{service="$service",journey="calls",'
        'from_step="answered",to_step="resolved"}[$__range])) or 0 * sum (increase('
        'cx_steps_total{service="$service",journey="calls",step="answered"}[$__range] offset '
        '30m))) / (sum (increase(cx_steps_total{service="$service",journey="calls",'
        'step="answered"}[$__range] offset 30m)) > 0), 0, 1)'
    )
    assert "30m conversion window" in panel["description"]
    assert TITLE not in _panels(boards["cx-plain-overview"])
