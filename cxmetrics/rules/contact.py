"""Recording rules of contact-centre journeys (``cxmetrics.<journey>.contact``): every contact
indicator of ``cxmetrics.analysis.contact`` over the journey's ``contact.window``, recorded as
``cx:contact_<indicator>:ratio_window`` (``seconds_window`` for ASA, AHT, p90 handle time)."""

from __future__ import annotations

from ..analysis import contact
from ..spec import names
from ..spec.durations import prometheus_duration
from ..spec.model import Spec
from .promql import Group, Rule


def contact_groups(spec: Spec) -> list[Group]:
    """One group per contact journey, in spec order."""
    groups = []
    for journey in spec.contact_journeys:
        assert journey.contact is not None
        window = prometheus_duration(journey.contact.window)
        labels = {names.JOURNEY: journey.name}
        rules = tuple(
            Rule(
                contact.promql(i.form, journey.name, window, fn="rate"),
                record=names.rec_contact(i.name),
                labels=labels,
            )
            for i in contact.indicators(journey.contact)
        )
        groups.append(Group(f"cxmetrics.{journey.name}.contact", rules))
    return groups
