"""What every cxmetrics dashboard shares: uid, title, tags, variables, annotations, links, time.

Uids are derived from the spec (``cx-<journey>-overview``, ``cx-<journey>-steps``), so a
dashboard keeps its address, bookmarks and links across regenerations.
"""

from __future__ import annotations

import hashlib

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.models import dashboard as dm

from .. import names
from ..spec import Journey, Spec
from .panels import DATASOURCE, DATASOURCE_VAR, Layout
from .queries import ALERTS, CHANNEL_VAR, Matcher, Re, selector

DATASOURCE_UID = "cx-prometheus"
DATASOURCE_NAME = "cxmetrics Prometheus"
TAG = "cxmetrics"
UID_MAX = 40  # Grafana's limit on dashboard and folder uids
KINDS = ("overview", "steps")


def dashboard_uid(journey: str, kind: str) -> str:
    """``cx-<journey>-<kind>``; a journey name too long for Grafana's 40-character uid keeps
    its head plus a digest of the whole name, so the uid stays stable and unique."""
    uid = f"cx-{journey}-{kind}"
    if len(uid) <= UID_MAX:
        return uid
    digest = hashlib.sha256(journey.encode()).hexdigest()[:8]
    keep = UID_MAX - len(f"cx--{digest}-{kind}")
    return f"cx-{journey[:keep]}-{digest}-{kind}"


def folder_uid(spec: Spec) -> str:
    uid = f"cx-{spec.service}"
    if len(uid) <= UID_MAX:
        return uid
    return f"cx-{spec.service[:27]}-{hashlib.sha256(spec.service.encode()).hexdigest()[:8]}"


def folder_title(spec: Spec) -> str:
    return f"CX: {spec.service}"


def _variables(spec: Spec, journey: Journey) -> list[builders.QueryVariable
                                                      | builders.DatasourceVariable]:
    datasource = (
        builders.DatasourceVariable(DATASOURCE_VAR).label("Data source").type("prometheus")
        .current(dm.VariableOption(text=DATASOURCE_NAME, value=DATASOURCE_UID))
        .hide(dm.VariableHide.DONT_HIDE)
    )
    channels = (
        builders.QueryVariable(CHANNEL_VAR).label("Channel").datasource(DATASOURCE)
        .query(f"label_values({selector(names.STEPS, journey=journey.name)}, {CHANNEL_VAR})")
        .description("Channels seen for this journey; panels on accuracy checks and step "
                     "transitions count every channel (those series carry no channel label).")
        .multi(True).include_all(True).all_value(".*")
        .current(dm.VariableOption(text="All", value="$__all"))
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )
    return [datasource, channels]


def _annotations(journey: Journey, name: str, alertname: Matcher,
                 colour: str) -> list[builders.AnnotationQuery]:
    built_in = (
        builders.AnnotationQuery().name("Annotations & Alerts").built_in(1).type("dashboard")
        .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True).hide(True).icon_color("rgba(0, 211, 255, 1)")
    )
    alerts = (
        builders.AnnotationQuery().name(name).datasource(DATASOURCE).enable(True).hide(False)
        .icon_color(colour)
        .expr(selector(ALERTS, alertname=alertname, alertstate="firing", journey=journey.name))
    )
    return [built_in, alerts]


def dashboard(spec: Spec, journey: Journey, kind: str, title: str, description: str,
              layout: Layout,
              alerts: tuple[str, Matcher, str] = ("CX alerts", Re("Cx.*"), "orange"),
              ) -> dm.Dashboard:
    """The dashboard of ``journey`` of ``kind`` with ``layout``'s panels; ``alerts`` (name,
    alertname matcher, colour) are drawn as annotations while they fire."""
    links = [
        builders.DashboardLink(f"{journey.name}: {other}").type(dm.DashboardLinkType.LINK)
        .url(f"/d/{dashboard_uid(journey.name, other)}").include_vars(True).keep_time(True)
        .icon("dashboard").tooltip(f"the {other} dashboard of this journey")
        .as_dropdown(False).target_blank(False).tags([])
        for other in KINDS if other != kind
    ]
    board = (
        builders.Dashboard(title).uid(dashboard_uid(journey.name, kind)).description(description)
        .tags(sorted({TAG, spec.service, journey.name}))
        .editable().tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now").refresh("1m").timezone("browser")
        .timepicker(builders.TimePicker().refresh_intervals(["30s", "1m", "5m", "15m", "1h"]))
        .variables(_variables(spec, journey))  # type: ignore[arg-type]
        .annotations(_annotations(journey, *alerts))  # type: ignore[arg-type]
        .links(links)  # type: ignore[arg-type]
        .build()
    )
    board.panels = list(layout.panels)  # type: ignore[arg-type]
    return board
