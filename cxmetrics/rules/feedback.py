"""Voice-of-the-customer rules (``cxmetrics.<journey>.feedback``), for each journey with a
feedback policy (``feedback:`` on the journey or in ``defaults``).

Recorded per journey over the policy's ``window``: NPS and CSAT (``catalogue.NPS``,
``catalogue.CSAT``: the analyzer's and the dashboards' definition) with the responses behind
each, the same over the window ``baseline`` earlier, and the complaint rate
(``catalogue.COMPLAINT_RATE``). ``CxFeedbackScoreDrop`` (label ``indicator``: ``nps`` or
``csat``; ``against``: ``objective`` or ``baseline``) fires when the score is below the journey's
objective, or below its baseline by more than ``max_drop`` points — only with at least
``min_responses`` responses in the window (and in the baseline window, for a baseline drop), so
three unhappy customers on a quiet night never open a ticket. Value: the score over the window.
"""

from __future__ import annotations

from ..analysis import catalogue
from ..spec import names
from ..spec.durations import prometheus_duration
from ..spec.ids import dashboard_uid
from ..spec.model import FeedbackPolicy, Journey, Spec
from .promql import Group, Rule, dashboard_link, number, selector
from .templates import Format, Slot, Text, text

WINDOW, BASELINE = "window", "baseline"
_ON = "on (journey)"


def feedback_groups(spec: Spec) -> list[Group]:
    """One group per journey with a feedback policy, in spec order."""
    groups = []
    for journey in spec.journeys:
        policy = spec.feedback(journey)
        if policy is not None:
            rules = (*recording_rules(spec, journey, policy), *alerts(spec, journey, policy))
            groups.append(Group(f"cxmetrics.{journey.name}.feedback", rules))
    return groups


def _labels(spec: Spec, journey: Journey) -> dict[str, str]:
    return {names.SERVICE: spec.service, names.JOURNEY: journey.name}


def recording_rules(spec: Spec, journey: Journey, policy: FeedbackPolicy) -> list[Rule]:
    labels = _labels(spec, journey)
    window = prometheus_duration(policy.window)
    offset = prometheus_duration(policy.baseline)
    rules = []
    for score in catalogue.SCORES:
        for span, shift in ((WINDOW, None), (BASELINE, offset)):
            rules += [
                Rule(
                    catalogue.feedback_promql(score, window, labels, offset=shift),
                    record=names.rec_feedback(score.name, "score", span),
                    labels=labels,
                ),
                Rule(
                    catalogue.responses_promql(score, window, labels, offset=shift),
                    record=names.rec_feedback(score.name, "responses", span),
                    labels=labels,
                ),
            ]
    rules.append(
        Rule(
            catalogue.complaint_promql(window, labels),
            record=names.REC_COMPLAINT_RATE,
            labels=labels,
        )
    )
    return rules


def objective(policy: FeedbackPolicy, score: catalogue.Score) -> float | None:
    """The score's objective in the score's own unit (NPS points; CSAT percent)."""
    if score is catalogue.NPS:
        return policy.objectives.nps
    csat = policy.objectives.csat
    return None if csat is None else 100.0 * csat


def alerts(spec: Spec, journey: Journey, policy: FeedbackPolicy) -> list[Rule]:
    labels = _labels(spec, journey)
    window = prometheus_duration(policy.window)
    offset = prometheus_duration(policy.baseline)
    links: dict[str, Text] = {}
    if spec.dashboard_url:
        uid = dashboard_uid(journey.name, "overview")
        links["dashboard"] = dashboard_link(spec.dashboard_url, uid)
    out = []
    for score in catalogue.SCORES:
        current = selector(names.rec_feedback(score.name, "score", WINDOW), **labels)
        before = selector(names.rec_feedback(score.name, "score", BASELINE), **labels)
        responses = selector(names.rec_feedback(score.name, "responses", WINDOW), **labels)
        earlier = selector(names.rec_feedback(score.name, "responses", BASELINE), **labels)
        enough = f"\nand {_ON} {responses} >= {policy.min_responses}"
        fmt: Format = "%.0f" if score is catalogue.NPS else "%.1f"
        unit = "" if score is catalogue.NPS else "%"
        heard = (
            Slot("value", fmt),
            f"{unit} over {window} from ",
            Slot("responses", "%.0f", responses),
            " responses",
        )
        goal = objective(policy, score)
        if goal is not None:
            out.append(
                _rule(
                    f"{current} < {number(goal)}{enough}",
                    labels,
                    score,
                    "objective",
                    policy,
                    text(
                        f"{journey.name}: {score.title} is ",
                        *heard,
                        f", below its objective {goal:g}{unit}",
                    ),
                    links,
                )
            )
        out.append(
            _rule(
                f"{current} < {_ON} ({before} - {number(policy.max_drop)}){enough}"
                f"\nand {_ON} {earlier} >= {policy.min_responses}",
                labels,
                score,
                "baseline",
                policy,
                text(
                    f"{journey.name}: {score.title} is ",
                    *heard,
                    ", down from ",
                    Slot("baseline", fmt, before),
                    f"{unit} the same {window} {offset} earlier "
                    f"(more than {policy.max_drop:g} points)",
                ),
                links,
            )
        )
    return out


def _rule(
    expr: str,
    labels: dict[str, str],
    score: catalogue.Score,
    against: str,
    policy: FeedbackPolicy,
    summary: Text,
    links: dict[str, Text],
) -> Rule:
    return Rule(
        expr,
        alert=names.ALERT_FEEDBACK_DROP,
        for_=prometheus_duration(policy.for_) if policy.for_ > 0 else None,
        labels={
            **labels,
            names.INDICATOR: score.name,
            names.AGAINST: against,
            names.SEVERITY: "ticket",
        },
        annotations={
            "summary": summary,
            "description": text(
                f"Customers rate this journey worse ({score.definition}). The journey overview "
                "shows the score by the step the customers had reached, and the complaints "
                "beside it."
            ),
            **links,
        },
    )
