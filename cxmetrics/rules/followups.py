"""``CxFollowUpLag``: follow-ups of a key step are late (one group per journey with key steps).

The worker's gauge ``cx_followups_oldest_due_seconds`` says how long the oldest due follow-up of
a key step has waited; the alert fires when it exceeds the step's ``followup.max_lag`` for a
minute — workers stopped, too few of them, or a receiver failing. Every worker exposes the same
gauge (it is read from the store), so the rule takes the ``max``. Value: the oldest wait, s.
"""

from __future__ import annotations

from ..spec import names
from ..spec.durations import prometheus_duration
from ..spec.model import Spec
from .promql import Group, Rule, number, selector
from .templates import Slot, text


def followup_groups(spec: Spec) -> list[Group]:
    groups = []
    for journey in spec.journeys:
        rules = []
        for step in journey.key_steps:
            assert step.followup is not None
            bound = step.followup.max_lag
            oldest = selector(
                names.FOLLOWUPS_OLDEST_DUE,
                service=spec.service,
                journey=journey.name,
                step=step.name,
            )
            rules.append(
                Rule(
                    expr=f"max by (service, journey, step) ({oldest}) > {number(bound)}",
                    alert=names.ALERT_FOLLOWUP_LAG,
                    for_="1m",
                    labels={"severity": "ticket"},
                    annotations={
                        "summary": text(
                            f"Follow-ups of {journey.name}/{step.name} are late: the oldest due "
                            "one has waited ",
                            Slot("value", "duration"),
                            f" (bound {prometheus_duration(bound)})",
                        ),
                        "description": text(
                            "Customers who stalled at this step are not being handed over in "
                            "time: check that 'cxmetrics followup run' workers are up "
                            "(cx_followups_sent_total rising) and that the target accepts "
                            "deliveries (cx_followups_retried_total, cx_followups_dead_letters)."
                        ),
                    },
                )
            )
        if rules:
            groups.append(Group(f"cxmetrics.{journey.name}.followups", tuple(rules)))
    return groups
