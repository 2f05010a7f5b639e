"""The report's contact-centre section: per contact journey, the three highs and three lows against
their objectives, first-contact resolution, abandonment, speed of answer and handle time; then the
same indicators per customer segment and per channel.

Its figures are the analyzer's (``cxmetrics.analysis.contact``: ``view`` over ``from_events`` and
``breakdown``) over the calls of an event log — what ``cxmetrics import`` writes from a
contact-centre export — so they equal the recording rules and the dashboard's numbers over the
same calls (docs/contact-centre.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape

from ..analysis import contact
from ..instrument.events import Event
from ..spec import names
from ..spec.model import Spec
from . import text
from .tables import grouped_table, table

#: The indicators of the breakdown's columns, in the view's order.
BREAKDOWN = (
    "answer_rate",
    "service_level",
    "satisfaction",
    "transfer_rate",
    "ticket_rate",
    "complaint_rate",
    "first_contact_resolution",
    "asa",
    "aht",
)
_HEADS = {
    "answer_rate": "Answer rate",
    "service_level": "Service level",
    "satisfaction": "Satisfaction",
    "transfer_rate": "Transfer",
    "ticket_rate": "Ticket",
    "complaint_rate": "Complaint",
    "first_contact_resolution": "FCR",
    "asa": "ASA",
    "aht": "AHT",
}


@dataclass
class ContactFigures:
    """One contact journey's view and its breakdowns (dimension → value → view rows)."""

    journey: str
    offered: int
    rows: list[contact.Row]
    unjudged: int = 0
    breakdowns: dict[str, dict[str, tuple[int, list[contact.Row]]]] = field(default_factory=dict)


def figures(spec: Spec, events: Sequence[Event]) -> list[ContactFigures]:
    """The figures of every contact journey of ``spec`` over ``events`` (an event log's, in file
    order), in spec order; journeys without a call are left out."""
    totals = contact.from_events(spec, events)
    parts = {d: contact.breakdown(spec, events, d) for d in ("segment", "channel")}
    out = []
    for journey in spec.contact_journeys:
        counts = totals[journey.name]
        offered = contact.offered(counts)
        if not offered:
            continue
        figure = ContactFigures(
            journey.name, offered, contact.view(journey, counts), counts.unjudged
        )
        for dimension, by in parts.items():
            figure.breakdowns[dimension] = {
                value: (contact.offered(c), contact.view(journey, c))
                for value, c in sorted(by[journey.name].items(), key=_order)
                if contact.offered(c)
            }
        out.append(figure)
    return out


def _order(item: tuple[str, contact.ContactCounts]) -> tuple[bool, str]:
    value = item[0]
    return (value in (names.NONE, names.OTHER, ""), value)  # declared values first


def contact_section(spec: Spec, rows: Iterable[ContactFigures]) -> str:
    """``<section id="contact">``: per contact journey, its view against the objectives, then
    its breakdown by segment and by channel."""
    parts = ['<section id="contact"><h2>Contact centre</h2>']
    for figure in rows:
        journey = spec.journey(figure.journey)
        assert journey.contact is not None
        threshold = text.duration(journey.contact.service_level.threshold)
        parts.append(f"<h3>{escape(figure.journey)}</h3>")
        body = []
        for row in figure.rows:
            status, css = _status(row)
            goal = "–"
            if row.objective is not None and row.direction is not None:
                bound = "≥" if row.direction == "high" else "≤"
                goal = f"{bound} {text.objective(row.objective)}"
            kind = {"high": "high", "low": "low"}.get(row.direction or "", "")
            title = row.title if row.name != "service_level" else f"service level ({threshold})"
            body.append(
                f'<tr><th scope="row" class="left">{escape(title)}</th>'
                f"<td>{escape(kind)}</td><td{css}>{escape(value_text(row))}</td>"
                f"<td>{escape(goal)}</td><td{css}>{escape(status)}</td></tr>"
            )
        caption = (
            f"{text.count(figure.offered)} calls offered; the three highs and three lows against "
            f"their objectives ({text.count(figure.unjudged)} answered calls still inside their "
            "repeat window are not judged for first-contact resolution yet)"
        )
        parts.append(table(caption, ("Indicator", "Kind", "Value", "Objective", "Status"), body))
        groups = []
        for dimension, values in figure.breakdowns.items():
            lines = []
            for value, (offered, view) in values.items():
                cells = {r.name: r for r in view}
                lines.append(
                    f'<tr><th scope="row" class="left">{escape(value or "–")}</th>'
                    f"<td>{escape(text.count(offered))}</td>"
                    + "".join(f"<td>{escape(value_text(cells[n]))}</td>" for n in BREAKDOWN)
                    + "</tr>"
                )
            if lines:
                groups.append((f"by {dimension}", lines))
        if groups:
            columns = ("", "Offered", *(_HEADS[n] for n in BREAKDOWN))
            parts.append(
                grouped_table(
                    f"{figure.journey} by customer segment and by channel (first-contact "
                    "resolution counted under the judged call's segment and channel)",
                    columns,
                    groups,
                )
            )
    parts.append("</section>")
    return "".join(parts)


def value_text(row: contact.Row) -> str:
    """A contact row's value for people: a duration, or a share of calls."""
    if row.name in names.CONTACT_SECONDS:
        return text.duration(row.value)
    return text.percent(row.value)


def _status(row: contact.Row) -> tuple[str, str]:
    """The status word and the cells' class (the report's colours for better / missed)."""
    if row.met is None:
        return ("–", "")
    return ("met", ' class="better"') if row.met else ("MISSED", ' class="miss"')
