"""``cxmetrics watch SPEC --prometheus URL``: the regression detector, continuously.

Reads every declared step's counters from any Prometheus-API engine each ``--interval``, judges
each step's latency, error rate and accuracy checks per channel, exposes its verdicts on its own
/metrics (``--listen``) and, with ``--alertmanager``, sends ``CxStepLatencyRegression``,
``CxStepErrorRegression`` and ``CxStepAccuracyRegression`` alerts to Alertmanager's v2 API,
re-sent while firing and resolved when the regression recovers. Runs until SIGTERM or SIGINT
(exit 0). docs/watch.md.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from ._common import Command, abort, abort_missing


@click.command(cls=Command)
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--prometheus", required=True, metavar="URL", help="Prometheus-API base URL.")
@click.option("--alertmanager", metavar="URL", help="Send alerts to this Alertmanager.")
@click.option(
    "--override",
    "overrides",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="YAML merged onto the spec (repeatable), as for 'cxmetrics stack up'.",
)
@click.option("--step", default="1m", show_default=True, metavar="DURATION", help="Window length.")
@click.option("--interval", metavar="DURATION", help="Time between reads (default: the --step).")
@click.option(
    "--history",
    default="2d",
    show_default=True,
    metavar="DURATION",
    help="History each read covers (more while a regression is open); from 2d on, latency is"
    " compared with the same time of day of the earlier days.",
)
@click.option(
    "--delay",
    default="30s",
    show_default=True,
    metavar="DURATION",
    help="How far behind now the engine may still be ingesting.",
)
@click.option(
    "--match", default="", metavar="MATCHERS", help='Extra label matchers, e.g. job="bank".'
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False),
    help="State file kept across restarts (default: none; verdicts recomputed from history).",
)
@click.option(
    "--listen",
    default="0.0.0.0:9464",
    show_default=True,
    metavar="HOST:PORT",
    help="Where to serve /metrics (port 0: a free one).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every read.")
def watch(
    spec: str,
    prometheus: str,
    alertmanager: str | None,
    overrides: tuple[str, ...],
    step: str,
    interval: str | None,
    history: str,
    delay: str,
    match: str,
    state_path: str | None,
    listen: str,
    verbose: bool,
) -> None:
    """Watch the steps of SPEC for latency, error and accuracy regressions, alerting through
    Alertmanager."""
    from .._exceptions import CxError, SpecError
    from ..spec.durations import parse_duration

    try:
        from ..rules import load_with_overrides, plan
        from ..watch.exposition import serve
        from ..watch.watcher import Settings, Watcher
    except ImportError as exc:
        abort_missing(exc)
    try:
        loaded = load_with_overrides(spec, overrides)
        plans = {(p.journey.name, p.step.name): p for p in plan(loaded).steps}
    except SpecError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        abort(f"{spec}: {len(exc.issues)} problem(s); fix them and run 'cxmetrics validate {spec}'")
    try:
        step_s = parse_duration(step)
        settings = Settings(
            prometheus=prometheus.rstrip("/"),
            alertmanager=alertmanager.rstrip("/") if alertmanager else None,
            step=step_s,
            interval=parse_duration(interval) if interval is not None else step_s,
            history=parse_duration(history),
            delay=parse_duration(delay),
            matchers=match,
            state_path=Path(state_path) if state_path is not None else None,
            dashboard_url=loaded.dashboard_url,
        )
    except ValueError as exc:
        abort(f"--step/--interval/--history/--delay: {exc}")
    if not (settings.step > 0 and settings.interval > 0 and settings.history >= settings.step):
        abort("--step and --interval must be positive and --history at least one --step")
    if settings.history > settings.max_range:
        abort(
            f"--history {history} is more than {settings.max_range / settings.step:.0f} windows "
            "of --step (the most a Prometheus range query returns); use a larger --step"
        )
    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit():
        abort(f"--listen {listen!r}: write HOST:PORT, e.g. 0.0.0.0:9464")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    watcher = Watcher(loaded, plans, settings)
    try:
        server, _ = serve(watcher.verdicts, host, int(port_text))
    except OSError as exc:
        abort(f"cannot serve /metrics on {listen}: {exc.strerror}")
    except CxError as exc:
        abort(str(exc))
    address, port = server.server_address[:2]
    click.echo(f"serving /metrics on http://{address}:{port}/metrics", err=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        watcher.run(stop)
    finally:
        server.shutdown()
        server.server_close()
    click.echo("stopped", err=True)
