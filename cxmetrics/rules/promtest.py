"""``promtool test rules`` suites generated from the spec: each scenario drives synthetic traffic
(``synthetic.World``) through the generated rules and states exactly which alerts fire when, with
which labels and annotations.

Scenarios (each its own test group, every step of the spec present in each):

- ``stable``: steady traffic everywhere — no alert, no NaN.
- ``volume-only``: every step's traffic ×3, same latencies — no alert.
- ``latency <journey>/<step>``: the step's whole latency distribution ×(1 + 2·min_change) (1.0 s →
  1.2 s for a 10% policy) — ``CxStepLatencyRegression`` for that step (every quantile) and
  nothing else; back to normal — resolved.
- ``accuracy <journey>/<step>/<check>``: a burst of failures — ``CxAccuracyErrorBudgetBurn``
  (1h/5m, page) for that check; after the burst the 5m window clears and, ``keep_firing_for``
  later, the page resolves.
- ``conversion <journey>/<step>``: conversion to the next step ×(1 − 2·min_change) — a
  ``CxStepConversionDrop``; recovery — resolved.
- ``quiet <journey>``: the last step sees no traffic, the first only less than ``min_volume`` per
  window, with its latency ×(1 + 2·min_change) — no alert, no NaN, the quiet step's only series
  are its zero rates (recent, baseline, and the recorded 5m rates).

Expected values come from simulating the alerts on the same series with Prometheus' arithmetic
(``synthetic``); a scenario that would not show what it is for (say, a policy whose baseline
absorbs a shift before ``for`` elapses) is an error, not a vacuous test.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._binaries import PROMTOOL, require_binary
from .._exceptions import CxError
from ..exposition.collector import spec_rows
from ..spec import names
from ..spec.durations import parse_duration, prometheus_duration
from ..spec.model import Spec
from .document import RuleSet, dump, header
from .expect import Firing, exactly, model_for, nothing, only_check, simulate
from .policy import BURN_PAIRS, PAGE_KEEP_FIRING_FOR, StepPlan
from .synthetic import World, values_text

NAN_QUERY = (
    'count_values("value", {__name__=~"cx:.+"}) and on (value) ('
    'label_replace(vector(0), "value", "NaN", "", "") or '
    'label_replace(vector(0), "value", "+Inf", "", "") or '
    'label_replace(vector(0), "value", "-Inf", "", ""))'
)
ALERT_NAMES = (
    names.ALERT_LATENCY,
    names.ALERT_GOOD_BURN,
    names.ALERT_ACCURACY_BURN,
    names.ALERT_CONVERSION_DROP,
    names.ALERT_TARGET_CHANGED,
)


_CONTACT = names.ALERT_CONTACT_OBJECTIVE


@dataclass
class Scenario:
    name: str
    world: World
    end_s: int
    checks: dict[int, Callable[[list[Firing]], str | None]] = field(default_factory=dict)
    nan_checks: list[int] = field(default_factory=list)
    exact: list[tuple[str, int, list[tuple[str, float]]]] = field(default_factory=list)


def suite(
    ruleset: RuleSet,
    rule_file: str,
    *,
    latency: list[tuple[str, str]] | None = None,
    accuracy: list[tuple[str, str, str]] | None = None,
    conversion: list[tuple[str, str]] | None = None,
    quiet: list[str] | None = None,
    steady: bool = True,
) -> str:
    """A promtool test file for ``rule_file`` (path relative to the test file). Each ``None``
    selection means every step / check / consecutive pair / journey of the spec; ``steady``
    adds the stable and volume-only scenarios."""
    b = _Builder(ruleset)
    plans = ruleset.plan.steps
    latency = latency if latency is not None else [(p.journey.name, p.step.name) for p in plans]
    accuracy = (
        accuracy
        if accuracy is not None
        else [
            (p.journey.name, p.step.name, c.check.name)
            for p in plans
            for c in p.checks
            if c.objective.pairs and c.objective.pairs[0] == BURN_PAIRS[0]
        ]
    )
    conversion = (
        conversion
        if conversion is not None
        else [(p.journey.name, p.step.name) for p in plans if p.next_step is not None]
    )
    quiet = quiet if quiet is not None else [j.name for j in ruleset.spec.journeys]
    scenarios = [b.stable(), b.volume_only()] if steady else []
    scenarios += [b.latency(b.step(j, s)) for j, s in latency]
    scenarios += [b.accuracy(b.step(j, s), c) for j, s, c in accuracy]
    scenarios += [b.conversion(b.step(j, s)) for j, s in conversion]
    scenarios += [b.quiet(j) for j in quiet]
    document = {
        "rule_files": [rule_file],
        "evaluation_interval": prometheus_duration(b.interval),
        # promtool runs groups in random order unless told; Prometheus runs them concurrently.
        # File order makes alerts read the indicators recorded at the same evaluation.
        "group_eval_order": [g.name for g in ruleset.groups],
        "tests": [b.render(s) for s in scenarios],
    }
    return header(ruleset.spec, "promtool test suite") + dump(document)


def promtool(*args: str, timeout: float = 600.0) -> tuple[int, str]:
    """Run promtool (``CxError`` with the install command when it is missing)."""
    done = subprocess.run(
        [require_binary(PROMTOOL), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


class _Builder:
    def __init__(self, ruleset: RuleSet) -> None:
        self.rs, self.spec = ruleset, ruleset.spec
        plans = ruleset.plan.steps
        self.interval = _interval(plans)
        self.lookback = _up(
            max(p.baseline_offset_s + p.baseline_range_s for p in plans), self.interval
        )
        self.window = max(p.window_s for p in plans)
        self.hold = max(p.for_s for p in plans)
        self.volume = max(
            100, *(math.ceil(3 * p.min_volume * self.interval / p.window_s) for p in plans)
        )
        # Each alert the generic step rules can raise, one per step (channel, check, pair).
        # CxFollowUpLag reads the follow-up workers' gauges, not the step counters modelled
        # here: tests/rules/test_followup_rules.py runs it through promtool on its own.
        self.models = [
            (rule, model_for(rule, self.step(rule.labels["journey"], rule.labels["step"])))
            for rule in ruleset.instances()
        ]

    def step(self, journey: str, step: str) -> StepPlan:
        for p in self.rs.plan.steps:
            if (p.journey.name, p.step.name) == (journey, step):
                return p
        raise CxError(f"no step {journey}/{step} in the spec")

    def world(self, end_s: int) -> World:
        return World(self.spec, self.interval, end_s // self.interval, self.volume)

    def _timeline(self) -> tuple[int, int]:
        start = self.lookback
        return start, _up(start + self.window + self.hold + 2 * self.interval, self.interval)

    # -- scenarios ---------------------------------------------------------------------------

    def stable(self) -> Scenario:
        _, check = self._timeline()
        end = check + self.interval
        s = Scenario("stable: steady traffic, no alert", self.world(end), end)
        s.checks = {check: nothing, end: nothing}
        s.nan_checks = [check, end]
        return s

    def volume_only(self) -> Scenario:
        start, check = self._timeline()
        end = _up(start + self.lookback + self.interval, self.interval)
        s = Scenario("volume-only: traffic x3, same latency, no alert", self.world(end), end)
        for journey, step in self.spec.steps():
            s.world.set(journey.name, step.name, start, volume=3 * self.volume)
        s.checks = {check: nothing, end: nothing}
        return s

    def latency(self, p: StepPlan) -> Scenario:
        factor = 1 + 2 * p.min_change
        mine = {(names.ALERT_LATENCY, f"{q:g}") for q in p.quantiles}
        return self._shift(
            p,
            f"latency {p.journey.name}/{p.step.name}: x{factor:g}",
            mine,
            f"a latency shift of x{factor:g}",
            lambda w, begin, end: w.set(p.journey.name, p.step.name, begin, end, factor=factor),
        )

    def _shift(
        self,
        p: StepPlan,
        name: str,
        wanted: set[tuple[str, str]],
        what: str,
        change: Callable[[World, float, float | None], None],
    ) -> Scenario:
        """``change`` from the end of the lookback until the wanted alerts fire, then back to
        normal: checked when they first all fire and once the recent window is normal again."""
        start = self.lookback
        latest = _up(start + p.window_s + p.for_s + 2 * self.interval, self.interval)
        end = _up(latest + p.window_s + self.interval, self.interval)
        s = Scenario(name, self.world(end), end)
        change(s.world, start, None)
        verdict = exactly(p, wanted, what)
        fire = self._first(s, lambda firing: verdict(firing) is None, start, latest)
        if fire is None:
            problem = verdict(self.simulate(s)[latest])
            raise CxError(
                f"scenario '{name}': {problem} (the baseline absorbs the change "
                f"before 'for' elapses?)"
            )
        end = _up(fire + p.window_s + self.interval, self.interval)
        s = Scenario(
            f"{name} from {prometheus_duration(start)}, back at {prometheus_duration(fire)}",
            self.world(end),
            end,
        )
        change(s.world, start, fire)
        s.checks = {fire: verdict, end: nothing}
        return s

    def accuracy(self, p: StepPlan, check: str) -> Scenario:
        pair = BURN_PAIRS[0]
        budget = next(c.objective.budget for c in p.checks if c.check.name == check)
        share = min(1.0, max(0.2, 3 * pair.factor * budget))
        begin = _up(max(600, self.window), self.interval)
        stop = begin + 1200
        short, long_end = parse_duration(pair.short), parse_duration("30m")
        keep = parse_duration(PAGE_KEEP_FIRING_FOR)
        cleared = _up(stop + short + keep + self.interval, self.interval)
        end = _up(stop + long_end + keep + self.interval, self.interval)
        s = Scenario(
            f"accuracy {p.journey.name}/{p.step.name}/{check}: {share:.0%} failing "
            f"from {prometheus_duration(begin)} to {prometheus_duration(stop)}",
            self.world(end),
            end,
        )
        s.world.set(p.journey.name, p.step.name, begin, stop, failing=(check, share))
        fired = self._first(
            s,
            lambda f: any(
                x.rule.alert == names.ALERT_ACCURACY_BURN
                and x.labels.get("check") == check
                and x.labels[names.LONG_WINDOW] == pair.long
                for x in f
            ),
            begin,
            stop,
        )
        if fired is None:
            raise CxError(
                f"a {share:.0%} failure burst of {check} does not fire the "
                f"{pair.name} accuracy burn alert within 20m"
            )
        own = only_check(p, check)
        s.checks = {fired: own, cleared: own, end: nothing}
        return s

    def conversion(self, p: StepPlan) -> Scenario:
        drop = 0.9 * (1 - 2 * p.min_change)
        return self._shift(
            p,
            f"conversion {p.journey.name}/{p.step.name}: 90% -> {drop:.0%}",
            {(names.ALERT_CONVERSION_DROP, "")},
            "a conversion drop",
            lambda w, begin, end: w.set(p.journey.name, p.step.name, begin, end, conversion=drop),
        )

    def quiet(self, journey: str) -> Scenario:
        start, check = self._timeline()
        end = check + self.interval
        steps = self.spec.journey(journey).steps
        last, first = self.step(journey, steps[-1].name), self.step(journey, steps[0].name)
        s = Scenario(f"quiet {journey}: no traffic at {last.step.name}", self.world(end), end)
        s.world.set(journey, last.step.name, 0, volume=0)
        if len(steps) > 1:
            s.world.set(journey, steps[-2].name, 0, conversion=0.0)
            low = (first.min_volume - 1) // round(first.window_s / self.interval)
            if low > 0:
                s.name += (
                    f", {low} per {prometheus_duration(self.interval)} at "
                    f"{first.step.name} (below min_volume) with a latency shift"
                )
                s.world.set(journey, first.step.name, 0, volume=low)
                s.world.set(journey, first.step.name, start, factor=1 + 2 * first.min_change)
        s.checks = {check: nothing, end: nothing}
        s.nan_checks = [check, end]
        labels = last.labels
        on_channel = {**labels, "channel": s.world.channel}
        target, tolerating = last.step.target, self.spec.tolerating(last.step)
        s.exact = [
            (
                f'{{__name__=~"cx:.+",journey="{labels["journey"]}",step="{labels["step"]}"}}',
                check,
                [
                    (_sel(names.REC_STEP_RATE, labels), 0.0),
                    (_sel(names.REC_STEP_RATE_BASELINE, labels), 0.0),
                    *(
                        (_sel(record, {**labels, "channel": s.world.channel}), 0.0)
                        for record in (names.REC_CHANNEL_RATE, names.REC_CHANNEL_RATE_BASELINE)
                    ),
                    *(
                        (_sel(record, {**on_channel, "outcome": o, "timeliness": t}), 0.0)
                        for record in (names.REC_CLASS_RATE, names.REC_CLASS_RATE_BASELINE)
                        for o in names.OUTCOMES
                        for t in names.TIMELINESS_CLASSES
                    ),
                    *(
                        (_sel(names.rec_bucket_rate(span), {**on_channel, "le": le}), 0.0)
                        for span in (names.RECENT, names.BASELINE)
                        for le in (
                            *(repr(float(b)) for b in names.duration_buckets(target, tolerating)),
                            "+Inf",
                        )
                    ),
                    (_sel(names.REC_STEPS_RATE5M, labels), 0.0),
                    (_sel(names.REC_GOOD_RATE5M, labels), 0.0),
                    *(
                        (
                            _sel(
                                names.REC_CHECKS_RATE5M,
                                {**labels, "check": c.check.name, "result": result},
                            ),
                            0.0,
                        )
                        for c in last.checks
                        for result in names.RESULTS
                    ),
                    # the spec series it joins, whatever the traffic (as exposed and held)
                    *(
                        (_sel(record, keys), value)
                        for held, keys, value in (
                            (names.REC_STEP_OBJECTIVE, labels, last.good.target),
                            (names.REC_MIN_CHANGE, labels, last.min_change),
                            (names.REC_MIN_VOLUME, labels, float(last.min_volume)),
                            *(
                                (
                                    names.REC_CHECK_OBJECTIVE,
                                    {**labels, "check": c.check.name},
                                    c.objective.target,
                                )
                                for c in last.checks
                            ),
                            *(
                                [(names.REC_STEP_POLICY, {**labels, "policy": last.policy}, 1.0)]
                                if len(self.rs.plan.policies) > 1
                                else []
                            ),
                        )
                        for record in (names.rec_exposed(held), held)
                    ),
                ],
            )
        ]
        return s

    # -- simulation and rendering ------------------------------------------------------------

    def simulate(self, s: Scenario) -> dict[int, list[Firing]]:
        return simulate(s.world, self.models, self.interval, s.end_s)

    def _first(
        self, s: Scenario, hit: Callable[[list[Firing]], bool], begin: int, end: int
    ) -> int | None:
        timeline = self.simulate(s)
        return next((t for t in range(begin, end + 1, self.interval) if hit(timeline[t])), None)

    def render(self, s: Scenario) -> dict[str, Any]:
        timeline = self.simulate(s)
        tests: list[dict[str, Any]] = []
        for t, verdict in sorted(s.checks.items()):
            problem = verdict(timeline[t])
            if problem:
                raise CxError(f"scenario '{s.name}' at {prometheus_duration(t)}: {problem}")
            for alertname in ALERT_NAMES:
                tests.append(
                    {
                        "eval_time": prometheus_duration(t),
                        "alertname": alertname,
                        "exp_alerts": [
                            {"exp_labels": dict(f.labels), "exp_annotations": f.annotations}
                            for f in timeline[t]
                            if f.rule.alert == alertname
                        ],
                    }
                )
        exprs: list[dict[str, Any]] = [
            {"expr": NAN_QUERY, "eval_time": prometheus_duration(t), "exp_samples": []}
            for t in s.nan_checks
        ]
        exprs += [
            {
                "expr": expr,
                "eval_time": prometheus_duration(t),
                "exp_samples": [{"labels": lab, "value": v} for lab, v in samples],
            }
            for expr, t, samples in s.exact
        ]
        series = [
            {"series": text, "values": values_text(values)}
            for text, (_, values) in sorted(s.world.series().items())
        ]
        series += spec_series(self.spec, s.end_s // self.interval)
        group: dict[str, Any] = {
            "name": s.name,
            "interval": prometheus_duration(self.interval),
            "input_series": series,
            "alert_rule_test": tests,
        }
        if exprs:
            group["promql_expr_test"] = exprs
        return group


def spec_series(spec: Spec, samples: int) -> list[dict[str, str]]:
    """The spec series the app exposes (its thresholds and rule policy, ``spec_rows``), constant
    over ``samples`` intervals, as promtool input: the generic rules join them."""
    out = []
    for family, values, value in spec_rows(spec):
        labels = dict(zip(names.METRICS[family][1], values, strict=True))
        out.append({"series": _sel(family, labels), "values": f"{value!r}+0x{samples}"})
    return sorted(out, key=lambda row: row["series"])


def _sel(metric: str, labels: dict[str, str]) -> str:
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)


def _interval(plans: tuple[StepPlan, ...]) -> int:
    """The series and evaluation interval: the largest that divides every window (so at most
    the 5m burn window). Coarse is fine — a window needs two samples — and keeps promtool fast;
    ``for`` need not be a multiple: alerts fire at the first evaluation past it."""
    spans = [parse_duration(x) for pair in BURN_PAIRS for x in (pair.long, pair.short)]
    for p in plans:
        spans += [p.window_s, p.baseline_range_s, p.baseline_offset_s]
    if any(x != int(x) for x in spans):
        raise CxError("promtool suites need windows, baselines and 'for' in whole seconds")
    return math.gcd(*(int(x) for x in spans))
