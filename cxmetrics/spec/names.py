"""Every name cxmetrics exposes: metrics, labels, span attributes, rule and alert names.

This module is the contract (docs/architecture.md) between the library, the generated rules and the
dashboards. Nothing else spells a metric name by hand; rules and dashboards import from here.
"""

from __future__ import annotations

import math
import re
from typing import Final

# Journey, step, check and channel names; ``other`` is reserved for undeclared ones.
OTHER: Final = "other"
NAME_PATTERN: Final = r"^[a-z][a-z0-9_]{0,62}$"
_NAME_RE = re.compile(NAME_PATTERN)


def is_name(value: str) -> bool:
    """True when ``value`` is a valid journey/step/check/channel name."""
    return _NAME_RE.fullmatch(value) is not None


PREFIX: Final = "cx_"

# The fields a follow-up may carry (spec ``followup.fields``); raw identifiers are never among them.
FOLLOWUP_FIELDS: Final = ("journey", "step", "stalled_since", "channel", "segment", "customer_ref")

# Metric families (exposed names; counters gain ``_total`` in the exposition as usual).
STEP_DURATION: Final = "cx_step_duration_seconds"
STEPS: Final = "cx_steps_total"
GOOD_STEPS: Final = "cx_good_steps_total"
ACCURACY_CHECKS: Final = "cx_accuracy_checks_total"
ACCURACY_RELATIVE_ERROR: Final = "cx_accuracy_relative_error_ratio"
TRANSITIONS: Final = "cx_step_transitions_total"
JOURNEYS_STARTED: Final = "cx_journeys_started_total"
CHANNEL_SWITCHES: Final = "cx_channel_switches_total"
FEEDBACK: Final = "cx_feedback_responses_total"
STEP_TARGET: Final = "cx_step_target_seconds"
STEP_TOLERATING: Final = "cx_step_tolerating_seconds"
UNDECLARED: Final = "cx_undeclared_names_total"
CONTEXT_REJECTED: Final = "cx_journey_context_rejected_total"
INTERNAL_ERRORS: Final = "cx_internal_errors_total"
SPEC_INFO: Final = "cx_spec_info"

# Label names.
SERVICE: Final = "service"  # the spec's ``service``, on every journey-scoped family (docs/rules.md)
JOURNEY: Final = "journey"
STEP: Final = "step"
CHANNEL: Final = "channel"
OUTCOME: Final = "outcome"
TIMELINESS: Final = "timeliness"
CHECK: Final = "check"
RESULT: Final = "result"
FROM_STEP: Final = "from_step"
TO_STEP: Final = "to_step"
FROM_CHANNEL: Final = "from_channel"
TO_CHANNEL: Final = "to_channel"
SCALE: Final = "scale"
SCORE: Final = "score"
KIND: Final = "kind"
REASON: Final = "reason"
COMPONENT: Final = "component"

OUTCOMES: Final = ("ok", "error")
TIMELINESS_CLASSES: Final = ("satisfied", "tolerating", "frustrated")
RESULTS: Final = ("pass", "fail")

