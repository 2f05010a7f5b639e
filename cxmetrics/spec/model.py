"""The spec (``cxmetrics.yaml``): pydantic models and the loader.

The spec is the single source of truth (docs/architecture.md): journeys, ordered steps, targets,
accuracy checks, objectives, regression policy and channels. Metric children, recording rules and
dashboards are all derived from a loaded ``Spec``. Loading reports *every* problem at once, each
with the file, line, field and a likely fix (see ``SpecError``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .durations import parse_duration, prometheus_duration
from .names import FOLLOWUP_FIELDS, NAME_PATTERN, NONE, OTHER, duration_buckets

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Seconds = Annotated[float, BeforeValidator(parse_duration)]


def _percentage(value: Any) -> Any:
    """``'10%'`` is ``0.10``: people write shares and changes as percentages."""
    if isinstance(value, str) and value.strip().endswith("%"):
        number = value.strip()[:-1].strip()
        try:
            return float(number) / 100.0
        except ValueError:
            raise ValueError(f"{value!r} is not a percentage; write e.g. '10%' or 0.10") from None
    return value


def _share(value: float) -> float:
    if 0.0 < value < 1.0:
        return value
    if 50.0 <= value < 100.0:  # an objective written as a percentage: suggest the share
        raise ValueError(
            f"{value:g} is not a share between 0 and 1; did you mean {value / 100.0:g}?"
        )
    raise ValueError(f"{value:g} is not a share between 0 and 1, such as 0.95 or '95%'")


Ratio = Annotated[float, BeforeValidator(_percentage), AfterValidator(_share)]
Change = Annotated[float, BeforeValidator(_percentage)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Objectives(_Model):
    """Targets for the share of good events over ``period``; each also sets an error budget."""

    timeliness: Ratio = 0.95
    accuracy: Ratio = 0.999
    good_ratio: Ratio = 0.95
    period: Seconds = 28 * 86400.0


class ObjectivesOverride(_Model):
    timeliness: Ratio | None = None
    accuracy: Ratio | None = None
    good_ratio: Ratio | None = None
    period: Seconds | None = None


class Baseline(_Model):
    """What recent latency is compared with: the same window ``offset`` ago, or a trailing one."""

    mode: Literal["offset", "trailing"] = "offset"
    window: Seconds = 86400.0

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            words = value.split()
            if len(words) == 1:
                return {"mode": "offset", "window": words[0]}
            if len(words) == 2 and words[0] in ("offset", "trailing"):
                return {"mode": words[0], "window": words[1]}
            raise ValueError(
                f"baseline {value!r} not understood; write '1d' (same window a day earlier), "
                "'offset 7d' or 'trailing 6h'"
            )
        return value


class RegressionPolicy(_Model):
    """When a step's latency counts as regressed (docs/regression.md, docs/rules.md)."""

    min_change: Change = Field(0.10, gt=0.0, le=10.0)
    baseline: Baseline = Baseline()
    window: Seconds = 600.0
    min_volume: int = Field(100, ge=1)
    for_: Seconds = Field(300.0, alias="for")
    quantiles: tuple[Annotated[float, Field(gt=0.0, lt=1.0)], ...] = (0.95, 0.5)
    severity: Literal["page", "ticket"] = "ticket"

    @model_validator(mode="after")
    def _windows_make_sense(self) -> RegressionPolicy:
        if self.baseline.mode == "trailing" and self.baseline.window <= self.window:
            raise ValueError("a trailing baseline must be longer than the regression window")
        if not self.quantiles:
            raise ValueError("list at least one quantile, e.g. [0.95]")
        return self


class RegressionOverride(_Model):
    min_change: Change | None = Field(None, gt=0.0, le=10.0)
    baseline: Baseline | None = None
    window: Seconds | None = None
    min_volume: int | None = Field(None, ge=1)
    for_: Seconds | None = Field(None, alias="for")
    quantiles: tuple[Annotated[float, Field(gt=0.0, lt=1.0)], ...] | None = None
    severity: Literal["page", "ticket"] | None = None


class ScoreWeights(_Model):
    """CX score = 100 × (apdex·w_apdex + accuracy·w_accuracy + success·w_success).

    The weights sum to 1."""

    apdex: float = Field(0.5, ge=0.0, le=1.0)
    accuracy: float = Field(0.3, ge=0.0, le=1.0)
    success: float = Field(0.2, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _sum_to_one(self) -> ScoreWeights:
        total = self.apdex + self.accuracy + self.success
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"score weights must sum to 1, they sum to {total:g}")
        return self


