"""What the rules of each step are built from: the spec's merged policy, checked for rule-ability.

``plan(spec)`` turns every step's merged regression policy and objectives (``Spec.regression``,
``Spec.objectives``) into a ``StepPlan`` whose windows are already Prometheus durations. A spec
that would give broken or meaningless rules is rejected here with a ``SpecError`` naming the field
that sets the offending value (the step's override, the journey's, or ``defaults``) and its line —
before anything is written.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal

from .._exceptions import SpecError, SpecIssue
from ..spec.durations import human_duration, prometheus_duration
from ..spec.model import Check, Journey, Spec, Step
from ..spec.positions import Path, line_of, load_with_lines

Severity = Literal["page", "ticket"]


@dataclass(frozen=True)
class BurnPair:
    """One row of the Google SRE workbook's multiwindow, multi-burn-rate table.

    ``for_`` follows kube-prometheus' API error-budget alerts, so a single bad scrape cannot page.
    """

    factor: float
    long: str
    short: str
    severity: Severity
    for_: str

    @property
    def name(self) -> str:
        return f"{self.long}/{self.short}"


BURN_PAIRS = (
    BurnPair(14.4, "1h", "5m", "page", "2m"),
    BurnPair(6.0, "6h", "30m", "page", "15m"),
    BurnPair(1.0, "3d", "6h", "ticket", "3h"),
)
LONGEST_BURN_WINDOW_S = 3 * 86400.0
#: How long a page keeps firing once its condition stops holding (Prometheus ``keep_firing_for``,
#: 2.42+): a scrape gap empties the 5m window, and without it the page resolves and re-fires.
PAGE_KEEP_FIRING_FOR = "10m"


@dataclass(frozen=True)
class Objective:
    """A ratio objective of a step (good steps) or of one accuracy check, with its live pairs."""

    target: float
    period: float
    pairs: tuple[BurnPair, ...]  # the pairs that can fire: factor × budget < 1

    @property
    def budget(self) -> float:
        return 1 - self.target

    def budget_expr(self) -> str:
        """The error budget as PromQL arithmetic, so Prometheus does the subtraction."""
        return f"(1 - {self.target!r})"


@dataclass(frozen=True)
class CheckPlan:
    check: Check
    objective: Objective


@dataclass(frozen=True)
class StepPlan:
    """Everything the rules of one step need, in Prometheus units."""

    journey: Journey
    step: Step
    next_step: Step | None
    window: str  # the regression ("recent") window
    window_s: float
    baseline_range: str
    baseline_range_s: float
    baseline_offset: str  # how far back the baseline range ends
    baseline_offset_s: float
    baseline_text: str  # "the same 10m one day earlier" / "the 6h before it"
    min_change: float
    min_volume: int
    for_: str
    for_s: float
    quantiles: tuple[float, ...]
    severity: Severity
    good: Objective
    checks: tuple[CheckPlan, ...]

    service: str = ""
    channels: tuple[str, ...] = ()  # the journey's channels (else the spec's)
    policy: str = ""  # ``Spec.policy``: steps sharing it share their rules

    @property
    def labels(self) -> dict[str, str]:
        """The step's selector: service (so two services sharing a journey and step name never
        mix), journey and step."""
        return {"service": self.service, "journey": self.journey.name, "step": self.step.name}


@dataclass(frozen=True)
class Policy:
    """The steps sharing one rule policy (``Spec.policy``): one generic rule serves them all,
    thresholds joined from the spec series (docs/rules.md, *Generic rules*). ``filtered`` when the
    spec has more than one policy: the rules then select their steps with the recorded
    ``cx:step_policy:info{policy=...}``."""

    name: str
    steps: tuple[StepPlan, ...]
    filtered: bool

    @property
    def first(self) -> StepPlan:
        """Any member: windows, baseline, ``for``, quantiles, severity and period are theirs."""
        return self.steps[0]

    @property
    def service(self) -> str:
        return self.first.service


@dataclass(frozen=True)
class Plan:
    spec: Spec
    steps: tuple[StepPlan, ...]
    notes: tuple[str, ...]  # what was left out and why (alerts that could never fire)

    @property
    def policies(self) -> tuple[Policy, ...]:
        """The distinct policies, in the order of their first step."""
        members: dict[str, list[StepPlan]] = {}
        for p in self.steps:
            members.setdefault(p.policy, []).append(p)
        return tuple(
            Policy(name, tuple(steps), len(members) > 1) for name, steps in members.items()
        )


def plan(spec: Spec) -> Plan:
    """Check ``spec`` for rule-ability and resolve every step's policy; ``SpecError`` if not."""
    issues: list[tuple[Path, str, str | None]] = []
    notes: list[str] = []
    steps: list[StepPlan] = []
    for j_index, journey in enumerate(spec.journeys):
        for s_index in range(len(journey.steps)):
            here = _Where(spec, j_index, s_index)
            found = _step_plan(spec, journey, s_index, here, issues, notes)
            if found is not None:
                steps.append(found)
    if issues:
        raise _error(spec, issues)
    return Plan(spec, tuple(steps), tuple(dict.fromkeys(notes)))


