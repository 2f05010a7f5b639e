"""CxFeedbackScoreDrop and the feedback recording rules, run by real promtool on the rules
generated from ``tests.helpers.feedback.SPEC`` (window 10m, baseline 1h, min_responses 10, NPS
objective 50, max_drop 20):

- **objective**: the fixture's 10 NPS responses (6 promoters, 2 passives, 2 detractors) arrive
  at minutes 61-66: the recorded NPS is 40 (hand-computed), below 50 with 10 responses — the alert
  fires with ``against="objective"``, value 40; no baseline alert (no responses an hour earlier);
- **below min responses**: 6 responses (3 promoters, 1 passive, 2 detractors: NPS 16.7) — no
  alert at all, although the score is far below the objective;
- **baseline drop**: an hour earlier 10 responses gave NPS 80 (8 promoters, 2 passives), now 40:
  a 40-point drop, more than max_drop 20 — ``against="baseline"`` fires beside the objective one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cxmetrics.rules import build, render
from cxmetrics.rules.promtest import promtool
from cxmetrics.spec import names
from cxmetrics.spec.load import parse_spec
from tests.helpers import feedback as fx

pytestmark = pytest.mark.slow  # runs promtool

LABELS = f'service="{fx.SERVICE}",journey="{fx.JOURNEY}",step="{fx.LAST_STEP}",channel="app",segment="none"'


def _arrivals(before: dict[int, int], now: dict[int, int]) -> list[dict[str, str]]:
    """NPS counters: ``before`` arriving at minutes 1-9, ``now`` at minutes 61-69 (one a
    minute per score until its count is reached), sampled every minute to minute 80."""
    rows = []
    for score in sorted(set(before) | set(now)):
        total, values = 0, []
        for minute in range(81):
            if 1 <= minute <= 9 and minute <= before.get(score, 0):
                total += 1
            if 61 <= minute <= 69 and minute - 60 <= now.get(score, 0):
                total += 1
            values.append(str(total))
        series = f'{names.FEEDBACK}{{{LABELS},scale="nps",score="{score}"}}'
        rows.append({"series": series, "values": " ".join(values)})
    return rows


def _alert(against: str, summary: str) -> dict[str, Any]:
    return {
        "exp_labels": {
            "service": fx.SERVICE,
            "journey": fx.JOURNEY,
            "indicator": "nps",
            "against": against,
            "severity": "ticket",
        },
        "exp_annotations": {
            "summary": summary,
            "description": (
                "Customers rate this journey worse (100 × (promoters (9–10) − detractors (0–6)) "
                "/ nps responses, from −100 to 100). The journey overview shows the score by the "
                "step the customers had reached, and the complaints beside it."
            ),
            "runbook_url": "docs/runbook.md#cxfeedbackscoredrop",
        },
    }


def _test(series: list[dict[str, str]], alerts: list[dict[str, Any]], nps: float) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": f"round({names.rec_feedback('nps', 'score', 'window')}, 0.001)",
                "eval_time": "70m",
                "exp_samples": [
                    {"labels": f'{{service="{fx.SERVICE}",journey="{fx.JOURNEY}"}}', "value": nps}
                ],
            }
        ],
        "alert_rule_test": [
            {"eval_time": "70m", "alertname": names.ALERT_FEEDBACK_DROP, "exp_alerts": alerts}
        ],
    }


OBJECTIVE = "buy: NPS is 40 over 10m from 10 responses, below its objective 50"


def test_the_feedback_drop_alert_fires_on_enough_responses_only(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(render(build(parse_spec(fx.SPEC, "<spec>"))))
    suite = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            _test(_arrivals({}, fx.NPS_RESPONSES), [_alert("objective", OBJECTIVE)], 40.0),
            _test(_arrivals({}, {10: 3, 8: 1, 3: 2}), [], 16.667),
            _test(
                _arrivals({10: 8, 8: 2}, fx.NPS_RESPONSES),
                [
                    _alert("objective", OBJECTIVE),
                    _alert(
                        "baseline",
                        "buy: NPS is 40 over 10m from 10 responses, down from 80 the same 10m "
                        "1h earlier (more than 20 points)",
                    ),
                ],
                40.0,
            ),
        ],
    }
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False, allow_unicode=True))
    code, output = promtool("test", "rules", str(path))
    assert code == 0, output
