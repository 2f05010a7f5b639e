"""PromQL for every dashboard panel, derived from ``names.py`` and the spec.

Panels never spell a metric or label by hand: ``selector`` checks each label against the family's
label set in ``names.METRICS`` (or the recording-rule contract), so a query that filters a metric
by a label it does not carry fails at generation time, not as an empty panel in Grafana.
Raw ``cx_*`` metrics are preferred, so panels work without the generated rules; recording-rule
names (``cx:...``) are used only for what the rules add: the regression baseline and SLO burn rates.

The duration histogram has one bucket layout per step, so it is always aggregated
``sum by (journey, step, le)`` and never across steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..analysis import catalogue
from ..analysis.catalogue import Matcher, Re
from ..spec import names
from ..spec.model import Journey, Spec

RATE = "$__rate_interval"
RANGE = "$__range"
CHANNEL_VAR = "channel"
STEP_VAR = "step"
JOURNEY_VAR = "journey"
SERVICE_VAR = "service"
#: The dashboard's service (a variable defaulting to the spec's ``service``): every selector
#: carries it, so two services sharing journey and step names never mix on a panel.
SERVICE = f"${SERVICE_VAR}"
#: The focused step view's selected step (a single-value variable).
STEP = f"${STEP_VAR}"
LONG = "28d"  # the 28-day panels, from the recorded 5m rates
LONG_S = 28 * 86400.0
ALERTS = "ALERTS"
_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
_RULE_LABELS = (names.SERVICE, names.JOURNEY, names.STEP, names.CHECK, names.TO_STEP)
_ALERT_LABELS = (
    "alertname",
    "alertstate",
    names.SERVICE,
    names.JOURNEY,
    names.STEP,
    names.CHECK,
    "severity",
)


CHANNEL = Re(f"${CHANNEL_VAR}")
CX_ALERTS = Re("Cx.*")


def family_labels(metric: str) -> tuple[str, ...]:
    """The labels ``metric`` (an exposed series name, a rule name or ``ALERTS``) may carry."""
    if metric in names.METRICS:
        return names.METRICS[metric][1]
    for suffix in _HISTOGRAM_SUFFIXES:
        base = metric.removesuffix(suffix)
        if base != metric and names.METRICS.get(base, ("",))[0] == "histogram":
            extra = ("le",) if suffix == "_bucket" else ()
            return (*names.METRICS[base][1], *extra)
    if metric.startswith("cx:"):
        return _RULE_LABELS
    if metric == ALERTS:
        return _ALERT_LABELS
    raise ValueError(f"unknown metric '{metric}': not in names.METRICS, not a cx: rule")


def selector(metric: str, **labels: Matcher) -> str:
    """``metric{label="value",...}``; a label the family does not carry is a ``ValueError``."""
    allowed = family_labels(metric)
    parts = []
    for label, value in labels.items():
        if label not in allowed:
            raise ValueError(f"{metric} has no label '{label}' (labels: {', '.join(allowed)})")
        if isinstance(value, Re):
            parts.append(f'{label}=~"{value.pattern}"')
        else:
            parts.append(f'{label}="{value}"')
    return f"{metric}{{{','.join(parts)}}}"


def ratio(numerator: str, denominator: str) -> str:
    """``numerator / denominator`` with no series (instead of NaN) where nothing happened."""
    return f"{numerator} / ({denominator} > 0)"


def _by(labels: tuple[str, ...]) -> str:
    return f" by ({', '.join(labels)})" if labels else ""


def _alternatives(values: list[str]) -> Matcher:
    return values[0] if len(values) == 1 else Re("|".join(values))


class JourneyQueries:
    """The queries of one journey's dashboards."""

    def __init__(self, spec: Spec, journey: Journey) -> None:
        self.spec, self.journey = spec, journey
        self.j = journey.name
        #: what every selector of this journey's queries matches: the service and the journey
        self.scope: dict[str, Matcher] = {names.SERVICE: SERVICE, names.JOURNEY: self.j}

    # -- counters -------------------------------------------------------------------------

    def steps(
        self, window: str, by: tuple[str, ...] = (), fn: str = "rate", **labels: Matcher
    ) -> str:
        """Finished steps, summed ``by``, for the selected channels."""
        return catalogue.volume_promql(
            window, {**self.scope, "channel": CHANNEL, **labels}, fn=fn, by=by
        )

    def started(self, window: str, fn: str = "increase") -> str:
        match: dict[str, Matcher] = {**self.scope, "channel": CHANNEL}
        return catalogue.count_promql(names.JOURNEYS_STARTED, window, match, fn=fn)

    def completed(self, window: str, fn: str = "increase") -> str:
        last = self.journey.steps[-1].name
        return self.steps(window, fn=fn, step=last, outcome="ok")

    def completion(self, window: str = RANGE) -> str:
        return ratio(self.completed(window), self.started(window))

    def abandonment(self, window: str = RANGE) -> str:
        return f"1 - ({self.completion(window)})"

    def step_volume(self, step: str, window: str = RANGE) -> str:
        return self.steps(window, fn="increase", step=step)

    def conversion(
        self, from_step: str, to_step: str, window: str = RANGE, fn: str = "increase"
    ) -> str:
        """Share of the steps finished at ``from_step`` that went on to ``to_step``, over all
        channels (the panels that show it say so)."""
        return catalogue.promql(
            catalogue.CONVERSION,
            window,
            {**self.scope, "step": from_step},
            fn=fn,
            by=(),
            to_step=to_step,
        )

    def _ratio(
        self,
        indicator: catalogue.Ratio,
        window: str,
        fn: str,
        by: tuple[str, ...],
        labels: Mapping[str, Matcher],
        channel: bool = True,
        offset: str | None = None,
    ) -> str:
        match: dict[str, Matcher] = {**self.scope, **labels}
        if channel:
            match["channel"] = CHANNEL
        return catalogue.promql(indicator, window, match, fn=fn, by=by, offset=offset)

    def good_ratio(
        self,
        window: str,
        fn: str = "rate",
        by: tuple[str, ...] = ("step",),
        channel: bool = True,
        **labels: Matcher,
    ) -> str:
        return self._ratio(catalogue.GOOD, window, fn, by, labels, channel)

    def timeliness(
        self, window: str, fn: str = "rate", by: tuple[str, ...] = ("step",), **labels: Matcher
    ) -> str:
        """Share of steps answered ok within the target T."""
        return self._ratio(catalogue.TIMELINESS, window, fn, by, labels)

    def apdex(
        self, window: str, fn: str = "rate", by: tuple[str, ...] = ("step",), **labels: Matcher
    ) -> str:
        return self._ratio(catalogue.APDEX, window, fn, by, labels)

    def error_ratio(
        self, window: str, fn: str = "rate", by: tuple[str, ...] = ("step",), **labels: Matcher
    ) -> str:
        return self._ratio(catalogue.ERRORS, window, fn, by, labels)

    def success_ratio(
        self, window: str, fn: str = "rate", by: tuple[str, ...] = ("step",), **labels: Matcher
    ) -> str:
        return self._ratio(catalogue.SUCCESS, window, fn, by, labels)

    def accuracy(
        self, window: str, fn: str = "rate", by: tuple[str, ...] = ("step",), **labels: Matcher
    ) -> str:
        """Share of accuracy checks that passed, over all channels (the panels say so)."""
        return self._ratio(catalogue.ACCURACY, window, fn, by, labels, channel=False)

    def failed_checks(self, step: Matcher, window: str = RANGE) -> str:
        """Failed accuracy checks per check, whole numbers, most first."""
        match = {**self.scope, "step": step}
        failed = catalogue.tally_promql(catalogue.FAILED_CHECKS, window, match, by=("check",))
        return f"sort_desc({failed})"

    # -- customers affected, period over period, 28 days ------------------------------------

    def tally(
        self,
        tally: catalogue.Tally,
        by: tuple[str, ...] = ("step",),
        offset: str | None = None,
        **labels: Matcher,
    ) -> str:
        """How many customers ``tally`` happened to in the time range (whole numbers)."""
        match: dict[str, Matcher] = {**self.scope, "channel": CHANNEL, **labels}
        return catalogue.tally_promql(tally, RANGE, match, by=by, offset=offset)

    def abandoned(self, offset: str | None = None) -> str:
        match: dict[str, Matcher] = {names.SERVICE: SERVICE, "channel": CHANNEL}
        return catalogue.abandoned_promql(self.journey, RANGE, match, offset=offset)

    def good_change(self, by: tuple[str, ...] = ("step",), **labels: Matcher) -> str:
        """Good-step ratio in the time range minus the same range a week earlier (points)."""
        now = self._ratio(catalogue.GOOD, RANGE, "increase", by, labels)
        before = self._ratio(
            catalogue.GOOD,
            RANGE,
            "increase",
            by,
            labels,
            offset=catalogue.PERIOD_OFFSET,
        )
        return catalogue.change_promql(now, before, relative=False)

    def p95_change(self, step: Matcher) -> str:
        """p95 over the time range against the same range a week earlier (relative)."""
        match: dict[str, Matcher] = {**self.scope, "step": step, "channel": CHANNEL}
        now = catalogue.quantile_over_range_promql(0.95, RANGE, match)
        before = catalogue.quantile_over_range_promql(
            0.95, RANGE, match, offset=catalogue.PERIOD_OFFSET
        )
        return catalogue.change_promql(now, before)

    def tally_change(self, tally: catalogue.Tally, **labels: Matcher) -> str:
        """Customers ``tally`` happened to, against a week earlier (relative)."""
        match: dict[str, Matcher] = {**self.scope, "channel": CHANNEL, **labels}
        now = catalogue.tally_promql(tally, RANGE, match, by=("step",))
        before = catalogue.tally_promql(
            tally, RANGE, match, by=("step",), offset=catalogue.PERIOD_OFFSET
        )
        return catalogue.change_promql(now, before)

    def started_change(self) -> str:
        match: dict[str, Matcher] = {**self.scope, "channel": CHANNEL}
        now = catalogue.tally_promql(catalogue.STARTED, RANGE, match, by=("journey",))
        before = catalogue.tally_promql(
            catalogue.STARTED, RANGE, match, by=("journey",), offset=catalogue.PERIOD_OFFSET
        )
        return catalogue.change_promql(now, before)

    def long_good(self, by: tuple[str, ...] = ("step",)) -> str:
        """Good-step ratio over 28 days from the recorded 5m rates (all channels)."""
        return catalogue.long_ratio_promql(catalogue.GOOD, LONG, {**self.scope}, by=by)

    def long_bad_steps(self, by: tuple[str, ...] = ("step",)) -> str:
        """Customers with a bad step over 28 days, from the recorded 5m rates."""
        match = {**self.scope}
        steps = catalogue.long_count_promql(names.STEPS, LONG, LONG_S, match, by)
        good = catalogue.long_count_promql(names.GOOD_STEPS, LONG, LONG_S, match, by)
        return f"clamp_min({steps} - ({good} or 0 * {steps}), 0)"

    def score(self, score: catalogue.Score, by: tuple[str, ...] = ("journey",)) -> str:
        """NPS or CSAT (``catalogue.feedback_promql``) over the time range: of the journey, or
        ``by`` the step the customer had reached."""
        return catalogue.feedback_promql(score, RANGE, {**self.scope}, by=by)

    def responses(self, score: catalogue.Score) -> str:
        """Responses behind ``score`` in the time range, a whole number."""
        return f"round({catalogue.responses_promql(score, RANGE, {**self.scope})})"

    def complaint_rate(self) -> str:
        return catalogue.complaint_promql(RANGE, {**self.scope})

    def complaints(self) -> str:
        """Complaints (feedback of the complaint category) in the time range, a whole number: 0,
        not "no data", once a journey started without one."""
        match: dict[str, Matcher] = {**self.scope, names.CATEGORY: catalogue.COMPLAINT}
        by = ("journey",)
        complaints = catalogue.count_promql(names.FEEDBACK_TOPICS, RANGE, match, by=by)
        started = catalogue.count_promql(names.JOURNEYS_STARTED, RANGE, {**self.scope}, by=by)
        return f"round({complaints} or 0 * {started})"

    def transitions(self) -> str:
        return catalogue.transitions_promql(RANGE, {**self.scope})

    def cx_score(
        self, window: str, fn: str = "rate", by: tuple[str, ...] = ("step",), **labels: Matcher
    ) -> str:
        """The catalogue's CX score: a step without checks rescales Apdex and success; capped
        while an objective of the step burns at page severity (``catalogue.score_promql``)."""
        step = labels.pop("step", None)
        steps = self.journey.steps
        if isinstance(step, str):
            steps = (self.journey.step(step),)
        elif step is not None:
            raise ValueError("cx_score selects one step or all of them")
        return catalogue.score_promql(
            self.spec,
            self.journey,
            steps,
            window,
            {**self.scope, "channel": CHANNEL, **labels},
            fn=fn,
            by=by,
        )

    # -- latency --------------------------------------------------------------------------

    def duration_quantile(self, quantile: float, step: str, window: str = RATE) -> str:
        return catalogue.quantile_promql(
            quantile, window, {**self.scope, "step": step, "channel": CHANNEL}
        )

    def target(self, metric: str = names.STEP_TARGET, **labels: Matcher) -> str:
        # max: one value per step however many app instances expose the gauge.
        return f"max by (journey, step) ({selector(metric, **self.scope, **labels)})"

    def p95_over_target(self, window: str = RATE) -> str:
        p95 = catalogue.quantile_promql(0.95, window, {**self.scope, "channel": CHANNEL})
        return f"{p95} / on (journey, step) {self.target()}"

    def journey_time(self, quantile: float | None, window: str = RANGE) -> str:
        """End-to-end journey time of the instances that finished in ``window`` (the selected
        channels: the channel of the last step): its ``quantile`` from the buckets, or the exact
        mean (``None``)."""
        match: dict[str, Matcher] = {**self.scope, "channel": CHANNEL}
        return catalogue.journey_time_promql(quantile, window, match, by=())

    # -- recording rules: what the rules add -----------------------------------------------

    def recorded_quantile(self, quantile: float, span: str, step: str) -> str:
        return selector(names.rec_quantile(quantile, span), **self.scope, step=step)

    def regression_change(self, quantile: float, step: str) -> str:
        recent = self.recorded_quantile(quantile, names.RECENT, step)
        baseline = self.recorded_quantile(quantile, names.BASELINE, step)
        return catalogue.change_promql(recent, baseline)

    def _per_objective(self, render: Callable[[Matcher, str], str]) -> str:
        """``render(steps, budget)`` once per distinct good-ratio objective, joined with ``or``:
        steps may override the journey's objective, and the budget is ``1 - objective``."""
        groups: dict[float, list[str]] = {}
        for step in self.journey.steps:
            objective = self.spec.objectives(self.journey, step).good_ratio
            groups.setdefault(objective, []).append(step.name)
        parts = [
            render(_alternatives(steps), f"{1 - objective:.6g}")
            for objective, steps in groups.items()
        ]
        return parts[0] if len(parts) == 1 else " or ".join(f"({p})" for p in parts)

    def burn_rate(self, window: str) -> str:
        """How fast each step spends its good-ratio error budget (1 = exactly on budget)."""
        metric = names.rec_bad_ratio(window)
        return self._per_objective(
            lambda steps, budget: f"{selector(metric, **self.scope, step=steps)} / {budget}"
        )

    def budget_remaining(self) -> str:
        """Share of the good-ratio error budget left over the objective's period (raw counters,
        all channels: an objective is for the step, whatever the channel)."""

        def render(steps: Matcher, budget: str) -> str:
            good = self.good_ratio(self.period, "increase", channel=False, step=steps)
            return f"1 - (1 - ({good})) / {budget}"

        return self._per_objective(render)

    @property
    def period(self) -> str:
        return _duration(self.spec.objectives(self.journey).period)

    def slo_good_ratio(self) -> str:
        return self.good_ratio(self.period, "increase", channel=False)

    # -- alerts ---------------------------------------------------------------------------

    def alerts(self, alertname: Matcher = CX_ALERTS, state: str | None = None) -> str:
        labels: dict[str, Matcher] = {"alertname": alertname}
        if state is not None:
            labels["alertstate"] = state
        return selector(ALERTS, **labels, **self.scope)

    def firing_count(self) -> str:
        return f"count({self.alerts(state='firing')}) or vector(0)"


def _duration(seconds: float) -> str:
    """A PromQL duration for ``seconds`` (``28d``, ``6h``, ``90s``)."""
    whole = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def selected_step(expr: str) -> str:
    """``expr`` (one series per step) kept only for the step the ``step`` variable selects."""
    return f'({expr}) and on (step) label_replace(vector(1), "step", "{STEP}", "", "")'
