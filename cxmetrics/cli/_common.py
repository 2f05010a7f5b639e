"""What every command shares: the single abort path, spec loading with friendly errors, and the
data-source options of the commands that read indicators (``analyze``, ``report``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from .._exceptions import SpecError
from ..spec.load import load_spec
from ..spec.model import Spec

if TYPE_CHECKING:
    from ..analysis.analyzer import Analysis
    from ..analysis.sources import Timeline

F = TypeVar("F", bound=Callable[..., object])


def abort(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def load_or_abort(path: str) -> Spec:
    try:
        return load_spec(path)
    except SpecError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        abort(f"{path}: {len(exc.issues)} problem(s); fix them and run 'cxmetrics validate {path}'")


def abort_missing(exc: ImportError, extra: str = "analyze") -> NoReturn:
    """An optional dependency is not installed: name it and the extra that brings it."""
    abort(f"{exc.name} is missing; install the analyzer with: pip install 'cxmetrics[{extra}]'")


class _BadUsage(click.UsageError):
    exit_code = 1


class Command(click.Command):
    """Usage mistakes are bad input too: exit 1 like every other one, not click's 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _BadUsage(exc.format_message(), exc.ctx) from None


_SOURCE_OPTIONS = (
    click.option(
        "--events", "events", type=click.Path(dir_okay=False), help="A JSONL event log to analyse."
    ),
    click.option("--prometheus", "prometheus", metavar="URL", help="Prometheus base URL."),
    click.option(
        "--since",
        metavar="DURATION",
        help="Analyse the last DURATION (default: 1h for Prometheus, the whole event log).",
    ),
    click.option(
        "--step", "step", default="1m", show_default=True, metavar="DURATION", help="Window length."
    ),
    click.option(
        "--match",
        "match",
        default="",
        metavar="MATCHERS",
        help='Extra label matchers, e.g. job="bank".',
    ),
)


def source_options(command: F) -> F:
    """``--events | --prometheus``, ``--since``, ``--step``, ``--match``, in that order."""
    for option in reversed(_SOURCE_OPTIONS):
        command = option(command)
    return command


def load_timeline(
    spec: Spec,
    events: str | None,
    prometheus: str | None,
    since: str | None,
    step: str,
    match: str,
) -> Timeline:
    """The windows the source options ask for, or abort saying what to fix."""
    from .._exceptions import CxError
    from ..spec.durations import parse_duration

    if (events is None) == (prometheus is None):
        abort("give exactly one data source: --events FILE.jsonl or --prometheus URL")
    try:
        step_s = parse_duration(step)
        since_s = parse_duration(since) if since is not None else None
    except ValueError as exc:
        abort(f"--step/--since: {exc}")
    try:
        if events is not None:
            from ..analysis.sources import from_jsonl

            timeline = from_jsonl(spec, events, step_s, since_s)
            _say_skipped(timeline)
            return timeline
        from ..analysis.prometheus import from_prometheus

        assert prometheus is not None
        end = time.time()
        start = end - (since_s if since_s is not None else 3600.0)
        return from_prometheus(spec, prometheus, start, end, step_s, match)
    except (CxError, ValueError) as exc:
        abort(str(exc))


def _say_skipped(timeline: Timeline) -> None:
    if timeline.skipped:
        click.echo(
            f"{timeline.source}: skipped {timeline.skipped} bad record(s) of "
            f"{timeline.records}; the first:",
            err=True,
        )
        for problem in timeline.problems:
            click.echo(f"  {problem}", err=True)


def analyze_or_abort(spec: Spec, timeline: Timeline) -> Analysis:
    """``analysis.analyze``, with missing extras and data the detector refuses as clean errors."""
    from .._exceptions import CxError

    try:
        from ..analysis.analyzer import analyze
    except ImportError as exc:
        abort_missing(exc)
    try:
        return analyze(spec, timeline)
    except (CxError, ValueError) as exc:  # ValueError: data the detector refuses (e.g. negative)
        abort(str(exc))
