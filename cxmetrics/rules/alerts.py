"""Alerting rules (``Cx`` prefix) over the recording rules: generic, one rule per policy (not per
step), thresholds joined from the spec series the app exports (docs/rules.md, *Generic rules*).

- ``CxStepLatencyRegression``: a recent quantile above its baseline by more than the step's
  ``min_change``, with ``min_volume`` steps in both the recent and the baseline window, for
  ``for``; one rule per policy and quantile, judged per channel. Value: the relative change.
- ``CxStepErrorBudgetBurn`` / ``CxAccuracyErrorBudgetBurn``: the SRE workbook's multiwindow,
  multi-burn-rate alerts, one rule per window pair (labels ``long_window``, ``short_window``)
  and policy, the budget from the step's (check's) objective, with ``min_volume`` events in the
  long window. Value: the long window's burn rate.
- ``CxStepConversionDrop``: recent conversion to the next step below baseline by more than
  ``min_change`` (relative), with ``min_volume`` steps in both windows. Value: the relative drop.

Each generic rule's annotations name the alert's own labels (``{{ $labels.step }}``) and query
the step's series by them, so every alert reads as a rule written for its step would. The same
texts bound to one step (``instance``; ``alert_rules``) are what the generated promtool suites
expect and what ``cxmetrics watch`` sends: one wording for all of them. Annotations state
baseline, current value and change in human units, the start (Prometheus' own
``ALERTS_FOR_STATE``), and a link to the step dashboard when the spec has ``dashboard_url``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..analysis.catalogue import count_promql, recorded_count_promql
from ..spec import names
from ..spec.durations import parse_duration, prometheus_duration
from ..spec.ids import dashboard_uid
from .policy import (
    BURN_PAIRS,
    PAGE_KEEP_FIRING_FOR,
    BurnPair,
    Plan,
    Policy,
    StepPlan,
    span,
)
from .promql import Rule, dashboard_link, number, selector
from .recording import CHANNEL_KEY, CHECK_KEY, ON_STEP, STEP_KEY, only, target_changed
from .templates import Choice, Label, Part, Slot, Text, text

J, S, C = Label(names.JOURNEY), Label(names.STEP), Label(names.CHANNEL)
TO, CHECK = Label(names.TO_STEP), Label(names.CHECK)
ON_CHANNEL = f"on ({', '.join(CHANNEL_KEY)})"
ON_CHECK = f"on ({', '.join(CHECK_KEY)})"
#: Joins with a step's threshold: many (channels, checks) to one.
TO_STEP_VALUE = f"{ON_STEP} group_left ()"


# -- the generic rules ---------------------------------------------------------------------------


def generic_alerts(plan: Plan, dashboard_url: str | None) -> list[Rule]:
    """Every alert of the service: per policy, its latency alerts (per quantile), the target
    change, the burn-rate pairs that can fire for one of its steps or checks, the conversion.
    With more than one policy each alert also carries its ``policy`` label: the policies'
    windows, ``for`` and wording differ, and two rules of one name need a label apart."""
    rules = []
    for policy in plan.policies:
        p = policy.first
        mine = [latency_alert(policy, q, dashboard_url) for q in p.quantiles]
        if p.quantiles:
            mine.append(target_changed_alert(policy, dashboard_url))
        mine += [
            good_burn_alert(policy, pair, dashboard_url)
            for pair in BURN_PAIRS
            if any(pair in s.good.pairs for s in policy.steps)
        ]
        mine += [
            accuracy_burn_alert(policy, pair, dashboard_url)
            for pair in BURN_PAIRS
            if any(pair in c.objective.pairs for s in policy.steps for c in s.checks)
        ]
        if any(s.next_step is not None for s in policy.steps):
            mine.append(conversion_alert(policy, dashboard_url))
        rules += [_labelled(r, policy) for r in mine]
    return rules


def _labelled(rule: Rule, policy: Policy) -> Rule:
    if not policy.filtered:
        return rule
    return Rule(
        rule.expr,
        alert=rule.alert,
        for_=rule.for_,
        keep_firing_for=rule.keep_firing_for,
        labels={**rule.labels, names.POLICY: policy.name},
        annotations=rule.annotations,
    )


def _value(record: str, service: str) -> str:
    return selector(record, service=service)


def _query(metric: str, labels: tuple[str, ...], **fixed: str) -> tuple[str, tuple[str, ...]]:
    """A selector naming the alert's own ``labels`` (``%s`` each, filled by the template)."""
    inner = [f'{k}="{v}"' for k, v in fixed.items()] + [f'{label}="%s"' for label in labels]
    return f"{metric}{{{','.join(inner)}}}", labels


