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
from cxmetrics.dashboards.queries import selector
from cxmetrics.spec import names
from cxmetrics.spec.ids import dashboard_uid, folder_uid
from cxmetrics.spec.model import Spec
from tests.helpers.paths import EXAMPLE_SPEC, ROOT

SCHEMAS = ROOT / "tests" / "data" / "grafana-schema"
COMMITTED = ROOT / "dashboards"
CLI = Path(sys.executable).with_name("cxmetrics")
UIDS = [
    "cx-bill_inquiry-overview",
    "cx-bill_inquiry-steps",
    "cx-transfer-overview",
    "cx-transfer-steps",
    "cx-loan_application-overview",
    "cx-loan_application-steps",
    "cx-loan_application-followups",  # a journey with a key step (dashboards/followups.py)
    "cx-contact_centre-overview",
    "cx-contact_centre-steps",
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

    found = errors("dashboard", "Dashboard", board, board["uid"])
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
        "Quality per step",
        "CX score per step",
        "Good steps per step",
        "Accuracy per step",
        "CX score over time",
        "Good steps over time",
        "Objectives over 28d and alerts",
        "Good steps over 28d",
        "Error budget left (28d)",
        "Error-budget burn rate",
        "CX alerts",
    ]
    step_row = [
        "Latency",
        "Within target",
        "Apdex",
        "Errors",
        "Good steps",
        "CX score",
        "p95 vs baseline",
        "Within target and Apdex",
        "Steps by channel",
        "Recent vs baseline",
        "Errors",
    ]
    checks = ["Accuracy by check", "Failing checks"]
    assert by_uid["cx-bill_inquiry-steps"] == [
        "All steps",
        "p95 latency against target",
        "Within target",
        "login: target 800 ms",
        *step_row,
        "bill_total: target 1 s",
        *step_row,
        "bill_detail: target 1.5 s",
        *step_row,
        *checks,
    ]
    assert by_uid["cx-contact_centre-steps"][-len(step_row) - 3 :] == [
        "issue_resolved: target 5 min",
        *step_row,
        *checks,
    ]


def _panel(boards: list[dict[str, Any]], uid: str, title: str, nth: int = 0) -> dict[str, Any]:
    board = next(b for b in boards if b["uid"] == uid)
    panel: dict[str, Any] = [p for p in board["panels"] if p["title"] == title][nth]
    return panel


def _lights(panel: dict[str, Any]) -> list[tuple[float, str]]:
    return [
        (s["value"], s["color"]) for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    ]


def test_thresholds_and_units_come_from_the_spec(boards: list[dict[str, Any]]) -> None:
    latency = _panel(boards, "cx-bill_inquiry-steps", "Latency", 2)  # bill_detail: T 1.5 s
    assert latency["fieldConfig"]["defaults"]["unit"] == "s"
    assert _lights(latency) == [(0, "green"), (1.5, "orange"), (6.0, "red")]
    assert latency["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] == {"mode": "line+area"}
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
    good = _panel(boards, "cx-transfer-overview", "Good steps per step")
    assert _lights(good) == [(0, "red"), (pytest.approx(0.9), "orange"), (0.95, "green")]
    regression = _panel(boards, "cx-transfer-steps", "p95 vs baseline")
    assert _lights(regression) == [(-1.0, "green"), (0.05, "orange"), (0.1, "red")]
    accuracy = _panel(boards, "cx-bill_inquiry-steps", "Accuracy by check")
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
    for board in boards:
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert sorted(variables) == ["channel", "datasource"]
        assert variables["datasource"]["current"]["value"] == "cx-prometheus"
        assert variables["channel"]["allValue"] == ".*"
        expected = "phone" if "contact_centre" in board["uid"] else "app,web,phone,branch"
        assert variables["channel"]["query"] == expected
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        annotation = board["annotations"]["list"][1]
        journey = board["uid"].split("-")[1]
        alert = (
            f'alertname="{names.ALERT_LATENCY}"'
            if board["uid"].endswith("steps")
            else f'alertname="{names.ALERT_FOLLOWUP_LAG}"'
            if board["uid"].endswith("followups")
            else 'alertname=~"Cx.*"'
        )
        assert annotation["expr"] == f'ALERTS{{{alert},alertstate="firing",journey="{journey}"}}'


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
    known |= {
        f"{m}{s}"
        for m, (kind, _, _) in names.METRICS.items()
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
    assert len(used) == 8 and used <= recorded  # p50/p95 recent/baseline, conversion x2, burn x2
    assert names.ALERT_LATENCY in alerts  # the annotation of the step view


def test_duration_histogram_is_never_aggregated_across_steps(boards: list[dict[str, Any]]) -> None:
    exprs = [
        t["expr"]
        for b in boards
        for p in b["panels"]
        for t in p.get("targets", [])
        if f"{names.STEP_DURATION}_bucket" in t["expr"]
    ]
    assert len(exprs) == 4 + 12 * 3  # p95/target per journey's "All steps" + p50/95/99 per step
    for expr in exprs:
        assert re.findall(r"sum by \(([^)]*)\) \(rate\(cx_step_duration_seconds_bucket", expr) == [
            "journey, step, le"
        ]


def test_selector_refuses_a_label_the_metric_does_not_carry() -> None:
    with pytest.raises(ValueError, match="cx_step_duration_seconds has no label 'channel'"):
        selector(names.STEP_DURATION, channel="app")
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
        f"wrote 9 dashboards to {out}: " + ", ".join(f"{u}.json" for u in UIDS),
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(f"{u}.json" for u in UIDS), "mine.json"]
    )
    assert all((out / f"{b['uid']}.json").read_text() == render(b) for b in boards)
    check = cli("dashboards", str(EXAMPLE_SPEC), "-o", str(out), "--check")
    assert (check.returncode, check.stdout) == (
        0,
        f"ok: 9 dashboards in {out} match {EXAMPLE_SPEC}\n",
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
