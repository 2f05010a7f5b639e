"""The generated dashboards: Grafana's published schemas, the committed copies, determinism,
names, thresholds from the spec, and the ``cxmetrics dashboards`` command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from cxmetrics.dashboards import build_dashboards, content_digest, recorded_digest, render
from cxmetrics.dashboards.frame import ALERT_ANNOTATION
from cxmetrics.dashboards.queries import selector
from cxmetrics.spec import names
from cxmetrics.spec.ids import dashboard_uid, folder_uid
from cxmetrics.spec.model import Spec
from tests.helpers.paths import EXAMPLE_SPEC, ROOT

SCHEMAS = ROOT / "tests" / "data" / "grafana-schema"
COMMITTED = ROOT / "dashboards"
CLI = Path(sys.executable).with_name("cxmetrics")
STEPS = {
    "bill_inquiry": ["login", "bill_total", "bill_detail"],
    "transfer": ["payee", "amount", "confirm", "receipt"],
    "loan_application": ["apply", "upload_documents", "sign"],
    "contact_centre": ["call_answered", "issue_resolved"],
}
UIDS = [
    "cx-bank_app-home",
    "cx-bill_inquiry-overview",
    "cx-bill_inquiry-steps",
    "cx-transfer-overview",
    "cx-transfer-steps",
    "cx-loan_application-overview",
    "cx-loan_application-steps",
    "cx-loan_application-followups",  # a journey with a key step (dashboards/followups.py)
    "cx-contact_centre-overview",
    "cx-contact_centre-steps",
    "cx-contact_centre-contact",  # a journey with a contact block (dashboards/contact.py)
]


@cache
def validator(schema: str, definition: str) -> jsonschema.Draft7Validator:
    document = json.loads((SCHEMAS / f"{schema}.jsonschema.json").read_text())
    return jsonschema.Draft7Validator(
        {"$ref": f"#/definitions/{definition}", "definitions": document["definitions"]}
    )


def schema_errors(board: dict[str, Any]) -> list[str]:
    def errors(schema: str, definition: str, value: Any, where: str) -> list[str]:
        return [
            f"{where}/{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
            for e in validator(schema, definition).iter_errors(value)
        ]

    # Grafana's dashboard kind ends AnnotationQuery with a catch-all for the data source's own
    # fields; the published JSON schema closes it and lists only ``expr``. The Prometheus
    # annotation fields (title, text, tags) are checked by name here and the rest by the schema.
    document = json.loads(json.dumps(board))
    for annotation in document["annotations"]["list"]:
        if "expr" in annotation:
            extra = {k: annotation.pop(k) for k in list(annotation) if k in ALERT_ANNOTATION}
            assert extra == ALERT_ANNOTATION, annotation["name"]
    found = errors("dashboard", "Dashboard", document, board["uid"])
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        where = f"{board['uid']}/{panel['id']} {panel['title']}"
        found += errors(panel["type"], "Options", panel.get("options"), where + " options")
        definitions = json.loads((SCHEMAS / f"{panel['type']}.jsonschema.json").read_text())
        if "FieldConfig" in definitions["definitions"]:
            found += errors(
                panel["type"],
                "FieldConfig",
                panel["fieldConfig"]["defaults"].get("custom", {}),
                where + " custom",
            )
        for target in panel["targets"]:
            found += errors("prometheus", "dataquery", target, where + " target")
    return found


@pytest.fixture(scope="module")
def boards(example_spec: Spec) -> list[dict[str, Any]]:
    return build_dashboards(example_spec)


def test_every_dashboard_validates_against_grafanas_schemas(boards: list[dict[str, Any]]) -> None:
    assert [b["uid"] for b in boards] == UIDS
    panel_types = {p["type"] for b in boards for p in b["panels"]}
    assert panel_types == {"row", "stat", "bargauge", "timeseries", "table"}
    assert all(p.get("options") for b in boards for p in b["panels"] if p["type"] != "row")
    assert [e for board in boards for e in schema_errors(board)] == []


def test_schema_validation_can_fail(boards: list[dict[str, Any]]) -> None:
    broken = json.loads(json.dumps(boards[0]))
    broken["panels"][1]["options"]["colorMode"] = "rainbow"
    broken["panels"][1]["targets"][0]["expr"] = 42
    del broken["templating"]
    assert len(schema_errors(broken)) == 3


def test_committed_dashboards_are_what_the_generator_writes(boards: list[dict[str, Any]]) -> None:
    committed = {p.name: p.read_text(encoding="utf-8") for p in COMMITTED.glob("*.json")}
    generated = {f"{b['uid']}.json": render(b) for b in boards}
    assert sorted(committed) == sorted(generated), (
        "regenerate: cxmetrics dashboards examples/bank/cxmetrics.yaml -o dashboards"
    )
    stale = [name for name in generated if committed[name] != generated[name]]
    assert stale == [], (
        "regenerate: cxmetrics dashboards examples/bank/cxmetrics.yaml -o dashboards"
    )


def test_generation_is_deterministic_with_stable_ids_and_no_overlaps(
    example_spec: Spec, boards: list[dict[str, Any]]
) -> None:
    again = build_dashboards(example_spec)
    assert [render(b) for b in again] == [render(b) for b in boards]
    for board in boards:
        panels = board["panels"]
        assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
        cells: set[tuple[int, int]] = set()
        for p in panels:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24
            mine = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not cells & mine, f"{board['uid']}: panel {p['id']} overlaps another"
            cells |= mine
        assert content_digest(board) == recorded_digest(board)


def test_uids_are_derived_from_the_spec_and_fit_grafana() -> None:
    assert dashboard_uid("bill_inquiry", "overview") == "cx-bill_inquiry-overview"
    long_a, long_b = "a" * 50 + "_first", "a" * 50 + "_second"
    uid_a, uid_b = dashboard_uid(long_a, "overview"), dashboard_uid(long_b, "overview")
    assert len(uid_a) == len(uid_b) == 40 and uid_a != uid_b
    assert uid_a == dashboard_uid(long_a, "overview") and uid_a.endswith("-overview")
    long_service = Spec.model_validate(
        {"service": "x" * 60, "journeys": [{"name": "j", "steps": [{"name": "s", "target": "1s"}]}]}
    )
    assert len(folder_uid(long_service)) == 40


def test_panels_of_each_dashboard(boards: list[dict[str, Any]]) -> None:
    by_uid = {b["uid"]: [p["title"] for p in b["panels"]] for b in boards}
    assert by_uid["cx-bank_app-home"] == [
        "Journeys against their objectives",
        "Journeys meeting their objective",
        "Journeys: status against objectives",
        "Worst steps by customer impact",
        "Worst 10 steps by customer impact",
        "This week against last, and the last 28 days",
        "Journeys started vs last week",
        "Good steps vs last week",
        "Customers with a bad step vs last week",
        "Good steps over 28 days",
        "By segment",
        "Good steps by segment",
        "Customers with a bad step by segment",
        "Journeys started by segment",
        "By stage",
        "Good steps by stage",
        "Customers with a bad step by stage",
        "Journeys started by stage",
    ]
    assert by_uid["cx-bill_inquiry-overview"] == [
        "bill_inquiry in the selected time range",
        "CX score",
        "Good steps",
        "Journeys started",
        "Completed",
        "Abandoned",
        "CX alerts firing",
        "Funnel",
        "Step volume",
        "Conversion to the next step",
        "Conversion over time",
        "Conversion change vs baseline",
        "Journey time",
        "Journey time over time",
        "Quality per step",
        "CX score per step",
        "Good steps per step",
        "Accuracy per step",
        "CX score over time",
        "Good steps over time",
        "Customers let down, and this week against last",
        "Abandoned journeys",
        "Journeys started vs last week",
        "Good steps vs last week",
        "Abandoned vs last week",
        "Customers with a bad step over 28d",
        "Customers with a bad step per step",
        "Failed steps per step",
        "Frustrated customers per step",
        "Failed accuracy checks per step",
        "Voice of the customer",
        "NPS",
        "NPS responses",
        "CSAT",
        "CSAT responses",
        "Complaint rate",
        "Complaints",
        "By customer segment",
        "Journeys started by segment",
        "Good steps by segment",
        "Within target by segment",
        "NPS by segment",
        "Where customers go, and what they say",
        "Step transitions (from → to)",
        "CSAT by last step",
        "NPS by last step",
        "Objectives over 28d and alerts",
        "Good steps over 28d (recorded)",
        "Error budget left (28d)",
        "Error-budget burn rate",
        "CX alerts",
    ]
    assert by_uid["cx-bill_inquiry-steps"] == [
        "bill_inquiry / ${step}: latency and quality in the time range",
        "Latency of the step: p50, p95, p99",
        "Within target",
        "Apdex",
        "Error rate",
        "Good steps",
        "CX score",
        "p95 vs regression baseline",
        "bill_inquiry / ${step}: customers let down, this week against last, 28 days",
        "Customers with a bad step",
        "Failed steps",
        "Frustrated customers",
        "Failed accuracy checks",
        "Good steps vs last week",
        "p95 vs last week",
        "Bad steps vs last week",
        "Good steps over 28 days",
        "Customers with a bad step over 28 days",
        "bill_inquiry / ${step} over time",
        "Within target and Apdex over time",
        "Steps per second by channel",
        "Recent latency vs regression baseline",
        "Error rate over time",
        "Accuracy by check over time",
        "Failing checks by check",
    ]


def test_the_step_view_shows_one_step_with_unique_titles(boards: list[dict[str, Any]]) -> None:
    """Measured on main: 84-109 grid rows, 41-55 panels and nine panels titled "Latency" in one
    page per journey."""
    for board in boards:
        titles = [p["title"] for p in board["panels"] if p["type"] != "row"]
        assert len(titles) == len(set(titles)), board["uid"]
        if not board["uid"].endswith("-steps"):
            continue
        height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in board["panels"])
        assert height <= 40 and len(titles) <= 24, (board["uid"], height, len(titles))
        journey = board["uid"].removeprefix("cx-").removesuffix("-steps")
        step = next(v for v in board["templating"]["list"] if v["name"] == "step")
        assert step["query"] == ",".join(STEPS[journey])
        assert (step["multi"], step["includeAll"]) == (False, False)
        assert step["current"]["value"] == STEPS[journey][0]
        exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
        assert all('step="$step"' in e or 'step", "$step"' in e for e in exprs), journey


def _panel(boards: list[dict[str, Any]], uid: str, title: str, nth: int = 0) -> dict[str, Any]:
    board = next(b for b in boards if b["uid"] == uid)
    panel: dict[str, Any] = [p for p in board["panels"] if p["title"] == title][nth]
    return panel


def _lights(panel: dict[str, Any]) -> list[tuple[float, str]]:
    return [
        (s["value"], s["color"]) for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    ]


def test_thresholds_and_units_come_from_the_spec(boards: list[dict[str, Any]]) -> None:
    latency = _panel(boards, "cx-bill_inquiry-steps", "Latency of the step: p50, p95, p99")
    assert latency["fieldConfig"]["defaults"]["unit"] == "s"
    assert latency["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] == {"mode": "line+area"}
    # the selected step's bands: an override on its series' names (bill_detail: T 1.5 s)
    bands = {
        tuple(o["matcher"]["options"]["names"]): o["properties"][0]["value"]["steps"]
        for o in latency["fieldConfig"]["overrides"]
        if o["properties"][0]["id"] == "thresholds"
    }
    assert bands[("bill_detail p50", "bill_detail p95", "bill_detail p99")] == [
        {"value": 0, "color": "green"},
        {"value": 1.5, "color": "orange"},
        {"value": 6.0, "color": "red"},
    ]
    assert [t["legendFormat"] for t in latency["targets"]] == [
        "{{step}} p50",
        "{{step}} p95",
        "{{step}} p99",
        "{{step}} target",
        "{{step}} tolerating",
    ]
    assert [t.get("exemplar", False) for t in latency["targets"]] == [
        True,
        True,
        True,
        False,
        False,
    ]
    timely = _panel(boards, "cx-contact_centre-steps", "Within target")  # objective 0.8
    assert timely["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert _lights(timely) == [(0, "red"), (pytest.approx(0.6), "orange"), (0.8, "green")]
    assert timely["targets"][0]["legendFormat"] == "{{step}}"
    good = _panel(boards, "cx-transfer-overview", "Good steps per step")
    assert _lights(good) == [(0, "red"), (pytest.approx(0.9), "orange"), (0.95, "green")]
    regression = _panel(boards, "cx-transfer-steps", "p95 vs regression baseline")
    assert regression["fieldConfig"]["overrides"][0]["matcher"]["options"]["names"] == ["payee"]
    assert regression["fieldConfig"]["overrides"][0]["properties"][0]["value"]["steps"] == [
        {"value": -1.0, "color": "green"},
        {"value": 0.05, "color": "orange"},
        {"value": 0.1, "color": "red"},
    ]
    accuracy = _panel(boards, "cx-bill_inquiry-steps", "Accuracy by check over time")
    overrides = {
        o["matcher"]["options"]["names"][0]: o["properties"][0]["value"]["steps"][2]
        for o in accuracy["fieldConfig"]["overrides"]
    }
    assert overrides == {
        "total_matches_details": {"value": 0.999, "color": "green"},
        "detail_consistent_with_total": {"value": 0.999, "color": "green"},
    }
    score = _panel(boards, "cx-bill_inquiry-overview", "CX score")
    assert "100 * (0.5 * (" in score["targets"][0]["expr"]
    assert (
        " + 0.3 * (" in score["targets"][0]["expr"] and " + 0.2 * (" in score["targets"][0]["expr"]
    )


def test_variables_and_annotations(boards: list[dict[str, Any]]) -> None:
    for board in boards[1:]:
        variables = {v["name"]: v for v in board["templating"]["list"]}
        journey = board["uid"].split("-")[1]
        step_view = board["uid"].endswith("steps")
        assert sorted(variables) == sorted(
            ["channel", "datasource", "journey", "service", *(["step"] if step_view else [])]
        )
        assert variables["datasource"]["current"]["value"] == "cx-prometheus"
        assert (variables["journey"]["type"], variables["journey"]["query"]) == (
            "constant",
            journey,
        )
        assert variables["channel"]["allValue"] == ".*"
        expected = "phone,web" if "contact_centre" in board["uid"] else "app,web,phone,branch"
        assert variables["channel"]["query"] == expected
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        annotation = board["annotations"]["list"][1]
        scope = ',step="$step"' if step_view else ""
        alert = (
            f'alertname="{names.ALERT_FOLLOWUP_LAG}"'
            if board["uid"].endswith("followups")
            else f'alertname="{names.ALERT_CONTACT_OBJECTIVE}"'
            if board["uid"].endswith("contact")
            else 'alertname=~"Cx.*"'
        )
        assert annotation["expr"] == (
            f'ALERTS{{{alert},alertstate="firing",service="$service",journey="{journey}"{scope}}}'
        )
        links = [link["url"] for link in board["links"]]
        assert links[0] == "/d/cx-bank_app-home"
    home = boards[0]
    assert [v["name"] for v in home["templating"]["list"]] == ["datasource", "service"]
    assert [link["url"] for link in home["links"]] == [
        f"/d/cx-{j}-{kind}" for j in STEPS for kind in ("overview", "steps")
    ]


def test_alert_annotations_have_title_text_and_tags_scoped_to_the_step(
    boards: list[dict[str, Any]],
) -> None:
    """Measured on main: the step view painted CxStepLatencyRegression on every step's panels
    (no step in the query) and never the accuracy alert that fired; no title, text or tags."""
    board = next(b for b in boards if b["uid"] == "cx-bill_inquiry-steps")
    annotation = board["annotations"]["list"][1]
    assert 'step="$step"' in annotation["expr"] and 'alertname=~"Cx.*"' in annotation["expr"]
    assert annotation["titleFormat"] == "{{alertname}}"
    assert annotation["textFormat"] == "{{journey}} / {{step}} {{check}} ({{severity}})"
    assert annotation["tagKeys"] == "alertname,journey,step,check,severity"


_NOT_METRICS = {
    "by",
    "on",
    "without",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "NaN",
}


def metric_names(expr: str) -> set[str]:
    text = re.sub(r'"[^"]*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    text = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    found = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][\w:]*", text):
        rest = text[match.end() :].lstrip()
        if not rest.startswith("(") and match.group() not in _NOT_METRICS:
            found.add(match.group())
    return found


def known_names(spec: Spec) -> set[str]:
    known = set(names.METRICS) | set(names.FOLLOWUP_METRICS) | {"ALERTS"}
    known |= set(names.CONTACT_METRICS)
    known |= {
        f"{m}{s}"
        for m, (kind, _, _) in (*names.METRICS.items(), *names.CONTACT_METRICS.items())
        if kind == "histogram"
        for s in ("_bucket", "_count", "_sum")
    }
    known |= {v for k, v in vars(names).items() if k.startswith("REC_") and isinstance(v, str)}
    quantiles = {q for j, s in spec.steps() for q in spec.regression(j, s).quantiles}
    known |= {
        names.rec_quantile(q, span) for q in quantiles for span in (names.RECENT, names.BASELINE)
    }
    known |= {
        f(w)
        for w in names.BURN_WINDOWS
        for f in (names.rec_bad_ratio, names.rec_accuracy_fail_ratio)
    }
    return known


def test_queries_name_only_exposed_metrics_or_rules(
    example_spec: Spec, boards: list[dict[str, Any]]
) -> None:
    assert metric_names(
        'sum by (step) (rate(cx_steps_total{step="a"}[5m])) / on (step) '
        "max by (step) (cx:x) or vector(1)"
    ) == {"cx_steps_total", "cx:x"}
    exprs = [t["expr"] for b in boards for p in b["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for b in boards for a in b["annotations"]["list"] if "expr" in a]
    used = set().union(*(metric_names(e) for e in exprs))
    assert used - known_names(example_spec) == set()
    assert {
        names.STEPS,
        names.GOOD_STEPS,
        names.TRANSITIONS,
        names.JOURNEYS_STARTED,
        names.ACCURACY_CHECKS,
        names.STEP_TARGET,
        f"{names.STEP_DURATION}_bucket",
        names.REC_CONVERSION,
        names.rec_bad_ratio("1h"),
        "ALERTS",
    } <= used


def test_rule_names_used_are_recorded_by_the_rules_generator(
    example_spec: Spec, boards: list[dict[str, Any]]
) -> None:
    from cxmetrics import rules

    document = yaml.safe_load(rules.render(rules.build(example_spec)))
    recorded = {r["record"] for g in document["groups"] for r in g["rules"] if "record" in r}
    alerts = {r["alert"] for g in document["groups"] for r in g["rules"] if "alert" in r}
    exprs = [t["expr"] for b in boards for p in b["panels"] for t in p.get("targets", [])]
    used = {n for e in exprs for n in metric_names(e) if n.startswith("cx:")}
    # p50/p95 recent/baseline, conversion x2, burn x2, the 5m rates of the 28-day panels
    assert len(used) == 10 and used <= recorded
    assert names.ALERT_LATENCY in alerts  # the annotation of the step view


SERVICE_MATCHER = 'service="$service"'
_SELECTOR = re.compile(r'(?<![\w:"])(cx[_:][\w:]*|ALERTS)\b(\{[^}]*\})?')


def unscoped(expr: str) -> list[str]:
    """The selectors of cx_* metrics, cx:* records and ALERTS in ``expr`` that do not match the
    dashboard's service."""
    return [
        m.group(0)
        for m in _SELECTOR.finditer(expr)
        if SERVICE_MATCHER not in (m.group(2) or "").strip("{}").split(",")
    ]