def _slot(key: str, fmt: str, query: tuple[str, tuple[str, ...]], fallback: str = "") -> Slot:
    q, params = query
    extra = {"fallback": fallback} if fallback else {}
    return Slot(key, fmt, q, params=params, **extra)  # type: ignore[arg-type]


def _since(alert: str, labels: tuple[str, ...], **fixed: str) -> Slot:
    query = _query(names.ALERT_FOR_STATE, labels, alertname=alert, **fixed)
    return _slot("since", "timestamp", query, fallback="just now")


def _uid(journeys: Iterable[str]) -> Choice:
    """The step dashboard's uid from the ``journey`` label (cut short with a digest for a long
    name, which a template cannot compute: those are listed)."""
    cases = tuple(
        (j, dashboard_uid(j, "steps"))
        for j in dict.fromkeys(journeys)
        if dashboard_uid(j, "steps") != f"cx-{j}-steps"
    )
    return Choice(names.JOURNEY, "cx-%s-steps", cases)


def _links(policy: Policy, dashboard_url: str | None, *query: Part) -> dict[str, Text]:
    if not dashboard_url:
        return {}
    uid = _uid(s.journey.name for s in policy.steps)
    return {"dashboard": dashboard_link(dashboard_url, uid, *query)}


def _volume(metric: str, window: str, service: str, by: tuple[str, ...]) -> str:
    """Events over a burn pair's long window: from the recorded 5m rates for the longest
    windows (never days of raw series), from the raw counter otherwise."""
    match = {names.SERVICE: service}
    if window in names.LONG_FROM_RECORDED:
        return recorded_count_promql(metric, window, parse_duration(window), match, by)
    return count_promql(metric, window, match, by=by)


def latency_alert(policy: Policy, q: float, dashboard_url: str | None) -> Rule:
    """One rule per policy and quantile over every step and channel: a regression is judged
    within a channel (with ``min_volume`` in that channel), so a shift of traffic toward a slower
    channel is none."""
    p, service = policy.first, policy.service
    recent_name = names.rec_channel_quantile(q, names.RECENT)
    baseline_name = names.rec_channel_quantile(q, names.BASELINE)
    declared = f'{{service="{service}",channel!="{names.OTHER}"}}'
    min_change = _value(names.REC_MIN_CHANGE, service)
    min_volume = _value(names.REC_MIN_VOLUME, service)
    rate = _value(names.REC_CHANNEL_RATE, service)
    base_rate = _value(names.REC_CHANNEL_RATE_BASELINE, service)
    expr = (
        f"({recent_name}{declared} / {ON_CHANNEL} {baseline_name}{declared} - 1)"
        f"\n> {TO_STEP_VALUE} {min_change}"
        f"\nand {ON_CHANNEL} {rate} * {number(p.window_s)} >= {TO_STEP_VALUE} {min_volume}"
        f"\nand {ON_CHANNEL} {base_rate} * {number(p.baseline_range_s)}"
        f" >= {TO_STEP_VALUE} {min_volume}"
        f"\nunless {ON_STEP} {target_changed(service, _baseline_span(p))}"
        f"{only(policy)}"
    )
    quantile = f"{q:g}"
    pname = f"p{q * 100:g}"
    base = _slot("baseline", "duration", _query(baseline_name, CHANNEL_KEY))
    now = _slot("current", "duration", _query(recent_name, CHANNEL_KEY))
    change = Slot("change", "percent")
    count, params = _query(names.REC_CHANNEL_RATE, CHANNEL_KEY)
    volume = Slot("volume", "%.0f", f"{count} * {number(p.window_s)}", params=params)
    threshold = _slot("min_change", "percent", _query(names.REC_MIN_CHANGE, STEP_KEY))
    since = _since(names.ALERT_LATENCY, CHANNEL_KEY, quantile=quantile)
    annotations = {
        "summary": text(
            J, "/", S, " on ", C, f": {pname} latency +", change, " (", base, " → ", now, ")"
        ),
        "description": text(
            f"The {pname} latency of step ",
            S,
            " in journey ",
            J,
            " on channel ",
            C,
            f" over the last {p.window} is above its baseline ({p.baseline_text}) by more than "
            "the +",
            threshold,
            " threshold, measured on ",
            volume,
            " ",
            C,
            " steps, since ",
            since,
            ".",
        ),
        "baseline": text(base),
        "current": text(now),
        "change": text("+", change),
        "since": text(since),
        **_links(policy, dashboard_url, "?var-step=", S, "&var-channel=", C),
    }
    labels = {names.SEVERITY: p.severity, names.QUANTILE: quantile}
    return Rule(
        expr, alert=names.ALERT_LATENCY, for_=p.for_, labels=labels, annotations=annotations
    )


