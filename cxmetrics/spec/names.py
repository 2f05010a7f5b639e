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
FEEDBACK_TOPICS: Final = "cx_feedback_topics_total"
JOURNEY_DURATION: Final = "cx_journey_duration_seconds"
STEP_FAILURES: Final = "cx_step_failures_total"
STEP_TARGET: Final = "cx_step_target_seconds"
STEP_TOLERATING: Final = "cx_step_tolerating_seconds"
# The spec's per-step thresholds and rule policy, exposed so that one generic rule over every step
# of a service can join them (docs/rules.md, *Generic rules*).
STEP_OBJECTIVE: Final = "cx_step_objective_ratio"
CHECK_OBJECTIVE: Final = "cx_check_objective_ratio"
STEP_MIN_CHANGE: Final = "cx_step_min_change_ratio"
STEP_MIN_VOLUME: Final = "cx_step_min_volume"
STEP_POLICY: Final = "cx_step_policy_info"
STEP_NEXT: Final = "cx_step_next_info"
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
SEGMENT: Final = "segment"
CATEGORY: Final = "category"
POLICY: Final = "policy"  # on cx_step_policy_info: the step's rule policy (``Spec.policy``)

# The value of ``segment`` (and of ``reason``, ``category``) when the app set none, and of ``step``
# in feedback given before any step: a reserved word, like ``other`` for undeclared names.
NONE: Final = "none"
FEEDBACK_CATEGORIES: Final = ("praise", "problem", "suggestion")

OUTCOMES: Final = ("ok", "error")
TIMELINESS_CLASSES: Final = ("satisfied", "tolerating", "frustrated")
RESULTS: Final = ("pass", "fail")

