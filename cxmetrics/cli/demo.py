"""``cxmetrics demo``: the whole product in a couple of minutes, with no servers to install."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import abort


@click.command()
@click.option(
    "--duration",
    type=click.FloatRange(10, 3600),
    help="Planned seconds of simulated traffic, half stable, half with the faults; a half runs "
    "longer (up to 5x) until bill_detail was answered 500 times in it [default: 60; 30 with "
    "--fast; 80 with --stack, whose alert fires about 25 s after the faults].",
)
@click.option(
    "--fast",
    is_flag=True,
    help="A short run: 30 s of traffic with time compressed ×4 more (more customers per "
    "second). Finds the accuracy fault on a busy machine too; the latency verdict is withheld "
    "(and said so) when the machine's own delays could hide the injected change.",
)
@click.option(
    "--out",
    "out_dir",
    default="demo-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where to write everything.",
)
@click.option("--seed", default=7, show_default=True, help="Random seed of the customers.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.option(
    "--stack",
    "with_stack",
    is_flag=True,
    help="Also run a real Prometheus and Alertmanager (Debian packages) with the "
    "generated rules, and show the regression alert firing.",
)
@click.option(
    "--followups/--no-followups",
    default=None,
    help="Also hand loan applicants who stall at upload_documents to a local receiver "
    "(starts redis-server, the receiver and a worker). Default: when redis-server is "
    "installed; --followups fails without it, --no-followups never starts it.",
)
def demo(
    duration: float | None,
    fast: bool,
    out_dir: str,
    seed: int,
    as_json: bool,
    with_stack: bool,
    followups: bool | None,
) -> None:
    """Run the example bank, inject a bill_detail +20% regression and an accuracy fault, and
    show what cxmetrics makes of it: indicators, regressions, rules, dashboards, a report.

    Exit status 3: the machine was too busy to serve the traffic the detector needs to judge
    the injected faults (the message says how much it got); no verdict is shown then."""
    try:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        from .._exceptions import CxError
        from ..local import demo as demo_module
    except ImportError as exc:
        abort(f"{exc.name} is missing; install with: pip install 'cxmetrics[all]'")

    console = Console(stderr=as_json)
    duration = duration or (80.0 if with_stack else 30.0 if fast else 60.0)
    time_scale = 0.05 if fast else 0.2
    columns = (
        TextColumn("{task.description:<24}"),
        BarColumn(),
        TextColumn("{task.fields[req]:>7,} requests"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=as_json) as progress:
        task = progress.add_task("stable traffic", total=1.0, req=0)

        def on_progress(phase: str, fraction: float, requests: int) -> None:
            label = "stable traffic" if phase == "stable" else "bill_detail +20%, 10% inaccurate"
            progress.update(task, completed=fraction, description=label, req=requests)

        try:
            result = demo_module.run(
                Path(out_dir),
                duration=duration,
                time_scale=time_scale,
                seed=seed,
                progress=on_progress,
                with_stack=with_stack,
                followups="auto" if followups is None else "on" if followups else "off",
            )
        except demo_module.NotEnoughTraffic as exc:
            abort(str(exc), code=3)
        except CxError as exc:
            abort(str(exc))
        progress.update(task, completed=1.0)

    if as_json:
        click.echo(json.dumps(demo_module.summary(result), indent=2))
        return
    from .analyze import render

    render(result.analysis)
    for name, why in result.machine_noise.items():
        console.print(f"[yellow]set aside[/] {name}: {why} (the machine's delay, not a regression)")
    for what, why in result.withheld.items():
        console.print(f"[yellow]withheld[/] {what}: {why}")
    console.print()
    if result.followups is not None:
        fu = result.followups.summary()
        console.print(
            f"[bold]Follow-ups[/] {fu['journey']}/{fu['step']} (due {fu['after_seconds']:g} s "
            f"without 'sign'): {fu['stalled']:,} applicants stalled, {fu['cut_off_by_the_end']:,} "
            f"more were still waiting when the run ended; {fu['delivered']:,} handed to the "
            f"local receiver (signed, each once: {fu['duplicates']} duplicates), "
            f"{fu['missing']} stalled ones missing, {fu['strangers']} strangers"
        )
        console.print(f"  {fu['received']}")
    elif result.followups_skipped:
        console.print(f"[yellow]Follow-ups skipped[/]: {result.followups_skipped}")
    for figure in result.contact:
        highs_lows = [r for r in figure.rows if r.direction is not None]
        missed = [r.title for r in highs_lows if r.met is False]
        console.print(
            f"[bold]Contact centre[/] {figure.journey}: {figure.offered:,} calls imported from the "
            f"simulated export; {len(highs_lows) - len(missed)} of {len(highs_lows)} objectives "
            "met"
            + (f", [bold red]missed[/]: {', '.join(missed)}" if missed else "")
            + " (the report has each one, by segment and by channel)"
        )
    if with_stack:
        console.print()
        if not result.alerts:
            console.print(
                "[yellow]Alertmanager holds no Cx* alert yet[/] (the rules need their "
                "windows of data; try a longer --duration)"
            )
        for alert in result.alerts:
            labels, notes = alert["labels"], alert["annotations"]
            console.print(
                f"[bold red]FIRING[/] {labels.get('alertname')} "
                f"{labels.get('journey')}/{labels.get('step')}: {notes.get('summary', '')}"
            )
        for name, why in result.alert_noise.items():
            console.print(f"[yellow]explained[/] {name}: {why} (the machine's delay, no fault)")
    console.print()
    console.print("[bold]Written to[/] " + str(result.out_dir))
    for what, path in result.files.items():
        console.print(f"  {what:<14} {path}")
    console.print()
    console.print("[bold]Next[/]")
    for line in demo_module.next_steps(result):
        console.print("  " + line)