def test_every_selector_of_every_panel_is_scoped_by_the_service(
    boards: list[dict[str, Any]],
) -> None:
    assert unscoped('sum(rate(cx_steps_total{journey="j"}[5m])) / cx:x') == [
        'cx_steps_total{journey="j"}',
        "cx:x",
    ]
    assert unscoped('cx:x{service="$service",step="a"} or ALERTS{service="$service"}') == []
    exprs = [
        (b["uid"], p["title"], t["expr"])
        for b in boards
        for p in b["panels"]
        for t in p.get("targets", [])
    ]
    exprs += [
        (b["uid"], a["name"], a["expr"])
        for b in boards
        for a in b["annotations"]["list"]
        if "expr" in a
    ]
    assert len(exprs) > 250
    missing = [(uid, title, unscoped(e)) for uid, title, e in exprs if unscoped(e)]
    assert missing == []
    for board in boards:
        service = [v for v in board["templating"]["list"] if v["name"] == "service"]
        assert len(service) == 1 and service[0]["current"]["value"] == "bank_app", board["uid"]


def test_duration_histogram_is_never_aggregated_across_steps(boards: list[dict[str, Any]]) -> None:
    exprs = [
        t["expr"]
        for b in boards
        for p in b["panels"]
        for t in p.get("targets", [])
        if f"{names.STEP_DURATION}_bucket" in t["expr"]
    ]
    # per journey's step view: p50/95/99 of the selected step, and its p95 against last week
    assert len(exprs) == 4 * 4  # four journeys
    for expr in exprs:
        found = re.findall(
            r"sum by \(([^)]*)\) \((?:rate|increase)\(cx_step_duration_seconds_bucket", expr
        )
        assert found and set(found) == {"journey, step, le"}