# Every exposed family with its labels, the source of the reference table in the README and of
# the test that rules and dashboards name only metrics the library really exposes.
METRICS: Final[dict[str, tuple[str, tuple[str, ...], str]]] = {
    STEP_DURATION: (
        "histogram",
        (SERVICE, JOURNEY, STEP, CHANNEL),
        "Step duration per channel, all segments; buckets derived from the step's target T.",
    ),
    STEPS: (
        "counter",
        (SERVICE, JOURNEY, STEP, CHANNEL, SEGMENT, OUTCOME, TIMELINESS),
        "Finished steps by outcome and Apdex timeliness class.",
    ),
    GOOD_STEPS: (
        "counter",
        (SERVICE, JOURNEY, STEP, CHANNEL, SEGMENT),
        "Good steps: timely (<= T), every accuracy check passed, outcome ok.",
    ),
    STEP_FAILURES: (
        "counter",
        (SERVICE, JOURNEY, STEP, CHANNEL, SEGMENT, REASON),
        "Steps with outcome error by the reason code given to fail() (declared, or 'other').",
    ),
    ACCURACY_CHECKS: (
        "counter",
        (SERVICE, JOURNEY, STEP, CHANNEL, SEGMENT, CHECK, RESULT),
        "Accuracy checks by result.",
    ),
    ACCURACY_RELATIVE_ERROR: (
        "histogram",
        (SERVICE, JOURNEY, STEP, CHECK),
        "Relative error |actual-expected|/|expected| of reconcile checks.",
    ),
    TRANSITIONS: (
        "counter",
        (SERVICE, JOURNEY, FROM_STEP, TO_STEP, CHANNEL, SEGMENT),
        "Journey instances that moved from one step to the next (channel of the arrival).",
    ),
    JOURNEYS_STARTED: (
        "counter",
        (SERVICE, JOURNEY, CHANNEL, SEGMENT),
        "Journey instances started.",
    ),
    CHANNEL_SWITCHES: (
        "counter",
        (SERVICE, JOURNEY, FROM_CHANNEL, TO_CHANNEL),
        "Journey instances continued on another channel (one instance, not a new one).",
    ),
    FEEDBACK: (
        "counter",
        (SERVICE, JOURNEY, STEP, CHANNEL, SEGMENT, SCALE, SCORE),
        "Customer feedback responses (csat 1-5, nps 0-10) by journey and last step.",
    ),
    FEEDBACK_TOPICS: (
        "counter",
        (SERVICE, JOURNEY, STEP, CHANNEL, SEGMENT, CATEGORY, REASON),
        "Customer feedback by category (praise, problem, suggestion) and declared reason code.",
    ),
    JOURNEY_DURATION: (
        "histogram",
        (SERVICE, JOURNEY, CHANNEL),
        "End-to-end journey time: first step start (carried in the signed context) to the end "
        "of the last step, by the channel of the last step.",
    ),
    STEP_TARGET: (
        "gauge",
        (SERVICE, JOURNEY, STEP),
        "The step's timeliness target T from the spec.",
    ),
    STEP_TOLERATING: ("gauge", (SERVICE, JOURNEY, STEP), "The step's Apdex tolerating threshold."),
    STEP_OBJECTIVE: (
        "gauge",
        (SERVICE, JOURNEY, STEP),
        "The step's good-step objective from the spec (share of good steps).",
    ),
    CHECK_OBJECTIVE: (
        "gauge",
        (SERVICE, JOURNEY, STEP, CHECK),
        "The accuracy check's objective from the spec (share of passed checks).",
    ),
    STEP_MIN_CHANGE: (
        "gauge",
        (SERVICE, JOURNEY, STEP),
        "The step's regression threshold min_change from the spec (0.1 = 10%).",
    ),
    STEP_MIN_VOLUME: (
        "gauge",
        (SERVICE, JOURNEY, STEP),
        "The step's min_volume from the spec: steps needed in a window for a verdict.",
    ),
    STEP_POLICY: (
        "gauge",
        (SERVICE, JOURNEY, STEP, POLICY),
        "The step's rule policy (windows, baseline, for, quantiles, severity, SLO period; 1).",
    ),
    STEP_NEXT: (
        "gauge",
        (SERVICE, JOURNEY, STEP, TO_STEP),
        "The step that follows the step in its journey (always 1).",
    ),
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
        (SERVICE, JOURNEY, STEP),
        "Instances waiting at a key step (registered, not yet cleared, sent or given up).",
    ),
    FOLLOWUPS_DUE: (
        "gauge",
        (SERVICE, JOURNEY, STEP),
        "Tracked instances whose follow-up is due now.",
    ),
    FOLLOWUPS_OLDEST_DUE: (
        "gauge",
        (SERVICE, JOURNEY, STEP),
        "How long the oldest due follow-up has been due (0 when none is due).",
    ),
    FOLLOWUPS_SENT: (
        "counter",
        (SERVICE, JOURNEY, STEP),
        "Follow-ups delivered (acknowledged by a target).",
    ),
    FOLLOWUPS_RETRIED: (
        "counter",
        (SERVICE, JOURNEY, STEP),
        "Failed delivery attempts scheduled again.",
    ),
    FOLLOWUPS_DEAD_LETTERED: (
        "counter",
        (SERVICE, JOURNEY, STEP, REASON),
        "Follow-ups parked as dead letters (attempts exhausted, or expired past 'until').",
    ),
    FOLLOWUPS_DEAD_LETTERS: (
        "gauge",
        (SERVICE, JOURNEY, STEP),
        "Follow-ups parked as dead letters now.",
    ),
    FOLLOWUPS_LAG: (
        "histogram",
        (SERVICE, JOURNEY, STEP),
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


# Duration buckets (docs/architecture.md, "Series budget"): a geometric grid T·2^(k/5) — about
# 15% wide — from T/4 to 4T, one coarse boundary below (T/16) and above (8T), with T and the
# tolerating threshold always exact boundaries: 24 bounds when tolerating is 4T. The fine range
# holds p50 and p95 of every example step (their p50 sits near 0.4T, below the T/2 the grid used
# to start at, so a +12% p50 read +9%); histogram_quantile's linear interpolation then measures
# them within ±1.6% and a +12% shift as +12% ± 1 point (tests/spec/test_buckets.py). Five bounds
# per octave, not eight: the fleet's series budget (50 × 10 steps) pays 3 series per bound per step.
_FINE_STEPS_PER_OCTAVE: Final = 5
_FINE_FROM, _FINE_TO = -2, 2  # octaves around T covered finely
_COARSE_BELOW, _COARSE_ABOVE = (-4,), (3,)


def duration_buckets(
    target: float, tolerating: float, exact: tuple[float, ...] = ()
) -> tuple[float, ...]:
    """Upper bounds (``le``) for a step with target ``target`` seconds; ``exact``: further
    thresholds that must be boundaries too (a segment's or channel's own target and tolerating
    threshold: every slot of the step shares one layout, and each classifies on its own)."""
    exponents = [float(o) for o in _COARSE_BELOW]
    exponents += [
        k / _FINE_STEPS_PER_OCTAVE
        for k in range(_FINE_FROM * _FINE_STEPS_PER_OCTAVE, _FINE_TO * _FINE_STEPS_PER_OCTAVE + 1)
    ]
    exponents += [float(o) for o in _COARSE_ABOVE]
    bounds = {_round(target * 2.0**e) for e in exponents}
    bounds.add(target)
    bounds.add(tolerating)
    bounds.update(exact)
    return tuple(sorted(bounds))


def _round(value: float) -> float:
    """Four significant digits: stable, readable ``le`` values."""
    digits = 3 - math.floor(math.log10(value))
    return round(value, digits)


RELATIVE_ERROR_BUCKETS: Final = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.5, 1.0)
# End-to-end journey time: one layout for every journey, a second to a week (a journey spans
# requests, people and days: a loan application waits hours for documents), about ×2.5 apart —
# 16 bounds, 19 series per journey and channel (docs/metrics.md, "Series budget").
JOURNEY_DURATION_BUCKETS: Final = (
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    150.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    7200.0,
    21600.0,
    86400.0,
    259200.0,
    604800.0,
)


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
# ``cxmetrics watch`` only (no generated rule): the detector's rate regressions of a step.
ALERT_ACCURACY_REGRESSION: Final = "CxStepAccuracyRegression"
ALERT_ERROR_REGRESSION: Final = "CxStepErrorRegression"
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
# The spec series above as the generic rules join them: the max over instances, held through a
# scrape gap or an instance replacement for ``INFO_HOLD`` (a replaced instance's series vanish for
# a scrape or two; an alert joined with them must not resolve).
INFO_HOLD: Final = "1h"
REC_STEP_OBJECTIVE: Final = "cx:step_objective:ratio"
REC_CHECK_OBJECTIVE: Final = "cx:check_objective:ratio"
REC_MIN_CHANGE: Final = "cx:step_min_change:ratio"
REC_MIN_VOLUME: Final = "cx:step_min_volume:steps"
REC_STEP_POLICY: Final = "cx:step_policy:info"
REC_STEP_NEXT: Final = "cx:step_next:info"


