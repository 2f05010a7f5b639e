"""The stand-in's dashboard page: a stored dashboard drawn as a static HTML page from its JSON and
the answers of a real Prometheus, so a headless browser can open and screenshot it.

Not Grafana's frontend (none can run here): it reads what the dashboard JSON says the way Grafana
does for the parts cxmetrics uses — the 24-column grid (``gridPos``), rows, panel titles, each
target's ``expr`` with the dashboard's variables substituted, ``legendFormat``, units,
``decimals``, thresholds (the colour of the last step at or below the value), value mappings
(NaN and value texts), ``noValue``, table columns and data links — and nothing else. Time series
are drawn as SVG polylines from ``/api/v1/query_range``. No script: the page is static.
"""

from __future__ import annotations

import html
import json
import math
import re
import urllib.parse
from typing import Any

from cxmetrics.analysis import promapi

ROW_PX = 30
RANGE_S = 7 * 86400.0


def substitute(expr: str, variables: dict[str, str]) -> str:
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(f"${{{name}}}", variables[name]).replace(f"${name}", variables[name])
    return expr


def _legend(fmt: str, labels: dict[str, str]) -> str:
    if fmt in ("", "__auto"):
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)


def _format(value: float, unit: str, decimals: int | None) -> str:
    if unit == "percentunit":
        digits = 1 if decimals is None else decimals
        return f"{value * 100:.{digits}f}%"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    digits = decimals if decimals is not None else (0 if value == int(value) else 2)
    return f"{value:,.{digits}f}"


PALETTE = {"green": "#56a64b", "orange": "#ff9830", "red": "#e02f44", "blue": "#5794f2"}


def _colour(value: float, defaults: dict[str, Any]) -> str:
    """The colour of the last threshold step at or below ``value``."""
    colour = "blue"
    for step in defaults.get("thresholds", {}).get("steps", []):
        if step.get("value") is None or value >= step["value"]:
            colour = step["color"]
    return PALETTE.get(colour, colour)


def _mapped(value: float, defaults: dict[str, Any]) -> tuple[str, str] | None:
    """(text, colour) of the value mapping that matches ``value``, if any."""
    for mapping in defaults.get("mappings", []):
        options = mapping["options"]
        if mapping["type"] == "special" and options["match"] == "nan" and math.isnan(value):
            result = options["result"]
        elif mapping["type"] == "value" and not math.isnan(value) and f"{value:g}" in options:
            result = options[f"{value:g}"]
        else:
            continue
        return result["text"], PALETTE.get(result.get("color", "blue"), result.get("color"))
    return None


class Renderer:
    def __init__(self, prometheus_url: str, at: float, variables: dict[str, str]) -> None:
        self.url, self.at, self.variables = prometheus_url, at, variables

    def page(self, board: dict[str, Any], query: dict[str, str]) -> str:
        variables = {**self.variables}
        for variable in board.get("templating", {}).get("list", []):
            name = variable["name"]
            chosen = query.get(f"var-{name}")
            if chosen is not None:
                variables[name] = chosen
            elif variable["type"] == "constant":
                variables[name] = variable["query"]
            elif variable["type"] == "custom" and name not in variables:
                variables[name] = variable["current"]["value"]
        panels = "\n".join(self._panel(p, variables) for p in board["panels"])
        title = html.escape(board["title"])
        return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title><link rel="icon" href="data:,">
