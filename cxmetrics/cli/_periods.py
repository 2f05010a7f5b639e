"""What ``report --period`` and ``analyze --compare`` share: reading the same source over several
ranges (an event log is read once and binned per range; Prometheus is queried per range, through
the sources ``load_timeline`` uses), and parsing ``--at``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ._common import abort

if TYPE_CHECKING:
    from ..analysis.sources import Timeline
    from ..spec.model import Spec


def parse_at(value: str | None) -> float:
    """``--at``: an ISO 8601 date or time (local time unless it names its zone); default now."""
    if value is None:
        return time.time()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        abort(f"--at {value!r}: write a date or time like 2024-03-18 or 2024-03-18T06:00+01:00")
    return (moment if moment.tzinfo is not None else moment.astimezone()).timestamp()


def load_ranges(
    spec: Spec,
    events: str | None,
    prometheus: str | None,
    ranges: Sequence[tuple[float, float]],
    step: float,
    match: str,
) -> list[Timeline]:
    """One timeline per ``(start, end]`` of ``ranges``, from one source, or abort saying why."""
    from .._exceptions import CxError

    if (events is None) == (prometheus is None):
        abort("give exactly one data source: --events FILE.jsonl or --prometheus URL")
    try:
        if events is not None:
            from ..analysis.sources import from_events
            from ..exposition.eventlog import read_events

            try:
                recorded = list(read_events(events))
            except OSError as exc:
                abort(f"cannot read event log {events}: {exc.strerror or exc}")
            return [
                from_events(spec, recorded, step, start, end, source=events)
                for start, end in ranges
            ]
        from ..analysis.prometheus import from_prometheus

        assert prometheus is not None
        return [from_prometheus(spec, prometheus, start, end, step, match) for start, end in ranges]
    except (CxError, ValueError) as exc:
        abort(str(exc))