# Every exposed family with its labels, the source of the reference table in the README and of
# the test that rules and dashboards name only metrics the library really exposes.
METRICS: Final[dict[str, tuple[str, tuple[str, ...], str]]] = {
    STEP_DURATION: (
        "histogram",
        (SERVICE, JOURNEY, STEP, CHANNEL),
        "Step duration; buckets derived from the step's target T.",
    ),
    STEPS: (
        "counter",
        (SERVICE, JOURNEY, STEP, CHANNEL, OUTCOME, TIMELINESS),
        "Finished steps by outcome and Apdex timeliness class.",
    ),
    GOOD_STEPS: (
        "counter",
        (SERVICE, JOURNEY, STEP, CHANNEL),
        "Good steps: timely (<= T), every accuracy check passed, outcome ok.",
    ),
    ACCURACY_CHECKS: (
        "counter",
        (SERVICE, JOURNEY, STEP, CHECK, RESULT),
        "Accuracy checks by result.",
    ),
    ACCURACY_RELATIVE_ERROR: (
        "histogram",
        (SERVICE, JOURNEY, STEP, CHECK),
        "Relative error |actual-expected|/|expected| of reconcile checks.",
    ),
    TRANSITIONS: (
        "counter",
        (SERVICE, JOURNEY, FROM_STEP, TO_STEP),
        "Journey instances that moved from one step to the next.",
    ),
    JOURNEYS_STARTED: ("counter", (SERVICE, JOURNEY, CHANNEL), "Journey instances started."),
    CHANNEL_SWITCHES: (
        "counter",
        (SERVICE, JOURNEY, FROM_CHANNEL, TO_CHANNEL),
        "Journey instances continued on another channel (one instance, not a new one).",
    ),
    FEEDBACK: (
        "counter",
        (SERVICE, JOURNEY, STEP, SCALE, SCORE),
        "Customer feedback responses (csat 1-5, nps 0-10) by journey and last step.",
    ),
    STEP_TARGET: (
        "gauge",
        (SERVICE, JOURNEY, STEP),
        "The step's timeliness target T from the spec.",
    ),
    STEP_TOLERATING: ("gauge", (SERVICE, JOURNEY, STEP), "The step's Apdex tolerating threshold."),
    UNDECLARED: ("counter", (KIND,), "Names not declared in the spec, folded into 'other'."),
    CONTEXT_REJECTED: (
        "counter",
        (REASON,),
        "Incoming journey contexts ignored as malformed or oversized.",
    ),
    INTERNAL_ERRORS: (
        "counter",
        (COMPONENT,),
        "Failures inside cxmetrics, swallowed and logged once.",
    ),
    SPEC_INFO: ("gauge", ("service", "spec_digest"), "The loaded spec (always 1)."),
}

# Follow-ups (``cxmetrics.followup``): the app process's tracker and the ``cxmetrics followup``
# worker expose these on their own collectors, not on the step collector above.
FOLLOWUPS_DROPPED: Final = "cx_followups_dropped_total"
FOLLOWUPS_QUEUED: Final = "cx_followups_queued"
FOLLOWUPS_STORE_ERRORS: Final = "cx_followups_store_errors_total"
FOLLOWUPS_TRACKED: Final = "cx_followups_tracked"
FOLLOWUPS_DUE: Final = "cx_followups_due"
FOLLOWUPS_OLDEST_DUE: Final = "cx_followups_oldest_due_seconds"
FOLLOWUPS_SENT: Final = "cx_followups_sent_total"
FOLLOWUPS_RETRIED: Final = "cx_followups_retried_total"
FOLLOWUPS_DEAD_LETTERED: Final = "cx_followups_dead_lettered_total"
FOLLOWUPS_DEAD_LETTERS: Final = "cx_followups_dead_letters"
FOLLOWUPS_LAG: Final = "cx_followups_lag_seconds"
OP: Final = "op"

