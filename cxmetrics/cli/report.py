"""``cxmetrics report SPEC --events FILE | --prometheus URL -o report.html``: the HTML report.

Reads the same sources as ``cxmetrics analyze`` (same options, same loading), runs the same
analysis and writes one self-contained HTML file for CX managers (``cxmetrics.report``). Exit
code 0 when the report is written, whatever it finds (``analyze`` is the command for CI gates);
1 on bad input, with a message that says what to fix.
"""

from __future__ import annotations

import click

from ._common import Command, abort, analyze_or_abort, load_or_abort, load_timeline, source_options


@click.command(cls=Command)
@click.argument("spec", type=click.Path(dir_okay=False))
@source_options
@click.option(
    "-o",
    "--output",
    "output",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the report.",
)
@click.option("--title", metavar="TEXT", help="Page title (default: the spec's service).")
def report(
    spec: str,
    events: str | None,
    prometheus: str | None,
    since: str | None,
    step: str,
    match: str,
    output: str,
    title: str | None,
) -> None:
    """A self-contained HTML report of every journey and step in SPEC: summary, funnel, latency,
    timeliness, accuracy and the regressions found."""
    loaded = load_or_abort(spec)
    timeline = load_timeline(loaded, events, prometheus, since, step, match)
    analysis = analyze_or_abort(loaded, timeline)
    from ..report import summarize, write_report
    from ..report.text import Clock

    try:
        path = write_report(loaded, timeline, analysis, output, title=title)
    except OSError as exc:
        abort(f"cannot write {output}: {exc.strerror or exc}")
    clock = Clock.for_range(analysis.start, analysis.end, analysis.step)
    click.echo(f"{path}: {summarize(loaded, analysis, clock).headline}")
