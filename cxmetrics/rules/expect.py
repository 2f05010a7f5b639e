"""What each generated alert computes, evaluated on synthetic series, and when it fires.

The models restate each alert of ``alerts`` on a ``synthetic.World`` — with Prometheus'
arithmetic, from the same plan — and ``simulate`` runs Prometheus' ``for`` state machine over
them. ``promtest`` writes the result as the exact expectations of a ``promtool test rules`` suite;
promtool then evaluates the real rule file, so a rule that computes anything else fails there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..spec import names
from ..spec.durations import parse_duration, prometheus_duration
from .policy import BURN_PAIRS, StepPlan
from .promql import Rule
from .synthetic import World, bucket_quantile

Values = dict[str, float | None]
Model = Callable[[World, float], tuple[float, Values] | None]


@dataclass(frozen=True)
class Firing:
    rule: Rule
    annotations: dict[str, str]

    @property
    def labels(self) -> dict[str, str]:
        return self.rule.labels


def simulate(
    world: World, models: list[tuple[Rule, Model]], interval: int, end_s: int
) -> dict[int, list[Firing]]:
    """The firing alerts, annotations expanded, at every evaluation from 0 to ``end_s``: the
    ``for`` / ``keep_firing_for`` state machine of Prometheus' rule manager, as promtool runs
    it (a firing alert whose condition stops holding stays, as it was, for ``keep_firing_for``
    from the first evaluation at which it no longer held)."""
    active: dict[int, float] = {}
    kept: dict[int, tuple[float, Firing]] = {}  # firing alerts: last time held, as last seen
    out: dict[int, list[Firing]] = {}
    for t in range(0, end_s + 1, interval):
        firing = []
        for index, (rule, model) in enumerate(models):
            result = model(world, t)
            if result is None:
                keep = parse_duration(rule.keep_firing_for) if rule.keep_firing_for else 0.0
                # Prometheus counts from the first evaluation at which it no longer held
                if index in kept and t - (kept[index][0] + interval) < keep:
                    firing.append(kept[index][1])
                    continue
                kept.pop(index, None)
                active.pop(index, None)
                continue
            since = active.get(index)  # ALERTS_FOR_STATE exists from the eval after the start
            start = active.setdefault(index, t)
            hold = parse_duration(rule.for_) if rule.for_ else 0.0
            if t - start >= hold:
                values: Values = {**result[1], "since": since}
                alert = Firing(rule, {k: v.expand(values) for k, v in rule.annotations.items()})
                firing.append(alert)
                kept[index] = (t, alert)
        out[t] = firing
    return out


def model_for(rule: Rule, p: StepPlan) -> Model:
    """What ``rule`` (an alert generated for step ``p``) computes: its value and annotation
    values when its condition holds, else None."""
    labels = p.labels
    if rule.alert == names.ALERT_LATENCY:
        return _latency(p, float(rule.labels[names.QUANTILE]), rule.labels[names.CHANNEL])
    if rule.alert == names.ALERT_CONVERSION_DROP:
        return _conversion(p)
    if rule.alert == names.ALERT_TARGET_CHANGED:
        return lambda w, t: None  # a World keeps every step's target
    long, short = rule.labels[names.LONG_WINDOW], rule.labels[names.SHORT_WINDOW]
    pair = next(x for x in BURN_PAIRS if (x.long, x.short) == (long, short))
    short_rate = parse_duration(names.SHORT_RATE_WINDOW)

    def rate(w: World, metric: str, match: dict[str, str], t: float, window: float) -> float | None:
        """The raw rate, or — for the windows the rules average from recorded 5m rates — the
        mean of the 5m rate at every evaluation point inside the window."""
        if prometheus_duration(window) not in names.LONG_FROM_RECORDED:
            return w.rate(metric, match, t, window)
        points = [
            r
            for k in range(int(window // w.interval_s) + 1)
            if t - k * w.interval_s >= 0
            and (r := w.rate(metric, match, t - k * w.interval_s, short_rate)) is not None
        ]
        return sum(points) / len(points) if points else None

    def count(
        w: World, metric: str, match: dict[str, str], t: float, window: float
    ) -> float | None:
        if prometheus_duration(window) not in names.LONG_FROM_RECORDED:
            return w.rate(metric, match, t, window, increase=True)
        r = rate(w, metric, match, t, window)
        return None if r is None else r * window

    if rule.alert == names.ALERT_GOOD_BURN:
        objective = p.good

        def bad(w: World, t: float, window: float) -> float | None:
            good = rate(w, names.GOOD_STEPS, labels, t, window)
            total = rate(w, names.STEPS, labels, t, window)
            return None if good is None or total is None or not total > 0 else 1 - good / total

        def volume(w: World, t: float, window: float) -> float | None:
            return count(w, names.STEPS, labels, t, window)

    else:
        check = rule.labels["check"]
        objective = next(c.objective for c in p.checks if c.check.name == check)
        match = {**labels, "check": check}

        def bad(w: World, t: float, window: float) -> float | None:
            failed = rate(w, names.ACCURACY_CHECKS, {**match, "result": "fail"}, t, window)
            every = rate(w, names.ACCURACY_CHECKS, match, t, window)
            return None if failed is None or every is None or not every > 0 else failed / every

        def volume(w: World, t: float, window: float) -> float | None:
            return count(w, names.ACCURACY_CHECKS, match, t, window)

    budget = objective.budget
    long_s, short_s = parse_duration(long), parse_duration(short)

    def burn(w: World, t: float) -> tuple[float, Values] | None:
        a, b, n = bad(w, t, long_s), bad(w, t, short_s), volume(w, t, long_s)
        if a is None or b is None or n is None:
            return None
        if a / budget > pair.factor and b / budget > pair.factor and n >= p.min_volume:
            return a / budget, {"burn": a / budget}
        return None

    return burn


def _step_rate(w: World, p: StepPlan, t: float, baseline: bool) -> float | None:
    if baseline:
        return w.rate(names.STEPS, p.labels, t, p.baseline_range_s, p.baseline_offset_s)
    return w.rate(names.STEPS, p.labels, t, p.window_s)


def _enough(w: World, p: StepPlan, t: float) -> tuple[float, bool]:
    recent, base = _step_rate(w, p, t, False), _step_rate(w, p, t, True)
    if recent is None or base is None:
        return 0.0, False
    volume = recent * p.window_s
    return volume, volume >= p.min_volume and base * p.baseline_range_s >= p.min_volume


def _latency(p: StepPlan, q: float, channel: str) -> Model:
    """A World's traffic is all on its one channel: that channel's quantiles and volume are the
    step's, and no other channel has any."""
    j, s = p.journey.name, p.step.name

    def quantile(w: World, t: float, baseline: bool) -> float | None:
        buckets = (
            w.buckets(j, s, t, p.baseline_range_s, p.baseline_offset_s)
            if baseline
            else w.buckets(j, s, t, p.window_s)
        )
        value = bucket_quantile(q, buckets) if buckets else math.nan
        return value if value > 0 else None

    def model(w: World, t: float) -> tuple[float, Values] | None:
        if channel != w.channel:
            return None
        now, base = quantile(w, t, False), quantile(w, t, True)
        if now is None or base is None:
            return None
        change = now / base - 1
        volume, enough = _enough(w, p, t)
        if not (change > p.min_change and enough):
            return None
        return change, {"baseline": base, "current": now, "change": change, "volume": volume}

    return model