FOLLOWUP_METRICS: Final[dict[str, tuple[str, tuple[str, ...], str]]] = {
    FOLLOWUPS_DROPPED: (
        "counter",
        (OP, REASON),
        "Follow-up registrations/clears the app process dropped (queue full, shutdown).",
    ),
    FOLLOWUPS_QUEUED: ("gauge", (), "Follow-up writes waiting in the app process's queue."),
    FOLLOWUPS_STORE_ERRORS: (
        "counter",
        (COMPONENT,),
        "Failed writes/reads of the follow-up store (Redis); the batch is kept and retried.",
    ),
    FOLLOWUPS_TRACKED: (
        "gauge",
        (JOURNEY, STEP),
        "Instances waiting at a key step (registered, not yet cleared, sent or given up).",
    ),
    FOLLOWUPS_DUE: ("gauge", (JOURNEY, STEP), "Tracked instances whose follow-up is due now."),
    FOLLOWUPS_OLDEST_DUE: (
        "gauge",
        (JOURNEY, STEP),
        "How long the oldest due follow-up has been due (0 when none is due).",
    ),
    FOLLOWUPS_SENT: (
        "counter",
        (JOURNEY, STEP),
        "Follow-ups delivered (acknowledged by a target).",
    ),
    FOLLOWUPS_RETRIED: ("counter", (JOURNEY, STEP), "Failed delivery attempts scheduled again."),
    FOLLOWUPS_DEAD_LETTERED: (
        "counter",
        (JOURNEY, STEP, REASON),
        "Follow-ups parked as dead letters (attempts exhausted, or expired past 'until').",
    ),
    FOLLOWUPS_DEAD_LETTERS: ("gauge", (JOURNEY, STEP), "Follow-ups parked as dead letters now."),
    FOLLOWUPS_LAG: (
        "histogram",
        (JOURNEY, STEP),
        "Delivery time minus due time of each follow-up sent.",
    ),
}
FOLLOWUP_LAG_BUCKETS: Final = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# Span attributes (the ``cx.`` namespace; README, span reference).
ATTR_JOURNEY: Final = "cx.journey.name"
ATTR_JOURNEY_ID: Final = "cx.journey.id"
ATTR_CHANNEL: Final = "cx.channel"
ATTR_STEP: Final = "cx.step.name"
ATTR_PREVIOUS_STEP: Final = "cx.step.previous"
ATTR_CUSTOMER: Final = "cx.customer.ref"
ATTR_TARGET: Final = "cx.step.target_s"
ATTR_TIMELINESS: Final = "cx.timeliness"
ATTR_FAILED_CHECKS: Final = "cx.accuracy.failed_checks"
ATTR_CHECK: Final = "cx.accuracy.check"
ATTR_RELATIVE_ERROR: Final = "cx.accuracy.relative_error"
EVENT_CHECK_FAILED: Final = "cx.accuracy.check_failed"


def span_name(journey: str, step: str) -> str:
    return f"cx {journey}/{step}"


# Duration buckets (docs/architecture.md): a geometric grid T·2^(k/8) — about 9% wide, so a 1.0 s →
# 1.2 s shift moves p95 across two boundaries — from T/2 to 4T, coarse octaves below and above, with
# T and the tolerating threshold always exact boundaries.
_FINE_STEPS_PER_OCTAVE: Final = 8
_FINE_FROM, _FINE_TO = -1, 2  # octaves around T covered finely
_COARSE_BELOW, _COARSE_ABOVE = (-4, -3, -2), (3, 4)


def duration_buckets(target: float, tolerating: float) -> tuple[float, ...]:
    """Upper bounds (``le``) for a step with target ``target`` seconds."""
    exponents = [float(o) for o in _COARSE_BELOW]
    exponents += [
        k / _FINE_STEPS_PER_OCTAVE
        for k in range(_FINE_FROM * _FINE_STEPS_PER_OCTAVE, _FINE_TO * _FINE_STEPS_PER_OCTAVE + 1)
    ]
    exponents += [float(o) for o in _COARSE_ABOVE]
    bounds = {_round(target * 2.0**e) for e in exponents}
    bounds.add(target)
    bounds.add(tolerating)
    return tuple(sorted(bounds))


def _round(value: float) -> float:
    """Four significant digits: stable, readable ``le`` values."""
    digits = 3 - math.floor(math.log10(value))
    return round(value, digits)


RELATIVE_ERROR_BUCKETS: Final = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.5, 1.0)


# ---------------------------------------------------------------------------------------------
# Recording rules (``cx:`` namespace) and alerts (``Cx`` prefix), shared by ``cxmetrics.rules``
# and ``cxmetrics.dashboards``. Names do not depend on the spec's window lengths: "recent" is the
# regression window of the step's policy, "baseline" the policy's baseline.
# Labels: journey, step (plus check for accuracy, to_step for conversion).

