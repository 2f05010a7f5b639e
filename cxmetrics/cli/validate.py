"""``cxmetrics validate FILE...``: exit 0 when every spec is valid, else print every problem."""

from __future__ import annotations

import click

from .._exceptions import SpecError
from ..spec.load import load_spec


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Check cxmetrics.yaml FILES; print every problem with its line and a likely fix."""
    failed = 0
    for path in files:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            failed += 1
            for issue in exc.issues:
                click.echo(str(issue), err=True)
            continue
        steps = sum(len(j.steps) for j in spec.journeys)
        checks = sum(len(s.checks) for _, s in spec.steps())
        click.echo(
            f"ok: {path}: service {spec.service}, {len(spec.journeys)} journeys, "
            f"{steps} steps, {checks} accuracy checks"
        )
    raise SystemExit(1 if failed else 0)
