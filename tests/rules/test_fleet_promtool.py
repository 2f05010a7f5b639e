"""Scenarios of a fleet's life, run by promtool on the generated rules for bill_detail (100 steps a
minute, p95 = 1.5 s throughout, every step good):

- **fresh install**: the 1-day baseline does not exist yet — no alert, and
  ``cx:step_baseline:missing`` = 1 says "no baseline yet" while the step's rate is there;
- **restart**: the instance's counters reset to 0 at 41m — no alert, the p95 stays 1.5 s;
- **instance replaced**: instance ``a`` stops at 40m (stale), ``b`` starts at 40m from 0 — no
  alert, the p95 stays 1.5 s, the step rate is one instance's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cxmetrics.rules import build, parse_with_overrides, render
from cxmetrics.rules.promtest import promtool
from cxmetrics.spec import names
from tests.helpers.paths import EXAMPLE_SPEC
from tests.helpers.promtool_series import layout, median_for_p95

pytestmark = pytest.mark.slow  # runs promtool

SERVICE, J, S = "bank_app", "bill_inquiry", "bill_detail"
STEP = f'service="{SERVICE}",journey="{J}",step="{S}"'
PER_MINUTE, TARGET, END = 100, 1.5, 100
TRAILING = "defaults: {regression: {window: 10m, baseline: trailing 1h, for: 5m}}"
Lifetime = tuple[int, int]  # first and last minute a process is scraped


def _values(per_minute: int, lives: list[Lifetime]) -> str:
    """A counter of one series over 0..END: from 0 at each lifetime's start, ``stale`` the
    minute after a lifetime that is not followed by another one."""
    out = ["_"] * (END + 1)
    for first, last in lives:
        for minute in range(first, last + 1):
            out[minute] = str((minute - first) * per_minute)
        if last < END and out[last + 1] == "_":
            out[last + 1] = "stale"
    return " ".join(out)


def _series(instances: dict[str, list[Lifetime]]) -> list[dict[str, str]]:
    rows = []
    for instance, lives in instances.items():
        base = f'{STEP},channel="app",instance="{instance}"'
        for le, per in layout(TARGET, median_for_p95(1.5), PER_MINUTE):
            rows.append(
                {
                    "series": f'{names.STEP_DURATION}_bucket{{{base},le="{le}"}}',
                    "values": _values(per, lives),
                }
            )
        ok = f'{names.STEPS}{{{base},outcome="ok",timeliness="satisfied"}}'
        rows.append({"series": ok, "values": _values(PER_MINUTE, lives)})
        good = f"{names.GOOD_STEPS}{{{base}}}"
        rows.append({"series": good, "values": _values(PER_MINUTE, lives)})
        target = f'{names.STEP_TARGET}{{{STEP},instance="{instance}"}}'
        gauge = ["_"] * (END + 1)
        for first, last in lives:
            gauge[first : last + 1] = [repr(TARGET)] * (last + 1 - first)
        rows.append({"series": target, "values": " ".join(gauge)})
    return rows


def _run(
    tmp_path: Path, overrides: list[str], series: list[dict[str, str]], checks: list[Any]
) -> None:
    spec = parse_with_overrides(EXAMPLE_SPEC.read_text(), overrides)
    (tmp_path / "rules.yml").write_text(render(build(spec)))
    suite = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
    }
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    code, output = promtool("test", "rules", str(path))
    assert code == 0, output


def _quiet(*minutes: int) -> list[dict[str, object]]:
    """No alert of the journey (pending or firing) at ``minutes``."""
    return [
        {"expr": f'ALERTS{{journey="{J}"}}', "eval_time": f"{m}m", "exp_samples": []}
        for m in minutes
    ]


def _p95_right(*minutes: int) -> list[dict[str, object]]:
    p95 = f'{names.rec_quantile(0.95, names.RECENT)}{{journey="{J}",step="{S}"}}'
    return [
        {
            "expr": f"count({p95} > 1.35 < 1.65)",
            "eval_time": f"{m}m",
            "exp_samples": [{"labels": "{}", "value": 1}],
        }
        for m in minutes
    ]


def _rate(minute: int) -> dict[str, object]:
    """The recent step rate is one instance's 100 a minute (no double counting, no gap)."""
    rate = f'{names.REC_STEP_RATE}{{journey="{J}",step="{S}"}}'
    return {
        "expr": f"count({rate} > 1.55 < 1.78)",
        "eval_time": f"{minute}m",
        "exp_samples": [{"labels": "{}", "value": 1}],
    }


def test_fresh_install_says_no_baseline_yet_and_fires_nothing(tmp_path: Path) -> None:
    missing = {
        "labels": f"{names.REC_BASELINE_MISSING}{{{STEP}}}",
        "value": 1,
    }
    checks: list[Any] = _quiet(15, 30, 60, 90)
    checks += [
        {
            "expr": f"{names.REC_BASELINE_MISSING}{{{STEP}}}",
            "eval_time": f"{m}m",
            "exp_samples": [missing],
        }
        for m in (15, 60, 90)
    ]
    checks += _p95_right(30, 90)
    _run(tmp_path, [], _series({"a": [(0, END)]}), checks)


def test_a_restart_resets_the_counters_and_fires_nothing(tmp_path: Path) -> None:
    checks: list[Any] = _quiet(42, 45, 50, 60, 75, 90)
    checks += _p95_right(38, 45, 55, 90)
    checks += [_rate(52), _rate(60)]  # (the minute of the restart itself is lost)
    # the trailing baseline exists: nothing says "no baseline yet"
    checks.append(
        {"expr": f"{names.REC_BASELINE_MISSING}{{{STEP}}}", "eval_time": "45m", "exp_samples": []}
    )
    _run(tmp_path, [TRAILING], _series({"a": [(0, 40), (41, END)]}), checks)


def test_an_instance_replaced_fires_nothing(tmp_path: Path) -> None:
    checks: list[Any] = _quiet(41, 45, 50, 60, 75, 90)
    checks += _p95_right(38, 45, 55, 90)
    checks += [_rate(60), _rate(90)]
    _run(tmp_path, [TRAILING], _series({"a": [(0, 40)], "b": [(40, END)]}), checks)
