"""What every cxmetrics dashboard shares: uid, title, tags, variables, annotations, links, time."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.models import dashboard as dm

from ..analysis.catalogue import Matcher, Re
from ..spec.ids import DATASOURCE_NAME, DATASOURCE_UID, KINDS, TAG, dashboard_uid, home_uid
from ..spec.model import Journey, Spec
from .panels import DATASOURCE, DATASOURCE_VAR, Layout
from .queries import ALERTS, CHANNEL_VAR, JOURNEY_VAR, SERVICE, SERVICE_VAR, STEP_VAR, selector

#: How an alert annotation reads (Grafana's Prometheus annotation fields; the published dashboard
#: schema lists only ``expr`` of them, Grafana keeps the rest as the data source's own).
ALERT_ANNOTATION = {
    "titleFormat": "{{alertname}}",
    "textFormat": "{{journey}} / {{step}} {{check}} ({{severity}})",
    "tagKeys": "alertname,journey,step,check,severity",
    "useValueForTime": False,
}


def service_variable(spec: Spec) -> builders.CustomVariable:
    """The ``service`` every query selects: the spec's, by default and as the only choice."""
    variable: builders.CustomVariable = (
        builders.CustomVariable(SERVICE_VAR)
        .label("Service")
        .values(spec.service)
        .options([dm.VariableOption(text=spec.service, value=spec.service, selected=True)])
        .description(
            "The spec's service: every query selects its series only, so services sharing "
            "journey and step names never mix."
        )
        .multi(False)
        .include_all(False)
        .current(dm.VariableOption(text=spec.service, value=spec.service))
    )
    return variable


def _variables(
    spec: Spec, journey: Journey, step_variable: bool
) -> list[builders.CustomVariable | builders.DatasourceVariable | builders.ConstantVariable]:
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
            "Channels declared for this journey in the spec. Panels whose description says "
            "'all channels' (accuracy checks, transitions, conversion, feedback, objectives) "
            "count every channel whatever is selected."
        )
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(text="All", value="$__all"))
    )
    variables: list[
        builders.CustomVariable | builders.DatasourceVariable | builders.ConstantVariable
    ] = [
        datasource,
        service_variable(spec),
        builders.ConstantVariable(JOURNEY_VAR).value(journey.name).label("Journey"),
        channels,
    ]
    if step_variable:
        first = journey.steps[0].name
        variables.append(
            builders.CustomVariable(STEP_VAR)
            .label("Step")
            .values(",".join(journey.step_names))
            .options(
                [
                    dm.VariableOption(text=s, value=s, selected=s == first)
                    for s in journey.step_names
                ]
            )
            .description("The step this view shows, in journey order.")
            .multi(False)
            .include_all(False)
            .current(dm.VariableOption(text=first, value=first))
        )
    return variables


def _annotations(
    journey: Journey, name: str, alertname: Matcher, colour: str, step_variable: bool
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
        .expr(
            selector(
                ALERTS,
                alertname=alertname,
                alertstate="firing",
                service=SERVICE,
                journey=journey.name,
                **({"step": f"${STEP_VAR}"} if step_variable else {}),
            )
        )
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
    step_variable: bool = False,
) -> dm.Dashboard:
    """The dashboard of ``journey`` of ``kind`` with ``layout``'s panels; ``alerts`` (name,
    alertname matcher, colour) are drawn as annotations while they fire (only the selected
    step's with ``step_variable``, which adds the ``step`` variable)."""
    home = (
        builders.DashboardLink(f"{spec.service}: all journeys")
        .type(dm.DashboardLinkType("link"))
        .url(f"/d/{home_uid(spec)}")
        .include_vars(False)
        .keep_time(True)
        .icon("dashboard")
        .tooltip("every journey, its status and the worst steps")
        .as_dropdown(False)
        .target_blank(False)
        .tags([])
    )
    links = [home] + [
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
        .variables(_variables(spec, journey, step_variable))
        .annotations(_annotations(journey, *alerts, step_variable))
        .links(links)
        .build()
    )
    board.panels = list(layout.panels)
    return board
