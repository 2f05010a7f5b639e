"""Recording rules (``cx:`` namespace): each step's indicators and its SLO error ratios.

Two groups per journey. *Indicators* over the step's regression window ("recent") and its
baseline: step rate, latency quantiles, timeliness compliance, Apdex, error and good ratios,
accuracy per check, conversion to the next step. *SLO* error ratios over the SRE workbook's burn
windows (5m … 3d) for the good-step ratio and every accuracy check.

Every ratio is the catalogue's (``cxmetrics.analysis.catalogue.promql``): one definition for the
analyzer, these rules and the dashboards. Low traffic (docs/rules.md): every ratio divides by a
denominator filtered with ``> 0``, and a quantile keeps only ``> 0`` results, so a quiet step
yields *no* series — never NaN, never a misleading 0 or 1; ratios are clamped to [0, 1]. Rates
themselves are 0, not absent, when nothing happened.
"""

from __future__ import annotations

from ..analysis import catalogue
from ..analysis.catalogue import (
    bucket_rate_promql,
    changes_promql,
    promql,
    recorded_promql,
    recorded_quantile_promql,
    recorded_rate_promql,
    volume_promql,
)
from ..analysis.catalogue import selector as family_selector
from ..spec import names
from ..spec.model import Journey
from .policy import StepPlan
from .promql import Rule, selector

CHECK_LABELS = (names.JOURNEY, names.STEP, names.CHECK)
STEP_KEY = (names.SERVICE, names.JOURNEY, names.STEP)
#: Every selector names the service, so joins inside one step's rules match on journey and step.
ON_STEP = "on (journey, step)"


def journey_rules(service: str, journey: Journey) -> list[Rule]:
    """First in the journey's indicators group: its steps' targets T as the fleet exposes them
    (``cx:step_target:seconds``, the max over instances), whose changes mark a bucket-layout
    change (``target_changed``)."""
    target = family_selector(names.STEP_TARGET, service=service, journey=journey.name)
    by = ", ".join(STEP_KEY)
    labels = {names.SERVICE: service, names.JOURNEY: journey.name}
    return [Rule(f"max by ({by}) ({target})", record=names.REC_STEP_TARGET, labels=labels)]


def target_changed(labels: dict[str, str], window: str, offset: str | None = None) -> str:
    """PromQL that has a series for the step while its target T — hence its ``le`` layout —
    changed inside ``window`` (ending ``offset`` ago), or differs between instances now (a
    rolling deploy of a new target: two layouts summed at once)."""
    by = ", ".join(STEP_KEY)
    recorded = selector(names.REC_STEP_TARGET, **labels)
    raw = family_selector(names.STEP_TARGET, **labels)
    moved = f"{changes_promql(recorded, window, offset)} > 0"
    mixed = f"max by ({by}) ({raw}) != min by ({by}) ({raw})"
    return f"({moved} or {mixed})"


