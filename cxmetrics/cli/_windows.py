"""What ``analyze`` adds from an event log for journeys with a ``conversion_window``: conversion
and abandonment judged after the window (in-flight instances apart), and end-to-end journey
time (``analysis.conversion``, ``analysis.journey_time``). Event logs only: counters cannot tell
which finish a transition belongs to (docs/indicators.md)."""

from __future__ import annotations

from typing import Any

import click

from ..analysis.conversion import judged
from ..analysis.journey_time import journey_times
from ..analysis.sources import Timeline
from ..exposition.eventlog import read_log
from ..report import text
from ..spec.model import Spec


def windowed(spec: Spec, timeline: Timeline, events: str | None) -> dict[str, Any]:
    """``{"conversion_judged": {journey/step: …}, "journey_time": {journey: …}}``, or ``{}``."""
    if events is None or not any(j.conversion_window for j in spec.journeys):
        return {}
    read = read_log(events).events
    steps = judged(spec, read, timeline.start, timeline.end)
    times = journey_times(spec, read, timeline.start, timeline.end)
    return {
        "conversion_judged": {
            f"{journey}/{step}": {
                "judged": j.finished,
                "in_flight": j.in_flight,
                "conversion": j.conversion,
                "abandonment": j.abandonment,
            }
            for (journey, step), j in steps.items()
        },
        "journey_time": {
            name: {"completed": t.completed, "p50": t.p50, "p90": t.p90, "mean": t.mean}
            for name, t in times.items()
            if spec.journey(name).conversion_window
        },
    }


def print_windowed(data: dict[str, Any]) -> None:
    if not data:
        return
    click.echo("Judged after the conversion window (in-flight instances apart)")
    for name, row in data["conversion_judged"].items():
        click.echo(
            f"  {name:<36} conversion {text.percent(row['conversion'])}, abandonment "
            f"{text.percent(row['abandonment'])} of {text.count(row['judged'])} judged, "
            f"{text.count(row['in_flight'])} in flight"
        )
    for name, row in data["journey_time"].items():
        click.echo(
            f"  {name:<36} end to end: p50 {text.duration(row['p50'])}, p90 "
            f"{text.duration(row['p90'])} over {text.count(row['completed'])} completed"
        )
