"""The standard semantics, checked where the numbers were wrong: the generated recording rules and
the dashboard queries, evaluated by promtool on counter series, against the analyzer on the same
counts.

- 60 fast errors + 60 OKs on a step (bill_detail): Apdex 0.5, within target 0.5 — a fast error is
  neither satisfied nor within target (the rules and dashboards said 1.0);
- 60 late answers + 40 fast failures (login): within target 0, Apdex 0.3 (they said 0.4 / 0.7);
- login has no accuracy checks: its CX score rescales Apdex and success (the dashboards counted it
  fully accurate: 57 instead of 38.6);
- transfer/confirm fails 5% of its ``limits_applied`` checks against a 99.9% objective (a 50×
  burn, a page): its CX score is capped at ``catalogue.SCORE_CAP`` (it read 98.5, green);
- a good-step counter whose series began before the step counter's (a label combination created
  on first use) read a good ratio of 1.0005 live: every ratio is clamped to [0, 1].

Values are compared as ``round(1e6 × value)`` (promtool compares samples exactly).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cxmetrics.analysis import catalogue
from cxmetrics.analysis.counts import (
    ERROR_SATISFIED,
    OK_SATISFIED,
    OK_TOLERATING,
    StepCounts,
    Window,
)
from cxmetrics.analysis.indicators import compute
from cxmetrics.dashboards.queries import JourneyQueries
from cxmetrics.rules import build, render
from cxmetrics.rules.promtest import promtool
from cxmetrics.spec import names
from cxmetrics.spec.load import load_spec
from cxmetrics.spec.model import Spec
from cxmetrics.spec.names import duration_buckets
from tests.helpers.grafana_variables import substitute
from tests.helpers.paths import EXAMPLE_SPEC

pytestmark = pytest.mark.slow  # runs promtool

MINUTES = 30
EVAL = "20m"  # the regression window (10m) lies wholly inside the series
PER_10M = 10  # counts below are per minute; the analyzer sees 10 minutes of them


def _series(metric: str, per_minute: int, **labels: str) -> dict[str, str]:
    """A counter of the example service (every journey-scoped series carries ``service``)."""
    inner = ",".join(f'{k}="{v}"' for k, v in {"service": "bank_app", **labels}.items())
    return {"series": f"{metric}{{{inner}}}", "values": f"0+{per_minute}x{MINUTES}"}


def _steps(journey: str, step: str, per_minute: dict[tuple[str, str], int]) -> list[dict[str, str]]:
    return [
        _series(names.STEPS, n, journey=journey, step=step, channel="app", outcome=o, timeliness=t)
        for (o, t), n in per_minute.items()
    ]


def _counts(
    spec: Spec,
    journey: str,
    step: str,
    classes: dict[int, int],
    good: int,
    checks: dict[str, tuple[int, int]] | None = None,
) -> StepCounts:
    j = spec.journey(journey)
    s = j.step(step)
    bounds = duration_buckets(s.target, spec.tolerating(s))
    values = [0] * 6
    for index, n in classes.items():
        values[index] = n * PER_10M
    return StepCounts(
        bounds,
        (0,) * (len(bounds) + 1),
        tuple(values),
        good * PER_10M,
        {k: (p * PER_10M, f * PER_10M) for k, (p, f) in (checks or {}).items()},
    )


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec(EXAMPLE_SPEC)


def _inputs() -> list[dict[str, str]]:
    series = _steps(
        "bill_inquiry", "bill_detail", {("ok", "satisfied"): 6, ("error", "satisfied"): 6}
    )
    series += [
        _series(names.GOOD_STEPS, 6, journey="bill_inquiry", step="bill_detail", channel="app"),
        *(
            _series(
                names.ACCURACY_CHECKS,
                6,
                journey="bill_inquiry",
                step="bill_detail",
                check=c,
                result="pass",
            )
            for c in ("total_matches_details", "detail_consistent_with_total")
        ),
    ]
    series += _steps("bill_inquiry", "login", {("ok", "tolerating"): 6, ("error", "satisfied"): 4})
    series.append(_series(names.GOOD_STEPS, 0, journey="bill_inquiry", step="login", channel="app"))
    series += _steps("transfer", "confirm", {("ok", "satisfied"): 20})
    series += [
        _series(names.GOOD_STEPS, 19, journey="transfer", step="confirm", channel="app"),
        _series(
            names.ACCURACY_CHECKS,
            19,
            journey="transfer",
            step="confirm",
            check="limits_applied",
            result="pass",
        ),
        _series(
            names.ACCURACY_CHECKS,
            1,
            journey="transfer",
            step="confirm",
            check="limits_applied",
            result="fail",
        ),
    ]
    # transfer/payee: the web channel's step counter appears at its first step (value 1 at 15m),
    # its good-step counter was exposed (at 0) from the start.
    series += _steps("transfer", "payee", {("ok", "satisfied"): 5})
    series.append(_series(names.GOOD_STEPS, 5, journey="transfer", step="payee", channel="app"))
    web = {"journey": "transfer", "step": "payee", "channel": "web"}
    series.append(
        {
            "series": f'{names.STEPS}{{journey="transfer",step="payee",channel="web",'
            'outcome="ok",timeliness="satisfied"}',
            "values": "_x15 1+1x15",
        }
    )
    series.append(
        {
            "series": f'{names.GOOD_STEPS}{{journey="{web["journey"]}",step="payee",channel="web"}}',
            "values": "0x14 1+1x15",
        }
    )
    return series


def _micro(value: float | None) -> int:
    assert value is not None
    return round(value * 1e6)


def _expr_tests(spec: Spec) -> list[dict[str, object]]:
    window = Window(
        0.0,
        600.0,
        {
            ("bill_inquiry", "bill_detail"): _counts(
                spec,
                "bill_inquiry",
                "bill_detail",
                {OK_SATISFIED: 6, ERROR_SATISFIED: 6},
                6,
                {"total_matches_details": (6, 0), "detail_consistent_with_total": (6, 0)},
            ),
            ("bill_inquiry", "login"): _counts(
                spec, "bill_inquiry", "login", {OK_TOLERATING: 6, ERROR_SATISFIED: 4}, 0
            ),
            ("transfer", "confirm"): _counts(
                spec, "transfer", "confirm", {OK_SATISFIED: 20}, 19, {"limits_applied": (19, 1)}
            ),
        },
        {},
    )
    analyzed = compute(spec, window)
    # The semantics themselves, on the analyzer (the promtool tests hold rules and panels to it).
    detail, login = (
        analyzed.step("bill_inquiry", "bill_detail"),
        analyzed.step("bill_inquiry", "login"),
    )
    assert (detail.apdex, detail.timeliness) == (0.5, 0.5)
    assert (login.apdex, login.timeliness, login.accuracy) == (0.3, 0.0, None)
    assert login.score == pytest.approx(100 * (0.5 * 0.3 + 0.2 * 0.6) / 0.7)
    assert analyzed.step("transfer", "confirm").score == catalogue.SCORE_CAP
    tests: list[dict[str, object]] = []

    def expect(expr: str, labels: str, value: float | None) -> None:
        tests.append(
            {
                "expr": f"round(1e6 * max by (step) ({expr}))",
                "eval_time": EVAL,
                "exp_samples": [{"labels": labels, "value": _micro(value)}],
            }
        )

    for journey, step in (
        ("bill_inquiry", "bill_detail"),
        ("bill_inquiry", "login"),
        ("transfer", "confirm"),
    ):
        row = analyzed.step(journey, step)
        sel = f'{{journey="{journey}",step="{step}"}}'
        q = JourneyQueries(spec, spec.journey(journey))
        labels = f'{{step="{step}"}}'
        expect(names.REC_APDEX + sel, labels, row.apdex)
        expect(names.REC_TIMELINESS + sel, labels, row.timeliness)
        expect(substitute(q.apdex("10m", step=step), window="10m"), labels, row.apdex)
        expect(substitute(q.timeliness("10m", step=step), window="10m"), labels, row.timeliness)
        expect(
            f"({substitute(q.cx_score('10m', step=step), window='10m')}) / 100",
            labels,
            None if row.score is None else row.score / 100,
        )
    # Clamped: good steps never exceed steps.
    payee = '{journey="transfer",step="payee"}'
    tests.append(
        {
            "expr": f"{names.REC_GOOD}{payee} > 1",
            "eval_time": EVAL,
            "exp_samples": [],
        }
    )
    tests.append(
        {
            "expr": f"{names.rec_bad_ratio('30m')}{payee} < 0",
            "eval_time": EVAL,
            "exp_samples": [],
        }
    )
    q = JourneyQueries(spec, spec.journey("transfer"))
    tests.append(
        {
            "expr": f"({q.good_ratio('10m', step='payee').replace('$channel', '.*')}) > 1",
            "eval_time": EVAL,
            "exp_samples": [],
        }
    )
    return tests


def test_rules_and_dashboards_agree_with_the_analyzer_on_errors_checks_and_clamping(
    spec: Spec, tmp_path: Path
) -> None:
    (tmp_path / "rules.yml").write_text(render(build(spec)))
    suite = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": _inputs(), "promql_expr_test": _expr_tests(spec)}
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(suite, sort_keys=False))
    code, output = promtool("test", "rules", str(tmp_path / "tests.yml"))
    assert code == 0, output