Tags = dict[Annotated[str, Field(pattern=NAME_PATTERN)], str]


class FeedbackObjectives(_Model):
    """The journey's NPS (points, −100 to 100) and CSAT (share of responses scoring 4–5) should
    stay at least at these; none: judged against the baseline only."""

    nps: float | None = Field(None, ge=-100.0, le=100.0)
    csat: Ratio | None = None


class FeedbackPolicy(_Model):
    """When a journey's NPS or CSAT has dropped (``CxFeedbackScoreDrop``, docs/rules.md): over
    ``window``, with at least ``min_responses`` responses of the scale, below its objective, or
    below the same window ``baseline`` earlier (with ``min_responses`` there too) by more than
    ``max_drop`` points (NPS points; CSAT percentage points)."""

    window: Seconds = Field(86400.0, gt=0.0)
    baseline: Seconds = Field(7 * 86400.0, gt=0.0)
    min_responses: int = Field(30, ge=1)
    max_drop: float = Field(10.0, gt=0.0, le=100.0)
    for_: Seconds = Field(900.0, ge=0.0, alias="for")
    objectives: FeedbackObjectives = FeedbackObjectives()

    @model_validator(mode="after")
    def _baseline_before_window(self) -> FeedbackPolicy:
        if self.baseline < self.window:
            raise ValueError(
                f"baseline ({self.baseline:g}s) must be at least the window ({self.window:g}s): "
                "the window a baseline earlier would overlap the current one; e.g. window: 1d, "
                "baseline: 7d"
            )
        return self


class Check(_Model):
    """An accuracy check recorded during a step.

    ``check``: pass/fail set by the app. ``reconcile``: expected vs actual within ``tolerance``
    (relative). ``consistency``: a value compared with the fingerprint an earlier step of the same
    journey instance stored under ``against``.
    """

    name: Name
    kind: Literal["check", "reconcile", "consistency"] = "check"
    objective: Ratio | None = None
    tolerance: float = Field(0.0, ge=0.0, lt=1.0)
    against: Name | None = None
    description: str = ""

    @model_validator(mode="after")
    def _against_only_for_consistency(self) -> Check:
        if self.kind == "consistency" and self.against is None:
            raise ValueError(
                "a consistency check needs 'against': the fingerprint key to compare with"
            )
        if self.kind != "consistency" and self.against is not None:
            raise ValueError("'against' is only for kind: consistency")
        return self


class FollowUp(_Model):
    """A key step's follow-up: an instance that reached the step and, ``after`` that long, has
    reached no later step is handed to ``webhook`` and/or the named ``queue`` — once, with the
    listed ``fields`` — unless ``until`` has passed since the step (then it is given up and parked
    as a dead letter). Raw identifiers never go out: ``customer_ref`` is the keyed reference of
    ``j.identify()``; ``segment`` is the instance's segment, else the step's (else the journey's)
    ``segment`` tag."""

    after: Seconds = Field(gt=0.0)
    until: Seconds = Field(gt=0.0)
    webhook: str | None = None
    queue: Name | None = None
    fields: tuple[str, ...] = FOLLOWUP_FIELDS
    max_lag: Seconds = 900.0  # CxFollowUpLag fires when a due follow-up has waited longer

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError(
                f"webhook {value!r} is not an http(s) URL; write e.g. 'https://crm.example/hooks'"
            )
        return value

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, fields: tuple[str, ...]) -> tuple[str, ...]:
        _unique(list(fields), "field")
        for field in fields:
            _known(field, FOLLOWUP_FIELDS, "follow-up field")
        if not fields:
            raise ValueError(f"list at least one field, e.g. [{', '.join(FOLLOWUP_FIELDS)}]")
        return fields

    @model_validator(mode="after")
    def _target_and_window(self) -> FollowUp:
        if self.webhook is None and self.queue is None:
            raise ValueError(
                "a follow-up needs a target; add 'webhook: https://…' and/or 'queue: <name>'"
            )
        if self.until <= self.after:
            raise ValueError(
                f"until ({self.until:g}s) must be longer than after ({self.after:g}s): it is when "
                "a follow-up not yet delivered is given up"
            )
        return self