def _baseline_span(p: StepPlan) -> str:
    """From the start of the baseline to now: a target change anywhere in it puts two bucket
    layouts into one comparison."""
    return prometheus_duration(p.baseline_offset_s + p.baseline_range_s)


def target_changed_alert(policy: Policy, dashboard_url: str | None) -> Rule:
    """``CxStepTargetChanged`` (severity info): the step's target, hence its ``le`` layout,
    changed inside the baseline span; its latency regression alerts are held back meanwhile."""
    span_ = _baseline_span(policy.first)
    target = _slot("target", "duration", _query(names.REC_STEP_TARGET, STEP_KEY))
    annotations = {
        "summary": text(J, "/", S, ": target changed (now ", target, "); latency alerts held back"),
        "description": text(
            "The target T of step ",
            S,
            " in journey ",
            J,
            ", and with it the step's duration buckets, "
            f"changed within the last {span_} (or differs between instances). Until the "
            "baseline lies wholly after the change, its latency regression alerts are held back: "
            "a baseline in the old bucket layout compared with the new one is meaningless.",
        ),
        **_links(policy, dashboard_url),
    }
    return Rule(
        target_changed(policy.service, span_) + only(policy),
        alert=names.ALERT_TARGET_CHANGED,
        labels={names.SEVERITY: "info"},
        annotations=annotations,
    )


def _burn_expr(
    ratio: Callable[[str], str],
    pair: BurnPair,
    objective: str,
    on: str,
    volume: str,
    min_volume: str,
    service: str,
) -> str:
    """Both windows' error ratios over the budget ``1 - objective`` above the pair's factor,
    with at least ``min_volume`` events in the long window (``on``: the labels of one ratio
    series, which its objective has too)."""
    budget = f"{on} (1 - {objective})"
    long = _value(ratio(pair.long), service)
    short = _value(ratio(pair.short), service)
    factor = number(pair.factor)
    return (
        f"({long} / {budget} > {factor}\nand {on} {short} / {budget} > {factor})"
        f"\nand {on} {volume} >= {TO_STEP_VALUE} {min_volume}"
    )


