"""A journey's map in the report: the from→to transition matrix as an SVG grid and the main
paths (``cxmetrics.analysis.paths``) as a list.

Rows are the step customers were on, columns the step they went to next, plus a last column for
those who went nowhere (left the journey, or finished it after its last step). A cell's colour
says what kind of move it is — forward to the next step, a skip ahead, a loop on the same step, a
back-step — and its strength the share of the row's customers who made it; each cell has a
tooltip in words, and the figure's description lists the largest moves for screen readers.
"""

from __future__ import annotations

from html import escape

from ..analysis.paths import BACK, FORWARD, LOOP, SKIP, JourneyMap, move_kind
from . import charts, text

KIND_COLOURS = {FORWARD: "#1b7c83", SKIP: "#bc4c00", LOOP: "#8250df", BACK: "#cf222e"}
EXIT_COLOUR = "#59636e"
_LABEL_W, _CELL_W, _CELL_H, _HEAD_H = 150.0, 100.0, 34.0, 40.0


def journey_map_figure(journey_map: JourneyMap) -> str:
    steps = journey_map.steps
    n = len(steps)
    width = _LABEL_W + (n + 1) * _CELL_W + 12
    height = _HEAD_H + n * _CELL_H + 12
    ident = f"map-{journey_map.journey}"
    moves = journey_map.moves
    desc = (
        "; ".join(f"{a} to {b}: {text.count(c)} ({kind})" for a, b, c, kind in moves[:8])
        if moves
        else "No customer went from one step to another."
    )
    out = [charts.svg_open(ident, f"Transitions of {journey_map.journey}", desc, width, height)]
    headers = [*steps, "left / done"]
    for j, name in enumerate(headers):
        x = _LABEL_W + j * _CELL_W + _CELL_W / 2
        out.append(
            f'<text x="{x:.1f}" y="{_HEAD_H - 12:.1f}" text-anchor="middle" font-size="12" '
            f'fill="{charts.MUTED}">{escape(_short(name))}</text>'
        )
    for i, source in enumerate(steps):
        y = _HEAD_H + i * _CELL_H
        out.append(
            f'<text x="{_LABEL_W - 10:.1f}" y="{y + _CELL_H / 2:.1f}" text-anchor="end" '
            f'dominant-baseline="central" font-size="12" fill="{charts.INK}">'
            f"{escape(source)}</text>"
        )
        volume = journey_map.volume[i]
        cells = [(journey_map.matrix[i][j], move_kind(i, j), steps[j]) for j in range(n)]
        last = "finished" if i == n - 1 else "left"
        cells.append((journey_map.exits[i], last, last))
        for j, (count, kind, target) in enumerate(cells):
            out.append(_cell(j, y, count, volume, kind, source, target))
    out.append("</svg>")
    return "".join(out)


def _cell(j: int, y: float, count: int, volume: int, kind: str, source: str, target: str) -> str:
    x = _LABEL_W + j * _CELL_W
    share = count / volume if volume else 0.0
    colour = KIND_COLOURS.get(kind, EXIT_COLOUR)
    opacity = 0.0 if not count else 0.12 + 0.88 * min(share, 1.0)
    ink = charts.PAPER if opacity > 0.55 else charts.INK
    where = f"{source} → {target}" if kind in KIND_COLOURS else f"{source}: {target}"
    tip = f"{where}: {text.plural(count, 'customer')} ({text.percent(share if volume else None)})"
    if count and kind in (SKIP, LOOP, BACK):
        tip += f", a {'back-step' if kind == BACK else kind}"
    return (
        f"<g><title>{escape(tip)}</title>"
        f'<rect x="{x + 1:.1f}" y="{y + 1:.1f}" width="{_CELL_W - 2:.1f}" '
        f'height="{_CELL_H - 2:.1f}" rx="3" fill="{colour}" fill-opacity="{opacity:.2f}" '
        f'stroke="{charts.GRID}"/>'
        f'<text x="{x + _CELL_W / 2:.1f}" y="{y + _CELL_H / 2:.1f}" text-anchor="middle" '
        f'dominant-baseline="central" font-size="12" fill="{ink}">'
        f"{text.count(count) if count else '·'}</text></g>"
    )


def _short(name: str) -> str:
    return name if len(name) <= 14 else name[:13] + "…"


def main_paths(journey_map: JourneyMap) -> str:
    if not journey_map.paths:
        return '<p class="note">No customer entered this journey.</p>'
    items = []
    for path in journey_map.paths:
        route = " → ".join(path.steps)
        end = "finished" if path.completed else "left"
        notes = "; ".join(path.unusual)
        items.append(
            f"<li><strong>{escape(route)}</strong> — {text.percent(path.share)} "
            f"(about {text.plural(path.customers, 'customer')}), {end}"
            + (f'<span class="small">{escape(notes)}</span>' if notes else "")
            + "</li>"
        )
    return (
        '<figure class="paths"><figcaption>Main paths (estimated from step-to-step '
        f'transitions)</figcaption><ol class="paths">{"".join(items)}</ol></figure>'
    )


def legend() -> str:
    keys = [
        ("forward", KIND_COLOURS[FORWARD]),
        ("skip ahead", KIND_COLOURS[SKIP]),
        ("loop", KIND_COLOURS[LOOP]),
        ("back-step", KIND_COLOURS[BACK]),
        ("left / finished", EXIT_COLOUR),
    ]
    items = "".join(
        f'<li><span class="key" style="border-color:{colour}"></span>{label}</li>'
        for label, colour in keys
    )
    return f'<ul class="legend">{items}</ul>'


def journey_map_section(journey_map: JourneyMap) -> str:
    return (
        '<figure class="map"><figcaption>Journey map: from each step (rows) to the next '
        "(columns), customers and share of the row</figcaption>"
        + journey_map_figure(journey_map)
        + legend()
        + "</figure>"
        + main_paths(journey_map)
    )
