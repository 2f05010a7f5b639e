"""The report's tables, as HTML: every step at a glance, the regressions in detail, the accuracy
checks, and each step's numbers window by window (the charts' data, for screen readers and for
copying). Column headers are ``<th scope="col">``, row headers ``<th scope="row">``."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from itertools import pairwise

from ..analysis.analyzer import ACCURACY, CONVERSION, ERRORS, LATENCY, Analysis
from ..spec.model import Spec
from . import text
from .series import StepSeries
from .summary import StepStatus, check_objective


def badge(status: StepStatus) -> str:
    return f'<span class="badge {status.status}">{escape(status.label)}</span>'


def table(caption: str, columns: Sequence[str], rows: Sequence[str], first_left: int = 1) -> str:
    """``rows`` are ready ``<tr>`` strings; the first ``first_left`` columns align left."""
    return _table(caption, columns, f"<tbody>{''.join(rows)}</tbody>", first_left)


def grouped_table(
    caption: str,
    columns: Sequence[str],
    groups: Sequence[tuple[str, Sequence[str]]],
    first_left: int = 1,
) -> str:
    """One ``<tbody>`` per ``(label, rows)`` group, headed by its label."""
    bodies = "".join(
        f'<tbody><tr class="group"><th scope="rowgroup" colspan="{len(columns)}">'
        f"{escape(label)}</th></tr>{''.join(rows)}</tbody>"
        for label, rows in groups
    )
    return _table(caption, columns, bodies, first_left)


def _table(caption: str, columns: Sequence[str], bodies: str, first_left: int) -> str:
    head = "".join(
        f'<th scope="col"{" class=left" if k < first_left else ""}>{escape(c)}</th>'
        for k, c in enumerate(columns)
    )
    return (
        f'<div class="scroll"><table><caption>{escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead>{bodies}</table></div>"
    )


def _cell(value: str, miss: bool = False, title: str | None = None) -> str:
    attrs = (' class="miss"' if miss else "") + (f' title="{escape(title)}"' if title else "")
    return f"<td{attrs}>{escape(value)}</td>"


def steps_table(
    spec: Spec,
    analysis: Analysis,
    statuses: dict[tuple[str, str], StepStatus],
) -> str:
    groups = []
    for journey in spec.journeys:
        rows = []
        for step in journey.steps:
            row = analysis.indicators.step(journey.name, step.name)
            objective = spec.objectives(journey, step)
            late = row.timeliness is not None and row.timeliness < objective.timeliness
            missed = [
                name
                for name, c in row.checks.items()
                if c.rate is not None and c.rate < check_objective(spec, journey, step, name)
            ]
            rows.append(
                f'<tr><th scope="row"><a href="#step-{journey.name}-{step.name}">'
                f"{escape(step.name)}</a></th>"
                f'<td class="left">{badge(statuses[(journey.name, step.name)])}</td>'
                + _cell(text.count(row.volume))
                + "".join(_cell(text.duration(row.quantiles[q])) for q in (0.5, 0.95, 0.99))
                + _cell(text.duration(row.target))
                + _cell(
                    text.percent(row.timeliness),
                    late,
                    f"objective {text.objective(objective.timeliness)}",
                )
                + _cell(
                    text.percent(row.accuracy),
                    bool(missed),
                    f"below objective: {', '.join(missed)}" if missed else None,
                )
                + _cell(text.percent(row.error_rate))
                + _cell(text.percent(row.conversion))
                + _cell(text.fixed(row.score))
                + "</tr>"
            )
        groups.append((f"Journey {journey.name}", rows))
    columns = ["Step", "Status", "Customers", "p50", "p95", "p99", "Target", "On time"]
    columns += ["Accuracy", "Errors", "Go on", "CX score"]
    caption = (
        "Every step over the whole range. On time: answered within the target. Go on: share "
        "that continued to the next step. CX score: 0–100 from Apdex, accuracy and errors."
    )
    return grouped_table(caption, columns, groups, first_left=2)


def regressions_table(
    analysis: Analysis, clock: text.Clock, names: dict[tuple[str, str], str]
) -> str:
    rows = []
    for f in analysis.findings:
        r = f.regression
        what = {
            LATENCY: f"latency {r.statistic}",
            ACCURACY: f"accuracy: {f.subject}",
            ERRORS: "success rate (steps without an error)",
            CONVERSION: f"going on to {f.subject}",
        }.get(f.indicator, f"{f.indicator} {f.subject or ''}")
        value = text.duration if f.indicator == LATENCY else text.percent
        size = text.size(f.indicator, r.baseline, r.current, r.change)
        rows.append(
            f'<tr><th scope="row"><a href="#step-{f.journey}-{f.step}">'
            f"{escape(names[(f.journey, f.step)])}</a></th>"
            f'<td class="left wrap">{escape(what)}'
            f'<span class="small">{escape(f.sensitivity.describe())}</span></td>'
            + _cell(f"{value(r.baseline)} → {value(r.current)}")
            + _cell(size, True)
            + _cell(clock(f.start_time))
            + _cell(clock(f.detected_time))
            + _cell("still regressed" if f.end_time is None else clock(f.end_time))
            + _cell(text.confidence(r.confidence))
            + _cell(text.count(r.affected))
            + "</tr>"
        )
    columns = ["Step", "Indicator", "Before → after", "Change", "Started", "Detected"]
    columns += ["Recovered", "Confidence", "Affected"]
    caption = (
        "Started: the estimated change point. Detected: when the detector became sure. "
        "Affected: customers at the step since it started. Under each indicator: the smallest "
        "change this much traffic can reveal."
    )
    return table(caption, columns, rows, first_left=2)


def voice_table(spec: Spec, analysis: Analysis) -> str:
    """NPS, CSAT and the complaint rate of every journey, each with the responses behind it
    (the catalogue's definitions); a score below the journey's feedback objective, with
    ``min_responses`` behind it, is marked."""
    rows = []
    for journey in spec.journeys:
        row = analysis.indicators.journey(journey.name)
        fb = row.feedback
        policy = spec.feedback(journey)
        least = policy.min_responses if policy is not None else 0
        nps_goal = policy.objectives.nps if policy is not None else None
        csat = policy.objectives.csat if policy is not None else None
        csat_goal = None if csat is None else 100 * csat
        rows.append(
            f'<tr><th scope="row">{escape(journey.name)}</th>'
            + _cell(text.fixed(fb.nps, 0), _below(fb.nps, nps_goal, fb.nps_responses, least))
            + _cell(text.count(fb.nps_responses))
            + _cell(
                text.fixed(fb.csat, 1, "%"), _below(fb.csat, csat_goal, fb.csat_responses, least)
            )
            + _cell(text.count(fb.csat_responses))
            + _cell(text.count(row.complaints))
            + _cell(text.percent(row.complaint_rate))
            + "</tr>"
        )
    columns = ("journey", "NPS", "responses", "CSAT", "responses", "complaints", "complaint rate")
    return table("NPS, CSAT and complaints per journey", columns, rows)


def _below(score: float | None, goal: float | None, responses: int, least: int) -> bool:
    return score is not None and goal is not None and responses >= least and score < goal


def checks_table(spec: Spec, analysis: Analysis) -> str:
    flagged = {(f.journey, f.step, f.subject) for f in analysis.findings}
    rows = []
    for journey, step in spec.steps():
        row = analysis.indicators.step(journey.name, step.name)
        declared = {c.name: c for c in step.checks}
        for name in [*declared, *sorted(set(row.checks) - set(declared))]:
            check = declared.get(name)
            counts = row.checks.get(name)
            objective = check_objective(spec, journey, step, name)
            rate = counts.rate if counts is not None else None
            regressed = (journey.name, step.name, name) in flagged
            miss = regressed or (rate is not None and rate < objective)
            about = check.description if check is not None and check.description else ""
            kind = check.kind if check is not None else "undeclared"
            rows.append(
                f'<tr><th scope="row">{escape(step.name)}</th>'
                f'<td class="left"><strong>{escape(name)}</strong></td>'
                f'<td class="left">{escape(kind)}</td>'
                f'<td class="left wrap">{escape(about)}</td>'
                + _cell(text.count(counts.passed) if counts else "0")
                + _cell(
                    text.count(counts.failed) if counts else "0", bool(counts and counts.failed)
                )
                + _cell(text.percent(rate), miss)
                + _cell(text.objective(objective))
                + f"<td>{badge(_check_status(regressed, miss))}</td>"
                + "</tr>"
            )
    columns = ["Step", "Check", "Kind", "What it checks", "Passed", "Failed", "Pass rate"]
    columns += ["Objective", "Status"]
    return table("Accuracy checks recorded during each step.", columns, rows, first_left=4)


def _check_status(regressed: bool, miss: bool) -> StepStatus:
    if regressed:
        return StepStatus("red", "Regressed")
    return StepStatus("amber", "Below objective") if miss else StepStatus("green", "OK")


def windows_table(series: StepSeries, clock: text.Clock, window: str) -> str:
    names = list(series.checks)
    rows = []
    for k, (a, b) in enumerate(pairwise(series.edges)):
        rows.append(
            f'<tr><th scope="row">{escape(clock(a))}–{escape(clock(b))}</th>'
            + _cell(text.count(series.volume[k]))
            + "".join(_cell(text.duration(series.quantiles[q][k])) for q in (0.5, 0.95, 0.99))
            + _cell(text.percent(series.timeliness[k]))
            + "".join(_cell(text.percent(series.checks[n][k])) for n in names)
            + _cell(text.percent(series.conversion[k]))
            + "</tr>"
        )
    columns = ["Window", "Customers", "p50", "p95", "p99", "On time", *names, "Go on"]
    return table(f"{series.step}, per {window} window.", columns, rows)