def _burn_text(
    subject: tuple[Part, ...], what: str, objective: Slot, period: float, pair: BurnPair
) -> dict[str, Text]:
    burn = Slot("burn", "%.1f")
    lasts = span(period / pair.factor)
    return {
        "summary": text(*subject, f": {what} error budget burning ", burn, f"× over {pair.long}"),
        "description": text(
            f"Over both the last {pair.long} and {pair.short}, ",
            *subject,
            f" spent its {what} error budget faster than {pair.factor:g}× the sustainable rate "
            "(objective ",
            objective,
            f" over {span(period)}; at {pair.factor:g}× the whole budget is gone in {lasts}). "
            f"Burn rate over {pair.long}: ",
            burn,
            "×.",
        ),
    }


def _windows(pair: BurnPair) -> dict[str, str]:
    return {names.LONG_WINDOW: pair.long, names.SHORT_WINDOW: pair.short}


def good_burn_alert(policy: Policy, pair: BurnPair, dashboard_url: str | None) -> Rule:
    p, service = policy.first, policy.service
    steps = _volume(names.STEPS, pair.long, service, STEP_KEY)
    expr = _burn_expr(
        names.rec_bad_ratio,
        pair,
        _value(names.REC_STEP_OBJECTIVE, service),
        ON_STEP,
        steps,
        _value(names.REC_MIN_VOLUME, service),
        service,
    )
    objective = _slot("objective", "percent", _query(names.REC_STEP_OBJECTIVE, STEP_KEY))
    annotations = {
        **_burn_text((J, "/", S), "good-step", objective, p.good.period, pair),
        "since": text(_since(names.ALERT_GOOD_BURN, STEP_KEY, **_windows(pair))),
        **_links(policy, dashboard_url),
    }
    return Rule(
        expr + only(policy),
        alert=names.ALERT_GOOD_BURN,
        for_=pair.for_,
        keep_firing_for=PAGE_KEEP_FIRING_FOR if pair.severity == "page" else None,
        labels={names.SEVERITY: pair.severity, **_windows(pair)},
        annotations=annotations,
    )


def accuracy_burn_alert(policy: Policy, pair: BurnPair, dashboard_url: str | None) -> Rule:
    p, service = policy.first, policy.service
    checks = _volume(names.ACCURACY_CHECKS, pair.long, service, CHECK_KEY)
    expr = _burn_expr(
        names.rec_accuracy_fail_ratio,
        pair,
        _value(names.REC_CHECK_OBJECTIVE, service),
        ON_CHECK,
        checks,
        _value(names.REC_MIN_VOLUME, service),
        service,
    )
    objective = _slot("objective", "percent", _query(names.REC_CHECK_OBJECTIVE, CHECK_KEY))
    annotations = {
        **_burn_text((J, "/", S, " check ", CHECK), "accuracy", objective, p.good.period, pair),
        "since": text(_since(names.ALERT_ACCURACY_BURN, CHECK_KEY, **_windows(pair))),
        **_links(policy, dashboard_url),
    }
    return Rule(
        expr + only(policy),
        alert=names.ALERT_ACCURACY_BURN,
        for_=pair.for_,
        keep_firing_for=PAGE_KEEP_FIRING_FOR if pair.severity == "page" else None,
        labels={names.SEVERITY: pair.severity, **_windows(pair)},
        annotations=annotations,
    )


