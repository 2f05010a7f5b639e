"""Reporting periods: a calendar day, week or month and the one before it, or any range and the
same range shifted back (``analyze --compare 7d``).

Calendar periods start at local midnight (weeks on Monday, months on the 1st) in the zone given
(default: the machine's local zone, as the report's clock). The period reported "at" a moment is
the last one that is complete by then, so a job run any time on Monday reports the week that ended
at Monday 00:00. A period's ``key`` (``week-2024-03-11``) names it for people and for the delivery
ledger: re-running the same period yields the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from .._exceptions import CxError

PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class Period:
    """``(start, end]`` in seconds since the epoch; ``kind`` is ``day``, ``week``, ``month`` or
    ``range`` (an arbitrary span)."""

    kind: str
    start: float
    end: float
    label: str  # for people: "week of 2024-03-11", "2024-03-11", "March 2024"
    key: str = ""  # "week-2024-03-11" (the first day, in the period's zone); a range: UTC times

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", f"range-{_stamp(self.start)}-{_stamp(self.end)}")

    def shifted(self, seconds: float) -> Period:
        """The same span ``seconds`` earlier."""
        start, end = self.start - seconds, self.end - seconds
        return Period("range", start, end, f"{_stamp(start)} to {_stamp(end)}")


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H%MZ")


def calendar_period(kind: str, at: float, tz: tzinfo | None = None) -> Period:
    """The last complete ``kind`` (day, week, month) ending at or before ``at``."""
    if kind not in PERIODS:
        raise CxError(f"unknown period {kind!r}; use one of {', '.join(PERIODS)}")
    moment = datetime.fromtimestamp(at, tz) if tz is not None else datetime.fromtimestamp(at)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "day":
        end = midnight
        start = _local(end.replace(tzinfo=None) - timedelta(days=1), tz)
        label = start.strftime("%Y-%m-%d")
    elif kind == "week":
        end = midnight - timedelta(days=midnight.weekday())
        start = _local(end.replace(tzinfo=None) - timedelta(days=7), tz)
        label = "week of " + start.strftime("%Y-%m-%d")
    else:
        end = midnight.replace(day=1)
        previous = (end.replace(tzinfo=None) - timedelta(days=1)).replace(day=1)
        start = _local(previous, tz)
        label = start.strftime("%B %Y")
    end = _local(end.replace(tzinfo=None), tz)
    key = f"{kind}-{start.strftime('%Y-%m-%d')}"
    return Period(kind, start.timestamp(), end.timestamp(), label, key)


def previous_period(period: Period, tz: tzinfo | None = None) -> Period:
    """The calendar period just before ``period`` (the same span shifted, for a ``range``)."""
    if period.kind == "range":
        return period.shifted(period.end - period.start)
    # a moment inside the period: the last complete one before it is the one we want
    return calendar_period(period.kind, period.start + 1.0, tz)


def _local(naive: datetime, tz: tzinfo | None) -> datetime:
    """Wall-clock ``naive`` in ``tz`` (local when None): days are 23 or 25 hours across DST."""
    if tz is None:
        return naive.astimezone()
    return naive.replace(tzinfo=tz)