def _conversion(p: StepPlan) -> Model:
    assert p.next_step is not None
    moved = {"journey": p.journey.name, "from_step": p.step.name, "to_step": p.next_step.name}

    def share(w: World, t: float, baseline: bool) -> float | None:
        window, offset = (
            (p.baseline_range_s, p.baseline_offset_s) if baseline else (p.window_s, 0.0)
        )
        went, finished = (
            w.rate(names.TRANSITIONS, moved, t, window, offset),
            _step_rate(w, p, t, baseline),
        )
        return None if went is None or finished is None or not finished > 0 else went / finished

    def model(w: World, t: float) -> tuple[float, Values] | None:
        now, base = share(w, t, False), share(w, t, True)
        if now is None or base is None or not base > 0:
            return None
        drop = 1 - now / base
        if not (drop > p.min_change and _enough(w, p, t)[1]):
            return None
        return drop, {"baseline": base, "current": now, "change": drop}

    return model


# -- verdicts: what a check must show, or the scenario is wrong ---------------------------------


def nothing(firing: list[Firing]) -> str | None:
    return f"expected no alert, the rules would fire {_list(firing)}" if firing else None


def exactly(
    p: StepPlan, wanted: set[tuple[str, str]], what: str
) -> Callable[[list[Firing]], str | None]:
    def verdict(firing: list[Firing]) -> str | None:
        got = {
            (f.rule.alert or "", f.labels.get(names.QUANTILE, ""))
            for f in firing
            if f.labels["step"] == p.step.name and f.labels["journey"] == p.journey.name
        }
        others = [f for f in firing if f.labels["step"] != p.step.name]
        if not wanted <= got or others:
            return (
                f"{what} of {p.journey.name}/{p.step.name} should fire {sorted(wanted)} "
                f"for it only; the rules would fire {_list(firing)}"
            )
        return None

    return verdict


def only_check(p: StepPlan, check: str) -> Callable[[list[Firing]], str | None]:
    def verdict(firing: list[Firing]) -> str | None:
        others = [
            f
            for f in firing
            if f.labels["step"] != p.step.name or f.labels.get("check", check) != check
        ]
        return f"only alerts of {check} expected, got {_list(others)}" if others else None

    return verdict


def _list(firing: list[Firing]) -> str:
    return ", ".join(f"{f.rule.alert}{f.labels}" for f in firing) or "nothing"