def conversion_alert(policy: Policy, dashboard_url: str | None) -> Rule:
    p, service = policy.first, policy.service
    keys = (*STEP_KEY, names.TO_STEP)
    recent = _value(names.REC_CONVERSION, service)
    baseline = _value(names.REC_CONVERSION_BASELINE, service)
    min_volume = _value(names.REC_MIN_VOLUME, service)
    rate = _value(names.REC_STEP_RATE, service)
    base_rate = _value(names.REC_STEP_RATE_BASELINE, service)
    expr = (
        f"(1 - {recent} / on ({', '.join(keys)}) ({baseline} > 0))"
        f"\n> {TO_STEP_VALUE} {_value(names.REC_MIN_CHANGE, service)}"
        f"\nand {ON_STEP} {rate} * {number(p.window_s)} >= {ON_STEP} {min_volume}"
        f"\nand {ON_STEP} {base_rate} * {number(p.baseline_range_s)} >= {ON_STEP} {min_volume}"
        f"{only(policy)}"
    )
    base = _slot("baseline", "percent", _query(names.REC_CONVERSION_BASELINE, keys))
    now = _slot("current", "percent", _query(names.REC_CONVERSION, keys))
    drop = Slot("change", "percent")
    threshold = _slot("min_change", "percent", _query(names.REC_MIN_CHANGE, STEP_KEY))
    since = _since(names.ALERT_CONVERSION_DROP, keys)
    annotations = {
        "summary": text(
            J, ": conversion ", S, " → ", TO, " down ", drop, " (", base, " → ", now, ")"
        ),
        "description": text(
            "The share of journeys ",
            J,
            " that went on from step ",
            S,
            " to ",
            TO,
            f" over the last {p.window} is below its baseline ({p.baseline_text}) by more than "
            "the ",
            threshold,
            " threshold, since ",
            since,
            ".",
        ),
        "baseline": text(base),
        "current": text(now),
        "change": text("-", drop),
        "since": text(since),
        **_links(policy, dashboard_url),
    }
    return Rule(
        expr,
        alert=names.ALERT_CONVERSION_DROP,
        for_=p.for_,
        labels={names.SEVERITY: p.severity},
        annotations=annotations,
    )


# -- one step's alerts: the generic rules bound to its labels ------------------------------------


def instance(rule: Rule, labels: dict[str, str], known: dict[str, float]) -> Rule:
    """The alert ``rule`` raises for one step (channel, check, next step): its labels in full,
    its annotations with the labels written out and the spec's values (``known``) formatted —
    what Prometheus shows for that alert."""
    every = {**labels, **rule.labels}
    return Rule(
        rule.expr,
        alert=rule.alert,
        for_=rule.for_,
        keep_firing_for=rule.keep_firing_for,
        labels=every,
        annotations={k: v.bind(every, known) for k, v in rule.annotations.items()},
    )


def _alone(p: StepPlan, filtered: bool = False) -> Policy:
    return Policy(p.policy, (p,), filtered)


def latency_rule(p: StepPlan, q: float, channel: str, dashboard_url: str | None) -> Rule:
    """Step ``p``'s latency alert for quantile ``q`` on ``channel``."""
    rule = latency_alert(_alone(p), q, dashboard_url)
    return instance(rule, {**p.labels, names.CHANNEL: channel}, {"min_change": p.min_change})


def alert_rules(p: StepPlan, dashboard_url: str | None, filtered: bool = False) -> list[Rule]:
    """Every alert the generic rules can raise for step ``p``, bound to its labels (the models
    of the generated promtool suites: ``expect``); ``filtered``: the spec has more than one
    policy (the alerts carry the ``policy`` label)."""
    policy = _alone(p, filtered)

    def bound(rule: Rule, labels: dict[str, str], known: dict[str, float]) -> Rule:
        return instance(_labelled(rule, policy), labels, known)

    change = {"min_change": p.min_change}
    rules = [
        bound(latency_alert(policy, q, dashboard_url), {**p.labels, names.CHANNEL: c}, change)
        for q in p.quantiles
        for c in p.channels
    ]
    if p.quantiles:
        rules.append(bound(target_changed_alert(policy, dashboard_url), p.labels, {}))
    known = {"objective": p.good.target}
    rules += [
        bound(good_burn_alert(policy, pair, dashboard_url), p.labels, known)
        for pair in p.good.pairs
    ]
    for c in p.checks:
        labels = {**p.labels, names.CHECK: c.check.name}
        rules += [
            bound(
                accuracy_burn_alert(policy, pair, dashboard_url),
                labels,
                {"objective": c.objective.target},
            )
            for pair in c.objective.pairs
        ]
    if p.next_step is not None:
        labels = {**p.labels, names.TO_STEP: p.next_step.name}
        rules.append(bound(conversion_alert(policy, dashboard_url), labels, change))
    return rules