def _step_plan(
    spec: Spec,
    journey: Journey,
    s_index: int,
    here: _Where,
    issues: list[tuple[Path, str, str | None]],
    notes: list[str],
) -> StepPlan | None:
    step = journey.steps[s_index]
    policy = spec.regression(journey, step)
    before = len(issues)
    window = _duration(policy.window, here.regression("window"), issues)
    base = _duration(policy.baseline.window, here.regression("baseline"), issues)
    for_ = _duration(policy.for_, here.regression("for"), issues)
    if policy.baseline.mode == "offset" and policy.baseline.window < policy.window:
        issues.append(
            (
                here.regression("baseline"),
                f"an offset baseline of {human_duration(policy.baseline.window)} overlaps the "
                f"{human_duration(policy.window)} regression window it is compared with",
                "offset the baseline by at least the window, e.g. 'baseline: 1d', or use "
                "'trailing 6h'",
            )
        )
    if len(set(policy.quantiles)) != len(policy.quantiles):
        issues.append(
            (
                here.regression("quantiles"),
                "a quantile is listed twice",
                "list each quantile once, e.g. [0.95, 0.5]",
            )
        )
    next_step = journey.steps[s_index + 1] if s_index + 1 < len(journey.steps) else None
    if next_step is not None and policy.min_change >= 1:
        issues.append(
            (
                here.regression("min_change"),
                f"min_change {policy.min_change:g} also sets the conversion-drop threshold, and "
                "the conversion from one step to the next cannot drop by 100% or more",
                "use a value below 1 (0.1 = a 10% change)",
            )
        )
    objectives = spec.objectives(journey, step)
    if objectives.period < LONGEST_BURN_WINDOW_S:
        issues.append(
            (
                here.objectives("period"),
                f"an SLO period of {human_duration(objectives.period)} is shorter than the 3d "
                "window of the ticket burn-rate alert (SRE workbook)",
                "use at least 3d; 28d or 30d is usual",
            )
        )
    if len(issues) > before:
        return None
    good = _objective(
        objectives.good_ratio, objectives.period, f"{here.objectives_field('good_ratio')}", notes
    )
    checks = tuple(
        CheckPlan(
            check,
            _objective(
                spec.check_objective(journey, step, check),
                objectives.period,
                here.check_field(check),
                notes,
            ),
        )
        for check in step.checks
    )
    if policy.baseline.mode == "offset":
        offset, offset_s = base, policy.baseline.window
        text = f"the same {window} window {_ago(policy.baseline.window)}"
        base_range, base_range_s = window, policy.window
    else:
        offset, offset_s = window, policy.window
        base_range, base_range_s = base, policy.baseline.window
        text = f"the {base} before it"
    return StepPlan(
        journey=journey,
        step=step,
        next_step=next_step,
        window=window,
        window_s=policy.window,
        baseline_range=base_range,
        baseline_range_s=base_range_s,
        baseline_offset=offset,
        baseline_offset_s=offset_s,
        baseline_text=text,
        min_change=policy.min_change,
        min_volume=policy.min_volume,
        for_=for_,
        for_s=policy.for_,
        quantiles=policy.quantiles,
        severity=policy.severity,
        good=good,
        checks=checks,
        service=spec.service,
        channels=journey.channels or spec.channels,
        policy=spec.policy(journey, step),
    )


