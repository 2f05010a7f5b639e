"""How cxmetrics writes numbers and moments for people: durations, percentages, percentage points,
confidences, counts, clock times. The report's summary sentences, tables and chart axes and the
``cxmetrics analyze`` terminal tables all go through these, so one number reads the same wherever
it appears."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, tzinfo


def duration(seconds: float | None) -> str:
    """``931 ms``, ``1.18 s``, ``2.5 min``, ``1.2 h``; ``–`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    if seconds == 0:
        return "0 s"
    if seconds * 1000 < 999.5:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 59.95:
        return f"{seconds:.3g} s"
    if seconds < 3597:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def percent(ratio: float | None) -> str:
    """``94.9%``; two decimals just below 100% (where the difference matters), ``–`` when
    unknown."""
    if ratio is None or not math.isfinite(ratio):
        return "–"
    value = 100 * ratio
    if 99.9 < value < 99.995:
        return f"{value:.2f}%"
    return f"{value:.1f}%"


def objective(ratio: float) -> str:
    """An objective as people set it: ``95%``, ``99.9%``."""
    return f"{100 * ratio:.2f}".rstrip("0").rstrip(".") + "%"


def percent_tick(ratio: float, step: float) -> str:
    """An axis label: as few decimals as the tick spacing ``step`` needs (``95%``, ``99.5%``)."""
    for decimals in range(4):
        if abs(round(step * 100, decimals) - step * 100) < 1e-9:
            return f"{100 * ratio:.{decimals}f}%"
    return f"{100 * ratio:.3f}%"


def change(relative: float) -> str:
    """A relative change as a whole percentage: ``27%``."""
    return f"{abs(relative):.0%}"


def points(delta: float) -> str:
    """A change of a rate in percentage points, as people compare rates: ``−6.1 pp``."""
    sign = "−" if delta < 0 else "+"
    return f"{sign}{abs(100 * delta):.1f} pp"


def size(indicator: str, baseline: float, current: float, relative: float) -> str:
    """The size of a regression: latency relative (``+25%``), rates (accuracy, conversion) in
    percentage points between ``baseline`` and ``current`` (``−6.1 pp``)."""
    if indicator == "latency":
        return f"{'−' if relative < 0 else '+'}{change(relative)}"
    return points(current - baseline)


def confidence(probability: float) -> str:
    """A confidence: ``95.0%``; never ``100%`` (``>99.9%``), since no detector is certain."""
    if probability >= 0.9995:
        return ">99.9%"
    return f"{100 * probability:.1f}%"


def count(n: int) -> str:
    return f"{n:,}"


def fixed(value: float | None, digits: int = 1, suffix: str = "") -> str:
    """A score or index with ``digits`` decimals (Apdex ``0.940``, CX score ``87.5``); ``–``."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}{suffix}"


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 customer``, ``1,928 customers``."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"


def listing(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class Clock:
    """Wall-clock times in one zone, as precise as the analysed range needs: seconds only when
    the windows are shorter than a minute, the date only when the range spans more than a day."""

    tz: tzinfo | None = None  # None: the local zone of the machine writing the report
    seconds: bool = False
    dated: bool = False

    @classmethod
    def for_range(cls, start: float, end: float, step: float, tz: tzinfo | None = None) -> Clock:
        dated = _moment(start, tz).date() != _moment(end, tz).date()
        return cls(tz, step < 60, dated)

    def __call__(self, seconds: float) -> str:
        fmt = ("%Y-%m-%d " if self.dated else "") + ("%H:%M:%S" if self.seconds else "%H:%M")
        return _moment(seconds, self.tz).strftime(fmt)

    def format(self, seconds: float, fmt: str) -> str:
        return _moment(seconds, self.tz).strftime(fmt)

    def full(self, seconds: float) -> str:
        """Date, time and zone: for the report's header."""
        return _moment(seconds, self.tz).strftime("%Y-%m-%d %H:%M:%S %Z")

    def zone(self, seconds: float) -> str:
        return _moment(seconds, self.tz).strftime("%Z") or "local time"

    def offset(self, seconds: float) -> float:
        """The zone's offset from UTC at ``seconds``, for aligning axis ticks to local hours."""
        delta = _moment(seconds, self.tz).utcoffset()
        return delta.total_seconds() if delta is not None else 0.0


def _moment(seconds: float, tz: tzinfo | None) -> datetime:
    return (
        datetime.fromtimestamp(seconds, tz)
        if tz is not None
        else datetime.fromtimestamp(seconds).astimezone()
    )
