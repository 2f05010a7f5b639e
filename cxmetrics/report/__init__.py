"""The HTML report (docs/report.md; the flow's last stage): indicators and regressions for CX
managers, as one self-contained file — inline style, charts as inline SVG drawn in Python, no
script, nothing fetched — that opens offline in any browser.

``write_report(spec, timeline, analysis, path)`` is all a caller needs (``cxmetrics report``,
``cxmetrics demo``); ``render_report`` returns the page as a string. Inside: ``summary`` (the
verdict in plain words and the status of every step), ``series`` (indicators per window),
``charts`` (SVG), ``tables``, ``style`` and ``page`` (the document).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import tzinfo
from pathlib import Path

from ..analysis.analyzer import Analysis
from ..analysis.comparison import Comparison
from ..analysis.sources import Timeline
from ..spec.model import Spec
from .contact import ContactFigures
from .followups import FollowUpFigures
from .summary import StepStatus, Summary, step_statuses, summarize
from .text import Clock

__all__ = [
    "Clock",
    "StepStatus",
    "Summary",
    "render_report",
    "step_statuses",
    "summarize",
    "write_report",
]


def render_report(
    spec: Spec,
    timeline: Timeline,
    analysis: Analysis,
    *,
    tz: tzinfo | None = None,
    title: str | None = None,
    generated: float | None = None,
    comparison: Comparison | None = None,
    followups: Sequence[FollowUpFigures] = (),
    contact: Sequence[ContactFigures] = (),
) -> str:
    """The report as one HTML document. ``spec`` is the spec the data was analysed with (for a
    time-scaled run, the scaled one); ``timeline`` the windows ``analysis`` was computed from.
    Times are written in ``tz`` (default: the local zone); ``generated`` defaults to now."""
    from .page import render

    clock = Clock.for_range(analysis.start, analysis.end, analysis.step, tz)
    return render(spec, timeline, analysis, clock, title, generated, comparison, followups, contact)


def write_report(
    spec: Spec,
    timeline: Timeline,
    analysis: Analysis,
    path: str | os.PathLike[str],
    *,
    tz: tzinfo | None = None,
    title: str | None = None,
    comparison: Comparison | None = None,
    followups: Sequence[FollowUpFigures] = (),
    contact: Sequence[ContactFigures] = (),
) -> Path:
    """Write the report to ``path`` (parent directories created; replaced atomically, so a
    reader never sees half a report) and return the path. With ``comparison`` (period over
    period, ``cxmetrics.analysis.comparison``) the page opens with it; with ``followups``
    (``report.followups.figures`` of the follow-up workers' metrics), a follow-up section; with
    ``contact`` (``report.contact.figures`` of imported calls), a contact-centre section."""
    html = render_report(
        spec,
        timeline,
        analysis,
        tz=tz,
        title=title,
        comparison=comparison,
        followups=followups,
        contact=contact,
    )
    return write_text(html, path)


def write_text(content: str, path: str | os.PathLike[str]) -> Path:
    """Write ``content`` to ``path`` atomically (parent directories created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:  # mode as the umask says
            handle.write(content)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target
