"""``cxmetrics rules SPEC -o FILE``: Prometheus recording and alerting rules from the spec.

``--format prometheus-operator`` writes a ``PrometheusRule`` object instead of a rule file;
``--tests FILE`` also writes a ``promtool test rules`` suite proving the rules on synthetic
traffic; ``--check`` runs promtool on what was written. A spec that cannot give valid rules is
reported field by field and nothing is written.
"""

from __future__ import annotations

import os

import click

from ._common import abort


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Rule file to write (default: standard output).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rules", "prometheus-operator"]),
    default="rules",
    show_default=True,
    help="A plain Prometheus rule file, or a prometheus-operator PrometheusRule.",
)
@click.option(
    "--override",
    "overrides",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="YAML merged onto the spec before validation, e.g. shorter windows for a "
    "demo (repeatable).",
)
@click.option(
    "--tests",
    "tests_path",
    type=click.Path(dir_okay=False),
    help="Also write a promtool test suite for the rules (plain format, needs -o).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Run 'promtool check rules' (and 'promtool test rules' with --tests).",
)
@click.option("--name", help="PrometheusRule metadata.name (default: cxmetrics-<service>).")
@click.option("--namespace", help="PrometheusRule metadata.namespace.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    help="PrometheusRule metadata label, e.g. release=prometheus (repeatable).",
)
def rules(
    spec: str,
    output: str | None,
    fmt: str,
    overrides: tuple[str, ...],
    tests_path: str | None,
    check: bool,
    name: str | None,
    namespace: str | None,
    labels: tuple[str, ...],
) -> None:
    """Write Prometheus rules for the journeys and steps in SPEC."""
    from .._exceptions import CxError, SpecError
    from ..rules import build, load_with_overrides, render, write_atomic
    from ..rules.promtest import suite

    if tests_path and (fmt != "rules" or not output):
        abort("--tests needs a plain rule file: use -o FILE and the default --format rules")
    if check and not output:
        abort("--check needs -o FILE")
    metadata_labels = {}
    for item in labels:
        key, sep, value = item.partition("=")
        if not sep or not key:
            abort(f"--label {item!r}: write KEY=VALUE")
        metadata_labels[key] = value
    try:
        ruleset = build(load_with_overrides(spec, overrides))
        text = render(
            ruleset,
            "rules" if fmt == "rules" else "prometheus-operator",
            name=name,
            namespace=namespace,
            labels=metadata_labels,
        )
        tests = None
        if tests_path and output:
            relative = os.path.relpath(
                os.path.abspath(output), os.path.dirname(os.path.abspath(tests_path))
            )
            tests = suite(ruleset, relative)
    except SpecError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        abort(f"{spec}: cannot generate rules; {len(exc.issues)} problem(s), nothing written")
    except CxError as exc:
        abort(str(exc))
    for note in ruleset.notes:
        click.echo(f"note: {note}", err=True)
    if output is None:
        click.echo(text, nl=False)
        return
    write_atomic(output, text)
    recording, alerting = ruleset.count()
    click.echo(
        f"wrote {recording} recording and {alerting} alerting rules in "
        f"{len(ruleset.groups)} groups to {output}",
        err=True,
    )
    if tests_path and tests is not None:
        write_atomic(tests_path, tests)
        click.echo(f"wrote promtool tests to {tests_path}", err=True)
    if check:
        _check(render(ruleset, "rules") if fmt != "rules" else None, output, tests_path)


def _check(plain: str | None, output: str, tests_path: str | None) -> None:
    """promtool on what was written; a PrometheusRule's groups are checked as a rule file."""
    import tempfile

    from .._exceptions import CxError
    from ..rules.promtest import promtool

    with tempfile.TemporaryDirectory(prefix="cxmetrics-check-") as tmp:
        target = output
        if plain is not None:
            target = os.path.join(tmp, "rules.yml")
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(plain)
        runs = [("check", "rules", target)] + (
            [("test", "rules", tests_path)] if tests_path else []
        )
        try:
            for args in runs:
                code, out = promtool(*args)
                click.echo(out.rstrip(), err=True)
                if code != 0:
                    abort(f"promtool {' '.join(args[:2])} failed")
        except CxError as exc:
            abort(str(exc))