def indicator_rules(p: StepPlan) -> list[Rule]:
    by = (names.JOURNEY, names.STEP)
    rules = [
        Rule(volume_promql(p.window, p.labels, by=by), record=names.REC_STEP_RATE, labels=p.labels),
        Rule(
            volume_promql(p.baseline_range, p.labels, by=by, offset=p.baseline_offset),
            record=names.REC_STEP_RATE_BASELINE,
            labels=p.labels,
        ),
        Rule(
            f"0 * {selector(names.REC_STEP_RATE, **p.labels)} + 1\n"
            f"unless {ON_STEP} {selector(names.REC_STEP_RATE_BASELINE, **p.labels)}",
            record=names.REC_BASELINE_MISSING,
            labels=p.labels,
        ),
    ]
    by_channel = (names.JOURNEY, names.STEP, names.CHANNEL)
    rules += [  # per channel, where latency regressions are judged
        Rule(
            volume_promql(p.window, p.labels, by=by_channel),
            record=names.REC_CHANNEL_RATE,
            labels=p.labels,
        ),
        Rule(
            volume_promql(p.baseline_range, p.labels, by=by_channel, offset=p.baseline_offset),
            record=names.REC_CHANNEL_RATE_BASELINE,
            labels=p.labels,
        ),
    ]
    spans = (
        (names.RECENT, p.window, None),
        (names.BASELINE, p.baseline_range, p.baseline_offset),
    )
    for span, window, offset in spans:  # the raw buckets, read once per window
        rules.append(
            Rule(
                bucket_rate_promql(window, p.labels, offset=offset),
                record=names.rec_bucket_rate(span),
                labels=p.labels,
            )
        )
    for q in p.quantiles:
        for span, window, offset in spans:
            # Buckets of two layouts summed give nonsense (a 1.5 s → 2.5 s target read p95 =
            # 40 s): no quantile while the window spans a target change.
            unchanged = f"unless {ON_STEP} {target_changed(p.labels, window, offset)}"
            per: tuple[tuple[str, tuple[str, ...]], ...] = (
                (names.rec_quantile(q, span), (names.JOURNEY, names.STEP)),
                (names.rec_channel_quantile(q, span), by_channel),
            )
            for record, keys in per:
                quantile = recorded_quantile_promql(
                    q, names.rec_bucket_rate(span), p.labels, by=keys
                )
                rules.append(Rule(f"{quantile} > 0\n{unchanged}", record=record, labels=p.labels))
    for indicator, record in (
        (catalogue.TIMELINESS, names.REC_TIMELINESS),
        (catalogue.APDEX, names.REC_APDEX),
        (catalogue.ERRORS, names.REC_ERRORS),
        (catalogue.GOOD, names.REC_GOOD),
    ):
        rules.append(Rule(promql(indicator, p.window, p.labels), record=record, labels=p.labels))
    for c in p.checks:
        labels = {**p.labels, "check": c.check.name}
        expr = promql(catalogue.ACCURACY, p.window, labels, by=CHECK_LABELS)
        rules.append(Rule(expr, record=names.REC_ACCURACY, labels=labels))
    if p.next_step is not None:
        rules += conversion_rules(p)
    return rules


def conversion_rules(p: StepPlan) -> list[Rule]:
    """Share of the step's finishes whose journey went on to the next step, recent and baseline.

    The rule sets ``step`` and ``to_step``: transitions carry ``from_step``.
    """
    assert p.next_step is not None
    labels = {**p.labels, "to_step": p.next_step.name}
    return [
        Rule(
            promql(
                catalogue.CONVERSION,
                window,
                p.labels,
                by=(names.JOURNEY,),
                offset=offset,
                to_step=p.next_step.name,
            ),
            record=record,
            labels=labels,
        )
        for record, window, offset in (
            (names.REC_CONVERSION, p.window, None),
            (names.REC_CONVERSION_BASELINE, p.baseline_range, p.baseline_offset),
        )
    ]


def slo_rules(p: StepPlan) -> list[Rule]:
    """Error ratios over every burn window: not-good steps, and failed checks per check."""
    step_by = (names.JOURNEY, names.STEP)
    rules = [
        Rule(recorded_rate_promql(metric, p.labels), record=record, labels=p.labels)
        for metric, record in (
            (names.STEPS, names.REC_STEPS_RATE5M),
            (names.GOOD_STEPS, names.REC_GOOD_RATE5M),
        )
    ]
    rules += [
        Rule(
            recorded_promql(catalogue.BAD, window, p.labels, by=step_by)
            if window in names.LONG_FROM_RECORDED
            else promql(catalogue.BAD, window, p.labels),
            record=names.rec_bad_ratio(window),
            labels=p.labels,
        )
        for window in names.BURN_WINDOWS
    ]
    for c in p.checks:
        labels = {**p.labels, "check": c.check.name}
        rules.append(
            Rule(
                recorded_rate_promql(names.ACCURACY_CHECKS, labels),
                record=names.REC_CHECKS_RATE5M,
                labels=labels,
            )
        )
        rules += [
            Rule(
                recorded_promql(catalogue.ACCURACY_FAIL, window, labels, by=CHECK_LABELS)
                if window in names.LONG_FROM_RECORDED
                else promql(catalogue.ACCURACY_FAIL, window, labels, by=CHECK_LABELS),
                record=names.rec_accuracy_fail_ratio(window),
                labels=labels,
            )
            for window in names.BURN_WINDOWS
        ]
    return rules