class Variant(_Model):
    """A step's own target (and tolerating threshold) and objectives for one customer segment
    or channel (``by_segment`` / ``by_channel``): a VIP's bill detail within 1 s where the
    step's target is 2 s. Without ``tolerating`` the threshold is the tolerating factor × the
    variant's target."""

    target: Seconds | None = None
    tolerating: Seconds | None = None
    objectives: ObjectivesOverride | None = None

    @model_validator(mode="after")
    def _something(self) -> Variant:
        if self.target is None and self.tolerating is None and self.objectives is None:
            raise ValueError("give a target, a tolerating threshold and/or objectives")
        if (
            self.target is not None
            and self.tolerating is not None
            and self.tolerating <= self.target
        ):
            raise ValueError("tolerating must be longer than target (default: 4 × target)")
        return self


class ObjectivesVariant(_Model):
    """A journey's objectives for one segment or channel."""

    objectives: ObjectivesOverride


Variants = dict[Annotated[str, Field(pattern=NAME_PATTERN)], Variant]


class Step(_Model):
    name: Name
    target: Seconds
    tolerating: Seconds | None = None
    description: str = ""
    checks: tuple[Check, ...] = ()
    followup: FollowUp | None = None
    objectives: ObjectivesOverride | None = None
    regression: RegressionOverride | None = None
    tags: Tags = Field(default_factory=dict)
    #: The step's target and objectives for a segment / a channel (segment first, then channel,
    #: then the step's own).
    by_segment: Variants = Field(default_factory=dict)
    by_channel: Variants = Field(default_factory=dict)

    _not_reserved = field_validator("name")(lambda v: _not_other(v, "step"))
    _segments = field_validator("by_segment")(
        lambda v, info: _declared_keys(v, info, "segments", "segment")
    )
    _channels = field_validator("by_channel")(
        lambda v, info: _declared_keys(v, info, "channels", "channel")
    )

    @field_validator("checks")
    @classmethod
    def _unique_checks(cls, checks: tuple[Check, ...]) -> tuple[Check, ...]:
        _unique([c.name for c in checks], "check")
        return checks

    @model_validator(mode="after")
    def _tolerating_above_target(self) -> Step:
        if self.tolerating is not None and self.tolerating <= self.target:
            raise ValueError("tolerating must be longer than target (default: 4 × target)")
        return self


# ---------------------------------------------------------------------------------------------
# Contact-centre indicators of a journey (``contact:``, docs/contact-centre.md): the short-abandon
# threshold, the service level "X% answered within N s" (short abandons in its denominator or
# not), the repeat-contact window that judges first-contact resolution, the objectives of the
# "three highs, three lows", and how a call-detail export maps onto the journey (``records``,
# read by ``cxmetrics import``, docs/import.md).


class ServiceLevel(_Model):
    """``objective`` of the offered calls answered within ``threshold`` seconds. Abandoned and
    failed calls stay in the denominator; short abandons (shorter than the block's
    ``short_abandon``) leave it when ``short_abandons: exclude`` (the common convention)."""

    threshold: Seconds = Field(20.0, gt=0.0)
    objective: Ratio = 0.8
    short_abandons: Literal["exclude", "include"] = "exclude"


class ContactObjectives(_Model):
    """The three highs (at least) and the three lows (at most), plus first-contact resolution
    (at least). The service level's objective is ``service_level.objective``."""

    answer_rate: Ratio = 0.95
    satisfaction: Ratio = 0.8
    transfer_rate: Ratio = 0.1
    ticket_rate: Ratio = 0.1
    complaint_rate: Ratio = 0.02
    first_contact_resolution: Ratio = 0.7


class RecordColumns(_Model):
    """The export's column (CSV) or key (JSONL) holding each field; defaults are the names."""

    call_id: str = "call_id"
    customer: str = "customer_ref"
    queue: str = "queue"
    offered: str = "offered_at"
    answered: str = "answered_at"
    ended: str = "ended_at"
    transfer: str = "transferred"
    outcome: str = "outcome"
    wrap_code: str = "wrap_code"
    survey: str = "survey_score"
    channel: str = "channel"  # optional: a declared channel of the journey (default: below)
    segment: str = "segment"  # optional: a declared segment (empty or absent: none)


