"""``cxmetrics analyze SPEC --events FILE | --prometheus URL``: step indicators and regressions.

Prints the indicator table of every declared step, then each journey, then the regressions found
(a rich table for people, ``--json`` for machines). Exit code 0: no regression; 3: at least one;
1: bad input (the message says what and how to fix it).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from ._common import (
    Command,
    abort_missing,
    analyze_or_abort,
    load_or_abort,
    load_timeline,
    source_options,
)
from ._comparison import compare_shifted, comparison_json, print_comparison

if TYPE_CHECKING:
    from ..analysis.analyzer import Analysis, Finding

EXIT_REGRESSED = 3


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
    """Indicators and regressions of every step in SPEC, from an event log or Prometheus."""
    loaded = load_or_abort(spec)
    timeline = load_timeline(loaded, events, prometheus, since, step, match)
    if not as_json:
        try:
            import rich.console  # noqa: F401 - fail now, not after the analysis
        except ImportError as exc:
            abort_missing(exc)
    result = analyze_or_abort(loaded, timeline)
    comparison = None
    if compare is not None:
        comparison = compare_shifted(loaded, timeline, compare, events, prometheus, match)
    if as_json:
        data = result.to_json()
        if comparison is not None:
            data["comparison"] = comparison_json(comparison)
        click.echo(json.dumps(data, indent=2))
    else:
        render(result)
        if comparison is not None:
            print_comparison(comparison)
    raise SystemExit(EXIT_REGRESSED if result.regressed else 0)


# ---------------------------------------------------------------------------------------------
# Tables


def render(result: Analysis) -> None:
    from rich.console import Console

    console = Console(width=None if Console().is_terminal else 160)
    console.print(
        f"[bold]{result.source}[/]  {_clock(result.start, True)} → {_clock(result.end, True)}"
        f"  (windows of {_seconds(result.step)})"
    )
    console.print(_steps_table(result))
    console.print(_journeys_table(result))
    if result.ignored:
        console.print(f"{result.ignored:,} records name journeys or steps not in the spec; ignored")
    if result.transient:
        console.print(
            f"{result.transient:,} short-lived or sub-min_change worsening(s) not reported as "
            "regressions"
        )
    if not result.findings:
        console.print("[green]No regression.[/]")
        return
    console.print(_findings_table(result))


def _steps_table(result: Analysis) -> Any:
    from rich.table import Table

    table = Table(title="Steps", title_justify="left")
    for column in ("journey/step", "volume", "p50", "p95", "p99", "≤T", "Apdex", "accuracy"):
        table.add_column(column, justify="left" if column == "journey/step" else "right")
    for column in ("errors", "good", "conversion", "abandon", "score"):
        table.add_column(column, justify="right")
    regressed = {(f.journey, f.step) for f in result.findings}
    for row in result.indicators.steps:
        name = f"{row.journey}/{row.step}"
        table.add_row(
            f"[bold red]{name}[/]" if (row.journey, row.step) in regressed else name,
            f"{row.volume:,}",
            _duration(row.quantiles[0.5]),
            _duration(row.quantiles[0.95]),
            _duration(row.quantiles[0.99]),
            _percent(row.timeliness),
            _fixed(row.apdex),
            _percent(row.accuracy),
            _percent(row.error_rate),
            _percent(row.good_ratio),
            _percent(row.conversion),
            _percent(row.abandonment),
            _fixed(row.score, 1),
        )
    return table


def _journeys_table(result: Analysis) -> Any:
    from rich.table import Table

    table = Table(title="Journeys", title_justify="left")
    table.add_column("journey")
    for column in ("started", "completion", "Apdex", "accuracy", "errors", "NPS", "CSAT", "score"):
        table.add_column(column, justify="right")
    for row in result.indicators.journeys:
        table.add_row(
            row.journey,
            f"{row.started:,}",
            _percent(row.completion),
            _fixed(row.apdex),
            _percent(row.accuracy),
            _percent(row.error_rate),
            _fixed(row.feedback.nps, 0),
            _fixed(row.feedback.csat, 0, "%"),
            _fixed(row.score, 1),
        )
    return table


def _findings_table(result: Analysis) -> Any:
    from rich.table import Table

    table = Table(title="Regressions", title_justify="left")
    for column in ("journey/step", "indicator", "baseline → current", "change", "since"):
        table.add_column(column)
    for column in ("confidence", "affected", "sensitivity"):
        table.add_column(column, justify="right" if column != "sensitivity" else "left")
    # times of day suffice while the whole range is within one day
    dated = _clock(result.start, True)[:10] != _clock(result.end, True)[:10]
    for f in result.findings:
        r = f.regression
        what = f.indicator if f.subject is None else f"{f.indicator} {f.subject}"
        table.add_row(
            f"[bold red]{f.name}[/]",
            f"{what} {r.statistic}",
            _value(f, r.baseline) + " → " + _value(f, r.current),
            f"{r.change:+.0%}" if f.indicator == "latency" else f"-{r.change:.1%}",
            _clock(f.start_time, dated)
            + ("" if f.end_time is None else f" (recovered {_clock(f.end_time, dated)})"),
            f"{r.confidence:.2%}",
            f"{r.affected:,}",
            f.sensitivity.describe(),
        )
    return table


def _value(f: Finding, value: float) -> str:
    return _duration(value) if f.indicator == "latency" else _percent(value)


def _clock(seconds: float, date: bool = False) -> str:
    """Local time, as the people reading the table live in it."""
    moment = datetime.fromtimestamp(seconds).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if date else "%H:%M:%S")


def _seconds(value: float) -> str:
    from ..spec.durations import human_duration

    return human_duration(value)


def _duration(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.3g}ms"
    return f"{value:.3g}s" if value < 60 else f"{value / 60:.1f}m"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _fixed(value: float | None, digits: int = 3, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"