def rec_exposed(record: str) -> str:
    """``cx:step_min_change:ratio_exposed``: the max over the instances exposing the spec
    series now (no series while none does), from which ``record`` is held — one recorded series
    per step read over ``INFO_HOLD``, not every instance's."""
    return f"{record}_exposed"


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


# ``cx_steps_total``'s rate over the policy's window by every label but instance and segment
# (service, journey, step, channel, outcome, timeliness), read once: step rates, per-channel
# rates and every ratio over ``cx_steps_total`` are sums of it, not reads of the raw counters.
REC_CLASS_RATE: Final = "cx:step_classes:rate_recent"
REC_CLASS_RATE_BASELINE: Final = "cx:step_classes:rate_baseline"
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


# ---------------------------------------------------------------------------------------------
# Contact centre (docs/contact-centre.md): the counters and histograms of calls. Emitted by
# ``cxmetrics import`` (backfilled into Prometheus), read by the contact indicators of
# ``cxmetrics.analysis.contact``. A call counts once in ``cx_contacts_total`` when it ends, by
# disposition and by its wait against the journey's service-level threshold.
CONTACTS: Final = "cx_contacts_total"
CONTACT_WAIT: Final = "cx_contact_answer_wait_seconds"
CONTACT_HANDLE: Final = "cx_contact_handle_seconds"
CONTACT_FLAGS: Final = "cx_contact_flags_total"
CONTACT_RESOLUTIONS: Final = "cx_contact_resolutions_total"
DISPOSITION: Final = "disposition"
WAIT: Final = "wait"
FLAG: Final = "flag"
RESOLUTION: Final = "resolution"
# answered; abandoned by the caller (short: before the short-abandon threshold); failed by the
# platform (busy, dropped, overflow).
DISPOSITIONS: Final = ("answered", "abandoned", "short_abandoned", "failed")
WAITS: Final = ("within", "beyond")  # the call's wait against the service-level threshold
CONTACT_FLAG_NAMES: Final = ("transfer", "ticket", "complaint")
# An answered call is judged once its repeat window closed ("first_contact") or as soon as the
# same customer calls again inside it ("repeat").
RESOLUTIONS: Final = ("first_contact", "repeat")
CONTACT_METRICS: Final[dict[str, tuple[str, tuple[str, ...], str]]] = {
    CONTACTS: (
        "counter",
        (SERVICE, JOURNEY, DISPOSITION, WAIT),
        "Calls offered, by disposition and wait against the service-level threshold.",
    ),
    CONTACT_WAIT: (
        "histogram",
        (SERVICE, JOURNEY),
        "Wait of answered calls (offered to answered).",
    ),
    CONTACT_HANDLE: (
        "histogram",
        (SERVICE, JOURNEY),
        "Handle time of answered calls (answer to end).",
    ),
    CONTACT_FLAGS: (
        "counter",
        (SERVICE, JOURNEY, FLAG),
        "Answered calls transferred, that raised a ticket, or with a complaint.",
    ),
    CONTACT_RESOLUTIONS: (
        "counter",
        (SERVICE, JOURNEY, RESOLUTION),
        "Answered calls judged: no repeat within the repeat window, or repeated inside it.",
    ),
}
CONTACT_WAIT_BUCKETS: Final = (5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0)
CONTACT_HANDLE_BUCKETS: Final = (
    30.0,
    60.0,
    120.0,
    180.0,
    240.0,
    300.0,
    420.0,
    600.0,
    900.0,
    1200.0,
    1800.0,
    3600.0,
)
# Recording rules of a contact journey, over its ``contact.window``.
REC_CONTACT_PREFIX: Final = "cx:contact_"
#: The contact indicators measured in seconds (the others are shares of calls).
CONTACT_SECONDS: Final = ("asa", "aht", "p90_handle")


