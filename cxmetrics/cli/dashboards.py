"""``cxmetrics dashboards SPEC -o DIR``: write the Grafana dashboards of a spec (and, with
``--provisioning``, Grafana's file-provisioning YAML for them)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import abort, load_or_abort


@click.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for the dashboard JSON files (<uid>.json).",
)
@click.option(
    "--provisioning",
    "provisioning_dir",
    type=click.Path(file_okay=False),
    help="Also write Grafana provisioning YAML (dashboard provider, Prometheus data "
    "source) under this directory.",
)
@click.option(
    "--dashboards-path",
    metavar="PATH",
    help="The JSON directory as Grafana sees it (default: -o DIR, made absolute).",
)
@click.option(
    "--prometheus-url",
    default="http://localhost:9090",
    show_default=True,
    help="URL of the provisioned Prometheus data source.",
)
@click.option(
    "--scrape-interval",
    default="15s",
    show_default=True,
    help="Prometheus' scrape interval (Grafana sizes $__rate_interval from it).",
)
@click.option(
    "--traces-datasource-uid",
    metavar="UID",
    help="Link exemplars (trace_id) to this tracing data source.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 if DIR differs from what the spec generates.",
)
def dashboards(
    spec_path: str,
    out_dir: str,
    provisioning_dir: str | None,
    dashboards_path: str | None,
    prometheus_url: str,
    scrape_interval: str,
    traces_datasource_uid: str | None,
    check: bool,
) -> None:
    """Generate the Grafana dashboards of SPEC into DIR: an overview and a step view per journey."""
    from .._exceptions import CxError
    from ..dashboards import DIGEST_TAG, build_dashboards, render

    spec = load_or_abort(spec_path)
    try:
        boards = build_dashboards(spec)
    except CxError as exc:
        abort(str(exc))
    out = Path(out_dir)
    files = {out / f"{board['uid']}.json": render(board) for board in boards}
    stale = [p for p in sorted(out.glob("*.json")) if p not in files and _generated(p, DIGEST_TAG)]
    if check:
        differ = [
            p
            for p, text in files.items()
            if not p.exists() or p.read_text(encoding="utf-8") != text
        ]
        if differ or stale:
            for path in differ + stale:
                click.echo(f"out of date: {path}", err=True)
            abort(
                f"dashboards in {out} differ from {spec_path}; regenerate with: "
                f"cxmetrics dashboards {spec_path} -o {out_dir}"
            )
        click.echo(f"ok: {len(files)} dashboards in {out} match {spec_path}")
        return
    out.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    for path in stale:
        path.unlink()
        click.echo(f"removed {path} (no longer in the spec)")
    click.echo(f"wrote {len(files)} dashboards to {out}: " + ", ".join(p.name for p in files))
    if provisioning_dir is not None:
        from ..dashboards.grafana_files import write_provisioning

        written = write_provisioning(
            spec,
            provisioning_dir,
            dashboards_path or str(out.resolve()),
            prometheus_url,
            scrape_interval,
            traces_datasource_uid,
        )
        click.echo("wrote Grafana provisioning: " + ", ".join(str(p) for p in written))


def _generated(path: Path, tag: str) -> bool:
    """True for a dashboard file cxmetrics wrote (its tags carry the digest)."""
    try:
        board = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    tags = board.get("tags") if isinstance(board, dict) else None
    return isinstance(tags, list) and any(str(t).startswith(tag) for t in tags)