class RecordMapping(_Model):
    """How ``cxmetrics import`` reads a call-detail export into this journey."""

    columns: RecordColumns = RecordColumns()
    #: Rows of these queues belong to this journey; empty: every row, when it is the spec's only
    #: contact journey.
    queues: tuple[str, ...] = ()
    channel: Name | None = None  # default: the journey's first channel, else the spec's default
    timezone: str = "UTC"  # of timestamps written without an offset
    survey: Literal["csat", "nps"] = "csat"
    #: The journey's step a call's wait becomes (outcome error unless answered) and the step its
    #: handling becomes (answered calls only); none: no step records.
    answer_step: Name | None = None
    handle_step: Name | None = None
    #: Values of the outcome or wrap-up code column meaning: the platform failed the call, a
    #: ticket was raised, the customer complained.
    failed: tuple[str, ...] = ("failed",)
    tickets: tuple[str, ...] = ("ticket",)
    complaints: tuple[str, ...] = ("complaint",)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a time zone; write e.g. UTC or Europe/Paris"
            ) from None
        return value


class Contact(_Model):
    """``kind: contact`` indicators of a journey (docs/contact-centre.md)."""

    short_abandon: Seconds = Field(5.0, ge=0.0)
    service_level: ServiceLevel = ServiceLevel()
    repeat_window: Seconds = Field(7 * 86400.0, gt=0.0)
    window: Seconds = Field(3600.0, gt=0.0)  # the recording rules' window
    #: CxContactObjectiveMissed needs at least this many calls (survey responses for
    #: satisfaction, judged calls for first-contact resolution) in the window.
    min_volume: int = Field(50, ge=1)
    min_responses: int = Field(30, ge=1)
    objectives: ContactObjectives = ContactObjectives()
    records: RecordMapping = RecordMapping()

    @model_validator(mode="after")
    def _short_below_threshold(self) -> Contact:
        if self.short_abandon >= self.service_level.threshold:
            raise ValueError(
                f"short_abandon ({self.short_abandon:g}s) must be shorter than the service "
                f"level threshold ({self.service_level.threshold:g}s)"
            )
        return self


# ---------------------------------------------------------------------------------------------


