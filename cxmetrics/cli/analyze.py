"""``cxmetrics analyze SPEC --events FILE | --prometheus URL``: step indicators and regressions.

Prints the indicator table of every declared step, then each journey, then the regressions found
(a rich table for people, ``--json`` for machines). Exit codes, for CI gates: 0 judged, no
regression; 1 bad input (the message says what and how to fix it); 3 at least one regression;
4 nothing could be judged (every verdict ``insufficient_data``); 5 no record matched the spec.
Codes 4 and 5 are said on stderr too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from .._exceptions import CxError
from ._channels import by_channel
from ._common import (
    Command,
    abort,
    abort_missing,
    analyze_or_abort,
    load_or_abort,
    load_timeline,
    source_options,
)
from ._comparison import compare_shifted, comparison_json, print_comparison
from ._contact import contact_json, contact_rows, print_contact
from ._windows import print_windowed, windowed

if TYPE_CHECKING:
    from ..analysis.analyzer import Analysis, Finding

EXIT_REGRESSED = 3
EXIT_NOTHING_JUDGED = 4
EXIT_NO_MATCH = 5


@click.command(cls=Command)
@click.argument("spec", type=click.Path(dir_okay=False))
@source_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option(
    "--compare",
    metavar="DURATION",
    help="Also compare with the same range DURATION earlier (e.g. 7d), change and significance.",
)
def analyze(
    spec: str,
    events: str | None,
    prometheus: str | None,
    since: str | None,
    step: str,
    match: str,
    as_json: bool,
    compare: str | None,
) -> None:
    """Indicators and regressions of every step in SPEC, from an event log or Prometheus.

    \b
    Exit codes:
      0 judged, no regression
      1 bad input (the message says what to fix)
      3 at least one regression
      4 nothing could be judged (every verdict insufficient_data: too little traffic)
      5 no record matched the spec (the wrong spec or the wrong log?)
    """
    loaded = load_or_abort(spec)
    timeline = load_timeline(loaded, events, prometheus, since, step, match)
    if not as_json:
        try:
            import rich.console  # noqa: F401 - fail now, not after the analysis
        except ImportError as exc:
            abort_missing(exc)
    result = analyze_or_abort(loaded, timeline)
    matched = sum(r.volume for r in result.indicators.steps) + sum(
        r.started for r in result.indicators.journeys
    )
    judged = any(v.verdict != "insufficient_data" for v in result.verdicts)
    comparison = None
    if compare is not None:
        comparison = compare_shifted(loaded, timeline, compare, events, prometheus, match)
    try:
        calls = contact_rows(loaded, timeline, events, prometheus)
        after_window = windowed(loaded, timeline, events)
    except (CxError, OSError) as exc:
        abort(f"contact-centre indicators, conversion windows: {exc}")
    if as_json:
        data = result.to_json()
        if comparison is not None:
            data["comparison"] = comparison_json(comparison)
        if calls:
            data["contact"] = contact_json(calls)
        data.update(after_window)
        try:
            data.update(by_channel(loaded, timeline, events))
        except (CxError, OSError) as exc:
            abort(f"per-channel indicators: {exc}")
        click.echo(json.dumps(data, indent=2))
    else:
        render(result, judged and matched > 0)
        if comparison is not None:
            print_comparison(comparison)
        print_contact(calls)
        print_windowed(after_window)
    if not matched:
        if timeline.records:
            what = f"none of the {timeline.records - timeline.skipped} records matched"
        else:
            what = f"nothing in {timeline.source} matched"
        click.echo(f"{what} a journey or step of {spec}; nothing analysed", err=True)
        raise SystemExit(EXIT_NO_MATCH)
    if result.regressed:
        raise SystemExit(EXIT_REGRESSED)
    if not judged:
        click.echo(
            "nothing could be judged: every verdict is insufficient_data (too little traffic "
            "for min_volume, or no baseline); no regression was looked for",
            err=True,
        )
        raise SystemExit(EXIT_NOTHING_JUDGED)
    raise SystemExit(0)


# ---------------------------------------------------------------------------------------------
# Tables: names are never cut; when the columns do not fit the terminal they are split into
# several tables, each repeating the name column. Numbers are written by ``report.text``.


@dataclass(frozen=True)
class _Column:
    header: str
    cells: list[str]
    right: bool = True
    wrap: bool = False  # free text that may wrap (packed at most _WRAPPED wide)


_WRAPPED = 28


def render(result: Analysis, judged: bool = True) -> None:
    from rich.console import Console

    width = None if Console().is_terminal or os.environ.get("COLUMNS") else 160
    console = Console(width=width)
    console.print(
        f"[bold]{result.source}[/]  {_clock(result.start, True)} → {_clock(result.end, True)}"
        f"  (windows of {_seconds(result.step)})"
    )
    if result.baselines:  # what latency was compared with: same-phase or trailing, and why
        console.print(f"Latency judged on {result.baselines}", markup=False, highlight=False)
    regressed = {(f.journey, f.step) for f in result.findings}
    names = [f"{row.journey}/{row.step}" for row in result.indicators.steps]
    marked = [(row.journey, row.step) in regressed for row in result.indicators.steps]
    _print_fitted(console, "Steps", "journey/step", names, marked, _step_columns(result))
    journeys = [row.journey for row in result.indicators.journeys]
    _print_fitted(
        console, "Journeys", "journey", journeys, [False] * len(journeys), _journey_columns(result)
    )
    if result.ignored:
        console.print(f"{result.ignored:,} records name journeys or steps not in the spec; ignored")
    if result.transient:
        console.print(
            f"{result.transient:,} short-lived or sub-min_change worsening(s) not reported as "
            "regressions"
        )
    if not result.findings:
        if judged:
            console.print("[green]No regression.[/]")
        return
    findings = [f.name for f in result.findings]
    _print_fitted(
        console,
        "Regressions",
        "journey/step",
        findings,
        [True] * len(findings),
        _finding_columns(result),
    )


def _print_fitted(
    console: Any,
    title: str,
    name_header: str,
    names: list[str],
    marked: list[bool],
    columns: list[_Column],
) -> None:
    """One table, or several side by side in reading order when the columns do not fit."""
    from rich.table import Table

    def packed(column: _Column) -> int:
        natural = max([len(column.header), *(len(c) for c in column.cells)])
        return min(natural, _WRAPPED) if column.wrap else natural

    name_width = max([len(name_header), *(len(n) for n in names)])
    budget = console.width - (name_width + 3) - 1  # the name column, its borders and padding
    groups: list[list[_Column]] = [[]]
    used = 0
    for column in columns:
        need = packed(column) + 3
        if groups[-1] and used + need > budget:
            groups.append([])
            used = 0
        groups[-1].append(column)
        used += need
    for k, group in enumerate(groups):
        table = Table(
            title=title if k == 0 else f"{title} (continued)",
            title_justify="left",
            expand=False,
        )
        table.add_column(name_header, no_wrap=True, min_width=name_width, overflow="fold")
        for column in group:
            table.add_column(
                column.header,
                justify="right" if column.right else "left",
                no_wrap=not column.wrap,
                min_width=None if column.wrap else packed(column),
                overflow="fold",
            )
        for i, name in enumerate(names):
            shown = f"[bold red]{name}[/]" if marked[i] else name
            table.add_row(shown, *(column.cells[i] for column in group))
        console.print(table)


def _step_columns(result: Analysis) -> list[_Column]:
    from ..report import text

    rows = result.indicators.steps
    return [
        _Column("volume", [text.count(r.volume) for r in rows]),
        _Column("p50", [text.duration(r.quantiles[0.5]) for r in rows]),
        _Column("p95", [text.duration(r.quantiles[0.95]) for r in rows]),
        _Column("p99", [text.duration(r.quantiles[0.99]) for r in rows]),
        _Column("≤T", [text.percent(r.timeliness) for r in rows]),
        _Column("Apdex", [text.fixed(r.apdex, 3) for r in rows]),
        _Column("accuracy", [text.percent(r.accuracy) for r in rows]),
        _Column("errors", [text.percent(r.error_rate) for r in rows]),
        _Column("good", [text.percent(r.good_ratio) for r in rows]),
        _Column("conversion", [text.percent(r.conversion) for r in rows]),
        _Column("abandon", [text.percent(r.abandonment) for r in rows]),
        _Column("score", [text.fixed(r.score) for r in rows]),
    ]


def _journey_columns(result: Analysis) -> list[_Column]:
    from ..report import text

    rows = result.indicators.journeys
    return [
        _Column("started", [text.count(r.started) for r in rows]),
        _Column("completion", [text.percent(r.completion) for r in rows]),
        _Column("Apdex", [text.fixed(r.apdex, 3) for r in rows]),
        _Column("accuracy", [text.percent(r.accuracy) for r in rows]),
        _Column("errors", [text.percent(r.error_rate) for r in rows]),
        _Column("NPS", [text.fixed(r.feedback.nps, 0) for r in rows]),
        _Column("CSAT", [text.fixed(r.feedback.csat, 0, "%") for r in rows]),
        _Column("complaints", [text.percent(r.complaint_rate) for r in rows]),
        _Column("score", [text.fixed(r.score) for r in rows]),
    ]


def _finding_columns(result: Analysis) -> list[_Column]:
    from ..report import text

    # times of day suffice while the whole range is within one day
    dated = _clock(result.start, True)[:10] != _clock(result.end, True)[:10]
    found = result.findings
    return [
        _Column(
            "indicator",
            [
                f"{f.indicator if f.subject is None else f'{f.indicator} {f.subject}'} "
                f"{f.regression.statistic}"
                for f in found
            ],
            right=False,
        ),
        _Column(
            "baseline → current",
            [
                f"{_value(f, f.regression.baseline)} → {_value(f, f.regression.current)}"
                for f in found
            ],
            right=False,
        ),
        _Column(
            "change",
            [
                text.size(
                    f.indicator, f.regression.baseline, f.regression.current, f.regression.change
                )
                for f in found
            ],
        ),
        _Column(
            "since",
            [
                _clock(f.start_time, dated)
                + ("" if f.end_time is None else f" (recovered {_clock(f.end_time, dated)})")
                for f in found
            ],
            right=False,
        ),
        _Column("confidence", [text.confidence(f.regression.confidence) for f in found]),
        _Column("affected", [text.count(f.regression.affected) for f in found]),
        _Column("sensitivity", [f.sensitivity.describe() for f in found], right=False, wrap=True),
    ]


def _value(f: Finding, value: float) -> str:
    from ..report import text

    return text.duration(value) if f.indicator == "latency" else text.percent(value)


def _clock(seconds: float, date: bool = False) -> str:
    """Local time, as the people reading the table live in it."""
    moment = datetime.fromtimestamp(seconds).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if date else "%H:%M:%S")


def _seconds(value: float) -> str:
    from ..spec.durations import human_duration

    return human_duration(value)
