"""Panel building blocks on grafana-foundation-sdk: queries, traffic-light thresholds, the grid.

Every panel a CX manager sees is coloured by thresholds (green / amber / red), so it reads without
a legend; every panel gets complete ``options`` (the SDK only emits them once one is set), so the
JSON validates against Grafana's published schema for its panel type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from grafana_foundation_sdk.builders import bargauge, common, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

DATASOURCE_VAR = "datasource"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VAR}}}")
GREEN, AMBER, RED, BLUE = "green", "orange", "red", "blue"
GRID_WIDTH = 24

# A traffic light: the base colour (for every value below the first bound) then (bound, colour).
# Grafana always treats the first step as -Infinity; the published schema wants a number there,
# so the base carries the natural lower end of the quantity instead of null.
Light = tuple[float, str, tuple[tuple[float, str], ...]]


def higher_is_better(amber_from: float, green_from: float, floor: float = 0.0) -> Light:
    return (floor, RED, ((amber_from, AMBER), (green_from, GREEN)))


def lower_is_better(amber_from: float, red_from: float, floor: float = 0.0) -> Light:
    return (floor, GREEN, ((amber_from, AMBER), (red_from, RED)))


def objective_light(objective: float) -> Light:
    """Green at or above the objective; amber while within one more error budget; red below."""
    return higher_is_better(max(0.0, 1 - 2 * (1 - objective)), objective)


def _thresholds(light: Light) -> builders.ThresholdsConfig:
    floor, base, steps = light
    config: builders.ThresholdsConfig = (
        builders.ThresholdsConfig()
        .mode(dm.ThresholdsMode("absolute"))
        .steps(
            [dm.Threshold(value=floor, color=base)]
            + [dm.Threshold(value=v, color=c) for v, c in steps]
        )
    )
    return config


def by_name(name: str | Sequence[str]) -> dm.MatcherConfig:
    """Grafana's ``byNames`` matcher (options an object, as the published schema requires; the
    ``byName`` matcher's bare-string options do not validate)."""
    chosen = [name] if isinstance(name, str) else list(name)
    return dm.MatcherConfig(id_val="byNames", options={"mode": "include", "names": chosen})


def nan_text(text: str) -> dm.SpecialValueMap:
    """Show NaN as ``text``: the period-over-period queries answer NaN where the current period
    has data and the previous one none (``catalogue.change_promql``)."""
    return dm.SpecialValueMap(
        options=dm.DashboardSpecialValueMapOptions(
            match=dm.SpecialValueMatch("nan"),
            result=dm.ValueMappingResult(text=text, color=BLUE, index=0),
        )
    )


@dataclass(frozen=True)
class Link:
    """A data link: clicking a value opens ``url`` (Grafana interpolates ``${__data.fields.x}``,
    ``${__url_time_range}`` and variables in it)."""

    title: str
    url: str


def thresholds_value(light: Light) -> dm.DynamicConfigValue:
    return dm.DynamicConfigValue(id_val="thresholds", value=_thresholds(light).build())


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = "__auto"
    exemplar: bool = False


def _targets(
    queries: Sequence[Query],
    instant: bool,
    fmt: str = "time_series",
) -> list[cogbuilder.Builder[object]]:
    out: list[cogbuilder.Builder[object]] = []
    for index, q in enumerate(queries):
        target = (
            prometheus.Dataquery()
            .ref_id(chr(ord("A") + index))
            .expr(q.expr)
            .legend_format(q.legend)
            .editor_mode(pm.QueryEditorMode("code"))
            .format(pm.PromQueryFormat(fmt))
        )
        target = target.instant() if instant else target.range()
        if q.exemplar:
            target = target.exemplar(True)
        out.append(target)
    return out


def _reduce_last() -> common.ReduceDataOptions:
    options: common.ReduceDataOptions = common.ReduceDataOptions().calcs(["lastNotNull"])
    return options.values(False)  # type: ignore[no-any-return]


def _legend(show: bool = True) -> common.VizLegendOptions:
    legend: common.VizLegendOptions = (
        common.VizLegendOptions()
        .show_legend(show)
        .display_mode(cm.LegendDisplayMode("list"))
        .placement(cm.LegendPlacement("bottom"))
        .calcs([])
    )
    return legend


def _colour_by_thresholds() -> builders.FieldColor:
    colour: builders.FieldColor = builders.FieldColor().mode(dm.FieldColorModeId("thresholds"))
    return colour