def test_selector_refuses_a_label_the_metric_does_not_carry() -> None:
    with pytest.raises(ValueError, match="cx_step_duration_seconds has no label 'segment'"):
        selector(names.STEP_DURATION, segment="vip")
    with pytest.raises(ValueError, match="unknown metric 'cx_nope'"):
        selector("cx_nope", journey="j")


def cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, cwd=ROOT, timeout=60, **kwargs
    )


@pytest.mark.slow
def test_cli_writes_checks_and_prunes(tmp_path: Path, boards: list[dict[str, Any]]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "cx-renamed-overview.json").write_text(
        render({"uid": "x", "tags": ["cxmetrics-digest:0"]})
    )
    (out / "mine.json").write_text("{}")  # not ours: left alone
    result = cli("dashboards", str(EXAMPLE_SPEC), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"removed {out / 'cx-renamed-overview.json'} (no longer in the spec)",
        f"wrote 11 dashboards to {out}: " + ", ".join(f"{u}.json" for u in UIDS),
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(f"{u}.json" for u in UIDS), "mine.json"]
    )
    assert all((out / f"{b['uid']}.json").read_text() == render(b) for b in boards)
    check = cli("dashboards", str(EXAMPLE_SPEC), "-o", str(out), "--check")
    assert (check.returncode, check.stdout) == (
        0,
        f"ok: 11 dashboards in {out} match {EXAMPLE_SPEC}\n",
    )
    (out / "cx-transfer-steps.json").write_text("{}")
    drift = cli("dashboards", str(EXAMPLE_SPEC), "-o", str(out), "--check")
    assert drift.returncode == 1
    assert drift.stderr.startswith(f"out of date: {out / 'cx-transfer-steps.json'}\nerror: ")


