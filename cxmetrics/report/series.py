"""Each step's indicators window by window: what the report's charts draw.

The numbers come from the same indicator math as the analysis (``indicators.compute`` on each
window of the ``Timeline``), so a chart point and a table cell can never disagree. Long ranges
are drawn with at most ``MAX_POINTS`` points: neighbouring windows are merged first, which is
exact (windows merge by adding their counts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from ..analysis.counts import QUANTILES, Window, merge_windows
from ..analysis.indicators import StepIndicators, compute
from ..analysis.sources import Timeline
from ..spec.model import Spec

MAX_POINTS = 240


@dataclass(frozen=True)
class StepSeries:
    """One step's indicators per drawn window ``(edges[k], edges[k + 1]]``."""

    journey: str
    step: str
    edges: tuple[float, ...]
    volume: tuple[int, ...]
    quantiles: Mapping[float, tuple[float | None, ...]]
    timeliness: tuple[float | None, ...]
    checks: Mapping[str, tuple[float | None, ...]]  # check → pass rate
    conversion: tuple[float | None, ...]  # to the next step, at most 1

    @property
    def middles(self) -> tuple[float, ...]:
        return tuple((a + b) / 2 for a, b in pairwise(self.edges))


def step_series(spec: Spec, timeline: Timeline) -> dict[tuple[str, str], StepSeries]:
    """Every declared step's series, keyed ``(journey, step)``."""
    windows = coarsen(timeline.windows)
    edges = (windows[0].start, *(w.end for w in windows))
    rows = [compute(spec, w) for w in windows]
    out: dict[tuple[str, str], StepSeries] = {}
    for journey, step in spec.steps():
        per_window = [r.step(journey.name, step.name) for r in rows]
        out[(journey.name, step.name)] = _series(journey.name, step.name, edges, per_window)
    return out


def coarsen(windows: Sequence[Window], limit: int = MAX_POINTS) -> tuple[Window, ...]:
    """``windows`` merged in runs of equal length so that at most ``limit`` remain."""
    size = -(-len(windows) // limit)  # ceiling division
    if size <= 1:
        return tuple(windows)
    return tuple(merge_windows(windows[k : k + size]) for k in range(0, len(windows), size))


def _series(
    journey: str, step: str, edges: tuple[float, ...], rows: list[StepIndicators]
) -> StepSeries:
    names = sorted({name for r in rows for name in r.checks})
    return StepSeries(
        journey,
        step,
        edges,
        tuple(r.volume for r in rows),
        {q: tuple(r.quantiles[q] for r in rows) for q in QUANTILES},
        tuple(r.timeliness for r in rows),
        {
            name: tuple(r.checks[name].rate if name in r.checks else None for r in rows)
            for name in names
        },
        # a transition lands in the window where the next step ended: clamp, as the analysis does
        tuple(None if r.conversion is None else min(r.conversion, 1.0) for r in rows),
    )