def rec_contact(indicator: str) -> str:
    """``cx:contact_service_level:ratio_window`` / ``cx:contact_asa:seconds_window``…"""
    unit = "seconds" if indicator in CONTACT_SECONDS else "ratio"
    return f"{REC_CONTACT_PREFIX}{indicator}:{unit}_window"


ALERT_CONTACT_OBJECTIVE: Final = "CxContactObjectiveMissed"

# ---------------------------------------------------------------------------------------------
# Voice of the customer (``cxmetrics.rules.feedback``): per journey, over the spec's
# ``feedback.window`` ("window") and the same window ``feedback.baseline`` earlier ("baseline").
AGAINST: Final = "against"  # what CxFeedbackScoreDrop compared with: objective or baseline
AGAINST_VALUES: Final = ("objective", "baseline")
ALERT_FEEDBACK_DROP: Final = "CxFeedbackScoreDrop"


REC_COMPLAINT_RATE: Final = "cx:journey_complaint:ratio_window"


def rec_feedback(indicator: str, what: str, span: str) -> str:
    """``cx:journey_nps:score_window``, ``cx:journey_csat:responses_baseline``: a feedback score
    (``what``: ``score`` or ``responses``) over the window or its baseline."""
    return f"cx:journey_{indicator}:{what}_{span}"


