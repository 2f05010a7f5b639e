"""The contact-centre view of ``analyze``: each contact journey's indicators over the analysed
range, from the event log (exact, ``analysis.contact.from_events``) or from Prometheus (the same
indicators' PromQL over the range, read at its end)."""

from __future__ import annotations

from typing import Any

import click

from ..analysis import contact, promapi
from ..analysis.sources import Timeline
from ..exposition.eventlog import read_log
from ..report import text
from ..report.contact import value_text
from ..spec.durations import prometheus_duration
from ..spec.model import Spec


def contact_rows(
    spec: Spec, timeline: Timeline, events: str | None, prometheus: str | None
) -> dict[str, list[contact.Row]]:
    """Each contact journey's view (empty when the spec has none)."""
    journeys = spec.contact_journeys
    if not journeys:
        return {}
    if events is not None:
        read = read_log(events)
        counts = contact.from_events(spec, read.events, timeline.start, timeline.end)
        return {j.name: contact.view(j, counts[j.name]) for j in journeys}
    assert prometheus is not None
    window = prometheus_duration(timeline.end - timeline.start)
    out: dict[str, list[contact.Row]] = {}
    for journey in journeys:
        assert journey.contact is not None
        rows = []
        for indicator in contact.indicators(journey.contact):
            expr = contact.promql(indicator.form, journey.name, window, service=spec.service)
            result = promapi.query(prometheus, expr, time_s=timeline.end)
            value = float(result[0]["value"][1]) if result else None
            rows.append(
                contact.Row(
                    indicator.name,
                    indicator.title,
                    value,
                    contact.objective(journey.contact, indicator),
                    indicator.direction,
                )
            )
        out[journey.name] = rows
    return out


def contact_json(view: dict[str, list[contact.Row]]) -> dict[str, Any]:
    return {journey: {r.name: r.as_json() for r in rows} for journey, rows in view.items()}


def print_contact(view: dict[str, list[contact.Row]]) -> None:
    for journey, rows in view.items():
        click.echo(f"Contact centre: {journey} (three highs, three lows)")
        print_rows(rows)


def print_rows(rows: list[contact.Row]) -> None:
    """One line per indicator: its value and, when it has one, its objective and verdict."""
    for row in rows:
        goal = ""
        if row.objective is not None and row.direction is not None:
            bound = "≥" if row.direction == "high" else "≤"
            verdict = {True: "met", False: "MISSED", None: "no data"}[row.met]
            goal = f"  ({bound} {text.percent(row.objective)}: {verdict})"
        click.echo(f"  {row.title:<26} {value_text(row)}{goal}")
