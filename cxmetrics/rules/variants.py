"""Good-step objectives of one segment or channel (``by_segment`` / ``by_channel`` on a step or
its journey), as burn-rate alerts (``cxmetrics.<journey>.variants``).

A step's own ``CxStepErrorBudgetBurn`` judges all its customers pooled against the step's
objective. Where the spec gives a segment or a channel another good-step objective (VIPs at
99% where the step promises 95%), that segment's or channel's good-step ratio gets the same
multiwindow, multi-burn-rate alerts against its own objective: the alert carries ``segment`` or
``channel`` beside ``journey`` and ``step``, and needs ``min_volume`` steps of that segment or
channel in the long window. The good steps themselves are already judged against the
segment's or channel's own target by the runtime (``Spec.thresholds``), so the ratio read here
is the catalogue's good-step ratio over that segment's or channel's series (raw counters:
the recorded 5m rates are per step). Value: the long window's burn rate.
"""

from __future__ import annotations

from ..analysis.catalogue import BAD, count_promql, promql
from ..spec import names
from ..spec.model import Journey, Spec, Step
from .policy import BURN_PAIRS, PAGE_KEEP_FIRING_FOR, BurnPair
from .promql import Group, Rule, number
from .templates import Slot, text

BY = (names.SERVICE, names.JOURNEY, names.STEP)


def variant_groups(spec: Spec) -> list[Group]:
    """One group per journey with a segment or channel whose good-step objective differs from
    its steps' own, in spec order."""
    groups = []
    for journey in spec.journeys:
        rules = [
            rule
            for step in journey.steps
            for label, value, goal in variants(spec, journey, step)
            for rule in burn_rules(spec, journey, step, label, value, goal)
        ]
        if rules:
            groups.append(Group(f"cxmetrics.{journey.name}.variants", tuple(rules)))
    return groups


def variants(spec: Spec, journey: Journey, step: Step) -> list[tuple[str, str, float]]:
    """(label, value, good-step objective) of every segment and channel of ``step`` whose
    objective differs from the step's."""
    pooled = spec.objectives(journey, step).good_ratio
    out = []
    for segment in spec.segments:
        goal = spec.objectives(journey, step, segment=segment).good_ratio
        if goal != pooled:
            out.append((names.SEGMENT, segment, goal))
    for channel in journey.channels or spec.channels:
        goal = spec.objectives(journey, step, channel=channel).good_ratio
        if goal != pooled:
            out.append((names.CHANNEL, channel, goal))
    return out


def burn_rules(
    spec: Spec, journey: Journey, step: Step, label: str, value: str, goal: float
) -> list[Rule]:
    match = {
        names.SERVICE: spec.service,
        names.JOURNEY: journey.name,
        names.STEP: step.name,
        label: value,
    }
    budget = 1.0 - goal
    minimum = spec.regression(journey, step).min_volume
    return [
        _rule(journey, step, match, label, value, goal, pair, minimum)
        for pair in BURN_PAIRS
        if pair.factor * budget < 1.0  # a burn that cannot happen is no alert
    ]


def _rule(
    journey: Journey,
    step: Step,
    match: dict[str, str],
    label: str,
    value: str,
    goal: float,
    pair: BurnPair,
    minimum: int,
) -> Rule:
    budget = f"(1 - {number(goal)})"
    long = promql(BAD, pair.long, match, by=BY)
    short = promql(BAD, pair.short, match, by=BY)
    volume = count_promql(names.STEPS, pair.long, match, by=BY)
    on = f"on ({', '.join(BY)})"
    expr = (
        f"({long}) / {budget} > {number(pair.factor)}"
        f"\nand {on} ({short}) / {budget} > {number(pair.factor)}"
        f"\nand {on} {volume} >= {minimum}"
    )
    windows = {names.LONG_WINDOW: pair.long, names.SHORT_WINDOW: pair.short}
    return Rule(
        expr,
        alert=names.ALERT_GOOD_BURN,
        for_=pair.for_,
        keep_firing_for=PAGE_KEEP_FIRING_FOR if pair.severity == "page" else None,
        labels={**match, names.SEVERITY: pair.severity, **windows},
        annotations={
            "summary": text(
                f"{journey.name}/{step.name} ({label} {value}): good steps burn their "
                f"{100 * goal:g}% objective's error budget ",
                Slot("value", "%.1f"),
                f"× over {pair.long} (and over {pair.short})",
            ),
        },
    )
