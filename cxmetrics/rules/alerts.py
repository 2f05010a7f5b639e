"""Alerting rules (``Cx`` prefix), one group per journey, over the recording rules.

- ``CxStepLatencyRegression``: a recent quantile above its baseline by more than ``min_change``,
  with ``min_volume`` steps in both the recent and the baseline window, for ``for``.
  Value: the relative change (0.2 = +20%).
- ``CxStepErrorBudgetBurn`` / ``CxAccuracyErrorBudgetBurn``: the SRE workbook's multiwindow,
  multi-burn-rate alerts, one rule per window pair (labels ``long_window``, ``short_window``),
  with ``min_volume`` events in the long window. Value: the long window's burn rate.
- ``CxStepConversionDrop``: recent conversion to the next step below baseline by more than
  ``min_change`` (relative), with ``min_volume`` steps in both windows. Value: the relative drop.

Annotations state baseline, current value and change in human units, the start (Prometheus'
own ``ALERTS_FOR_STATE``), and a link to the step dashboard when the spec has ``dashboard_url``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..analysis.catalogue import count_promql, recorded_count_promql
from ..spec import names
from ..spec.durations import parse_duration, prometheus_duration
from ..spec.ids import dashboard_uid
from .policy import (
    PAGE_KEEP_FIRING_FOR,
    BurnPair,
    CheckPlan,
    Objective,
    StepPlan,
    percent,
    span,
)
from .promql import Rule, number, selector
from .recording import ON_STEP, target_changed
from .templates import Slot, Text, text


def alert_rules(p: StepPlan, dashboard_url: str | None) -> list[Rule]:
    rules = [latency_rule(p, q, c, dashboard_url) for q in p.quantiles for c in p.channels]
    if p.quantiles:
        rules.append(target_changed_rule(p, dashboard_url))
    rules += [good_burn_rule(p, pair, dashboard_url) for pair in p.good.pairs]
    for c in p.checks:
        rules += [accuracy_burn_rule(p, c, pair, dashboard_url) for pair in c.objective.pairs]
    if p.next_step is not None:
        rules.append(conversion_rule(p, dashboard_url))
    return rules


def _volume_guard(p: StepPlan) -> str:
    recent = selector(names.REC_STEP_RATE, **p.labels)
    baseline = selector(names.REC_STEP_RATE_BASELINE, **p.labels)
    return (
        f"\nand on (journey, step) {recent} * {number(p.window_s)} >= {p.min_volume}"
        f"\nand on (journey, step) {baseline} * {number(p.baseline_range_s)} >= {p.min_volume}"
    )


def _volume(metric: str, window: str, labels: dict[str, str], by: tuple[str, ...]) -> str:
    """Events over a burn pair's long window: from the recorded 5m rates for the longest
    windows (never days of raw series), from the raw counter otherwise."""
    if window in names.LONG_FROM_RECORDED:
        return recorded_count_promql(metric, window, parse_duration(window), labels, by)
    return count_promql(metric, window, labels, by=by)


def _since(alert: str, **labels: str) -> Slot:
    query = selector(names.ALERT_FOR_STATE, alertname=alert, **labels)
    return Slot("since", "timestamp", query, fallback="just now")


def _links(p: StepPlan, dashboard_url: str | None) -> dict[str, Text]:
    if not dashboard_url:
        return {}
    uid = dashboard_uid(p.journey.name, "steps")
    return {"dashboard": text(f"{dashboard_url.rstrip('/')}/d/{uid}")}


def latency_rule(p: StepPlan, q: float, channel: str, dashboard_url: str | None) -> Rule:
    """One rule per step, quantile and channel: a regression is judged within a channel (with
    ``min_volume`` in that channel), so a shift of traffic toward a slower channel is none."""
    labels = {**p.labels, names.CHANNEL: channel}
    recent = selector(names.rec_channel_quantile(q, names.RECENT), **labels)
    baseline = selector(names.rec_channel_quantile(q, names.BASELINE), **labels)
    on = "on (journey, step, channel)"
    rate = selector(names.REC_CHANNEL_RATE, **labels)
    base_rate = selector(names.REC_CHANNEL_RATE_BASELINE, **labels)
    expr = (
        f"({recent} / {baseline} - 1) > {number(p.min_change)}"
        f"\nand {on} {rate} * {number(p.window_s)} >= {p.min_volume}"
        f"\nand {on} {base_rate} * {number(p.baseline_range_s)} >= {p.min_volume}"
        f"\nunless {ON_STEP} {target_changed(p.labels, _baseline_span(p))}"
    )
    quantile = f"{q:g}"
    pname = f"p{q * 100:g}"
    j, s = p.journey.name, p.step.name
    base = Slot("baseline", "duration", baseline)
    now = Slot("current", "duration", recent)
    change = Slot("change", "percent")
    volume = Slot("volume", "%.0f", f"{rate} * {number(p.window_s)}")
    since = _since(names.ALERT_LATENCY, **labels, quantile=quantile)
    annotations = {
        "summary": text(
            f"{j}/{s} on {channel}: {pname} latency +", change, " (", base, " → ", now, ")"
        ),
        "description": text(
            f"The {pname} latency of step {s} in journey {j} on channel {channel} over the last "
            f"{p.window} is above its baseline ({p.baseline_text}) by more than the "
            f"+{percent(p.min_change)} threshold, measured on ",
            volume,
            f" {channel} steps, since ",
            since,
            ".",
        ),
        "baseline": text(base),
        "current": text(now),
        "change": text("+", change),
        "since": text(since),
        **_links(p, dashboard_url),
    }
    rule_labels = {**labels, names.SEVERITY: p.severity, names.QUANTILE: quantile}
    return Rule(
        expr, alert=names.ALERT_LATENCY, for_=p.for_, labels=rule_labels, annotations=annotations
    )


def _baseline_span(p: StepPlan) -> str:
    """From the start of the baseline to now: a target change anywhere in it puts two bucket
    layouts into one comparison."""
    return prometheus_duration(p.baseline_offset_s + p.baseline_range_s)


def target_changed_rule(p: StepPlan, dashboard_url: str | None) -> Rule:
    """``CxStepTargetChanged`` (severity info): the step's target, hence its ``le`` layout,
    changed inside the baseline span; its latency regression alerts are held back meanwhile."""
    span_ = _baseline_span(p)
    j, s = p.journey.name, p.step.name
    target = Slot("target", "duration", selector(names.REC_STEP_TARGET, **p.labels))
    annotations = {
        "summary": text(f"{j}/{s}: target changed (now ", target, "); latency alerts held back"),
        "description": text(
            f"The target T of step {s} in journey {j}, and with it the step's duration buckets, "
            f"changed within the last {span_} (or differs between instances). Until the "
            "baseline lies wholly after the change, its latency regression alerts are held back: "
            "a baseline in the old bucket layout compared with the new one is meaningless.",
        ),
        **_links(p, dashboard_url),
    }
    return Rule(
        target_changed(p.labels, span_),
        alert=names.ALERT_TARGET_CHANGED,
        labels={**p.labels, names.SEVERITY: "info"},
        annotations=annotations,
    )


def _burn_expr(
    ratio: Callable[[str], str],
    pair: BurnPair,
    objective: Objective,
    labels: dict[str, str],
    by: str,
    volume: str,
) -> str:
    budget = objective.budget_expr()
    long = selector(ratio(pair.long), **labels)
    short = selector(ratio(pair.short), **labels)
    factor = number(pair.factor)
    return (
        f"({long} / {budget} > {factor}\nand on ({by}) {short} / {budget} > {factor})"
        f"\nand on ({by}) {volume}"
    )


def _burn_text(subject: str, what: str, objective: Objective, pair: BurnPair) -> dict[str, Text]:
    burn = Slot("burn", "%.1f")
    lasts = span(objective.period / pair.factor)
    return {
        "summary": text(f"{subject}: {what} error budget burning ", burn, f"× over {pair.long}"),
        "description": text(
            f"Over both the last {pair.long} and {pair.short}, {subject} spent its {what} error "
            f"budget faster than {pair.factor:g}× the sustainable rate (objective "
            f"{percent(objective.target)} over {span(objective.period)}; at {pair.factor:g}× "
            f"the whole budget is gone in {lasts}). Burn rate over {pair.long}: ",
            burn,
            "×.",
        ),
    }


def good_burn_rule(p: StepPlan, pair: BurnPair, dashboard_url: str | None) -> Rule:
    steps = _volume(names.STEPS, pair.long, p.labels, (names.JOURNEY, names.STEP))
    volume = f"{steps} >= {p.min_volume}"
    expr = _burn_expr(names.rec_bad_ratio, pair, p.good, p.labels, "journey, step", volume)
    windows = {names.LONG_WINDOW: pair.long, names.SHORT_WINDOW: pair.short}
    subject = f"{p.journey.name}/{p.step.name}"
    annotations = {
        **_burn_text(subject, "good-step", p.good, pair),
        "since": text(_since(names.ALERT_GOOD_BURN, **p.labels, **windows)),
        **_links(p, dashboard_url),
    }
    return Rule(
        expr,
        alert=names.ALERT_GOOD_BURN,
        for_=pair.for_,
        keep_firing_for=PAGE_KEEP_FIRING_FOR if pair.severity == "page" else None,
        labels={**p.labels, names.SEVERITY: pair.severity, **windows},
        annotations=annotations,
    )


def accuracy_burn_rule(
    p: StepPlan, c: CheckPlan, pair: BurnPair, dashboard_url: str | None
) -> Rule:
    labels = {**p.labels, "check": c.check.name}
    by = "journey, step, check"
    checks = _volume(names.ACCURACY_CHECKS, pair.long, labels, tuple(by.split(", ")))
    volume = f"{checks} >= {p.min_volume}"
    expr = _burn_expr(names.rec_accuracy_fail_ratio, pair, c.objective, labels, by, volume)
    windows = {names.LONG_WINDOW: pair.long, names.SHORT_WINDOW: pair.short}
    subject = f"{p.journey.name}/{p.step.name} check {c.check.name}"
    annotations = {
        **_burn_text(subject, "accuracy", c.objective, pair),
        "since": text(_since(names.ALERT_ACCURACY_BURN, **labels, **windows)),
        **_links(p, dashboard_url),
    }
    return Rule(
        expr,
        alert=names.ALERT_ACCURACY_BURN,
        for_=pair.for_,
        keep_firing_for=PAGE_KEEP_FIRING_FOR if pair.severity == "page" else None,
        labels={**labels, names.SEVERITY: pair.severity, **windows},
        annotations=annotations,
    )


def conversion_rule(p: StepPlan, dashboard_url: str | None) -> Rule:
    assert p.next_step is not None
    labels = {**p.labels, "to_step": p.next_step.name}
    recent = selector(names.REC_CONVERSION, **labels)
    baseline = selector(names.REC_CONVERSION_BASELINE, **labels)
    expr = f"(1 - {recent} / ({baseline} > 0)) > {number(p.min_change)}" + _volume_guard(p)
    base = Slot("baseline", "percent", baseline)
    now = Slot("current", "percent", recent)
    drop = Slot("change", "percent")
    since = _since(names.ALERT_CONVERSION_DROP, **labels)
    j, a, b = p.journey.name, p.step.name, p.next_step.name
    annotations = {
        "summary": text(f"{j}: conversion {a} → {b} down ", drop, " (", base, " → ", now, ")"),
        "description": text(
            f"The share of journeys {j} that went on from step {a} to {b} over the last "
            f"{p.window} is below its baseline ({p.baseline_text}) by more than the "
            f"{percent(p.min_change)} threshold, since ",
            since,
            ".",
        ),
        "baseline": text(base),
        "current": text(now),
        "change": text("-", drop),
        "since": text(since),
        **_links(p, dashboard_url),
    }
    return Rule(
        expr,
        alert=names.ALERT_CONVERSION_DROP,
        for_=p.for_,
        labels={**labels, names.SEVERITY: p.severity},
        annotations=annotations,
    )