@pytest.mark.slow
def test_cli_writes_grafana_file_provisioning(tmp_path: Path) -> None:
    result = cli(
        "dashboards",
        str(EXAMPLE_SPEC),
        "-o",
        str(tmp_path / "json"),
        "--provisioning",
        str(tmp_path / "provisioning"),
        "--prometheus-url",
        "http://prometheus:9090",
        "--scrape-interval",
        "30s",
        "--traces-datasource-uid",
        "tempo",
    )
    assert result.returncode == 0, result.stderr
    provider = yaml.safe_load(
        (tmp_path / "provisioning/dashboards/cxmetrics-bank_app.yaml").read_text()
    )
    assert provider == {
        "apiVersion": 1,
        "providers": [
            {
                "name": "cxmetrics-bank_app",
                "orgId": 1,
                "folder": "CX: bank_app",
                "folderUid": "cx-bank_app",
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {
                    "path": str((tmp_path / "json").resolve()),
                    "foldersFromFilesStructure": False,
                },
            }
        ],
    }
    source = yaml.safe_load(
        (tmp_path / "provisioning/datasources/cxmetrics-bank_app.yaml").read_text()
    )
    assert source == {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "cxmetrics Prometheus",
                "uid": "cx-prometheus",
                "type": "prometheus",
                "access": "proxy",
                "url": "http://prometheus:9090",
                "isDefault": False,
                "editable": False,
                "jsonData": {
                    "httpMethod": "POST",
                    "timeInterval": "30s",
                    "exemplarTraceIdDestinations": [{"name": "trace_id", "datasourceUid": "tempo"}],
                },
            }
        ],
    }
    board = json.loads((tmp_path / "json" / "cx-transfer-steps.json").read_text())
    variable = next(v for v in board["templating"]["list"] if v["name"] == "datasource")
    assert variable["current"]["value"] == source["datasources"][0]["uid"]


