"""What ``analyze --json`` adds from an event log: the indicators a CX manager compares across
channels — per step its volume, conversion and abandonment to the next step, and its feedback
(NPS, CSAT); per journey its starts, completion and feedback — for each channel of the log.

Each channel's figures are the analyzer's own (``analysis.indicators.compute``) over the events
of that channel only: steps, journey starts and feedback carry the channel of their journey
instance; a transition counts under the channel of the step it led to. Event logs only here:
from Prometheus, ``--match channel=...`` reads one channel.
"""

from __future__ import annotations

from typing import Any

from .._exceptions import CxError
from ..analysis.indicators import compute
from ..analysis.sources import Timeline, from_events
from ..exposition.eventlog import read_log
from ..instrument.events import ContactRecord
from ..spec.model import Spec


def by_channel(spec: Spec, timeline: Timeline, events: str | None) -> dict[str, Any]:
    """``{"by_channel": {channel: {"steps": {journey/step: …}, "journeys": {journey: …}}}}``
    over the analysed range, or ``{}`` without an event log."""
    if events is None:
        return {}
    start, end = timeline.start, timeline.end  # the analysed range, both ends included
    read = [
        e
        for e in read_log(events).events
        if not isinstance(e, ContactRecord) and start <= e.time <= end
    ]
    channels = sorted({e.channel for e in read if e.channel})
    out: dict[str, Any] = {}
    for channel in channels:
        mine = [e for e in read if e.channel == channel]
        try:
            part = from_events(spec, mine, timeline.step)
        except CxError:
            continue  # none of this channel's events in the analysed range
        figures = compute(spec, part.total())
        steps = {
            f"{r.journey}/{r.step}": {
                "volume": r.volume,
                "next_step": r.next_step,
                "conversion": r.conversion,
                "abandonment": r.abandonment,
                "nps": r.feedback.nps,
                "nps_responses": r.feedback.nps_responses,
                "csat": r.feedback.csat,
                "csat_responses": r.feedback.csat_responses,
            }
            for r in figures.steps
            if r.volume
        }
        journeys = {
            r.journey: {
                "started": r.started,
                "completed": r.completed,
                "completion": r.completion,
                "nps": r.feedback.nps,
                "nps_responses": r.feedback.nps_responses,
                "csat": r.feedback.csat,
                "csat_responses": r.feedback.csat_responses,
            }
            for r in figures.journeys
            if r.started or r.volume
        }
        if steps or journeys:
            out[channel] = {"steps": steps, "journeys": journeys}
    return {"by_channel": out} if out else {}
