"""Recording rules (``cx:`` namespace): the spec series the alerts join, every step's indicators
and its SLO error ratios — generic, one rule over every step of the service.

Three groups per service. *Spec*: each step's target T and the thresholds and policy the app
exports (``cx_step_objective_ratio`` …), held through a scrape gap. *Indicators* over each
policy's regression window ("recent") and its baseline: step rate, latency quantiles, timeliness
compliance, Apdex, error and good ratios, accuracy per check, conversion to the next step — one
rule per policy, not per step (``sum by (service, journey, step[, channel][, check])`` over
``{service="<svc>"}``). *SLO* error ratios over the SRE workbook's burn windows (5m … 3d) for the
good-step ratio and every accuracy check, one rule per window for the whole service.

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
    next_step_promql,
    promql,
    recorded_promql,
    recorded_quantile_promql,
    recorded_rate_promql,
    volume_promql,
)
from ..analysis.catalogue import selector as family_selector
from ..spec import names
from .policy import Plan, Policy
from .promql import Rule, selector

STEP_KEY = (names.SERVICE, names.JOURNEY, names.STEP)
CHANNEL_KEY = (*STEP_KEY, names.CHANNEL)
CHECK_KEY = (*STEP_KEY, names.CHECK)
CLASS_KEY = (*CHANNEL_KEY, names.OUTCOME, names.TIMELINESS)
#: Joins between one service's series: every selector names the service.
ON_STEP = f"on ({', '.join(STEP_KEY)})"

#: (exposed spec series, recorded name, its labels beyond the step's): the values the alerts join.
HELD_VALUES = (
    (names.STEP_OBJECTIVE, names.REC_STEP_OBJECTIVE, ()),
    (names.CHECK_OBJECTIVE, names.REC_CHECK_OBJECTIVE, (names.CHECK,)),
    (names.STEP_MIN_CHANGE, names.REC_MIN_CHANGE, ()),
    (names.STEP_MIN_VOLUME, names.REC_MIN_VOLUME, ()),
)


def spec_rules(plan: Plan) -> list[Rule]:
    """First group: the steps' targets T as the fleet exposes them (``cx:step_target:seconds``,
    the max over instances), whose changes mark a bucket-layout change (``target_changed``); then
    the thresholds and policy the app exports, held for ``INFO_HOLD``.

    A spec series vanishes for a scrape or two when an instance is replaced or restarts, and for
    as long as a scrape gap lasts; an alert joined with it would resolve and re-fire. So each is
    recorded twice: the max over the instances that expose it now (``rec_exposed``), and the
    series the alerts join — that max, or while no instance exposes it, its last value within
    ``INFO_HOLD``. A changed value applies at once."""
    service = plan.spec.service
    by = ", ".join(STEP_KEY)
    target = family_selector(names.STEP_TARGET, service=service)
    rules = [Rule(f"max by ({by}) ({target})", record=names.REC_STEP_TARGET)]
    has_checks = any(p.checks for p in plan.steps)
    hold = names.INFO_HOLD
    for exposed, record, extra in HELD_VALUES:
        if extra and not has_checks:
            continue
        keys = ", ".join((*STEP_KEY, *extra))
        now = selector(names.rec_exposed(record), service=service)
        rules += [
            Rule(
                f"max by ({keys}) ({family_selector(exposed, service=service)})",
                record=names.rec_exposed(record),
            ),
            Rule(f"{now}\nor last_over_time({now}[{hold}])", record=record),
        ]
    labelled = []
    if len(plan.policies) > 1:
        labelled.append((names.STEP_POLICY, names.REC_STEP_POLICY, names.POLICY))
    if any(p.next_step is not None for p in plan.steps):
        labelled.append((names.STEP_NEXT, names.REC_STEP_NEXT, names.TO_STEP))
    for exposed, record, label in labelled:
        # A step's old policy (next step) is held only while no instance exposes a new one.
        keys = ", ".join((*STEP_KEY, label))
        now = selector(names.rec_exposed(record), service=service)
        rules += [
            Rule(
                f"max by ({keys}) ({family_selector(exposed, service=service)})",
                record=names.rec_exposed(record),
            ),
            Rule(
                f"{now}\nor (last_over_time({now}[{hold}]) unless {ON_STEP} {now})",
                record=record,
            ),
        ]
    return rules


def only(policy: Policy) -> str:
    """Restricts a generic rule to the steps of ``policy`` (nothing when the spec has one)."""
    if not policy.filtered:
        return ""
    chosen = selector(names.REC_STEP_POLICY, service=policy.service, policy=policy.name)
    return f"\nand {ON_STEP} {chosen}"


def target_changed(service: str, window: str, offset: str | None = None) -> str:
    """PromQL that has a series for each step of ``service`` while its target T — hence its
    ``le`` layout — changed inside ``window`` (ending ``offset`` ago), or differs between
    instances now (a rolling deploy of a new target: two layouts summed at once)."""
    by = ", ".join(STEP_KEY)
    recorded = selector(names.REC_STEP_TARGET, service=service)
    raw = family_selector(names.STEP_TARGET, service=service)
    moved = f"{changes_promql(recorded, window, offset)} > 0"
    mixed = f"max by ({by}) ({raw}) != min by ({by}) ({raw})"
    return f"({moved} or {mixed})"


def indicator_rules(policy: Policy) -> list[Rule]:
    """The recent and baseline indicators of every step of ``policy``."""
    p = policy.first
    match = {names.SERVICE: policy.service}
    keep = only(policy)
    spans = (
        (names.RECENT, p.window, None),
        (names.BASELINE, p.baseline_range, p.baseline_offset),
    )
    # cx_steps_total read once per window, by class: every rate and ratio below sums the record
    recent = {names.STEPS: names.REC_CLASS_RATE}
    baseline = {names.STEPS: names.REC_CLASS_RATE_BASELINE}
    rules = [
        Rule(volume_promql(window, match, by=CLASS_KEY, offset=offset) + keep, record=record)
        for record, window, offset in (
            (names.REC_CLASS_RATE, p.window, None),
            (names.REC_CLASS_RATE_BASELINE, p.baseline_range, p.baseline_offset),
        )
    ]
    for record, by, classes in (
        (names.REC_STEP_RATE, STEP_KEY, recent),
        (names.REC_STEP_RATE_BASELINE, STEP_KEY, baseline),
        # per channel, where latency regressions are judged
        (names.REC_CHANNEL_RATE, CHANNEL_KEY, recent),
        (names.REC_CHANNEL_RATE_BASELINE, CHANNEL_KEY, baseline),
    ):
        expr = volume_promql(p.window, match, by=by, recorded=classes)
        rules.append(Rule(expr + keep, record=record))
    for span, window, offset in spans:  # the raw buckets, read once per window
        expr = bucket_rate_promql(window, match, offset=offset, by=CHANNEL_KEY)
        rules.append(Rule(expr + keep, record=names.rec_bucket_rate(span)))
    for q in p.quantiles:
        for span, window, offset in spans:
            # Buckets of two layouts summed give nonsense (a 1.5 s → 2.5 s target read p95 =
            # 40 s): no quantile while the window spans a target change.
            unchanged = f"unless {ON_STEP} {target_changed(policy.service, window, offset)}"
            for record, keys in (
                (names.rec_quantile(q, span), STEP_KEY),
                (names.rec_channel_quantile(q, span), CHANNEL_KEY),
            ):
                quantile = recorded_quantile_promql(q, names.rec_bucket_rate(span), match, by=keys)
                rules.append(Rule(f"{quantile} > 0\n{unchanged}{keep}", record=record))
    for indicator, record in (
        (catalogue.TIMELINESS, names.REC_TIMELINESS),
        (catalogue.APDEX, names.REC_APDEX),
        (catalogue.ERRORS, names.REC_ERRORS),
        (catalogue.GOOD, names.REC_GOOD),
    ):
        expr = promql(indicator, p.window, match, by=STEP_KEY, recorded=recent)
        rules.append(Rule(expr + keep, record=record))
    if any(s.checks for s in policy.steps):
        expr = promql(catalogue.ACCURACY, p.window, match, by=CHECK_KEY)
        rules.append(Rule(expr + keep, record=names.REC_ACCURACY))
    if any(s.next_step is not None for s in policy.steps):
        pairs = selector(names.REC_STEP_NEXT, **match)
        rules += [
            Rule(
                next_step_promql(window, match, pairs, offset=offset, recorded=classes) + keep,
                record=record,
            )
            for record, window, offset, classes in (
                (names.REC_CONVERSION, p.window, None, recent),
                (names.REC_CONVERSION_BASELINE, p.baseline_range, p.baseline_offset, baseline),
            )
        ]
    return rules


def baseline_missing_rule(service: str) -> Rule:
    """1 for each step with recent traffic and no baseline yet, whatever its policy."""
    recent = selector(names.REC_STEP_RATE, service=service)
    baseline = selector(names.REC_STEP_RATE_BASELINE, service=service)
    return Rule(f"0 * {recent} + 1\nunless {ON_STEP} {baseline}", record=names.REC_BASELINE_MISSING)


def slo_rules(plan: Plan) -> list[Rule]:
    """Error ratios over every burn window, for every step of the service at once: not-good
    steps, and failed checks per check. The burn windows are the same for every policy."""
    match = {names.SERVICE: plan.spec.service}
    rules = [
        Rule(recorded_rate_promql(metric, match, by=STEP_KEY), record=record)
        for metric, record in (
            (names.STEPS, names.REC_STEPS_RATE5M),
            (names.GOOD_STEPS, names.REC_GOOD_RATE5M),
        )
    ]
    rules += [
        Rule(
            recorded_promql(catalogue.BAD, window, match, by=STEP_KEY)
            if window in names.LONG_FROM_RECORDED
            else promql(catalogue.BAD, window, match, by=STEP_KEY),
            record=names.rec_bad_ratio(window),
        )
        for window in names.BURN_WINDOWS
    ]
    if any(p.checks for p in plan.steps):
        rules.append(
            Rule(
                recorded_rate_promql(names.ACCURACY_CHECKS, match, by=STEP_KEY),
                record=names.REC_CHECKS_RATE5M,
            )
        )
        rules += [
            Rule(
                recorded_promql(catalogue.ACCURACY_FAIL, window, match, by=CHECK_KEY)
                if window in names.LONG_FROM_RECORDED
                else promql(catalogue.ACCURACY_FAIL, window, match, by=CHECK_KEY),
                record=names.rec_accuracy_fail_ratio(window),
            )
            for window in names.BURN_WINDOWS
        ]
    return rules
