"""The figures of the report: a journey's funnel and, per step, latency percentiles against the
target, timeliness against its objective, accuracy per check and conversion to the next step —
each an SVG chart (``charts``) with a caption, an HTML legend, a text description for screen
readers, a tooltip per window, and the analysis' regressions drawn as bands from their change
points."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from itertools import pairwise

from ..analysis.analyzer import ACCURACY, CONVERSION, LATENCY, Analysis, Finding
from ..spec.model import Journey, Spec, Step
from . import charts, style, text
from .series import StepSeries
from .summary import StepStatus


@dataclass(frozen=True)
class View:
    """What every figure reads: the spec, the analysis, how to write times, the window length."""

    spec: Spec
    analysis: Analysis
    clock: text.Clock
    window: str  # e.g. "1m"

    def findings(self, journey: str, step: str, indicator: str) -> list[Finding]:
        return [
            f
            for f in self.analysis.findings
            if (f.journey, f.step, f.indicator) == (journey, step, indicator)
        ]


def funnel_figure(view: View, journey: Journey, statuses: dict[tuple[str, str], StepStatus]) -> str:
    bars = []
    for step in journey.steps:
        row = view.analysis.indicators.step(journey.name, step.name)
        status = statuses[(journey.name, step.name)]
        note = None
        if row.next_step is not None:
            note = f"↓ {text.percent(row.conversion)} went on to {row.next_step}"
            if row.abandonment is not None:
                note += f", {text.percent(row.abandonment)} left"
        tip = f"{step.name}: {text.plural(row.volume, 'customer')}, {status.label.lower()}"
        bars.append(
            charts.FunnelBar(step.name, row.volume, style.STATUS[status.status][3], tip, note)
        )
    ident = f"funnel-{journey.name}"
    first = view.analysis.indicators.step(journey.name, journey.steps[0].name).volume
    last = view.analysis.indicators.step(journey.name, journey.steps[-1].name).volume
    desc = (
        f"{text.count(first)} customers at {journey.steps[0].name}, "
        f"{text.count(last)} at {journey.steps[-1].name}."
    )
    svg = charts.funnel(ident, f"Funnel of {journey.name}", desc, bars)
    caption = "<figcaption>Funnel: customers at each step</figcaption>"
    return f'<figure class="funnel">{caption}{svg}</figure>'


def _bands(view: View, findings: list[Finding], label: str) -> list[charts.Band]:
    out = []
    for f in findings:
        end = f.end_time if f.end_time is not None else view.analysis.end
        when = (
            f"since {view.clock(f.start_time)}"
            if f.end_time is None
            else f"{view.clock(f.start_time)}–{view.clock(f.end_time)}"
        )
        out.append(
            charts.Band(
                f.start_time,
                end,
                label.format(f=f, r=f.regression, when=when),
                f.end_time is not None,
            )
        )
    return out


def _figure(caption: str, svg: str, legend: list[tuple[str, str, str]]) -> str:
    keys = "".join(
        f'<li><span class="key {kind}" style="border-color:{colour}"></span>{escape(label)}</li>'
        for label, colour, kind in legend
    )
    return (
        f"<figure><figcaption>{escape(caption)}</figcaption>{svg}"
        f'<ul class="legend">{keys}</ul></figure>'
    )


def latency_figure(view: View, journey: Journey, step: Step, series: StepSeries) -> str:
    findings = view.findings(journey.name, step.name, LATENCY)
    bands = _bands(view, findings, "+{r.change:.0%} {when}")
    lines = [
        charts.Line("p50", series.quantiles[0.5], style.P50, 1.5),
        charts.Line("p95", series.quantiles[0.95], style.P95, 2.5),
        charts.Line("p99", series.quantiles[0.99], style.P99, 1.5),
    ]
    target = charts.Level(step.target, f"target {text.duration(step.target)}", style.TARGET)
    tips = [
        f"{view.clock(a)}–{view.clock(b)}: {text.plural(v, 'customer')}, "
        f"p50 {text.duration(p50)}, p95 {text.duration(p95)}, p99 {text.duration(p99)}"
        for (a, b), v, p50, p95, p99 in zip(
            pairwise(series.edges),
            series.volume,
            series.quantiles[0.5],
            series.quantiles[0.95],
            series.quantiles[0.99],
            strict=True,
        )
    ]
    p95 = [v for v in series.quantiles[0.95] if v is not None]
    desc = f"p95 per {view.window} window"
    desc += (
        f" between {text.duration(min(p95))} and {text.duration(max(p95))}" if p95 else ": no data"
    )
    desc += f"; target {text.duration(step.target)}."
    desc += "".join(f" Regression {b.label}." for b in bands)
    svg = charts.time_chart(
        f"latency-{journey.name}-{step.name}",
        f"{step.name} latency",
        desc,
        series.edges,
        lines,
        kind="duration",
        clock=view.clock,
        levels=[target],
        bands=bands,
        tips=tips,
    )
    legend = [("p50", style.P50, ""), ("p95", style.P95, ""), ("p99", style.P99, "")]
    legend.append((f"target {text.duration(step.target)}", style.TARGET, "dashed"))
    if bands:
        legend.append(("regression", charts.BAND_EDGE, "band"))
    return _figure("Latency percentiles", svg, legend)


def _ratio_chart(
    view: View,
    ident: str,
    caption: str,
    lines: list[charts.Line],
    levels: list[charts.Level],
    bands: list[charts.Band],
    series: StepSeries,
) -> str:
    tips = [
        f"{view.clock(a)}–{view.clock(b)}: "
        + ", ".join(f"{line.label} {text.percent(line.values[k])}" for line in lines)
        for k, (a, b) in enumerate(pairwise(series.edges))
    ]
    values = [v for line in lines for v in line.values if v is not None]
    desc = f"{caption} per {view.window} window"
    desc += (
        f" between {text.percent(min(values))} and {text.percent(max(values))}."
        if values
        else ": no data."
    )
    desc += "".join(f" {lvl.label}." for lvl in levels)
    desc += "".join(f" Regression {b.label}." for b in bands)
    svg = charts.time_chart(
        ident,
        f"{series.step}: {caption.lower()}",
        desc,
        series.edges,
        lines,
        kind="ratio",
        clock=view.clock,
        levels=levels,
        bands=bands,
        tips=tips,
        width=480,
        height=250,
    )
    legend = [(line.label, line.colour, "") for line in lines]
    legend += [(lvl.label, lvl.colour, "dashed") for lvl in levels]
    if bands:
        legend.append(("regression", charts.BAND_EDGE, "band"))
    return _figure(caption, svg, legend)


def timeliness_figure(view: View, journey: Journey, step: Step, series: StepSeries) -> str:
    objective = view.spec.objectives(journey, step).timeliness
    return _ratio_chart(
        view,
        f"timeliness-{journey.name}-{step.name}",
        "On time",
        [charts.Line(f"≤ {text.duration(step.target)}", series.timeliness, style.ON_TIME)],
        [charts.Level(objective, f"objective {text.objective(objective)}", style.TARGET)],
        _bands(view, view.findings(journey.name, step.name, LATENCY), "{when}"),
        series,
    )


def accuracy_figure(view: View, journey: Journey, step: Step, series: StepSeries) -> str:
    lines = [
        charts.Line(name, values, style.CHECKS[k % len(style.CHECKS)])
        for k, (name, values) in enumerate(series.checks.items())
    ]
    objective = view.spec.objectives(journey, step).accuracy
    levels = [charts.Level(objective, f"objective {text.objective(objective)}", style.TARGET)]
    bands = _bands(view, view.findings(journey.name, step.name, ACCURACY), "{when}")
    return _ratio_chart(
        view, f"accuracy-{journey.name}-{step.name}", "Accuracy", lines, levels, bands, series
    )


def conversion_figure(
    view: View, journey: Journey, step: Step, series: StepSeries, next_step: str
) -> str:
    line = charts.Line(f"to {next_step}", series.conversion, style.CONVERSION)
    bands = _bands(view, view.findings(journey.name, step.name, CONVERSION), "{when}")
    return _ratio_chart(
        view, f"conversion-{journey.name}-{step.name}", "Go on", [line], [], bands, series
    )