def _objective(target: float, period: float, field: str, notes: list[str]) -> Objective:
    live = tuple(p for p in BURN_PAIRS if p.factor * (1 - target) < 1)
    dead = [p for p in BURN_PAIRS if p not in live]
    if dead:
        notes.append(
            f"{field} {target:g}: the {', '.join(f'{p.factor:g}× ({p.name})' for p in dead)} "
            f"burn-rate alert{'s' if len(dead) > 1 else ''} would need more than 100% bad events "
            "and cannot fire; left out"
        )
    return Objective(target, period, live)


def _ago(seconds: float) -> str:
    for size, word in ((604800, "week"), (86400, "day"), (3600, "hour")):
        if seconds == size:
            return f"one {word} earlier"
    return f"{span(seconds)} earlier"


def span(seconds: float) -> str:
    """A period as people say it: ``28d`` rather than Prometheus' ``4w``."""
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:g}d"
    return human_duration(seconds)


def percent(ratio: float) -> str:
    return f"{ratio * 100:.4g}%"


def _duration(seconds: float, where: Path, issues: list[tuple[Path, str, str | None]]) -> str:
    millis = seconds * 1000
    if millis < 1 or not math.isclose(millis, round(millis), abs_tol=1e-6):
        issues.append(
            (
                where,
                f"{seconds!r}s is not a whole number of milliseconds, which "
                "Prometheus durations need",
                "write e.g. '250ms', '10m' or '1d'",
            )
        )
        return ""
    return prometheus_duration(seconds)


class _Where:
    """Which spec field sets a merged value: the step's override, the journey's, or defaults."""

    def __init__(self, spec: Spec, j_index: int, s_index: int) -> None:
        self.spec, self.j, self.s = spec, j_index, s_index
        self.journey = spec.journeys[j_index]
        self.step = self.journey.steps[s_index]

    def regression(self, attr: str) -> Path:
        key = "for_" if attr == "for" else attr
        if self.step.regression is not None and getattr(self.step.regression, key) is not None:
            return ("journeys", self.j, "steps", self.s, "regression", attr)
        if (
            self.journey.regression is not None
            and getattr(self.journey.regression, key) is not None
        ):
            return ("journeys", self.j, "regression", attr)
        return ("defaults", "regression", attr)

    def objectives(self, attr: str) -> Path:
        if self.step.objectives is not None and getattr(self.step.objectives, attr) is not None:
            return ("journeys", self.j, "steps", self.s, "objectives", attr)
        if (
            self.journey.objectives is not None
            and getattr(self.journey.objectives, attr) is not None
        ):
            return ("journeys", self.j, "objectives", attr)
        return ("defaults", "objectives", attr)

    def objectives_field(self, attr: str) -> str:
        return _dotted(self.spec, self.objectives(attr))

    def check_field(self, check: Check) -> str:
        if check.objective is not None:
            index = self.step.checks.index(check)
            return _dotted(
                self.spec, ("journeys", self.j, "steps", self.s, "checks", index, "objective")
            )
        return self.objectives_field("accuracy")


def _dotted(spec: Spec, path: Path) -> str:
    """``journeys[bill_inquiry].steps[bill_detail].regression.window``: names, not indexes."""
    out, key = "", ""
    node: object = spec
    for part in path:
        if isinstance(part, int):
            node = getattr(node, key)[part]
            out += f"[{getattr(node, 'name', part)}]"
        else:
            out += f".{part}" if out else part
            key = part
    return out


def _error(spec: Spec, issues: list[tuple[Path, str, str | None]]) -> SpecError:
    lines: dict[Path, int] = {}
    if os.path.isfile(spec.source):
        with open(spec.source, encoding="utf-8") as handle:
            _, lines, _ = load_with_lines(handle.read(), spec.source)
    unique: dict[tuple[str, str], SpecIssue] = {}
    for path, message, hint in issues:
        field = _dotted(spec, path)
        issue = SpecIssue(
            spec.source, line_of(lines, path) if lines else None, field, message, hint
        )
        unique.setdefault((field, message), issue)
    return SpecError(list(unique.values()))
