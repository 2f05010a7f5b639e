"""The follow-up view: one per journey with key steps, Grafana-schema valid, every query built
from the catalogue (counters) or the workers' gauges aggregated with ``max``."""

from __future__ import annotations

from typing import Any

from cxmetrics.dashboards import build_dashboards
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.model import Spec
from tests.dashboards.test_dashboards import schema_errors

SEL = 'journey="loan_application",step="upload_documents"'


def _board(spec: Spec) -> dict[str, Any]:
    [board] = [b for b in build_dashboards(spec) if b["uid"].endswith("-followups")]
    return board


def test_the_follow_up_view_of_the_example_bank(example_spec: Spec) -> None:
    board = _board(example_spec)
    assert board["uid"] == "cx-loan_application-followups"
    assert board["title"] == "loan_application: follow-ups"
    assert schema_errors(board) == []
    panels = [(p["title"], [t["expr"] for t in p.get("targets", [])]) for p in board["panels"]]
    gauge = "max by (journey, step) (NAME{" + SEL + "})"
    counted = "sum by (journey, step) (increase(NAME{" + SEL + "}[$__rate_interval]))"
    assert panels == [
        ("upload_documents: followed up after 2h, late after 15m due", []),
        ("Due now", [gauge.replace("NAME", "cx_followups_due")]),
        ("Oldest due has waited", [gauge.replace("NAME", "cx_followups_oldest_due_seconds")]),
        ("Dead letters", [gauge.replace("NAME", "cx_followups_dead_letters")]),
        ("Waiting at the step", [gauge.replace("NAME", "cx_followups_tracked")]),
        (
            "Sent, retried, dead-lettered",
            [
                counted.replace("NAME", "cx_followups_sent_total"),
                counted.replace("NAME", "cx_followups_retried_total"),
                counted.replace("NAME", "cx_followups_dead_lettered_total"),
            ],
        ),
        (
            "Lag: the oldest due follow-up's wait",
            [gauge.replace("NAME", "cx_followups_oldest_due_seconds")],
        ),
    ]
    lag = next(p for p in board["panels"] if p["title"] == "Oldest due has waited")
    steps = lag["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["value"], s["color"]) for s in steps] == [
        (0.0, "green"),
        (450.0, "orange"),
        (900.0, "red"),
    ]
    [annotation] = [a for a in board["annotations"]["list"] if "expr" in a]
    assert annotation["expr"] == (
        'ALERTS{alertname="CxFollowUpLag",alertstate="firing",journey="loan_application"}'
    )


def test_journeys_without_key_steps_get_no_follow_up_view() -> None:
    spec = parse_spec(
        "service: s\njourneys:\n  - name: j\n    steps:\n      - {name: a, target: 1s}\n"
    )
    assert [b["uid"] for b in build_dashboards(spec)] == ["cx-j-overview", "cx-j-steps"]