class Journey(_Model):
    name: Name
    description: str = ""
    steps: tuple[Step, ...] = Field(min_length=1)
    channels: tuple[Name, ...] | None = None
    reasons: tuple[Name, ...] = ()
    objectives: ObjectivesOverride | None = None
    regression: RegressionOverride | None = None
    tags: Tags = Field(default_factory=dict)
    contact: Contact | None = None
    #: NPS/CSAT drop alerts for this journey, merged over ``defaults.feedback`` (none in either:
    #: no feedback alerts).
    feedback: FeedbackPolicy | None = None
    #: The journey's objectives for a segment / a channel, merged over its own.
    by_segment: dict[Annotated[str, Field(pattern=NAME_PATTERN)], ObjectivesVariant] = Field(
        default_factory=dict
    )
    by_channel: dict[Annotated[str, Field(pattern=NAME_PATTERN)], ObjectivesVariant] = Field(
        default_factory=dict
    )
    #: Conversion and abandonment judge a step's finish only once this long has passed since it
    #: (docs/indicators.md, "Conversion windows"); none: at once, in-flight instances included.
    conversion_window: Seconds | None = Field(None, gt=0.0)

    _not_reserved = field_validator("name")(lambda v: _not_other(v, "journey"))
    _segments = field_validator("by_segment")(
        lambda v, info: _declared_keys(v, info, "segments", "segment")
    )
    _channels = field_validator("by_channel")(
        lambda v, info: _declared_keys(v, info, "channels", "channel")
    )

    @model_validator(mode="after")
    def _contact_steps(self) -> Journey:
        mapping = self.contact.records if self.contact is not None else None
        for field_name in ("answer_step", "handle_step"):
            step = getattr(mapping, field_name, None)
            if step is not None and step not in self.step_names:
                raise ValueError(
                    f"contact.records.{field_name} '{step}' is not a step of journey "
                    f"'{self.name}'{_did_you_mean(step, list(self.step_names))}"
                )
        return self

    @field_validator("reasons")
    @classmethod
    def _own_reasons(cls, reasons: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        _vocabulary(reasons, "reason")
        shared = (info.context or {}).get("reasons", ())  # the loader passes the spec's
        for reason in reasons:
            if reason in shared:
                raise ValueError(
                    f"reason '{reason}' is declared in the spec's reasons already (they apply to "
                    "every journey); remove it here"
                )
        return reasons

    @field_validator("channels")
    @classmethod
    def _declared_channels(
        cls, channels: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        # the loader passes the spec's channels, so the error points at this list
        declared = (info.context or {}).get("channels")
        if channels is not None and isinstance(declared, tuple):
            for channel in channels:
                if channel not in declared:
                    close = difflib.get_close_matches(channel, declared, n=1, cutoff=0.6)
                    fix = (
                        f"did you mean '{close[0]}'?"
                        if close
                        else f"declared in the spec's channels: {', '.join(declared)}"
                    )
                    raise ValueError(f"unknown channel '{channel}'; {fix}")
        return channels

    @field_validator("steps")
    @classmethod
    def _unique_steps(cls, steps: tuple[Step, ...]) -> tuple[Step, ...]:
        _unique([s.name for s in steps], "step")
        names = [s.name for s in steps]
        for step in steps:
            for check in step.checks:
                if check.against is not None and check.against not in names:
                    raise ValueError(
                        f"check '{check.name}' of step '{step.name}' is against unknown step "
                        f"'{check.against}'{_did_you_mean(check.against, names)}"
                    )
        if steps[-1].followup is not None:
            raise ValueError(
                f"step '{steps[-1].name}' is the journey's last step, so no later step can clear "
                "its follow-up; put 'followup' on the step customers stall at before the end"
            )
        return steps

    @property
    def key_steps(self) -> tuple[Step, ...]:
        """The steps with a follow-up policy, in journey order."""
        return tuple(s for s in self.steps if s.followup is not None)

    def segment(self, step: Step) -> str | None:
        """The ``segment`` a follow-up of ``step`` carries: the step's tag, else the journey's."""
        return step.tags.get("segment", self.tags.get("segment"))

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)


class Defaults(_Model):
    tolerating_factor: float = Field(4.0, gt=1.0, le=100.0)
    objectives: Objectives = Objectives()
    regression: RegressionPolicy = RegressionPolicy()
    score: ScoreWeights = ScoreWeights()
    feedback: FeedbackPolicy | None = None


class Spec(_Model):
    """A whole ``cxmetrics.yaml``. Build it with ``load_spec`` or ``Spec.model_validate``."""

    version: Literal[1] = 1
    service: Name
    channels: tuple[Name, ...] = ("app",)
    default_channel: Name | None = None
    segments: tuple[Name, ...] = ()
    reasons: tuple[Name, ...] = ()
    dashboard_url: str | None = None
    defaults: Defaults = Defaults()
    journeys: tuple[Journey, ...] = Field(min_length=1)
    source: str = Field("<spec>", exclude=True)

    @field_validator("channels")
    @classmethod
    def _valid_channels(cls, channels: tuple[str, ...]) -> tuple[str, ...]:
        _unique(list(channels), "channel")
        for channel in channels:
            _not_other(channel, "channel")
        return channels

    _valid_segments = field_validator("segments")(lambda v: _vocabulary(v, "segment"))
    _valid_reasons = field_validator("reasons")(lambda v: _vocabulary(v, "reason"))

    @field_validator("default_channel")
    @classmethod
    def _known_default(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and "channels" in info.data:
            _known(value, info.data["channels"], "channel")
        return value

    @field_validator("journeys")
    @classmethod
    def _valid_journeys(
        cls, journeys: tuple[Journey, ...], info: ValidationInfo
    ) -> tuple[Journey, ...]:
        _unique([j.name for j in journeys], "journey")
        shared = info.data.get("reasons", ())
        for journey in journeys:
            for reason in journey.reasons:
                if reason in shared:
                    raise ValueError(
                        f"reason '{reason}' of journey '{journey.name}' is declared in the "
                        "spec's reasons already (they apply to every journey); remove it here"
                    )
            for channel in journey.channels or ():
                if "channels" in info.data:
                    _known(channel, info.data["channels"], f"channel in journey '{journey.name}'")
            where = f"of journey '{journey.name}'"
            owners: list[Journey | Step] = [journey, *journey.steps]
            for owner in owners:
                if "segments" in info.data:
                    for name in owner.by_segment:
                        _known(name, info.data["segments"], f"segment in by_segment {where}")
                if "channels" in info.data:
                    for name in owner.by_channel:
                        _known(name, info.data["channels"], f"channel in by_channel {where}")
        return journeys

    def journey_reasons(self, journey: Journey) -> tuple[str, ...]:
        """The reason codes ``fail(reason=…)`` and feedback may carry in ``journey``: the spec's
        then the journey's own."""
        return (*self.reasons, *journey.reasons)

    @property
    def channel_default(self) -> str:
        return self.default_channel or self.channels[0]

    @property
    def contact_journeys(self) -> tuple[Journey, ...]:
        """The journeys with contact-centre indicators (``contact:``)."""
        return tuple(j for j in self.journeys if j.contact is not None)

    def journey(self, name: str) -> Journey:
        for journey in self.journeys:
            if journey.name == name:
                return journey
        raise KeyError(name)

    def steps(self) -> Iterator[tuple[Journey, Step]]:
        for journey in self.journeys:
            for step in journey.steps:
                yield journey, step

    def tolerating(self, step: Step) -> float:
        return step.tolerating or step.target * self.defaults.tolerating_factor

    def thresholds(
        self, step: Step, channel: str | None = None, segment: str | None = None
    ) -> tuple[float, float]:
        """(target, tolerating threshold) of ``step`` for a customer of ``segment`` on
        ``channel``: the segment's own (``by_segment``), else the channel's (``by_channel``),
        else the step's."""
        for variant in (step.by_segment.get(segment or ""), step.by_channel.get(channel or "")):
            if variant is not None and (variant.target or variant.tolerating):
                target = variant.target or step.target
                tolerating = variant.tolerating or (
                    target * self.defaults.tolerating_factor
                    if variant.target is not None
                    else self.tolerating(step)
                )
                return target, max(tolerating, target)
        return step.target, self.tolerating(step)

    def duration_bounds(self, step: Step) -> tuple[float, ...]:
        """The step's duration-bucket layout, shared by all its channels and segments: derived
        from its target, with every segment's and channel's target and tolerating threshold an
        exact boundary too (``names.duration_buckets``)."""
        target, tolerating = step.target, self.tolerating(step)
        exact = {
            value for name in step.by_segment for value in self.thresholds(step, segment=name)
        } | {value for name in step.by_channel for value in self.thresholds(step, channel=name)}
        return duration_buckets(target, tolerating, tuple(sorted(exact - {target, tolerating})))

    def objectives(
        self,
        journey: Journey,
        step: Step | None = None,
        *,
        channel: str | None = None,
        segment: str | None = None,
    ) -> Objectives:
        """Defaults, then the journey's (its channel's, its segment's), then the step's (its
        channel's, its segment's): each given field wins over the ones before."""
        merged = self.defaults.objectives
        overrides = [
            journey.objectives,
            _variant_objectives(journey.by_channel.get(channel or "")),
            _variant_objectives(journey.by_segment.get(segment or "")),
        ]
        if step is not None:
            overrides += [
                step.objectives,
                _variant_objectives(step.by_channel.get(channel or "")),
                _variant_objectives(step.by_segment.get(segment or "")),
            ]
        for override in overrides:
            if override is not None:
                merged = merged.model_copy(update=override.model_dump(exclude_none=True))
        return merged

    def regression(self, journey: Journey, step: Step | None = None) -> RegressionPolicy:
        merged = self.defaults.regression
        for override in (journey.regression, step.regression if step else None):
            if override is not None:
                merged = RegressionPolicy.model_validate(
                    {
                        **merged.model_dump(by_alias=True),
                        **override.model_dump(by_alias=True, exclude_none=True),
                    }
                )
        return merged

    def policy(self, journey: Journey, step: Step) -> str:
        """The step's rule policy as a label value (``cx_step_policy_info{policy}``): what a
        generic rule cannot take from a joined threshold series — its windows, baseline, ``for``,
        quantiles, severity and SLO period. Steps sharing a policy share their rules, so the rule
        count grows with distinct policies, not with steps (docs/rules.md)."""
        r = self.regression(journey, step)
        trailing = "trailing " if r.baseline.mode == "trailing" else ""
        baseline = f"{trailing}{_label(r.baseline.window)}"
        quantiles = ",".join(f"{q:g}" for q in r.quantiles)
        period = _label(self.objectives(journey, step).period)
        return (
            f"window {_label(r.window)} baseline {baseline} for {_label(r.for_)} "
            f"quantiles {quantiles} {r.severity} period {period}"
        )

    def feedback(self, journey: Journey) -> FeedbackPolicy | None:
        """The journey's feedback policy: its own ``feedback`` fields over ``defaults.feedback``
        (objectives merged field by field); None when neither declares one."""
        base, own = self.defaults.feedback, journey.feedback
        if own is None or base is None:
            return own or base
        update = {k: getattr(own, k) for k in own.model_fields_set if k != "objectives"}
        if "objectives" in own.model_fields_set:
            goals = own.objectives
            update["objectives"] = base.objectives.model_copy(
                update={k: getattr(goals, k) for k in goals.model_fields_set}
            )
        return base.model_copy(update=update)

    def check_objective(self, journey: Journey, step: Step, check: Check) -> float:
        return check.objective or self.objectives(journey, step).accuracy

    def scaled(self, factor: float) -> Spec:
        """This spec with every step target and tolerating threshold multiplied by ``factor``.

        For time-compressed runs (the demo's ``--fast``, end-to-end tests): the app's simulated
        latencies shrink by the same factor, so timeliness classes and buckets stay meaningful.
        """
        if not factor > 0:
            raise ValueError("scale factor must be positive")
        journeys = []
        for journey in self.journeys:
            steps = tuple(
                s.model_copy(
                    update={
                        "target": s.target * factor,
                        "tolerating": self.tolerating(s) * factor,
                        "by_segment": {n: _scaled(v, factor) for n, v in s.by_segment.items()},
                        "by_channel": {n: _scaled(v, factor) for n, v in s.by_channel.items()},
                    }
                )
                for s in journey.steps
            )
            journeys.append(journey.model_copy(update={"steps": steps}))
        return self.model_copy(update={"journeys": tuple(journeys)})

    @cached_property
    def fingerprint(self) -> str:
        """A short stable digest of the spec, for dashboard versions and generated-file headers."""
        import hashlib

        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


def _scaled(variant: Variant, factor: float) -> Variant:
    return variant.model_copy(
        update={
            "target": None if variant.target is None else variant.target * factor,
            "tolerating": None if variant.tolerating is None else variant.tolerating * factor,
        }
    )


def _variant_objectives(variant: Variant | ObjectivesVariant | None) -> ObjectivesOverride | None:
    return None if variant is None else variant.objectives


def _declared_keys(variants: dict[str, Any], info: ValidationInfo, key: str, what: str) -> Any:
    """``by_segment`` / ``by_channel`` name only segments / channels the spec declares (the
    loader passes them; a model built in code is checked by ``Spec``)."""
    declared = (info.context or {}).get(key)
    if isinstance(declared, tuple):
        for name in variants:
            if name not in declared:
                listed = (
                    f"declared {what}s: {', '.join(declared)}"
                    if declared
                    else (f"the spec declares no {what}s; add '{key}: [{name}]' at the top")
                )
                close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
                fix = f"did you mean '{close[0]}'?" if close else listed
                raise ValueError(f"unknown {what} '{name}'; {fix}")
    return variants


def _not_other(value: str, what: str) -> str:
    if value == OTHER:
        raise ValueError(f"'{OTHER}' is reserved for undeclared names; rename the {what}")
    return value


def _vocabulary(names: tuple[str, ...], what: str) -> tuple[str, ...]:
    """A declared list of label values (segments, reasons): unique, and neither of the reserved
    words ``other`` (undeclared values) and ``none`` (no value given)."""
    _unique(list(names), what)
    for name in names:
        if name in (OTHER, NONE):
            raise ValueError(
                f"'{name}' is reserved ({OTHER}: undeclared {what}s, {NONE}: no {what} given); "
                f"rename the {what}"
            )
    return names


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} '{name}' is declared twice; names must be unique")
        seen.add(name)


def _known(name: str, valid: Any, what: str) -> None:
    if name not in valid:
        raise ValueError(f"unknown {what} '{name}'{_did_you_mean(name, list(valid))}")


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; declared: {', '.join(candidates)}" if candidates else ""


def _label(seconds: float) -> str:
    try:
        return prometheus_duration(seconds)
    except ValueError:  # below Prometheus' resolution: the rules refuse the spec anyway
        return f"{seconds!r}s"
