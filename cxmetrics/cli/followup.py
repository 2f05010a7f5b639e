"""``cxmetrics followup``: run a worker, list dead letters, run a local receiver."""

from __future__ import annotations

import json
import signal
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from ._common import abort, load_or_abort

SECRET_ENV = "CXMETRICS_FOLLOWUP_SECRET"
REDIS_ENV = "CXMETRICS_FOLLOWUP_REDIS"

_spec = click.option(
    "--spec", "spec_path", default="cxmetrics.yaml", show_default=True, help="The spec file."
)
_redis = click.option(
    "--redis", "url", envvar=REDIS_ENV, required=True, help=f"Redis URL (or ${REDIS_ENV})."
)
_shards = click.option(
    "--shards",
    type=int,
    default=16,
    show_default=True,
    help="Partitions per key step (the same as the app's tracker).",
)
_secret = click.option(
    "--secret",
    envvar=SECRET_ENV,
    required=True,
    help=f"Shared secret signing deliveries (or ${SECRET_ENV}).",
)


@click.group()
def followup() -> None:
    """Follow up on customers who stall at a key step (spec 'followup')."""


@followup.command()
@_spec
@_redis
@_secret
@click.option("--metrics-port", type=int, default=None, help="Serve cx_followups_* here.")
@click.option("--metrics-addr", default="127.0.0.1", show_default=True)
@click.option("--lease", type=float, default=30.0, show_default=True, help="Claim lease, s.")
@click.option("--claim", type=int, default=500, show_default=True, help="Claimed per partition.")
@click.option("--batch", type=int, default=100, show_default=True, help="Follow-ups per POST.")
@click.option("--concurrency", type=int, default=16, show_default=True)
@click.option("--max-attempts", type=int, default=8, show_default=True)
@click.option("--backoff", type=float, default=1.0, show_default=True, help="First retry, s.")
@click.option("--backoff-cap", type=float, default=300.0, show_default=True)
@_shards
def run(
    spec_path: str,
    url: str,
    secret: str,
    metrics_port: int | None,
    metrics_addr: str,
    **options: Any,
) -> None:
    """Claim due follow-ups and deliver them until SIGTERM/SIGINT (several may run at once)."""
    spec = load_or_abort(spec_path)
    try:
        from prometheus_client import start_http_server

        from ..followup.worker import Worker
    except ImportError as exc:
        abort(f"{exc.name} is missing; install with: pip install 'cxmetrics[followup]'")
    if not any(j.key_steps for j in spec.journeys):
        abort(f"{spec_path} declares no follow-up; add 'followup:' to a key step")
    worker = Worker(spec, url, secret.encode(), **options)
    if metrics_port is not None:
        start_http_server(metrics_port, metrics_addr, registry=worker.registry)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"followup worker: {len(worker.parts)} partitions, {url}", err=True)
    try:
        worker.run(stop)
    finally:
        worker.close()


@followup.command()
@_spec
@_redis
@_shards
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def dead(spec_path: str, url: str, shards: int, as_json: bool) -> None:
    """List follow-ups parked as dead letters (attempts exhausted or expired)."""
    spec = load_or_abort(spec_path)
    from ..followup.worker import Worker

    worker = Worker(spec, url, b"", concurrency=1, shards=shards)
    try:
        letters = sorted(worker.dead_letters(), key=lambda d: d.when)
    finally:
        worker.close()
    for d in letters:
        if as_json:
            click.echo(json.dumps(_as_dict(d)))
        else:
            when = datetime.fromtimestamp(d.when, timezone.utc).isoformat(timespec="seconds")
            click.echo(
                f"{when}  {d.journey}/{d.step}  {d.reason}  attempts={d.attempts}  "
                f"key={d.instance_key}  {d.error}"
            )
    click.echo(f"{len(letters)} dead letter(s)", err=True)


def _as_dict(d: Any) -> dict[str, Any]:
    return {f: getattr(d, f) for f in d.__dataclass_fields__}


@followup.command()
@_secret
@click.option("--port", type=int, default=8787, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--fail-first", type=int, default=0, help="Answer 500 to the first N requests.")
def receive(secret: str, port: int, host: str, out: Path, fail_first: int) -> None:
    """A local receiver: verify signatures, write each follow-up once to OUT (JSON lines)."""
    try:
        import uvicorn
    except ImportError as exc:
        abort(f"{exc.name} is missing; install with: pip install 'cxmetrics[followup]'")
    from ..followup.receiver import Receiver

    receiver = Receiver(secret.encode(), out, fail_first)
    try:
        uvicorn.run(
            receiver, host=host, port=port, log_level="warning", lifespan="off", access_log=False
        )
    finally:
        receiver.close()
