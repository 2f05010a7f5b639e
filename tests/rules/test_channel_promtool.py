"""Channel scenarios, run by promtool on the generated rules for bill_detail (target 1.5 s), whose
web channel is always slower than its app channel:

- **channel mix**: traffic moves from 80% app to 80% web at 40m, no channel gets slower — no
  latency alert (summed over channels the p95 rose, and both latency alerts fired: the measured
  defect);
- **one-channel regression**: web alone gets 40% slower at 40m — the latency alert fires for
  ``channel="web"`` only (summed over channels a +40% on web read +11%).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cxmetrics.rules import build, parse_with_overrides, render
from cxmetrics.rules.promtest import promtool
from cxmetrics.spec import names
from cxmetrics.spec.model import Spec
from tests.helpers.paths import EXAMPLE_SPEC
from tests.helpers.promtool_series import cumulative, layout, median_for_p95, spec_series

pytestmark = pytest.mark.slow  # runs promtool

J, S, TARGET = "bill_inquiry", "bill_detail", 1.5
STEP = f'service="bank_app",journey="{J}",step="{S}"'
CHANGE, END = 40, 80
TRAILING = "defaults: {regression: {window: 10m, baseline: trailing 1h, for: 5m}}"
# (steps a minute, p95 seconds) of each channel before and from CHANGE
Traffic = dict[str, tuple[tuple[int, float], tuple[int, float]]]


def _series(traffic: Traffic, spec: Spec) -> list[dict[str, str]]:
    rows = []
    for channel, (before, after) in traffic.items():
        base = f'{STEP},channel="{channel}"'
        minutes = [before if m <= CHANGE else after for m in range(END + 1)]
        tables = [dict(layout(TARGET, median_for_p95(p95), n)) for n, p95 in minutes]
        for le in tables[0]:
            rows.append(
                {
                    "series": f'{names.STEP_DURATION}_bucket{{{base},le="{le}"}}',
                    "values": cumulative([t[le] for t in tables]),
                }
            )
        volume = cumulative([n for n, _ in minutes])
        ok = f'{names.STEPS}{{{base},outcome="ok",timeliness="satisfied"}}'
        rows += [
            {"series": ok, "values": volume},
            {"series": f"{names.GOOD_STEPS}{{{base}}}", "values": volume},
        ]
    rows.append({"series": f"{names.STEP_TARGET}{{{STEP}}}", "values": f"{TARGET}x{END}"})
    return rows + spec_series(spec, lambda value: f"{value!r}x{END}")


def _run(tmp_path: Path, traffic: Traffic, checks: list[Any]) -> None:
    spec = parse_with_overrides(EXAMPLE_SPEC.read_text(), [TRAILING])
    (tmp_path / "rules.yml").write_text(render(build(spec)))
    suite = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": _series(traffic, spec), "promql_expr_test": checks}
        ],
    }
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    code, output = promtool("test", "rules", str(path))
    assert code == 0, output


def _latency(**labels: str) -> str:
    """Latency alerts of the step, pending or firing (by journey and step, so rules without a
    channel label are caught too)."""
    extra = "".join(f',{k}="{v}"' for k, v in labels.items())
    return f'ALERTS{{alertname="{names.ALERT_LATENCY}",journey="{J}",step="{S}"{extra}}}'


def test_a_pure_channel_mix_shift_fires_nothing(tmp_path: Path) -> None:
    traffic: Traffic = {"app": ((80, 1.0), (20, 1.0)), "web": ((20, 1.4), (80, 1.4))}
    checks = [
        {"expr": _latency(), "eval_time": f"{m}m", "exp_samples": []}
        for m in (38, 45, 48, 50, 55, 60, 70, 80)
    ]
    _run(tmp_path, traffic, checks)


def test_a_regression_on_web_alone_fires_for_web(tmp_path: Path) -> None:
    traffic: Traffic = {"app": ((80, 1.0), (80, 1.0)), "web": ((20, 1.0), (20, 1.4))}
    firing = {
        "labels": (
            f'ALERTS{{alertname="{names.ALERT_LATENCY}",alertstate="firing",{STEP},'
            'channel="web",quantile="0.95",severity="ticket"}'
        ),
        "value": 1,
    }
    checks: list[Any] = [
        {"expr": _latency(quantile="0.95"), "eval_time": "38m", "exp_samples": []},
        {
            "expr": _latency(quantile="0.95", alertstate="firing"),
            "eval_time": "50m",
            "exp_samples": [firing],
        },
        {"expr": _latency(channel="app"), "eval_time": "50m", "exp_samples": []},
    ]
    _run(tmp_path, traffic, checks)
