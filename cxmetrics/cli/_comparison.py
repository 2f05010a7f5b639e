"""``analyze --compare DURATION``: the analysed range against the same range DURATION earlier,
from the same source through the same indicator math (``cxmetrics.analysis.comparison``), as a
table for people or a ``comparison`` object in the JSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ._common import abort
from ._periods import load_ranges

if TYPE_CHECKING:
    from ..analysis.comparison import Comparison
    from ..analysis.sources import Timeline
    from ..spec.model import Spec


def compare_shifted(
    spec: Spec,
    timeline: Timeline,
    shift: str,
    events: str | None,
    prometheus: str | None,
    match: str,
) -> Comparison:
    from ..analysis.comparison import compare
    from ..analysis.periods import Period
    from ..spec.durations import human_duration, parse_duration

    try:
        seconds = parse_duration(shift)
    except ValueError as exc:
        abort(f"--compare: {exc}")
    if seconds <= 0:
        abort("--compare: give a positive duration, e.g. 7d")
    current = Period("range", timeline.start, timeline.end, "this range")
    previous = current.shifted(seconds)
    previous = Period("range", previous.start, previous.end, f"{human_duration(seconds)} earlier")
    (before,) = load_ranges(
        spec, events, prometheus, [(previous.start, previous.end)], timeline.step, match
    )
    return compare(spec, timeline.total(), before.total(), (current, previous))


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    from ..analysis.analyzer import iso

    worst = comparison.worst
    return {
        "previous": {"start": iso(comparison.previous.start), "end": iso(comparison.previous.end)},
        "baseline": comparison.baseline,
        "worst": None if worst is None else {"journey": worst.journey, "step": worst.step},
        "steps": [
            {
                "journey": s.journey,
                "step": s.step,
                "changes": {
                    name: {
                        "current": c.current,
                        "previous": c.previous,
                        "relative": c.relative,
                        "significant": c.significant,
                        "worse": c.worse,
                        "p_value": c.p_value,
                    }
                    for name, c in s.changes.items()
                },
                "more_bad": s.more_bad,
                "affected": asdict(s.affected),
                "affected_before": asdict(s.affected_before),
            }
            for s in comparison.steps
        ],
    }


def print_comparison(comparison: Comparison) -> None:
    from rich.console import Console

    Console(width=None if Console().is_terminal else 160).print(_table(comparison))


def _table(comparison: Comparison) -> Any:
    from rich.table import Table

    from ..analysis.comparison import STEP_INDICATORS
    from ..report.digest import NO_BASELINE, value, worst_sentence

    table = Table(
        title=f"Compared with {comparison.previous.label}", title_justify="left",
        caption=worst_sentence(comparison), caption_justify="left",
    )  # fmt: skip
    table.add_column("journey/step")
    for label, _ in STEP_INDICATORS.values():
        table.add_column(label, justify="right")
    for s in comparison.steps:
        cells = []
        for change in s.changes.values():
            now = value(change.indicator, change.current)
            if not comparison.baseline:
                cells.append(f"{now} ({NO_BASELINE})")
                continue
            was = (
                ""
                if change.previous is None
                else f" (was {value(change.indicator, change.previous)})"
            )
            style = "bold red" if change.significant and change.worse else (
                "green" if change.significant and change.worse is False else ""
            )  # fmt: skip
            cells.append(f"[{style}]{now}{was}[/]" if style else f"{now}{was}")
        table.add_row(f"{s.journey}/{s.step}", *cells)
    return table
