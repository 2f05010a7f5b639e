"""The report page: one HTML document with everything inline (style, SVG charts), readable
offline and safe to mail around. A Content-Security-Policy forbids every fetch, so a report can
never reach the network even if a name in the spec tried to.

Top to bottom: the plain-language summary, headline numbers, a table of every step, the
regressions, the accuracy checks, then each journey: its funnel and, step by step, latency
percentiles against the target with the regression marked, timeliness, accuracy and conversion
over time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from .. import __version__
from ..analysis.affected import affected
from ..analysis.analyzer import Analysis, Finding
from ..analysis.comparison import Comparison
from ..analysis.indicators import JourneyIndicators, StepIndicators
from ..analysis.paths import JourneyMap, journey_maps
from ..analysis.sources import Timeline
from ..spec.durations import human_duration
from ..spec.model import Journey, Spec, Step
from . import figures, style, tables, text
from .changes import affected_table, comparison_section
from .contact import ContactFigures, contact_section
from .digest import worst_sentence
from .figures import View
from .followups import FollowUpFigures, followups_section
from .journey_map import journey_map_section
from .series import StepSeries, step_series
from .summary import StepStatus, Summary, display_names, finding_sentence, step_statuses, summarize

FEW_WINDOWS = 6
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@dataclass(frozen=True)
class _Page:
    view: View
    statuses: dict[tuple[str, str], StepStatus]
    names: dict[tuple[str, str], str]
    series: dict[tuple[str, str], StepSeries]
    maps: dict[str, JourneyMap]
    comparison: bool = False

    @property
    def drawn(self) -> int:
        """Windows drawn per chart."""
        return len(next(iter(self.series.values())).volume)


def render(
    spec: Spec,
    timeline: Timeline,
    analysis: Analysis,
    clock: text.Clock,
    title: str | None = None,
    generated: float | None = None,
    comparison: Comparison | None = None,
    followups: Sequence[FollowUpFigures] = (),
    contact: Sequence[ContactFigures] = (),
) -> str:
    view = View(spec, analysis, clock, human_duration(analysis.step))
    total = timeline.total()
    page = _Page(
        view,
        step_statuses(spec, analysis),
        display_names(spec),
        step_series(spec, timeline),
        journey_maps(spec, total),
        comparison is not None,
    )
    summary = summarize(spec, analysis, clock)
    if comparison is not None:  # the period over period verdict comes first
        sentences = (worst_sentence(comparison), *summary.sentences)
        summary = Summary(summary.status, summary.headline, sentences)
    title = title or f"Customer experience report — {spec.service}"
    body = [
        _header(page, title),
        "<main>",
        _summary(summary),
        _kpis(page),
    ]
    if comparison is not None:
        body.append(comparison_section(spec, comparison))
    body += [
        '<section id="steps"><h2>Steps</h2>',
        tables.steps_table(spec, analysis, page.statuses),
        "</section>",
    ]
    if comparison is not None:
        before = {(s.journey, s.step): s.affected_before for s in comparison.steps}
        body.append(affected_table(spec, affected(spec, total), before, comparison.previous.label))
    else:
        body.append(affected_table(spec, affected(spec, total), None))
    if analysis.findings:
        body += [
            '<section id="regressions"><h2>Regressions</h2>',
            tables.regressions_table(analysis, clock, page.names),
            "</section>",
        ]
    if any(_heard(j) for j in analysis.indicators.journeys):
        body += [
            '<section id="voice"><h2>Voice of the customer</h2>',
            tables.voice_table(spec, analysis),
            "</section>",
        ]
    if _has_checks(page):
        body += [
            '<section id="checks"><h2>Accuracy checks</h2>',
            tables.checks_table(spec, analysis),
            "</section>",
        ]
    if followups:
        body.append(followups_section(spec, followups))
    if contact:
        body.append(contact_section(spec, contact))
    body += [_journey(page, journey) for journey in spec.journeys]
    body += [_footer(page, generated if generated is not None else time.time()), "</main>"]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="cxmetrics {escape(__version__)}">'
        f"<title>{escape(title)}</title><style>{style.CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _heard(row: JourneyIndicators) -> bool:
    return bool(row.feedback.nps_responses or row.feedback.csat_responses or row.complaints)


def _has_checks(page: _Page) -> bool:
    declared = any(s.checks for _, s in page.view.spec.steps())
    return declared or any(r.checks for r in page.view.analysis.indicators.steps)


def _header(page: _Page, title: str) -> str:
    a, clock = page.view.analysis, page.view.clock
    links = ['<a href="#summary">Summary</a>']
    if page.comparison:
        links.append('<a href="#changes">Compared</a>')
    links += ['<a href="#steps">Steps</a>', '<a href="#affected">Customers affected</a>']
    if a.findings:
        links.append('<a href="#regressions">Regressions</a>')
    if any(_heard(j) for j in a.indicators.journeys):
        links.append('<a href="#voice">Voice of the customer</a>')
    if _has_checks(page):
        links.append('<a href="#checks">Accuracy checks</a>')
    links += [f'<a href="#journey-{j.name}">{escape(j.name)}</a>' for j in page.view.spec.journeys]
    if page.view.spec.dashboard_url:
        links.append(f'<a href="{escape(page.view.spec.dashboard_url)}">Dashboards</a>')
    return (
        f'<header class="top"><div><h1>{escape(title)}</h1>'
        f'<p class="sub">{escape(clock.full(a.start))} → {escape(clock.full(a.end))}'
        f" · windows of {escape(page.view.window)} · source <code>{escape(a.source)}</code></p>"
        f'<nav aria-label="Sections">{"".join(links)}</nav></div></header>'
    )


def _summary(summary: Summary) -> str:
    items = "".join(f"<li>{escape(s)}</li>" for s in summary.sentences)
    return (
        f'<section id="summary" class="summary {summary.status}" aria-labelledby="summary-h">'
        f'<h2 id="summary-h">{escape(summary.headline)}</h2><ul>{items}</ul></section>'
    )


def _kpis(page: _Page) -> str:
    analysis = page.view.analysis
    rows = analysis.indicators.steps
    passed = sum(c.passed for r in rows for c in r.checks.values())
    checked = passed + sum(c.failed for r in rows for c in r.checks.values())
    open_ = sum(1 for f in analysis.findings if f.end_time is None)
    cards = [
        ("Journeys started", text.count(sum(j.started for j in analysis.indicators.journeys))),
        ("Steps measured", text.count(sum(r.volume for r in rows))),
        ("On time", text.percent(_weighted(rows, lambda r: r.timeliness))),
        ("Accurate", text.percent(passed / checked if checked else None)),
        ("Good steps", text.percent(_weighted(rows, lambda r: r.good_ratio))),
    ]
    html = "".join(
        f'<div class="kpi"><div class="label">{label}</div><div class="value">{value}</div></div>'
        for label, value in cards
    )
    regressions = len(analysis.findings)
    tone = "red" if open_ else "amber" if regressions else "green"
    html += (
        f'<div class="kpi {tone}"><div class="label">Regressions</div>'
        f'<div class="value">{regressions}</div></div>'
    )
    return f'<section class="kpis" aria-label="Headline numbers">{html}</section>'


def _weighted(
    rows: tuple[StepIndicators, ...], value: Callable[[StepIndicators], float | None]
) -> float | None:
    """A ratio pooled over steps, each weighted by its volume."""
    pairs = [(x, r.volume) for r in rows if (x := value(r)) is not None and r.volume]
    total = sum(v for _, v in pairs)
    return sum(x * v for x, v in pairs) / total if total else None


# ---------------------------------------------------------------------------------------------
# journeys and steps


def _journey(page: _Page, journey: Journey) -> str:
    row = page.view.analysis.indicators.journey(journey.name)
    facts = [f"{text.count(row.started)} started"]
    if row.completion is not None:
        facts.append(f"{text.count(row.completed)} completed ({text.percent(row.completion)})")
    if row.score is not None:
        facts.append(f"CX score {text.fixed(row.score)}")
    parts = [
        f'<section id="journey-{journey.name}" aria-labelledby="journey-{journey.name}-h">'
        f'<h2 id="journey-{journey.name}-h">Journey {escape(journey.name)}</h2>'
    ]
    if journey.description:
        parts.append(f'<p class="meta">{escape(journey.description)}</p>')
    parts.append(f'<p class="meta">{" · ".join(facts)}</p>')
    parts.append(figures.funnel_figure(page.view, journey, page.statuses))
    parts.append(journey_map_section(page.maps[journey.name]))
    if page.drawn < FEW_WINDOWS:
        parts.append(
            f'<p class="note">Only {text.plural(page.drawn, "window")} of {page.view.window}: '
            "too few to show change over time. Rerun with a shorter --step.</p>"
        )
    parts += [_step(page, journey, step) for step in journey.steps]
    parts.append("</section>")
    return "".join(parts)


def _step(page: _Page, journey: Journey, step: Step) -> str:
    key = (journey.name, step.name)
    row = page.view.analysis.indicators.step(*key)
    status: StepStatus = page.statuses[key]
    series = page.series[key]
    objective = page.view.spec.objectives(journey, step)
    facts = [
        f"target {text.duration(step.target)}",
        text.plural(row.volume, "customer"),
        f"p95 {text.duration(row.quantiles[0.95])}",
        f"{text.percent(row.timeliness)} on time (objective "
        f"{text.objective(objective.timeliness)})",
    ]
    if row.accuracy is not None:
        facts.append(f"accuracy {text.percent(row.accuracy)}")
    notes = [
        _sentence(page, f) for f in page.view.analysis.findings if (f.journey, f.step) == key
    ] + list(status.notes)
    parts = [
        f'<article id="step-{journey.name}-{step.name}" aria-labelledby="step-{journey.name}-'
        f'{step.name}-h"><h3 id="step-{journey.name}-{step.name}-h">{escape(step.name)}'
        f"{tables.badge(status)}</h3>"
        f'<p class="meta">{escape(" · ".join(facts))}</p>'
    ]
    if step.description:
        parts.append(f'<p class="meta">{escape(step.description)}</p>')
    if notes:
        parts.append(
            '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>"
        )
    parts.append(figures.latency_figure(page.view, journey, step, series))
    small = [figures.timeliness_figure(page.view, journey, step, series)]
    if series.checks:
        small.append(figures.accuracy_figure(page.view, journey, step, series))
    if row.next_step is not None:
        small.append(figures.conversion_figure(page.view, journey, step, series, row.next_step))
    parts.append(f'<div class="grid">{"".join(small)}</div>')
    parts.append(
        "<details><summary>Numbers per window</summary>"
        + tables.windows_table(series, page.view.clock, page.view.window)
        + "</details></article>"
    )
    return "".join(parts)


def _sentence(page: _Page, f: Finding) -> str:
    return finding_sentence(f, page.names[(f.journey, f.step)], page.view.clock)


def _footer(page: _Page, generated: float) -> str:
    a = page.view.analysis
    notes = ""
    if a.ignored:
        notes += (
            f" {text.plural(a.ignored, 'record')} named journeys or steps not in the spec and "
            "were left out."
        )
    if a.transient:
        notes += (
            " Not reported: worsenings over before they reached the policy's minimum volume or "
            f"lasted its 'for', and latency changes below its min_change ({a.transient})."
        )
    return (
        f"<footer><p>Generated {escape(page.view.clock.full(generated))} by cxmetrics "
        f"{escape(__version__)} from <code>{escape(page.view.spec.source)}</code> "
        f"(spec {escape(page.view.spec.fingerprint)}). "
        f"All times {escape(page.view.clock.zone(a.start))}."
        f"{escape(notes)}</p></footer>"
    )
