"""The report's period-over-period section and its customers-affected table.

"Compared with the previous week": one row per step, grouped by journey, each indicator this
period with the previous value under it; a significant worsening is red and marked ▲/▼ (the
arrow gives the direction of the number, the colour whether customers are worse off), a
significant improvement green. Without traffic in the previous period every cell says "no
baseline yet". "Customers affected" gives the counts behind the ratios (``analysis.affected``),
with the previous period's when there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from ..analysis.affected import Affected
from ..analysis.comparison import Change, Comparison
from ..spec.model import Spec
from . import tables, text
from .digest import NO_BASELINE, period_name, period_sentences, value

_COLUMNS = ("volume", "p95", "timeliness", "accuracy", "error_rate", "good_ratio", "conversion")


def comparison_section(spec: Spec, comparison: Comparison) -> str:
    kind = period_name(comparison)
    groups = []
    for journey in spec.journeys:
        rows = []
        for step in journey.steps:
            row = comparison.step(journey.name, step.name)
            cells = "".join(_cell(row.changes[name], comparison.baseline) for name in _COLUMNS)
            rows.append(
                f'<tr><th scope="row"><a href="#step-{journey.name}-{step.name}">'
                f"{escape(step.name)}</a></th>{cells}</tr>"
            )
        groups.append((f"Journey {journey.name}", rows))
    columns = ["Step", "Customers", "p95", "On time", "Accuracy", "Errors", "Good steps", "Go on"]
    caption = (
        f"Each step this {kind} ({comparison.current.label}), and under it the "
        f"{comparison.previous.label}. Red: significantly worse for customers; green: "
        "significantly better (two-sided tests at 99%)."
    )
    sentences = "".join(f"<li>{escape(s)}</li>" for s in period_sentences(comparison))
    return (
        f'<section id="changes" aria-labelledby="changes-h"><h2 id="changes-h">Compared with '
        f"{escape(comparison.previous.label)}</h2><ul>{sentences}</ul>"
        + tables.grouped_table(caption, columns, groups)
        + "</section>"
    )


def _cell(change: Change, baseline: bool) -> str:
    now = value(change.indicator, change.current)
    if not baseline:
        return f'<td>{escape(now)}<span class="small">{NO_BASELINE}</span></td>'
    if change.previous is None:  # e.g. accuracy of a step without checks
        return f"<td>{escape(now)}</td>"
    was = f"was {value(change.indicator, change.previous)}"
    if not change.significant or change.worse is None:
        return f'<td>{escape(now)}<span class="small">{escape(was)}</span></td>'
    up = change.current is not None and change.current > change.previous
    arrow = "▲" if up else "▼"
    tone = "worse" if change.worse else "better"
    title = "significantly " + tone
    return (
        f'<td class="{tone}" title="{title}">{arrow} {escape(now)}'
        f'<span class="small">{escape(was)}</span></td>'
    )


def affected_table(
    spec: Spec,
    now: Mapping[tuple[str, str], Affected],
    before: Mapping[tuple[str, str], Affected] | None,
    before_label: str | None = None,
) -> str:
    groups = []
    for journey in spec.journeys:
        rows = []
        for step in journey.steps:
            key = (journey.name, step.name)
            cells = "".join(
                _count(getattr(now[key], field), None if before is None else before[key], field)
                for field in ("failed_checks", "frustrated", "failed", "abandoned")
            )
            rows.append(f'<tr><th scope="row">{escape(step.name)}</th>{cells}</tr>')
        groups.append((f"Journey {journey.name}", rows))
    columns = ["Step", "Failed checks", "Frustrated", "Failed", "Left the journey"]
    caption = (
        "Customers affected, as counts. Failed checks: accuracy checks that failed. "
        "Frustrated: slower than the tolerating threshold. Failed: the step ended in an error. "
        "Left the journey: did not go on to another step (not counted after the last step)."
    )
    if before_label is not None:
        caption += f" Under each count: {before_label}."
    return (
        '<section id="affected" aria-labelledby="affected-h"><h2 id="affected-h">Customers '
        "affected</h2>" + tables.grouped_table(caption, columns, groups) + "</section>"
    )


def _count(n: int, before: Affected | None, field: str) -> str:
    was = (
        ""
        if before is None
        else f'<span class="small">was {text.count(getattr(before, field))}</span>'
    )
    return f"<td>{text.count(n)}{was}</td>"
