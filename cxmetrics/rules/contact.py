"""Rules of contact-centre journeys (``cxmetrics.<journey>.contact``): every contact indicator
of ``cxmetrics.analysis.contact`` over the journey's ``contact.window``, recorded as
``cx:contact_<indicator>:ratio_window`` (``seconds_window`` for ASA, AHT, p90 handle time), and
``CxContactObjectiveMissed`` for each of the three highs, three lows and first-contact
resolution that misses its objective over the window — only with at least ``min_volume`` calls
behind it (``min_responses`` survey responses for satisfaction), so a quiet hour never pages."""

from __future__ import annotations

from ..analysis import contact
from ..spec import names
from ..spec.durations import prometheus_duration
from ..spec.model import Journey, Spec
from .promql import Group, Rule, number, selector
from .templates import Slot, text


def contact_groups(spec: Spec) -> list[Group]:
    """One group per contact journey, in spec order."""
    groups = []
    for journey in spec.contact_journeys:
        assert journey.contact is not None
        window = prometheus_duration(journey.contact.window)
        labels = {names.SERVICE: spec.service, names.JOURNEY: journey.name}
        rules = tuple(
            Rule(
                contact.promql(i.form, journey.name, window, service=spec.service, fn="rate"),
                record=names.rec_contact(i.name),
                labels=labels,
            )
            for i in contact.indicators(journey.contact)
        )
        groups.append(
            Group(f"cxmetrics.{journey.name}.contact", rules + alerts(spec.service, journey))
        )
    return groups


def alerts(service: str, journey: Journey) -> tuple[Rule, ...]:
    block = journey.contact
    assert block is not None
    window = prometheus_duration(block.window)
    out = []
    for indicator in contact.indicators(block):
        objective = contact.objective(block, indicator)
        if objective is None or indicator.direction is None:
            continue
        minimum = block.min_responses if indicator.name == "satisfaction" else block.min_volume
        compare = "<" if indicator.direction == "high" else ">"
        record = selector(names.rec_contact(indicator.name), service=service, journey=journey.name)
        volume = contact.volume_promql(indicator, journey.name, window, service=service)
        bound = "at least" if indicator.direction == "high" else "at most"
        out.append(
            Rule(
                f"({record} {compare} {number(objective)}) "
                f"and on ({names.SERVICE}, {names.JOURNEY}) "
                f"({volume} >= {minimum})",
                alert=names.ALERT_CONTACT_OBJECTIVE,
                for_="5m",
                labels={
                    names.SERVICE: service,
                    names.JOURNEY: journey.name,
                    names.INDICATOR: indicator.name,
                    names.SEVERITY: "ticket",
                },
                annotations={
                    "summary": text(
                        f"{journey.name}: {indicator.title} is ",
                        Slot("value", "percent"),
                        f" over {window}, objective {bound} {objective:.1%}",
                    )
                },
            )
        )
    return tuple(out)
