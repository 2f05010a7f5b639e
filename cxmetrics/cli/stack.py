"""``cxmetrics stack up|down``: a local Prometheus and Alertmanager for an instrumented app.

``up`` generates the rules from the spec, starts Alertmanager and a Prometheus that scrapes the
app (``--target host:port``) and loads the rules, both on 127.0.0.1, prints their URLs and records
their PIDs in a state directory (default ``.cxmetrics-stack/``). ``down`` stops exactly those
processes — by PID, after checking each is still the process that was started — and forgets them.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import click

from ._common import abort

STATE_DIR = ".cxmetrics-stack"
STATE_FILE = "state.json"


@click.group()
def stack() -> None:
    """Run a local Prometheus + Alertmanager loaded with the spec's rules."""


@stack.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option(
    "--target",
    "targets",
    multiple=True,
    required=True,
    metavar="HOST:PORT",
    help="Where the app serves /metrics (repeatable).",
)
@click.option(
    "--override",
    "overrides",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="YAML merged onto the spec before the rules are generated (repeatable).",
)
@click.option(
    "--state-dir",
    default=STATE_DIR,
    show_default=True,
    type=click.Path(),
    help="Where configs, data, logs and PIDs are kept.",
)
@click.option(
    "--interval", default="15s", show_default=True, help="Scrape and rule evaluation interval."
)
@click.option("--webhook", help="Send every alert to this URL (Alertmanager webhook receiver).")
@click.option("--prometheus-port", type=int, help="Default: a free port.")
@click.option("--alertmanager-port", type=int, help="Default: a free port.")
def up(
    spec: str,
    targets: tuple[str, ...],
    overrides: tuple[str, ...],
    state_dir: str,
    interval: str,
    webhook: str | None,
    prometheus_port: int | None,
    alertmanager_port: int | None,
) -> None:
    """Start Prometheus and Alertmanager for the app described by SPEC."""
    from .._exceptions import CxError, SpecError
    from ..local import stack as servers
    from ..rules import build, load_with_overrides, render, write_atomic

    state = Path(state_dir)
    running = [name for name, entry in _read(state).items() if _alive(entry)]
    if running:
        abort(
            f"a stack is already running from {state} ({', '.join(running)}); "
            f"run 'cxmetrics stack down --state-dir {state}' first"
        )
    for target in targets:
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            abort(f"--target {target!r}: write HOST:PORT, e.g. 127.0.0.1:8000")
    try:
        ruleset = build(load_with_overrides(spec, overrides))
        state.mkdir(parents=True, exist_ok=True)
        rule_file = state / "rules.yml"
        write_atomic(rule_file, render(ruleset))
        am = servers.alertmanager(state / "alertmanager", webhook, port=alertmanager_port)
        prom = servers.prometheus(
            state / "prometheus",
            list(targets),
            [rule_file],
            alertmanager_url=am.url,
            interval=interval,
            port=prometheus_port,
        )
    except SpecError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        abort(f"{spec}: cannot generate rules; {len(exc.issues)} problem(s)")
    except CxError as exc:
        abort(str(exc))
    started: dict[str, Any] = {}
    try:
        for service in (am, prom):
            service.start()
            assert service.pid is not None
            started[service.name] = {
                "pid": service.pid,
                "started": _start_time(service.pid),
                "url": service.url,
                "log": str(service.log_path),
            }
            _write(state, started)
    except CxError as exc:
        for service in (prom, am):
            service.stop()
        (state / STATE_FILE).unlink(missing_ok=True)
        abort(str(exc))
    recording, alerting = ruleset.count()
    click.echo(
        f"prometheus    {prom.url}  (pid {prom.pid}, scraping {', '.join(targets)} "
        f"every {interval}, {recording} recording + {alerting} alerting rules)"
    )
    click.echo(f"alertmanager  {am.url}  (pid {am.pid}{f', webhook {webhook}' if webhook else ''})")
    click.echo(f"state         {state}  (stop with: cxmetrics stack down --state-dir {state})")


@stack.command()
@click.option(
    "--state-dir",
    default=STATE_DIR,
    show_default=True,
    type=click.Path(),
    help="The state directory given to 'up'.",
)
def down(state_dir: str) -> None:
    """Stop the Prometheus and Alertmanager started by 'cxmetrics stack up'."""
    state = Path(state_dir)
    entries = _read(state)
    if not entries:
        click.echo(f"no stack recorded in {state}")
        return
    for name, entry in entries.items():
        if not _alive(entry):
            click.echo(f"{name} (pid {entry['pid']}) was not running")
            continue
        _stop(int(entry["pid"]), entry.get("started"))
        click.echo(f"stopped {name} (pid {entry['pid']})")
    (state / STATE_FILE).unlink(missing_ok=True)


def _read(state: Path) -> dict[str, Any]:
    try:
        data = json.loads((state / STATE_FILE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        abort(f"cannot read {state / STATE_FILE}: {exc}")
    return dict(data)


def _write(state: Path, entries: dict[str, Any]) -> None:
    (state / STATE_FILE).write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), so a recycled PID is never signalled."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19] if fields[0] != "Z" else None


def _alive(entry: dict[str, Any]) -> bool:
    return _running(int(entry["pid"]), entry.get("started"))


def _running(pid: int, started: str | None) -> bool:
    """``pid`` is still the process recorded (a zombie counts as gone)."""
    if Path("/proc").is_dir():
        return started is not None and _start_time(pid) == started
    try:  # no /proc (macOS): the PID alone
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _stop(pid: int, started: str | None, timeout: float = 10.0) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _running(pid, started):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