# ---------------------------------------------------------------------------------------------
# ``cxmetrics watch`` (``cxmetrics.watch``): the detector's verdicts and the process's own health,
# exposed on the watch process's /metrics (not on the app's step collector).
INDICATOR: Final = "indicator"
ALERTNAME: Final = "alertname"
REGRESSION_ACTIVE: Final = "cx_regression_active"
REGRESSION_CHANGE: Final = "cx_regression_change"
REGRESSION_CHANGE_LOW: Final = "cx_regression_change_low"
REGRESSION_CHANGE_HIGH: Final = "cx_regression_change_high"
REGRESSION_SINCE: Final = "cx_regression_since_timestamp_seconds"
IMPROVEMENT_ACTIVE: Final = "cx_improvement_active"
IMPROVEMENT_CHANGE: Final = "cx_improvement_change"
WATCH_READS: Final = "cx_watch_reads_total"
WATCH_READ_FAILURES: Final = "cx_watch_read_failures_total"
WATCH_ALERT_FAILURES: Final = "cx_watch_alert_failures_total"
WATCH_LAST_READ: Final = "cx_watch_last_read_timestamp_seconds"

#: ``indicator`` is ``latency`` (with ``quantile``), ``errors`` or ``accuracy`` (with ``check``); a
#: label that does not apply is empty, i.e. absent once Prometheus has scraped it.
VERDICT_LABELS: Final = (JOURNEY, STEP, CHANNEL, INDICATOR, CHECK, QUANTILE)
WATCH_METRICS: Final[dict[str, tuple[str, tuple[str, ...], str]]] = {
    REGRESSION_ACTIVE: (
        "gauge",
        VERDICT_LABELS,
        "1 while the detector holds a regression of this step's indicator open (a latency quantile,"
        " the error rate, an accuracy check's failure rate), else 0.",
    ),
    REGRESSION_CHANGE: (
        "gauge",
        VERDICT_LABELS,
        "Relative change since the change point, while active: of the latency quantile (0.2 ="
        " +20%); for errors and accuracy the relative drop of the success or pass rate (0.02 ="
        " 2% fewer steps ok or checks passed).",
    ),
    REGRESSION_CHANGE_LOW: (
        "gauge",
        VERDICT_LABELS,
        "Lower end of the change's 95% confidence interval, while active.",
    ),
    REGRESSION_CHANGE_HIGH: (
        "gauge",
        VERDICT_LABELS,
        "Upper end of the change's 95% confidence interval, while active.",
    ),
    REGRESSION_SINCE: (
        "gauge",
        VERDICT_LABELS,
        "The estimated change point (seconds since the epoch), while active.",
    ),
    IMPROVEMENT_ACTIVE: (
        "gauge",
        VERDICT_LABELS,
        "1 while the detector holds an improvement (a faster quantile) open, else 0; never a"
        " regression.",
    ),
    IMPROVEMENT_CHANGE: (
        "gauge",
        VERDICT_LABELS,
        "Relative change of the improved quantile (-0.2 = 20% faster), while active.",
    ),
    WATCH_READS: ("counter", (), "Reads of the step histograms from the Prometheus API."),
    WATCH_READ_FAILURES: (
        "counter",
        (),
        "Reads that failed (engine down or refusing); the read is retried next interval.",
    ),
    WATCH_ALERT_FAILURES: (
        "counter",
        (),
        "Posts to Alertmanager that failed; the alerts are sent again next interval.",
    ),
    WATCH_LAST_READ: ("gauge", (), "When the last successful read ended (seconds since epoch)."),
}
