"""``cxmetrics validate FILE...``: exit 0 when every spec is valid, else print every problem.

One validation, no later surprise: besides the spec's own rules it runs what ``rules`` checks
before writing anything (``rules.policy.plan``: windows, baselines and objectives that would give
broken or meaningless rules); ``dashboards`` and ``analyze`` use the same plan and spec.
"""

from __future__ import annotations

import click

from .._exceptions import SpecError
from ..rules.policy import plan
from ..spec.load import load_spec


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word if n == 1 else word + 's'}"


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Check cxmetrics.yaml FILES; print every problem with its line and a likely fix."""
    failed = 0
    for path in files:
        try:
            spec = load_spec(path)
            plan(spec)
        except SpecError as exc:
            failed += 1
            for issue in exc.issues:
                click.echo(str(issue), err=True)
            continue
        steps = sum(len(j.steps) for j in spec.journeys)
        checks = sum(len(s.checks) for _, s in spec.steps())
        click.echo(
            f"ok: {path}: service {spec.service}, {_plural(len(spec.journeys), 'journey')}, "
            f"{_plural(steps, 'step')}, {_plural(checks, 'accuracy check')}"
        )
    raise SystemExit(1 if failed else 0)