<style>
body {{ background: #111217; color: #ccccdc; font: 13px sans-serif; margin: 8px; }}
.grid {{ display: grid; grid-template-columns: repeat(24, 1fr);
        grid-auto-rows: {ROW_PX}px; gap: 6px; }}
.panel {{ background: #181b1f; border: 1px solid #2c3235; overflow: hidden; padding: 4px; }}
.row {{ font-size: 15px; font-weight: bold; border-bottom: 1px solid #2c3235; }}
.value {{ display: inline-block; margin: 2px; padding: 4px 8px; color: #fff; }}
h2 {{ font-size: 13px; margin: 0 0 4px 0; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 2px 6px; border: 1px solid #2c3235; }}
a {{ color: #6e9fff; }}
</style></head>
<body><h1 id="title">{title}</h1><div class="grid" id="grid">
{panels}
</div></body></html>
"""

    def _place(self, panel: dict[str, Any]) -> str:
        g = panel["gridPos"]
        return f"grid-column: {g['x'] + 1} / span {g['w']}; grid-row: {g['y'] + 1} / span {g['h']}"

    def _panel(self, panel: dict[str, Any], variables: dict[str, str]) -> str:
        title = html.escape(substitute(panel["title"], variables))
        if panel["type"] == "row":
            return f'<div class="row" style="{self._place(panel)}">{title}</div>'
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        body = self._body(panel, defaults, variables)
        return (
            f'<div class="panel {panel["type"]}" id="panel-{panel["id"]}" '
            f'style="{self._place(panel)}"><h2>{title}</h2>{body}</div>'
        )

    def _results(
        self, panel: dict[str, Any], variables: dict[str, str]
    ) -> list[tuple[str, str, dict[str, str], float]]:
        out = []
        for target in panel.get("targets", []):
            expr = substitute(target["expr"], variables)
            for r in promapi.query(self.url, expr, time_s=self.at):
                out.append(
                    (
                        target["refId"],
                        target.get("legendFormat", ""),
                        r["metric"],
                        float(r["value"][1]),
                    )
                )
        return out

    def _body(
        self, panel: dict[str, Any], defaults: dict[str, Any], variables: dict[str, str]
    ) -> str:
        if panel["type"] == "timeseries":
            return self._lines(panel, variables)
        results = self._results(panel, variables)
        if not results:
            return f'<div class="value no-value">{html.escape(defaults.get("noValue", "No data"))}</div>'
        if panel["type"] == "table":
            return self._table(panel, defaults, results)
        cells = []
        for _, legend, labels, value in results:
            shown = _mapped(value, defaults)
            text, colour = shown or (
                _format(value, defaults.get("unit", ""), defaults.get("decimals")),
                _colour(value, defaults),
            )
            name = html.escape(_legend(legend, labels))
            cells.append(
                f'<span class="value" style="background: {colour}">{name} {html.escape(text)}</span>'
            )
        return "".join(cells)

    def _table(
        self,
        panel: dict[str, Any],
        defaults: dict[str, Any],
        results: list[tuple[str, str, dict[str, str], float]],
    ) -> str:
        links = defaults.get("links", [])
        rows = []
        for ref, _, labels, value in results:
            shown = _format(value, defaults.get("unit", ""), defaults.get("decimals"))
            cells = "".join(
                f"<td>{html.escape(v)}</td>" for k, v in sorted(labels.items()) if k != "__name__"
            )
            if links:
                url = links[0]["url"].replace("${__url_time_range}", "")
                for key, v in labels.items():
                    url = url.replace(f"${{__data.fields.{key}}}", urllib.parse.quote(v))
                cells += (
                    f'<td><a href="{html.escape(url)}">{html.escape(links[0]["title"])}</a></td>'
                )
            rows.append(f"<tr><th>{ref}</th>{cells}<td>{html.escape(shown)}</td></tr>")
        return f"<table>{''.join(rows)}</table>"

    def _lines(self, panel: dict[str, Any], variables: dict[str, str]) -> str:
        series = []
        for target in panel.get("targets", []):
            expr = substitute(target["expr"], variables)
            params = urllib.parse.urlencode(
                {"query": expr, "start": self.at - RANGE_S, "end": self.at, "step": 3600}
            )
            status, raw = promapi.http_get(f"{self.url}/api/v1/query_range?{params}")
            data = json.loads(raw)
            assert status == 200 and data["status"] == "success", (expr, data)
            for r in data["data"]["result"]:
                points = [(float(t), float(v)) for t, v in r["values"] if v not in ("NaN", "+Inf")]
                if points:
                    series.append(points)
        if not series:
            return '<div class="value no-value">No data</div>'
        low = min(v for s in series for _, v in s)
        high = max(v for s in series for _, v in s)
        span = (high - low) or 1.0
        palette = ("#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2")
        lines = []
        for n, points in enumerate(series):
            coords = " ".join(
                f"{(t - self.at + RANGE_S) / RANGE_S * 400:.1f},{100 - (v - low) / span * 100:.1f}"
                for t, v in points
            )
            colour = palette[n % len(palette)]
            lines.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'
            )
        return f'<svg viewBox="0 0 400 100" preserveAspectRatio="none" width="100%" height="80%">{"".join(lines)}</svg>'