def stat_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    unit: str,
    light: Light,
    *,
    decimals: int | None = None,
    overrides: Sequence[tuple[str | Sequence[str], Light]] = (),
    no_value: str = "no traffic",
    no_baseline: str | None = None,
    texts: dict[str, tuple[str, str]] | None = None,
) -> dm.Panel:
    """A big number per series; ``no_baseline``: the text shown for NaN (a comparison with a
    period that has no data yet); ``texts``: value -> (text, colour) shown instead."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries, instant=True))
        .unit(unit)
        .thresholds(_thresholds(light))
        .color_scheme(_colour_by_thresholds())
        .no_value(no_value)
        .graph_mode(cm.BigValueGraphMode("none"))
        .color_mode(cm.BigValueColorMode("background"))
        .justify_mode(cm.BigValueJustifyMode("center"))
        .text_mode(
            cm.BigValueTextMode("value_and_name")
            if len(queries) > 1 or overrides
            else cm.BigValueTextMode("value")
        )
        .wide_layout(True)
        .show_percent_change(False)
        .percent_change_color_mode(cm.PercentChangeColorMode("standard"))
        .orientation(cm.VizOrientation("auto"))
        .reduce_options(_reduce_last())
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    if no_baseline is not None:
        panel = panel.mappings([nan_text(no_baseline)])
    if texts:
        panel = panel.mappings([_value_texts(texts)])
    for name, override in overrides:
        panel = panel.with_override(by_name(name), [thresholds_value(override)])
    built: dm.Panel = panel.build()
    return built


def _value_texts(texts: dict[str, tuple[str, str]]) -> dm.ValueMap:
    return dm.ValueMap(
        options={
            value: dm.ValueMappingResult(text=text, color=colour, index=index)
            for index, (value, (text, colour)) in enumerate(texts.items())
        }
    )


def bars_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    unit: str,
    light: Light,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    overrides: Sequence[tuple[str | Sequence[str], Light]] = (),
    decimals: int | None = None,
    no_baseline: str | None = None,
) -> dm.Panel:
    """Horizontal bar gauge: one bar per series, in query order (the journey's step order);
    ``no_baseline``: the text shown for NaN, as in ``stat_panel``."""
    panel = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries, instant=True))
        .unit(unit)
        .thresholds(_thresholds(light))
        .color_scheme(_colour_by_thresholds())
        .no_value("no traffic")
        .display_mode(cm.BarGaugeDisplayMode("basic"))
        .value_mode(cm.BarGaugeValueMode("color"))
        .name_placement(cm.BarGaugeNamePlacement("left"))
        .show_unfilled(True)
        .sizing(cm.BarGaugeSizing("auto"))
        .min_viz_width(8)
        .min_viz_height(16)
        .max_viz_height(300)
        .legend(_legend(False))
        .reduce_options(_reduce_last())
        .orientation(cm.VizOrientation("horizontal"))
    )
    if minimum is not None:
        panel = panel.min(minimum)
    if maximum is not None:
        panel = panel.max(maximum)
    if decimals is not None:
        panel = panel.decimals(decimals)
    if no_baseline is not None:
        panel = panel.mappings([nan_text(no_baseline)])
    for name, override in overrides:
        panel = panel.with_override(by_name(name), [thresholds_value(override)])
    built: dm.Panel = panel.build()
    return built


@dataclass
class Series:
    """Options of a time-series panel beyond its queries."""

    unit: str
    light: Light | None = None
    minimum: float | None = None
    maximum: float | None = None
    stack: bool = False
    dashed: tuple[str, ...] = ()  # series drawn as dashed reference lines (targets, baselines)
    overrides: Sequence[tuple[str | Sequence[str], Light]] = field(default_factory=tuple)


def series_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    opts: Series,
) -> dm.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries, instant=False))
        .unit(opts.unit)
        .legend(_legend())
        .tooltip(
            common.VizTooltipOptions()
            .mode(cm.TooltipDisplayMode("multi"))
            .sort(cm.SortOrder("desc"))
        )
        .line_width(2)
        .fill_opacity(10 if opts.stack else 0)
        .show_points(cm.VisibilityMode("never"))
        .span_nulls(False)
    )
    if opts.light is not None:
        # Shaded green / amber / red bands behind the lines: the reading needs no legend.
        panel = panel.thresholds(_thresholds(opts.light)).thresholds_style(
            common.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode("line+area"))
        )
    if opts.stack:
        panel = panel.stacking(common.StackingConfig().mode(cm.StackingMode("normal")))
    if opts.minimum is not None:
        panel = panel.min(opts.minimum)
    if opts.maximum is not None:
        panel = panel.max(opts.maximum)
    for name in opts.dashed:
        panel = panel.with_override(
            by_name(name),
            [
                dm.DynamicConfigValue(
                    id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
                ),
                dm.DynamicConfigValue(
                    id_val="color", value={"mode": "fixed", "fixedColor": "text"}
                ),
            ],
        )
    for names, override in opts.overrides:
        panel = panel.with_override(by_name(names), [thresholds_value(override)])
    built: dm.Panel = panel.build()
    return built


def table_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    light: Light,
    *,
    hide: Sequence[str] = (),
    rename: dict[str, str] | None = None,
    coloured: Sequence[str] = (),
    states: dict[str, str] | None = None,
    unit: str = "short",
    decimals: int | None = None,
    matrix: tuple[str, str] | None = None,
    links: Sequence[Link] = (),
    sort: str | None = None,
) -> dm.Panel:
    """An instant table. ``coloured`` columns get a traffic-light background (numbers by
    ``light``, text by ``states``: value -> colour); ``hide`` and ``rename`` tidy the columns;
    ``matrix`` (row label, column label) pivots the values into a matrix; ``links`` lead from a
    cell to another view; ``sort`` orders the rows by that column, largest first."""
    organize = {
        "excludeByName": {name: True for name in hide},
        "renameByName": dict(rename or {}),
        "indexByName": {},
    }
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries, instant=True, fmt="table"))
        .unit(unit)
        .thresholds(_thresholds(light))
        .color_scheme(_colour_by_thresholds())
        .no_value("none")
        .frame_index(0)
        .show_header(True)
        .cell_height(cm.TableCellHeight("sm"))
        .footer(common.TableFooterOptions().show(False).reducer(["sum"]).count_rows(False))
        .align(cm.FieldTextAlignment("auto"))
        .inspect(False)
        .with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(dm.DataTransformerConfig(id_val="organize", options=organize))
    )
    if matrix is not None:
        rows, across = matrix
        panel = panel.with_transformation(
            dm.DataTransformerConfig(
                id_val="groupingToMatrix",
                options={
                    "rowField": rows,
                    "columnField": across,
                    "valueField": "Value",
                    "emptyValue": "zero",
                },
            )
        )
    if sort is not None:
        panel = panel.sort_by([common.TableSortByFieldState().display_name(sort).desc(True)])
    if decimals is not None:
        panel = panel.decimals(decimals)
    if links:
        panel = panel.data_links(
            [
                builders.DashboardLink(link.title)
                .type(dm.DashboardLinkType("link"))
                .url(link.url)
                .icon("dashboard")
                .tooltip(link.title)
                .tags([])
                .as_dropdown(False)
                .target_blank(False)
                .include_vars(False)
                .keep_time(False)
                for link in links
            ]
        )
    if states:
        panel = panel.mappings(
            [
                dm.ValueMap(
                    options={
                        value: dm.ValueMappingResult(text=value, color=colour, index=index)
                        for index, (value, colour) in enumerate(states.items())
                    }
                )
            ]
        )
    for name in coloured:
        panel = panel.with_override(
            by_name(name), [dm.DynamicConfigValue(id_val="custom.cellOptions", value=_background())]
        )
    built: dm.Panel = panel.build()
    return built


def _background() -> cm.TableColoredBackgroundCellOptions:
    return cm.TableColoredBackgroundCellOptions(mode=cm.TableCellBackgroundDisplayMode("basic"))


class Layout:
    """Places panels on Grafana's 24-column grid the way Grafana's own gravity does (each panel
    at the highest free spot, left first) and numbers them in reading order: stable ids and
    positions, so regenerating an unchanged spec gives byte-identical JSON."""

    def __init__(self) -> None:
        self.heights = [0] * GRID_WIDTH
        self.panels: list[dm.Panel | dm.RowPanel] = []

    def row(self, title: str) -> None:
        y = max(self.heights)
        self.panels.append(
            dm.RowPanel(
                title=title,
                collapsed=False,
                panels=[],
                grid_pos=dm.GridPos(h=1, w=GRID_WIDTH, x=0, y=y),
                id_val=len(self.panels) + 1,
            )
        )
        self.heights = [y + 1] * GRID_WIDTH

    def add(self, panel: dm.Panel, w: int, h: int) -> None:
        best_x, best_y = 0, None
        for x in range(GRID_WIDTH - w + 1):
            y = max(self.heights[x : x + w])
            if best_y is None or y < best_y:
                best_x, best_y = x, y
        assert best_y is not None
        panel.grid_pos = dm.GridPos(h=h, w=w, x=best_x, y=best_y)
        panel.id_val = len(self.panels) + 1
        for x in range(best_x, best_x + w):
            self.heights[x] = best_y + h
        self.panels.append(panel)
