"""Scenario "target change", both ways, run by promtool on the generated rules.

bill_detail's target T changes at 80m (1.5 s → 2.5 s, and back); with it the app's bucket layout
(``le`` values) changes, while the true latency stays the same (p95 = 1.5 s). For the 10 minutes in
which the recent window holds both layouts, ``histogram_quantile`` over the summed buckets read
p95 = 40 s (16 × T: the rank falls past every finite bucket of the new layout), and the latency
alert fired — the defect that was measured. With the generated rules no quantile is recorded while
its window spans the change, the latency alerts are held back while the baseline span does, and
the information alert ``CxStepTargetChanged`` says why until the baseline lies after the change.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cxmetrics.rules import build, parse_with_overrides, render
from cxmetrics.rules.promtest import promtool
from cxmetrics.spec import names
from cxmetrics.spec.model import Spec
from tests.helpers.paths import EXAMPLE_SPEC
from tests.helpers.promtool_series import layout, median_for_p95, spec_series

pytestmark = pytest.mark.slow  # runs promtool

SERVICE, J, S = "bank_app", "bill_inquiry", "bill_detail"
STEP = f'service="{SERVICE}",journey="{J}",step="{S}"'
CHANGE = 80  # minutes
END = 190
PER_MINUTE = 100
# p95 = 1.5 s: inside the fine part of both layouts (T/2 … 4T), so both estimate it well
MEDIAN = median_for_p95(1.5)
# a 1h trailing baseline keeps the timeline short: the span held back is 10m + 1h
OVERRIDE = "defaults: {regression: {window: 10m, baseline: trailing 1h, for: 5m}}"


def _layout(target: float) -> list[tuple[str, int]]:
    return layout(target, MEDIAN, PER_MINUTE)


def _series(before: float, after: float, spec: Spec) -> list[dict[str, str]]:
    """The old process's buckets until CHANGE, the new one's (counting from 0) after it; a
    bound both layouts share is one series that resets."""
    base = f'{STEP},channel="app"'
    old, new = dict(_layout(before)), dict(_layout(after))
    rows = []
    for le in sorted({*old, *new}, key=lambda v: float(v)):
        values = f"0+{old[le]}x{CHANGE} " if le in old else f"_x{CHANGE + 1} "
        values += f"0+{new[le]}x{END - CHANGE - 1}" if le in new else "stale"
        rows.append(
            {"series": f'{names.STEP_DURATION}_bucket{{{base},le="{le}"}}', "values": values}
        )
    rows += [
        {
            "series": f'{names.STEPS}{{{base},outcome="ok",timeliness="satisfied"}}',
            "values": f"0+{PER_MINUTE}x{END}",
        },
        {"series": f"{names.GOOD_STEPS}{{{base}}}", "values": f"0+{PER_MINUTE}x{END}"},
        {
            "series": f"{names.STEP_TARGET}{{{STEP}}}",
            "values": f"{before}x{CHANGE} {after}x{END - CHANGE - 1}",
        },
    ]
    return rows + spec_series(spec, lambda value: f"{value!r}x{END}")


def _alerts(name: str) -> str:
    """Any firing ``name`` alert of the step (by journey and step: rules without a service label
    are caught too)."""
    return f'ALERTS{{alertname="{name}",journey="{J}",step="{S}"}}'


def _suite(tmp_path: Path, before: float, after: float) -> Path:
    spec = parse_with_overrides(
        EXAMPLE_SPEC.read_text(),
        [OVERRIDE, f"journeys: [{{name: {J}, steps: [{{name: {S}, target: {after}s}}]}}]"],
    )
    (tmp_path / "rules.yml").write_text(render(build(spec)))
    changed = {
        "labels": (
            f'ALERTS{{alertname="{names.ALERT_TARGET_CHANGED}",alertstate="firing",'
            f'severity="info",{STEP}}}'
        ),
        "value": 1,
    }
    p95 = f'{names.rec_quantile(0.95, names.RECENT)}{{journey="{J}",step="{S}"}}'
    checks: list[dict[str, object]] = []
    # the latency alert never fires: not while both layouts are in the window (the defect),
    # not while the baseline spans the change
    for minute in (84, 86, 88, 90, 95, 100, 120, 150, 160, 175, 185):
        checks.append(
            {"expr": _alerts(names.ALERT_LATENCY), "eval_time": f"{minute}m", "exp_samples": []}
        )
    # the information alert from the change until the 1h10m baseline span lies after it
    for minute in (CHANGE + 2, 100, 140, CHANGE + 69):
        expr = _alerts(names.ALERT_TARGET_CHANGED)
        checks.append({"expr": expr, "eval_time": f"{minute}m", "exp_samples": [changed]})
    for minute in (CHANGE - 1, CHANGE + 72, 185):
        expr = _alerts(names.ALERT_TARGET_CHANGED)
        checks.append({"expr": expr, "eval_time": f"{minute}m", "exp_samples": []})
    # no p95 while the recent window holds two layouts (it read 40 s), the true one after
    checks.append({"expr": p95, "eval_time": f"{CHANGE + 5}m", "exp_samples": []})
    one = {"labels": "{}", "value": 1}  # the recorded p95 is 1.5 s within a bucket
    for minute in (CHANGE - 2, CHANGE + 15):
        expr = f"count({p95} > 1.35 < 1.65)"
        checks.append({"expr": expr, "eval_time": f"{minute}m", "exp_samples": [one]})
    suite = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _series(before, after, spec),
                "promql_expr_test": checks,
            }
        ],
    }
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


@pytest.mark.parametrize(("before", "after"), [(1.5, 2.5), (2.5, 1.5)])
def test_a_target_change_holds_the_latency_alert_back_and_says_so(
    tmp_path: Path, before: float, after: float
) -> None:
    code, output = promtool("test", "rules", str(_suite(tmp_path, before, after)))
    assert code == 0, output
