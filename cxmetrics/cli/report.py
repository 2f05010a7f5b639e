"""``cxmetrics report SPEC --events FILE | --prometheus URL -o report.html``: the HTML report.

Reads the same sources as ``cxmetrics analyze`` (same options, same loading), runs the same
analysis and writes one self-contained HTML file for CX managers (``cxmetrics.report``).

With ``--period day|week|month`` it reports the last complete calendar period (before ``--at``,
default now) and, with ``--compare previous``, sets it against the period before, read from the
same source through the same analysis; it also writes a short Markdown digest for chat
(``--summary``) and can deliver both, once per period, by mail or webhook (``--deliver``;
``cxmetrics.report.delivery``).

Exit code 0 when the report is written (and delivered, when asked), whatever it finds
(``analyze`` is the command for CI gates); 1 on bad input or a failed delivery, with a message
that says what to fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import Command, abort, analyze_or_abort, load_or_abort, load_timeline, source_options

if TYPE_CHECKING:
    from ..analysis.sources import Timeline
    from ..report.delivery import Mail, Report
    from ..spec.model import Spec

#: the window length per period when --step is not given: 144 to 186 windows
PERIOD_STEPS = {"day": "10m", "week": "1h", "month": "4h"}
PASSWORD_ENV = "CXMETRICS_SMTP_PASSWORD"


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
@click.option(
    "--period",
    type=click.Choice(["day", "week", "month"]),
    help="Report the last complete calendar day, week (from Monday) or month before --at.",
)
@click.option(
    "--compare",
    type=click.Choice(["previous"]),
    help="Compare the period with the one before it (needs --period).",
)
@click.option(
    "--at",
    "at",
    metavar="TIME",
    help="The moment the period is complete by (ISO 8601, default now), e.g. 2024-03-18.",
)
@click.option(
    "--summary",
    "summary_path",
    type=click.Path(dir_okay=False),
    help="Where to write the Markdown digest (default with --period: OUTPUT with .md).",
)
@click.option(
    "--deliver",
    "targets",
    multiple=True,
    metavar="URL",
    help="smtp://host:port, smtps://host:port or https://host/hook; repeatable (needs --period).",
)
@click.option("--to", "recipients", multiple=True, metavar="ADDRESS", help="Mail recipient.")
@click.option("--from", "sender", metavar="ADDRESS", help="Mail sender.")
@click.option("--starttls", is_flag=True, help="Upgrade smtp:// connections with STARTTLS.")
@click.option(
    "--smtp-user",
    metavar="NAME",
    help=f"Log in to the mail server (password from ${PASSWORD_ENV}).",
)
@click.option("--link", metavar="URL", help="Where the report is published: sent instead of it.")
@click.option(
    "--ledger",
    type=click.Path(dir_okay=False),
    help="Delivery ledger (default: .cxmetrics-deliveries.jsonl next to OUTPUT).",
)
@click.option("--force", is_flag=True, help="Deliver even if the ledger says it was delivered.")
@click.option(
    "--retries", default=3, show_default=True, type=click.IntRange(0, 20), help="Retries."
)
@click.option(
    "--retry-delay",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0, 600),
    metavar="SECONDS",
    help="First wait before retrying; doubled each time.",
)
def report(
    spec: str,
    events: str | None,
    prometheus: str | None,
    since: str | None,
    step: str,
    match: str,
    output: str,
    title: str | None,
    period: str | None,
    compare: str | None,
    at: str | None,
    summary_path: str | None,
    targets: tuple[str, ...],
    recipients: tuple[str, ...],
    sender: str | None,
    starttls: bool,
    smtp_user: str | None,
    link: str | None,
    ledger: str | None,
    force: bool,
    retries: int,
    retry_delay: float,
) -> None:
    """A self-contained HTML report of every journey and step in SPEC: summary, funnel, journey
    map, latency, timeliness, accuracy and the regressions found; per period, compared with the
    previous one, and delivered."""
    loaded = load_or_abort(spec)
    if period is None:
        if compare or targets or at:
            abort("--compare, --at and --deliver need --period day|week|month")
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
        return
    if since is not None:
        abort("--since and --period exclude each other: the period fixes the range")
    context = click.get_current_context()
    if context.get_parameter_source("step") is click.core.ParameterSource.DEFAULT:
        step = PERIOD_STEPS[period]
    from .._exceptions import CxError
    from ..report.delivery import Mail, check_target

    for target in targets:
        try:
            check_target(target)
        except CxError as exc:
            abort(str(exc))
    delivery = _Delivery(
        targets,
        Mail(sender or "", recipients, starttls, smtp_user, os.environ.get(PASSWORD_ENV)),
        ledger or str(Path(output).parent / ".cxmetrics-deliveries.jsonl"),
        force,
        retries,
        retry_delay,
    )
    source = _Source(events, prometheus, step, match)
    summary = summary_path or str(Path(output).with_suffix(".md"))
    written = _periodic(
        loaded, source, period, compare is not None, at, output, title, summary, link
    )
    _deliver(written, delivery)


@dataclass(frozen=True)
class _Source:
    events: str | None
    prometheus: str | None
    step: str
    match: str


@dataclass(frozen=True)
class _Delivery:
    targets: tuple[str, ...]
    mail: Mail
    ledger: str
    force: bool
    retries: int
    delay: float


def _periodic(
    spec: Spec,
    source: _Source,
    kind: str,
    compare: bool,
    at: str | None,
    output: str,
    title: str | None,
    summary_path: str,
    link: str | None,
) -> Report:
    """Write the period's page and digest; return them as the report to deliver."""
    from ..analysis.comparison import compare as compare_periods
    from ..analysis.periods import calendar_period, previous_period
    from ..report import render_report, summarize, write_text
    from ..report.delivery import Report
    from ..report.digest import digest, worst_sentence
    from ..report.text import Clock
    from ..spec.durations import parse_duration
    from ._periods import load_ranges, parse_at

    try:
        step = parse_duration(source.step)
    except ValueError as exc:
        abort(f"--step: {exc}")
    current = calendar_period(kind, parse_at(at))
    previous = previous_period(current)
    ranges = [(current.start, current.end)]
    if compare:
        ranges.append((previous.start, previous.end))
    timelines = load_ranges(spec, source.events, source.prometheus, ranges, step, source.match)
    timeline = timelines[0]
    if source.events is not None and not _has_data(timeline):
        abort(
            f"{source.events} holds no events in the {current.label}; give --at a moment after "
            "the end of the period to report (e.g. --at 2024-03-18 for the week of 2024-03-11)"
        )
    analysis = analyze_or_abort(spec, timeline)
    comparison = (
        compare_periods(spec, timeline.total(), timelines[1].total(), (current, previous))
        if compare
        else None
    )
    heading = title or f"Customer experience — {spec.service}, {current.label}"
    html = render_report(spec, timeline, analysis, title=heading, comparison=comparison)
    clock = Clock.for_range(analysis.start, analysis.end, analysis.step)
    summary = summarize(spec, analysis, clock)
    text = digest(spec.service, current, summary, comparison, link)
    try:
        path = write_text(html, output)
        write_text(text, summary_path)
    except OSError as exc:
        abort(f"cannot write {exc.filename or output}: {exc.strerror or exc}")
    click.echo(f"{path}: {summary.headline}")
    if comparison is not None:
        click.echo(worst_sentence(comparison))
    return Report(spec.service, current.key, current.label, heading, text, html, link)


def _deliver(report: Report, delivery: _Delivery) -> None:
    """Send to every target, then abort naming those that failed (the others were tried)."""
    from .._exceptions import CxError
    from ..report.delivery import deliver

    failed = []
    for target in delivery.targets:
        try:
            outcome = deliver(
                report,
                target,
                delivery.ledger,
                mail=delivery.mail,
                force=delivery.force,
                retries=delivery.retries,
                delay=delivery.delay,
            )
        except CxError as exc:  # DeliveryError, or a target that cannot be mailed
            failed.append(str(exc))
            continue
        if outcome.sent:
            tries = "" if outcome.attempts == 1 else f" (after {outcome.attempts} attempts)"
            click.echo(f"delivered {report.key} to {outcome.target}{tries}")
        else:
            click.echo(f"{report.key} was already delivered to {outcome.target}; not sent again")
    if failed:
        abort("; ".join(failed))


def _has_data(timeline: Timeline) -> bool:
    return any(counts.volume for w in timeline.windows for counts in w.steps.values()) or any(
        j.started for w in timeline.windows for j in w.journeys.values()
    )
