"""Recording rules (``cx:`` namespace): each step's indicators and its SLO error ratios.

Two groups per journey. *Indicators* over the step's regression window ("recent") and its
baseline: step rate, latency quantiles, timeliness compliance, Apdex, error and good ratios,
accuracy per check, conversion to the next step. *SLO* error ratios over the SRE workbook's burn
windows (5m … 3d) for the good-step ratio and every accuracy check.

Low traffic (docs/rules.md): every ratio divides by a denominator filtered with ``> 0``, and a
quantile keeps only ``> 0`` results, so a quiet step yields *no* series — never NaN, never a
misleading 0 or 1. Rates themselves are 0, not absent, when nothing happened.
"""

from __future__ import annotations

from ..spec import names
from .policy import StepPlan
from .promql import Rule, rate, selector, sum_by

STEP_BY = "journey, step"
CHECK_BY = "journey, step, check"


def indicator_rules(p: StepPlan) -> list[Rule]:
    steps = selector(names.STEPS, **p.labels)
    rules = [
        Rule(sum_by(STEP_BY, rate(steps, p.window)), record=names.REC_STEP_RATE, labels=p.labels),
        Rule(
            sum_by(STEP_BY, rate(steps, p.baseline_range, p.baseline_offset)),
            record=names.REC_STEP_RATE_BASELINE,
            labels=p.labels,
        ),
    ]
    buckets = selector(f"{names.STEP_DURATION}_bucket", **p.labels)
    for q in p.quantiles:
        for span, window, offset in (
            (names.RECENT, p.window, None),
            (names.BASELINE, p.baseline_range, p.baseline_offset),
        ):
            per_le = sum_by(f"{STEP_BY}, le", rate(buckets, window, offset))
            rules.append(
                Rule(
                    f"histogram_quantile({q:g}, {per_le}) > 0",
                    record=names.rec_quantile(q, span),
                    labels=p.labels,
                )
            )
    total = f"({selector(names.REC_STEP_RATE, **p.labels)} > 0)"

    def share(**match: str) -> str:
        return sum_by(STEP_BY, rate(selector(names.STEPS, **p.labels, **match), p.window))

    good = sum_by(STEP_BY, rate(selector(names.GOOD_STEPS, **p.labels), p.window))
    satisfied, tolerating = share(timeliness="satisfied"), share(timeliness="tolerating")
    rules += [
        Rule(f"{satisfied} / {total}", record=names.REC_TIMELINESS, labels=p.labels),
        Rule(
            f"({satisfied} + {tolerating} / 2) / {total}", record=names.REC_APDEX, labels=p.labels
        ),
        Rule(f"{share(outcome='error')} / {total}", record=names.REC_ERRORS, labels=p.labels),
        Rule(f"{good} / {total}", record=names.REC_GOOD, labels=p.labels),
    ]
    for c in p.checks:
        labels = {**p.labels, "check": c.check.name}
        passed = sum_by(
            CHECK_BY, rate(selector(names.ACCURACY_CHECKS, **labels, result="pass"), p.window)
        )
        every = sum_by(CHECK_BY, rate(selector(names.ACCURACY_CHECKS, **labels), p.window))
        rules.append(Rule(f"{passed} / ({every} > 0)", record=names.REC_ACCURACY, labels=labels))
    if p.next_step is not None:
        rules += conversion_rules(p)
    return rules


def conversion_rules(p: StepPlan) -> list[Rule]:
    """Share of the step's finishes whose journey went on to the next step, recent and baseline.

    The rule sets ``step`` and ``to_step``: transitions carry ``from_step``.
    """
    assert p.next_step is not None
    moved = selector(
        names.TRANSITIONS, journey=p.journey.name, from_step=p.step.name, to_step=p.next_step.name
    )
    labels = {**p.labels, "to_step": p.next_step.name}
    out = []
    for record, rate_name, window, offset in (
        (names.REC_CONVERSION, names.REC_STEP_RATE, p.window, None),
        (
            names.REC_CONVERSION_BASELINE,
            names.REC_STEP_RATE_BASELINE,
            p.baseline_range,
            p.baseline_offset,
        ),
    ):
        finished = f"({selector(rate_name, **p.labels)} > 0)"
        expr = f"{sum_by('journey', rate(moved, window, offset))} / on (journey) {finished}"
        out.append(Rule(expr, record=record, labels=labels))
    return out


def slo_rules(p: StepPlan) -> list[Rule]:
    """Error ratios over every burn window: not-good steps, and failed checks per check."""
    rules = []
    for window in names.BURN_WINDOWS:
        good = sum_by(STEP_BY, rate(selector(names.GOOD_STEPS, **p.labels), window))
        total = sum_by(STEP_BY, rate(selector(names.STEPS, **p.labels), window))
        rules.append(
            Rule(f"1 - {good} / ({total} > 0)", record=names.rec_bad_ratio(window), labels=p.labels)
        )
    for c in p.checks:
        labels = {**p.labels, "check": c.check.name}
        for window in names.BURN_WINDOWS:
            failed = sum_by(
                CHECK_BY, rate(selector(names.ACCURACY_CHECKS, **labels, result="fail"), window)
            )
            every = sum_by(CHECK_BY, rate(selector(names.ACCURACY_CHECKS, **labels), window))
            rules.append(
                Rule(
                    f"{failed} / ({every} > 0)",
                    record=names.rec_accuracy_fail_ratio(window),
                    labels=labels,
                )
            )
    return rules