@pytest.mark.slow
def test_missing_grafana_extra_is_explained() -> None:
    # A fresh interpreter in which the [grafana] extra cannot be imported, as if not installed.
    blocked = (
        "import sys; sys.modules['grafana_foundation_sdk'] = None; "
        "sys.argv = ['cxmetrics', 'dashboards', sys.argv[1], '-o', sys.argv[2]]; "
        "from cxmetrics.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocked, str(EXAMPLE_SPEC), "/nonexistent"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "error: building dashboards needs grafana-foundation-sdk "
        "(grafana_foundation_sdk is missing); install it with: "
        "pip install 'cxmetrics[grafana]'\n"
    )


def _targets(board: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    return [(p, t["expr"]) for p in board["panels"] for t in p.get("targets", [])]


def test_home_view_ranks_steps_by_impact_rolls_up_tags_and_links_down(
    boards: list[dict[str, Any]],
) -> None:
    """Measured on main: no page listed all journeys, and spec tags were used nowhere."""
    home = boards[0]
    assert home["uid"] == "cx-bank_app-home"
    journeys = _panel(boards, "cx-bank_app-home", "Journeys: status against objectives")
    good = journeys["targets"][0]["expr"]
    assert all(f'journey="{j}"' in good for j in STEPS)
    assert "label_replace(100 * clamp(" in good and '"stage", "retain"' in good
    assert '"stage", "activate"' in good  # transfer's stage
    assert journeys["fieldConfig"]["defaults"]["links"][0]["url"] == (
        "/d/cx-${__data.fields.journey}-overview?${__url_time_range}"
    )
    status = _panel(boards, "cx-bank_app-home", "Journeys meeting their objective")
    assert " >= bool 0.95" in status["targets"][0]["expr"]
    assert status["fieldConfig"]["defaults"]["mappings"][0]["options"]["0"]["text"] == (
        "below objective"
    )
    worst = _panel(boards, "cx-bank_app-home", "Worst 10 steps by customer impact")
    impact = worst["targets"][0]["expr"]
    assert impact.startswith("topk(10, ")
    # customers with a bad step × times over the budget, per objective (bill_inquiry: 1 - 0.95)
    assert " * on (journey, step) (clamp(1 - " in impact and ") / 0.05)" in impact
    assert worst["fieldConfig"]["defaults"]["links"][0]["url"] == (
        "/d/cx-${__data.fields.journey}-steps?var-step=${__data.fields.step}&${__url_time_range}"
    )
    assert worst["options"]["sortBy"] == [{"displayName": "impact", "desc": True}]
    stage = _panel(boards, "cx-bank_app-home", "Good steps by stage")
    assert [t["legendFormat"] for t in stage["targets"]] == [
        "acquire (loan_application)",
        "activate (transfer)",
        "retain (bill_inquiry, contact_centre)",
    ]
    assert 'journey=~"bill_inquiry|contact_centre"' in stage["targets"][2]["expr"]


def test_every_headline_indicator_has_a_week_over_week_panel_saying_no_baseline_yet(
    boards: list[dict[str, Any]],
) -> None:
    """Measured on main: no ``offset 7d`` or time shift anywhere; "p95 vs baseline" and
    "Conversion change vs baseline" showed "no traffic" on a fresh install."""
    for board in boards:
        compared = [
            p
            for p in board["panels"]
            if "vs last week" in p["title"] or "baseline" in p["title"].lower()
        ]
        if board["uid"].endswith("-overview"):
            assert {p["title"] for p in compared} >= {
                "Journeys started vs last week",
                "Good steps vs last week",
                "Abandoned vs last week",
                "Conversion change vs baseline",
            }
        for panel in compared:
            if panel["type"] == "timeseries":
                continue
            nan = [
                m for m in panel["fieldConfig"]["defaults"]["mappings"] if m["type"] == "special"
            ]
            assert nan == [
                {
                    "type": "special",
                    "options": {
                        "match": "nan",
                        "result": {"text": "no baseline yet", "color": "blue", "index": 0},
                    },
                }
            ], panel["title"]
            expr = panel["targets"][0]["expr"]
            assert expr.endswith(" * 0 + NaN)"), panel["title"]
            if "vs last week" in panel["title"]:
                assert " offset 7d)" in expr, panel["title"]


def test_customers_affected_are_whole_numbers(boards: list[dict[str, Any]]) -> None:
    """Measured on main: "Failing checks" showed 29.65 (an extrapolated increase, no
    decimals)."""
    board = next(b for b in boards if b["uid"] == "cx-bill_inquiry-steps")
    failing = _panel(boards, "cx-bill_inquiry-steps", "Failing checks by check")
    assert failing["fieldConfig"]["defaults"]["decimals"] == 0
    assert failing["targets"][0]["expr"].startswith("sort_desc(round(")
    counts = [
        "Customers with a bad step",
        "Failed steps",
        "Frustrated customers",
        "Failed accuracy checks",
    ]
    for title in counts:
        panel = _panel(boards, board["uid"], title)
        assert panel["fieldConfig"]["defaults"]["decimals"] == 0, title
        assert "round(" in panel["targets"][0]["expr"], title
    abandoned = _panel(boards, "cx-bill_inquiry-overview", "Abandoned journeys")
    assert abandoned["targets"][0]["expr"].startswith("round(clamp_min(")
    assert 'step="bill_detail",outcome="ok"' in abandoned["targets"][0]["expr"]


def test_feedback_by_last_step_and_the_transition_matrix(boards: list[dict[str, Any]]) -> None:
    """Measured on main: no panel used cx_feedback_responses_total; no from → to matrix."""
    csat = _panel(boards, "cx-bill_inquiry-overview", "CSAT by last step")
    nps = _panel(boards, "cx-bill_inquiry-overview", "NPS by last step")
    assert (
        'cx_feedback_responses_total{service="$service",journey="bill_inquiry",scale="csat",'
        'score=~"4|5"}' in (csat["targets"][0]["expr"])
    )
    assert 'scale="nps",score=~"9|10"' in nps["targets"][0]["expr"]
    assert 'scale="nps",score=~"0|1|2|3|4|5|6"' in nps["targets"][0]["expr"]
    matrix = _panel(boards, "cx-bill_inquiry-overview", "Step transitions (from → to)")
    assert matrix["targets"][0]["expr"] == (
        "round(sum by (from_step, to_step) "
        '(increase(cx_step_transitions_total{service="$service",journey="bill_inquiry"}[$__range])))'
    )
    assert matrix["transformations"][-1] == {
        "id": "groupingToMatrix",
        "options": {
            "rowField": "from_step",
            "columnField": "to_step",
            "valueField": "Value",
            "emptyValue": "zero",
        },
    }


def test_28_day_panels_read_the_recorded_rates(boards: list[dict[str, Any]]) -> None:
    for uid, title in (
        ("cx-bank_app-home", "Good steps over 28 days"),
        ("cx-bill_inquiry-overview", "Good steps over 28d (recorded)"),
        ("cx-bill_inquiry-steps", "Good steps over 28 days"),
        ("cx-bill_inquiry-steps", "Customers with a bad step over 28 days"),
    ):
        expr = _panel(boards, uid, title)["targets"][0]["expr"]
        assert f"avg_over_time({names.REC_STEPS_RATE5M}{{" in expr, (uid, title)
        assert "[28d]" in expr and "increase(" not in expr, (uid, title)