RECENT: Final = "recent"
BASELINE: Final = "baseline"
REC_STEP_RATE: Final = "cx:step_requests:rate_recent"
REC_TIMELINESS: Final = "cx:step_timeliness:ratio_recent"
REC_APDEX: Final = "cx:step_apdex:ratio_recent"
REC_GOOD: Final = "cx:step_good:ratio_recent"
REC_ERRORS: Final = "cx:step_errors:ratio_recent"
REC_ACCURACY: Final = "cx:accuracy_check_pass:ratio_recent"
REC_CONVERSION: Final = "cx:step_conversion:ratio_recent"
REC_CONVERSION_BASELINE: Final = "cx:step_conversion:ratio_baseline"
BURN_WINDOWS: Final = ("5m", "30m", "1h", "6h", "3d")  # Google SRE workbook, multiwindow table

ALERT_LATENCY: Final = "CxStepLatencyRegression"
ALERT_GOOD_BURN: Final = "CxStepErrorBudgetBurn"
ALERT_ACCURACY_BURN: Final = "CxAccuracyErrorBudgetBurn"
ALERT_CONVERSION_DROP: Final = "CxStepConversionDrop"
ALERT_FOLLOWUP_LAG: Final = "CxFollowUpLag"
ALERT_TARGET_CHANGED: Final = "CxStepTargetChanged"
# The step's target T as the fleet exposes it (max over instances; ``cx_step_target_seconds``),
# whose ``changes()`` say when the step's bucket layout changed.
REC_STEP_TARGET: Final = "cx:step_target:seconds"
# 1 for a step with recent traffic and no baseline yet (a fresh install, a new step): dashboards
# say "no baseline yet" instead of "no traffic", and alerts needing a baseline stay silent.
REC_BASELINE_MISSING: Final = "cx:step_baseline:missing"


def rec_quantile(quantile: float, span: str) -> str:
    """``cx:step_duration_seconds:p95_recent`` / ``..._baseline``."""
    return f"cx:step_duration_seconds:p{quantile * 100:g}_{span}".replace(".", "_")


def rec_channel_quantile(quantile: float, span: str) -> str:
    """``cx:step_channel_duration_seconds:p95_recent``: the quantile per channel, where latency
    regressions are judged (a shift of traffic between channels is no regression)."""
    return f"cx:step_channel_duration_seconds:p{quantile * 100:g}_{span}".replace(".", "_")


def rec_bucket_rate(span: str) -> str:
    """``cx:step_duration_seconds_bucket:rate_recent``: the duration buckets' rates per step,
    channel and ``le``, read once from the raw series; every quantile is derived from it."""
    return f"cx:step_duration_seconds_bucket:rate_{span}"


REC_CHANNEL_RATE: Final = "cx:step_channel_requests:rate_recent"
REC_CHANNEL_RATE_BASELINE: Final = "cx:step_channel_requests:rate_baseline"


def rec_bad_ratio(window: str) -> str:
    """Share of steps that were not good over ``window`` (the good-step SLI's error ratio)."""
    return f"cx:step_bad:ratio_rate{window}"


def rec_accuracy_fail_ratio(window: str) -> str:
    """Share of accuracy checks that failed over ``window``."""
    return f"cx:accuracy_fail:ratio_rate{window}"


REC_STEP_RATE_BASELINE: Final = "cx:step_requests:rate_baseline"
# Short-window rates recorded once per step (per check and result), from which the long burn
# windows are averaged instead of reading days of raw series (``avg_over_time``).
SHORT_RATE_WINDOW: Final = "5m"
LONG_FROM_RECORDED: Final = ("30m", "1h", "6h", "3d")  # burn windows from the recorded 5m rates
REC_STEPS_RATE5M: Final = "cx:step_steps:rate5m"
REC_GOOD_RATE5M: Final = "cx:step_good_steps:rate5m"
REC_CHECKS_RATE5M: Final = "cx:accuracy_checks:rate5m"

# Labels the generated alerts add to journey/step (and check, to_step): the quantile that
# regressed, the burn-rate window pair that fired, and the routing severity.
QUANTILE: Final = "quantile"
LONG_WINDOW: Final = "long_window"
SHORT_WINDOW: Final = "short_window"
SEVERITY: Final = "severity"
ALERT_FOR_STATE: Final = "ALERTS_FOR_STATE"  # Prometheus' own series: value = the alert's start
