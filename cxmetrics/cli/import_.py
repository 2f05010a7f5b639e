"""``cxmetrics import SPEC FILE``: a call-detail export (CSV or JSONL) into the event log and/or
an OpenMetrics file for ``promtool tsdb create-blocks-from openmetrics`` (docs/import.md).

Prints rows read, imported and rejected (by reason, the first with file:line), each contact
journey's totals and its three highs / three lows. Exit codes: 0 every row imported; 1 bad input
(spec, file, options); 6 some rows were rejected (the rest is imported).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from ._common import abort, load_or_abort

if TYPE_CHECKING:
    from ..records.importer import ImportReport
    from ..spec.model import Spec

EXIT_REJECTED = 6


@click.command("import")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="Default: by extension.")
@click.option("--events", "events_path", metavar="PATH", help="Append event-log lines here.")
@click.option(
    "--openmetrics", "om_path", metavar="PATH", help="Write an OpenMetrics file for backfill."
)
@click.option(
    "--backfill",
    "tsdb",
    metavar="DIR",
    help="Also run promtool tsdb create-blocks-from openmetrics into DIR (a Prometheus data dir).",
)
@click.option("--resolution", default="60s", show_default=True, help="OpenMetrics sample step.")
@click.option("--journey", help="Map every row to this contact journey.")
@click.option("--rejects", "rejects_path", metavar="PATH", help="Write every rejected row here.")
@click.option(
    "--customer-key",
    envvar="CXMETRICS_CUSTOMER_KEY",
    help="Key of the customer references (default: $CXMETRICS_CUSTOMER_KEY).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_(
    spec: str,
    file: str,
    fmt: str | None,
    events_path: str | None,
    om_path: str | None,
    tsdb: str | None,
    resolution: str,
    journey: str | None,
    rejects_path: str | None,
    customer_key: str | None,
    as_json: bool,
) -> None:
    """Import call-detail records from FILE, mapped by SPEC's contact journeys."""
    from .._exceptions import CxError
    from ..instrument.redaction import make_redactor
    from ..records.importer import import_calls
    from ..records.openmetrics import Backfill
    from ..records.rows import detect
    from ..spec.durations import parse_duration

    loaded = load_or_abort(spec)
    if events_path is None and om_path is None and tsdb is None:
        abort("nothing to write: give --events PATH, --openmetrics PATH and/or --backfill DIR")
    try:
        form = fmt or detect(file)
        step = parse_duration(resolution)
    except ValueError as exc:
        abort(str(exc))
    if tsdb is not None and om_path is None:
        om_path = os.path.join(tsdb, "cxmetrics-import.om")
        os.makedirs(tsdb, exist_ok=True)
    backfill = Backfill(step) if om_path is not None else None
    redact = make_redactor(customer_key, None)
    with contextlib.ExitStack() as stack:
        events: BinaryIO | None = None
        rejects: BinaryIO | None = None
        try:
            if events_path is not None:
                events = stack.enter_context(open(events_path, "ab"))
            if rejects_path is not None:
                rejects = stack.enter_context(open(rejects_path, "wb"))
            report = import_calls(
                loaded,
                file,
                form,  # type: ignore[arg-type]
                redact,
                events=events,
                backfill=backfill,
                rejects=rejects,
                journey=journey,
            )
        except OSError as exc:
            abort(f"cannot import {file}: {exc.strerror or exc}")
        except CxError as exc:
            abort(str(exc))
    if backfill is not None and om_path is not None and not backfill.empty:
        report.samples = backfill.write(om_path)
        if tsdb is not None:
            _create_blocks(om_path, tsdb)
    if as_json:
        click.echo(json.dumps(_as_json(loaded, report), indent=2))
    else:
        _print(loaded, report, events_path, om_path)
    if report.rejected:
        raise SystemExit(EXIT_REJECTED)


def _create_blocks(source: str, tsdb: str) -> None:
    from .._binaries import PROMTOOL, require_binary

    promtool = require_binary(PROMTOOL)
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", source, tsdb],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        abort(f"promtool could not create blocks from {source}: {result.stderr.strip()[-2000:]}")


def _as_json(spec: Spec, report: ImportReport) -> dict[str, Any]:
    from ..analysis import contact
    from ..spec import names

    journeys = {}
    for name, counts in report.counts.items():
        journey = spec.journey(name)
        journeys[name] = {
            "offered": contact.offered(counts),
            "calls": {
                "/".join(k): int(v) for k, v in counts.series.get(names.CONTACTS, {}).items()
            },
            "unjudged": counts.unjudged,
            "no_customer": counts.no_customer,
            "indicators": {
                r.name: {"value": r.value, "objective": r.objective, "met": r.met}
                for r in contact.view(journey, counts)
            },
        }
    return {
        "source": report.source,
        "rows": report.rows,
        "imported": report.imported,
        "rejected": report.rejected,
        "reasons": dict(report.reasons),
        "problems": report.problems,
        "events": report.events,
        "samples": report.samples,
        "journeys": journeys,
    }


def _print(spec: Spec, report: ImportReport, events_path: str | None, om_path: str | None) -> None:
    from ..analysis import contact
    from ..report import text
    from ._contact import print_rows

    click.echo(
        f"{report.source}: {text.count(report.rows)} rows, {text.count(report.imported)} "
        f"imported, {text.count(report.rejected)} rejected"
    )
    for reason, n in report.reasons.most_common():
        click.echo(f"  rejected {text.count(n)}: {reason}")
    for problem in report.problems:
        click.echo(f"  {problem}")
    if events_path is not None:
        click.echo(f"{text.count(report.events)} events appended to {events_path}")
    if om_path is not None:
        click.echo(f"{text.count(report.samples)} samples written to {om_path}")
    for name, counts in report.counts.items():
        journey = spec.journey(name)
        click.echo(
            f"{name}: {text.count(contact.offered(counts))} calls offered; "
            f"{text.count(counts.unjudged)} answered calls still inside the repeat window"
        )
        print_rows(contact.view(journey, counts))
