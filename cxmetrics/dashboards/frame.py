"""What every cxmetrics dashboard shares: uid, title, tags, variables, annotations, links, time."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.models import dashboard as dm

from ..analysis.catalogue import Matcher, Re
from ..spec.ids import DATASOURCE_NAME, DATASOURCE_UID, KINDS, TAG, dashboard_uid
from ..spec.model import Journey, Spec
from .panels import DATASOURCE, DATASOURCE_VAR, Layout
from .queries import ALERTS, CHANNEL_VAR, selector


def _variables(
    spec: Spec, journey: Journey
) -> list[builders.CustomVariable | builders.DatasourceVariable]:
    datasource = (
        builders.DatasourceVariable(DATASOURCE_VAR)
        .label("Data source")
        .type("prometheus")
        .current(dm.VariableOption(text=DATASOURCE_NAME, value=DATASOURCE_UID))
        .hide(dm.VariableHide(0))
    )
    declared = journey.channels or spec.channels
    channels = (
        builders.CustomVariable(CHANNEL_VAR)
        .label("Channel")
        .values(",".join(declared))
        .options(
            [dm.VariableOption(text="All", value="$__all", selected=True)]
            + [dm.VariableOption(text=c, value=c, selected=False) for c in declared]
        )
        .description(
            "Channels declared for this journey in the spec. Panels on accuracy checks and "
            "step transitions count every channel: those series carry no channel label."
        )
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(text="All", value="$__all"))
    )
    return [datasource, channels]


def _annotations(
    journey: Journey, name: str, alertname: Matcher, colour: str
) -> list[builders.AnnotationQuery]:
    built_in = (
        builders.AnnotationQuery()
        .name("Annotations & Alerts")
        .built_in(1)
        .type("dashboard")
        .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
    )
    alerts = (
        builders.AnnotationQuery()
        .name(name)
        .datasource(DATASOURCE)
        .enable(True)
        .hide(False)
        .icon_color(colour)
        .expr(selector(ALERTS, alertname=alertname, alertstate="firing", journey=journey.name))
    )
    return [built_in, alerts]


def dashboard(
    spec: Spec,
    journey: Journey,
    kind: str,
    title: str,
    description: str,
    layout: Layout,
    alerts: tuple[str, Matcher, str] = ("CX alerts", Re("Cx.*"), "orange"),
) -> dm.Dashboard:
    """The dashboard of ``journey`` of ``kind`` with ``layout``'s panels; ``alerts`` (name,
    alertname matcher, colour) are drawn as annotations while they fire."""
    links = [
        builders.DashboardLink(f"{journey.name}: {other}")
        .type(dm.DashboardLinkType("link"))
        .url(f"/d/{dashboard_uid(journey.name, other)}")
        .include_vars(True)
        .keep_time(True)
        .icon("dashboard")
        .tooltip(f"the {other} dashboard of this journey")
        .as_dropdown(False)
        .target_blank(False)
        .tags([])
        for other in KINDS
        if other != kind
    ]
    board: dm.Dashboard = (
        builders.Dashboard(title)
        .uid(dashboard_uid(journey.name, kind))
        .description(description)
        .tags(sorted({TAG, spec.service, journey.name}))
        .editable()
        .tooltip(dm.DashboardCursorSync(1))
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .timepicker(builders.TimePicker().refresh_intervals(["30s", "1m", "5m", "15m", "1h"]))
        .variables(_variables(spec, journey))
        .annotations(_annotations(journey, *alerts))
        .links(links)
        .build()
    )
    board.panels = list(layout.panels)
    return board
