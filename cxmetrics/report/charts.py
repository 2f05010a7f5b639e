"""Charts as inline SVG strings, drawn in Python: no script, no chart library, no fonts to fetch.

Two kinds: a time chart (lines over the analysed range, with reference levels such as the step's
target, and shaded regression periods starting at the detected change point) and a funnel
(horizontal bars of step volumes with the conversion between them). Every chart is an
``<svg role="img">`` with a ``<title>`` and a ``<desc>`` for screen readers; each window of a
time chart carries a ``<title>`` tooltip with its numbers. The SVG is meant to sit inside an HTML
page (no ``xmlns``: the HTML parser puts it in the SVG namespace), styled by explicit attributes
so it draws the same wherever it is pasted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from itertools import pairwise
from typing import Literal

from . import text

INK, MUTED, GRID, PAPER = "#1f2328", "#59636e", "#d8dee4", "#ffffff"
BAND_OPEN, BAND_CLOSED, BAND_EDGE = "#ffe1dc", "#f3ecea", "#cf222e"
_TIME_STEPS: tuple[int, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
_TIME_STEPS += (7200, 10800, 21600, 43200, 86400, 172800, 604800)


@dataclass(frozen=True)
class Line:
    label: str
    values: Sequence[float | None]  # one per window; None leaves a gap
    colour: str
    width: float = 2.0


@dataclass(frozen=True)
class Level:
    """A horizontal reference: a target or an objective."""

    value: float
    label: str
    colour: str


@dataclass(frozen=True)
class Band:
    """A regression period, from its change point to its recovery (or the end of the range)."""

    start: float
    end: float
    label: str
    recovered: bool = False


@dataclass(frozen=True)
class FunnelBar:
    label: str
    volume: int
    colour: str
    tip: str
    note: str | None = None  # written under the bar: what happened between this step and the next


@dataclass(frozen=True)
class _Frame:
    width: float
    height: float
    left: float = 64.0
    right: float = 16.0
    top: float = 30.0
    bottom: float = 28.0

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    @property
    def y0(self) -> float:
        return self.height - self.bottom

    @property
    def y1(self) -> float:
        return self.top


def time_chart(
    ident: str,
    title: str,
    desc: str,
    edges: Sequence[float],
    lines: Sequence[Line],
    *,
    kind: Literal["duration", "ratio"],
    clock: text.Clock,
    levels: Sequence[Level] = (),
    bands: Sequence[Band] = (),
    tips: Sequence[str] = (),
    width: float = 960,
    height: float = 300,
) -> str:
    """Lines drawn at the middle of each window ``(edges[k], edges[k + 1]]``."""
    frame = _Frame(width, height)
    t0, t1 = edges[0], edges[-1]
    values = [v for line in lines for v in line.values if v is not None]
    values += [level.value for level in levels]
    lo, hi, step = _y_range(values, kind)

    def x(t: float) -> float:
        return frame.x0 + (frame.x1 - frame.x0) * (t - t0) / ((t1 - t0) or 1.0)

    def y(v: float) -> float:
        return frame.y0 - (frame.y0 - frame.y1) * (v - lo) / ((hi - lo) or 1.0)

    label: Callable[[float], str] = (
        text.duration if kind == "duration" else (lambda v: text.percent_tick(v, step))
    )
    out = [svg_open(ident, title, desc, width, height)]
    out += _bands(bands, x, frame)
    out += _y_axis(lo, hi, step, y, label, frame)
    out += _x_axis(t0, t1, x, clock, frame)
    middles = [(a + b) / 2 for a, b in pairwise(edges)]
    for level in levels:
        out.append(_level(level, y(level.value), frame))
    for line in lines:
        out.append(_line(line, middles, x, y))
    out += _band_labels(bands, x, frame)
    out += _tips(edges, tips, x, frame)
    out.append("</svg>")
    return "".join(out)


def funnel(ident: str, title: str, desc: str, bars: Sequence[FunnelBar], width: float = 760) -> str:
    """Bars of step volumes, widest first step, with notes (conversion) between them."""
    label_w, value_w, bar_h, note_h, pad = 170.0, 110.0, 26.0, 22.0, 8.0
    height = pad * 2 + sum(bar_h + pad + (note_h if b.note else 0.0) for b in bars)
    most = max((b.volume for b in bars), default=0) or 1
    room = width - label_w - value_w
    out = [svg_open(ident, title, desc, width, height)]
    top = pad
    for bar in bars:
        w = max(room * bar.volume / most, 1.0 if bar.volume else 0.0)
        mid = top + bar_h / 2
        out.append(
            f"<g><title>{escape(bar.tip)}</title>"
            f'<text x="{label_w - 10:.1f}" y="{mid:.1f}" text-anchor="end" '
            f'dominant-baseline="central" font-size="13" fill="{INK}">{escape(bar.label)}</text>'
            f'<rect x="{label_w:.1f}" y="{top:.1f}" width="{w:.1f}" height="{bar_h:.1f}" rx="3" '
            f'fill="{bar.colour}"/>'
            f'<text x="{label_w + w + 8:.1f}" y="{mid:.1f}" dominant-baseline="central" '
            f'font-size="13" font-weight="600" fill="{INK}">{text.count(bar.volume)}</text></g>'
        )
        top += bar_h + pad
        if bar.note:
            out.append(
                f'<text x="{label_w + 6:.1f}" y="{top + note_h / 2 - 3:.1f}" '
                f'dominant-baseline="central" font-size="12" fill="{MUTED}">'
                f"{escape(bar.note)}</text>"
            )
            top += note_h
    out.append("</svg>")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# scales


def nice_step(span: float, count: int = 5) -> float:
    """A round tick spacing (1, 2, 2.5 or 5 × 10^k) giving at most about ``count`` ticks."""
    raw = span / count if span > 0 else 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if factor * magnitude >= raw * (1 - 1e-9):
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover - 10 always qualifies


def _y_range(values: Sequence[float], kind: str) -> tuple[float, float, float]:
    if kind == "duration":
        top = max(values, default=0.0) * 1.08 or 1.0
        step = nice_step(top)
        return 0.0, math.ceil(top / step - 1e-9) * step, step
    low = min(values, default=1.0)
    low = max(low - max((1.0 - low) * 0.25, 0.005), 0.0)
    step = nice_step(1.0 - low, 4)
    return math.floor(low / step + 1e-9) * step, 1.0, step


def _time_step(span: float, most: int) -> float:
    """The smallest round spacing giving at most ``most`` ticks over ``span`` seconds."""
    for step in _TIME_STEPS:
        if span / step <= most:
            return float(step)
    return float(_TIME_STEPS[-1])


# ---------------------------------------------------------------------------------------------
# pieces


def svg_open(ident: str, title: str, desc: str, width: float, height: float) -> str:
    return (
        f'<svg id="{ident}" class="chart" role="img" viewBox="0 0 {width:g} {height:g}" '
        f'aria-labelledby="{ident}-title {ident}-desc" font-size="11">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(desc)}</desc>'
        f'<rect width="{width:g}" height="{height:g}" fill="{PAPER}"/>'
    )


def _y_axis(
    lo: float,
    hi: float,
    step: float,
    y: Callable[[float], float],
    label: Callable[[float], str],
    frame: _Frame,
) -> list[str]:
    out = []
    ticks = round((hi - lo) / step)
    for k in range(ticks + 1):
        value = lo + k * step
        yy = y(value)
        out.append(
            f'<line x1="{frame.x0:.1f}" x2="{frame.x1:.1f}" y1="{yy:.1f}" y2="{yy:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{frame.x0 - 6:.1f}" y="{yy:.1f}" text-anchor="end" '
            f'dominant-baseline="central" fill="{MUTED}">{escape(label(value))}</text>'
        )
    return out


def _x_axis(
    t0: float, t1: float, x: Callable[[float], float], clock: text.Clock, frame: _Frame
) -> list[str]:
    room = frame.x1 - frame.x0
    step = _time_step(t1 - t0, max(int(room / 75), 2))
    if step < 60:  # HH:MM:SS labels are wider
        step = _time_step(t1 - t0, max(int(room / 110), 2))
    offset = clock.offset(t0)
    first = math.ceil((t0 + offset) / step) * step - offset
    fmt = "%b %d" if step >= 86400 else "%H:%M:%S" if step < 60 else "%H:%M"
    out = [
        f'<line x1="{frame.x0:.1f}" x2="{frame.x1:.1f}" y1="{frame.y0:.1f}" y2="{frame.y0:.1f}" '
        f'stroke="{MUTED}" stroke-width="1"/>'
    ]
    tick = first
    while tick <= t1 + 1e-6:
        xx = x(tick)
        out.append(
            f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{frame.y0:.1f}" y2="{frame.y0 + 4:.1f}" '
            f'stroke="{MUTED}"/><text x="{xx:.1f}" y="{frame.y0 + 16:.1f}" '
            f'text-anchor="middle" fill="{MUTED}">{escape(clock.format(tick, fmt))}</text>'
        )
        tick += step
    return out


def _level(level: Level, yy: float, frame: _Frame) -> str:
    # the label sits above its line, or below it when the line runs along the top of the plot
    ly = yy - 5 if yy - frame.y1 > 16 else yy + 14
    return (
        f'<line x1="{frame.x0:.1f}" x2="{frame.x1:.1f}" y1="{yy:.1f}" y2="{yy:.1f}" '
        f'stroke="{level.colour}" stroke-width="1.5" stroke-dasharray="6 4"/>'
        f'<text x="{frame.x1 - 4:.1f}" y="{ly:.1f}" text-anchor="end" fill="{level.colour}" '
        f'font-weight="600" stroke="{PAPER}" stroke-width="3" paint-order="stroke">'
        f"{escape(level.label)}</text>"
    )


def _line(
    line: Line,
    middles: Sequence[float],
    x: Callable[[float], float],
    y: Callable[[float], float],
) -> str:
    runs: list[list[tuple[float, float]]] = [[]]
    for t, v in zip(middles, line.values, strict=True):
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x(t), y(v)))
    path, dots = [], []
    for run in runs:
        if len(run) == 1:
            dots.append(f'<circle cx="{run[0][0]:.1f}" cy="{run[0][1]:.1f}" r="2.5"/>')
        elif run:
            path.append("M" + " L".join(f"{a:.1f} {b:.1f}" for a, b in run))
    drawn = (
        f'<path d="{" ".join(path)}" fill="none" stroke="{line.colour}" '
        f'stroke-width="{line.width:g}" stroke-linejoin="round" stroke-linecap="round"/>'
        if path
        else ""
    )
    return (
        f'<g class="series" fill="{line.colour}"><title>{escape(line.label)}</title>'
        f"{drawn}{''.join(dots)}</g>"
    )


def _bands(bands: Sequence[Band], x: Callable[[float], float], frame: _Frame) -> list[str]:
    out = []
    for band in bands:
        a, b = x(band.start), x(band.end)
        out.append(
            f'<rect class="regression" x="{a:.1f}" y="{frame.y1:.1f}" '
            f'width="{max(b - a, 1.0):.1f}" '
            f'height="{frame.y0 - frame.y1:.1f}" '
            f'fill="{BAND_CLOSED if band.recovered else BAND_OPEN}"/>'
        )
    return out


def _band_labels(bands: Sequence[Band], x: Callable[[float], float], frame: _Frame) -> list[str]:
    out = []
    for band in bands:
        a = x(band.start)
        wide = len(band.label) * 7.2  # bold 12px text, roughly
        right = a + 5 + wide > frame.x1 and a - 5 - wide >= frame.x0 - frame.left
        out.append(
            f'<line x1="{a:.1f}" x2="{a:.1f}" y1="{frame.y1 - 4:.1f}" y2="{frame.y0:.1f}" '
            f'stroke="{BAND_EDGE}" stroke-width="2"/>'
            f'<text x="{a + (-5 if right else 5):.1f}" y="{frame.y1 - 10:.1f}" '
            f'text-anchor="{"end" if right else "start"}" font-size="12" font-weight="700" '
            f'fill="{BAND_EDGE}">{escape(band.label)}</text>'
        )
    return out


def _tips(
    edges: Sequence[float], tips: Sequence[str], x: Callable[[float], float], frame: _Frame
) -> list[str]:
    out = []
    for (a, b), tip in zip(pairwise(edges), tips, strict=False):
        out.append(
            f'<rect x="{x(a):.1f}" y="{frame.y1:.1f}" width="{x(b) - x(a):.2f}" '
            f'height="{frame.y0 - frame.y1:.1f}" fill="{INK}" fill-opacity="0">'
            f"<title>{escape(tip)}</title></rect>"
        )
    return out
