"""Scenario "scrape gap during a page", run by promtool on the generated rules: bill_detail burns
its good-step budget at 16× (a page after 2m); Prometheus then misses 7 minutes of scrapes. The
5m window empties, the burn condition stops holding — and the page must keep firing through the
gap (``keep_firing_for``). The same rules with ``keep_firing_for`` removed resolve the page in the
gap, the flap that was seen live (resolved, re-fired 4 minutes later)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cxmetrics.rules import build, render
from cxmetrics.rules.promtest import promtool
from cxmetrics.spec import names
from cxmetrics.spec.load import load_spec
from tests.helpers.paths import EXAMPLE_SPEC
from tests.helpers.promtool_series import spec_series

pytestmark = pytest.mark.slow  # runs promtool

SEL = 'service="bank_app",journey="bill_inquiry",step="bill_detail",channel="app"'
PAGE = (
    f'ALERTS{{alertname="{names.ALERT_GOOD_BURN}",alertstate="firing",long_window="1h",'
    'journey="bill_inquiry",step="bill_detail"}'
)
FIRING = {
    "labels": (
        f'ALERTS{{alertname="{names.ALERT_GOOD_BURN}",alertstate="firing",long_window="1h",'
        'short_window="5m",severity="page",service="bank_app",journey="bill_inquiry",'
        'step="bill_detail"}'
    ),
    "value": 1,
}


def _suite(tmp_path: Path, keep: bool) -> Path:
    spec = load_spec(EXAMPLE_SPEC)
    rules = yaml.safe_load(render(build(spec)))
    if not keep:
        for group in rules["groups"]:
            for rule in group["rules"]:
                rule.pop("keep_firing_for", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    # 100 steps a minute, 20 of them good (80% bad against a 5% budget: 16×); no scrape from
    # 31m to 37m.
    series = [
        {
            "series": f'{names.STEPS}{{{SEL},outcome="ok",timeliness="satisfied"}}',
            "values": "0+100x30 _x7 3800+100x10",
        },
        {"series": f"{names.GOOD_STEPS}{{{SEL}}}", "values": "0+20x30 _x7 760+20x10"},
        # the spec series the rules join miss the same scrapes
        *spec_series(spec, lambda value: f"{value!r}x30 _x7 {value!r}x10"),
    ]
    checks = [
        {"expr": PAGE, "eval_time": "20m", "exp_samples": [FIRING]},
        {"expr": PAGE, "eval_time": "36m", "exp_samples": [FIRING]},  # 5m window empty
    ]
    suite = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
    }
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def test_a_page_keeps_firing_through_a_scrape_gap(tmp_path: Path) -> None:
    code, output = promtool("test", "rules", str(_suite(tmp_path, keep=True)))
    assert code == 0, output


def test_without_keep_firing_for_the_gap_resolves_the_page(tmp_path: Path) -> None:
    code, output = promtool("test", "rules", str(_suite(tmp_path, keep=False)))
    assert code == 1
    assert "time: 36m" in output and "got: nil" in output.split("time: 36m")[1], output
