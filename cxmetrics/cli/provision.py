"""``cxmetrics provision SPEC --grafana-url URL``: upsert the spec's dashboards into a running
Grafana over its HTTP API (idempotent; refuses to overwrite dashboards edited in Grafana)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ._common import abort, load_or_abort

TOKEN_ENV = "GRAFANA_TOKEN"
PAST = {"create": "created", "update": "updated", "unchanged": "unchanged", "refuse": "refused"}
FUTURE = {
    "create": "would create",
    "update": "would update",
    "unchanged": "unchanged",
    "refuse": "would refuse",
}


@click.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option(
    "--grafana-url",
    envvar="GRAFANA_URL",
    required=True,
    metavar="URL",
    help="Grafana's root URL, e.g. http://grafana:3000 (or $GRAFANA_URL).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help=f"File holding a service-account token (default: ${TOKEN_ENV}).",
)
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow plain http to a host other than loopback (the token crosses in clear text).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite dashboards edited in Grafana since cxmetrics provisioned them.",
)
@click.option(
    "--retries",
    default=4,
    show_default=True,
    type=click.IntRange(0, 10),
    help="Retries of a request that failed transiently (5xx, connection reset).",
)
@click.option(
    "--retry-delay",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, 60),
    help="Seconds before the first retry; doubles on each further retry.",
)
@click.option(
    "--timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.1, 300),
    help="Seconds to wait for each response.",
)
def provision(
    spec_path: str,
    grafana_url: str,
    token_file: str | None,
    dry_run: bool,
    insecure: bool,
    force: bool,
    retries: int,
    retry_delay: float,
    timeout: float,
) -> None:
    """Create the folder and upsert the dashboards of SPEC in Grafana, by uid."""
    from .. import __version__
    from .._exceptions import CxError
    from ..dashboards import build_dashboards
    from ..dashboards.grafana_http import Change, Grafana, ProvisionError, provision
    from ..spec.ids import folder_title, folder_uid

    token = _token(token_file)
    spec = load_or_abort(spec_path)
    try:
        boards = build_dashboards(spec)
        grafana = Grafana(
            grafana_url,
            token,
            retries=retries,
            delay=retry_delay,
            timeout=timeout,
            on_retry=lambda text: click.echo(f"transient failure, {text}", err=True),
            insecure=insecure,
        )
    except CxError as exc:  # the [grafana] extra missing, a URL that is not http(s) or cleartext
        abort(str(exc))
    if grafana.cleartext:
        click.echo(
            f"warning: sending the Grafana token over plain http to {grafana.url} (--insecure)",
            err=True,
        )
    words = FUTURE if dry_run else PAST
    width = max(len(str(b["uid"])) for b in boards)

    def progress(index: int, total: int, change: Change) -> None:
        note = f": {change.reason}" if change.reason else ""
        click.echo(
            f"[{index}/{total}] {words[change.action]:<12} {change.uid:<{width}}  "
            f"{change.title}{note}",
            err=True,
        )

    title, uid = folder_title(spec), folder_uid(spec)
    try:
        with grafana:
            report = provision(
                grafana,
                boards,
                uid,
                title,
                dry_run=dry_run,
                force=force,
                message=f"cxmetrics {__version__}: spec {spec.fingerprint}",
                progress=progress,
            )
    except ProvisionError as exc:
        abort(str(exc))
    where = f"folder '{title}' ({uid}) at {grafana.url}"
    counts = {a: report.count(a) for a in ("create", "update", "unchanged")}
    if not report.folder_created and counts["create"] == counts["update"] == 0:
        summary = f"nothing to change: {counts['unchanged']} dashboards up to date in {where}"
    else:
        folder = (
            f"{'would create' if dry_run else 'created'} {where}; "
            if report.folder_created
            else f"in {where}: "
        )
        summary = folder + ", ".join(f"{words[a]} {n}" for a, n in counts.items())
    if dry_run:
        summary = f"dry run, nothing changed: {summary}"
    click.echo(summary)
    if report.refused:
        names = ", ".join(c.uid for c in report.refused)
        abort(
            f"{len(report.refused)} dashboard(s) {'would be ' if dry_run else ''}left as "
            f"they are because they were edited in Grafana, not written by cxmetrics, or hold "
            f"another service's journey: "
            f"{names}; re-run with --force to overwrite them"
        )


def _token(token_file: str | None) -> str:
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            abort(f"cannot read --token-file {token_file}: {exc.strerror}")
        if not token:
            abort(f"--token-file {token_file} is empty")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        abort(
            f"no Grafana token: set {TOKEN_ENV} or pass --token-file FILE "
            "(a service-account token with the Editor role)"
        )
    return token
