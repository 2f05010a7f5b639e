"""A segment's own good-step objective, run by real promtool on the generated rules: ``vip``
customers of ``bill_detail`` are promised 99% good steps (target 1 s) where the step promises
95% to everyone (target 2 s).

1,000 vip steps a minute, 200 of them bad (20%: a 20× burn of vip's 1% budget) among 10,000 good
mass steps a minute: pooled, 200 bad of 11,000 (1.8%) burns the step's 5% budget at 0.36× — the step's
own alerts stay silent (before this change nothing else judged vip) — and the vip alert
``CxStepErrorBudgetBurn{segment="vip"}`` pages on the 1h/5m and 6h/30m pairs with value 20. With vip at 99.5%
good (a 0.5× burn) nothing fires.
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

pytestmark = pytest.mark.slow  # runs promtool

SPEC = """\
service: bank
channels: [app, phone]
segments: [vip, mass]
journeys:
  - name: bills
    steps:
      - name: bill_detail
        target: 2s
        by_segment: {vip: {target: 1s, objectives: {good_ratio: 0.99}}}
"""
STEP = 'service="bank",journey="bills",step="bill_detail",channel="app"'


def _series(vip_bad_per_mille: int) -> list[dict[str, str]]:
    """Per minute for 90 minutes: vip 1000 steps (``vip_bad_per_mille`` bad), mass 10,000 good."""
    vip = f'{STEP},segment="vip"'
    mass = f'{STEP},segment="mass"'
    ok = 'outcome="ok",timeliness="satisfied"'
    bad = 'outcome="ok",timeliness="frustrated"'
    return [
        {"series": f"{names.STEPS}{{{vip},{ok}}}", "values": f"0+{1000 - vip_bad_per_mille}x90"},
        {"series": f"{names.STEPS}{{{vip},{bad}}}", "values": f"0+{vip_bad_per_mille}x90"},
        {"series": f"{names.GOOD_STEPS}{{{vip}}}", "values": f"0+{1000 - vip_bad_per_mille}x90"},
        {"series": f"{names.STEPS}{{{mass},{ok}}}", "values": "0+10000x90"},
        {"series": f"{names.GOOD_STEPS}{{{mass}}}", "values": "0+10000x90"},
        {
            "series": f'{names.STEP_TARGET}{{service="bank",journey="bills",step="bill_detail"}}',
            "values": "2x90",
        },
    ]


def _vip_page(long: str, short: str) -> dict[str, Any]:
    return {
        "exp_labels": {
            "service": "bank",
            "journey": "bills",
            "step": "bill_detail",
            "segment": "vip",
            "severity": "page",
            "long_window": long,
            "short_window": short,
        },
        "exp_annotations": {
            "summary": "bills/bill_detail (segment vip): good steps burn their 99% objective's "
            f"error budget 20.0× over {long} (and over {short})",
            "runbook_url": "docs/runbook.md#cxsteperrorbudgetburn",
        },
    }


def test_a_segments_own_objective_pages_where_the_pooled_one_is_silent(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(render(build(parse_spec(SPEC, "<spec>"))))
    alert = {"eval_time": "80m", "alertname": names.ALERT_GOOD_BURN}
    suite = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _series(200),
                "alert_rule_test": [
                    {**alert, "exp_alerts": [_vip_page("1h", "5m"), _vip_page("6h", "30m")]}
                ],
            },
            {
                "interval": "1m",
                "input_series": _series(5),
                "alert_rule_test": [{**alert, "exp_alerts": []}],
            },
        ],
    }
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False, allow_unicode=True))
    code, output = promtool("test", "rules", str(path))
    assert code == 0, output
