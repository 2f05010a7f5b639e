"""The ``cxmetrics`` command: a root group wiring one module per command (heavy imports inside
each command's body, so ``--help`` stays instant)."""

from __future__ import annotations

import click

from .. import __version__
from .analyze import analyze
from .dashboards import dashboards
from .demo import demo
from .followup import followup
from .import_ import import_
from .provision import provision
from .report import report
from .rules import rules
from .stack import stack
from .validate import validate
from .watch import watch


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cxmetrics")
def cli() -> None:
    """Customer-experience metrics for journeys and steps."""


cli.add_command(analyze)
cli.add_command(dashboards)
cli.add_command(demo)
cli.add_command(followup)
cli.add_command(import_)
cli.add_command(provision)
cli.add_command(report)
cli.add_command(rules)
cli.add_command(stack)
cli.add_command(validate)
cli.add_command(watch)


def main() -> None:
    cli(prog_name="cxmetrics")
