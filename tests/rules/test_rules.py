"""Rule generation: what the rule file says for the example spec, the names it may use, its
determinism, the two output formats, and specs that cannot give valid rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from cxmetrics._exceptions import SpecError
from cxmetrics.cli.rules import rules as rules_command
from cxmetrics.rules import build, render
from cxmetrics.rules.overlay import merge, parse_with_overrides
from cxmetrics.rules.promtest import promtool
from cxmetrics.spec import names
from cxmetrics.spec.ids import dashboard_uid
from cxmetrics.spec.load import load_spec
from cxmetrics.spec.model import Spec
from tests.helpers.paths import EXAMPLE_SPEC

J, S = "bill_inquiry", "bill_detail"
SVC = "bank_app"
SEL = f'{{service="{SVC}"}}'
ON = "on (service, journey, step)"


def _unchanged(window: str) -> str:
    """The clause holding a quantile or latency alert back across a target change."""
    raw = f"cx_step_target_seconds{SEL}"
    return (
        f"\nunless {ON} (changes(cx:step_target:seconds{SEL}[{window}]) > 0 or "
        f"max by (service, journey, step) ({raw}) != min by (service, journey, step) ({raw}))"
    )


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load(text: str) -> Any:
    return yaml.load(text, Loader=_LOADER)


def _rules(spec: Spec) -> list[dict[str, Any]]:
    document = _load(render(build(spec)))
    return [dict(r, group=g["name"]) for g in document["groups"] for r in g["rules"]]


def _named(rules: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in rules if r.get("record", r.get("alert")) == name]


@pytest.fixture(scope="module")
def example_rules() -> list[dict[str, Any]]:
    return _rules(load_spec(EXAMPLE_SPEC))


def test_latency_rules_compare_recent_quantiles_with_the_baseline_for_every_step(
    example_rules: list[dict[str, Any]],
) -> None:
    rules = example_rules
    # one rule over every step of the service; the raw buckets are read once per window, by
    # channel; every quantile reads the record
    [buckets] = _named(rules, "cx:step_duration_seconds_bucket:rate_recent")
    assert buckets["expr"] == (
        "sum by (service, journey, step, channel, le) "
        f"(rate(cx_step_duration_seconds_bucket{SEL}[10m]))"
    )
    assert "labels" not in buckets
    [base_buckets] = _named(rules, "cx:step_duration_seconds_bucket:rate_baseline")
    assert base_buckets["expr"] == (
        "sum by (service, journey, step, channel, le) "
        f"(rate(cx_step_duration_seconds_bucket{SEL}[10m] offset 1d))"
    )
    [p95] = _named(rules, "cx:step_duration_seconds:p95_recent")
    assert p95["expr"] == (
        "histogram_quantile(0.95, sum by (service, journey, step, le) "
        f"(cx:step_duration_seconds_bucket:rate_recent{SEL})) > 0" + _unchanged("10m")
    )
    [base] = _named(rules, "cx:step_duration_seconds:p95_baseline")
    assert base["expr"] == (
        "histogram_quantile(0.95, sum by (service, journey, step, le) "
        f"(cx:step_duration_seconds_bucket:rate_baseline{SEL})) > 0"
        + _unchanged("10m] offset 1d").replace("[10m] offset 1d]", "[10m] offset 1d")
    )
    alerts = _named(rules, names.ALERT_LATENCY)
    # one per quantile, judged within each channel, thresholds joined from the spec series
    assert [a["labels"] for a in alerts] == [
        {"severity": "ticket", "quantile": q} for q in ("0.95", "0.5")
    ]
    assert alerts[0]["for"] == "5m"
    declared = f'{{service="{SVC}",channel!="other"}}'
    on = "on (service, journey, step, channel)"
    step = f"{ON} group_left ()"
    assert alerts[0]["expr"] == (
        f"(cx:step_channel_duration_seconds:p95_recent{declared} / {on} "
        f"cx:step_channel_duration_seconds:p95_baseline{declared} - 1)\n"
        f"> {step} cx:step_min_change:ratio{SEL}\n"
        f"and {on} cx:step_channel_requests:rate_recent{SEL} * 600 >= {step} "
        f"cx:step_min_volume:steps{SEL}\n"
        f"and {on} cx:step_channel_requests:rate_baseline{SEL} * 600 >= {step} "
        f"cx:step_min_volume:steps{SEL}" + _unchanged("1d10m")
    )
    [by_channel] = _named(rules, "cx:step_channel_duration_seconds:p95_recent")
    assert by_channel["expr"] == (
        "histogram_quantile(0.95, sum by (service, journey, step, channel, le) "
        f"(cx:step_duration_seconds_bucket:rate_recent{SEL})) > 0" + _unchanged("10m")
    )
    assert sorted(alerts[0]["annotations"]) == [
        "baseline",
        "change",
        "current",
        "description",
        "runbook_url",
        "since",
        "summary",
    ]
    assert alerts[0]["annotations"]["change"] == "+{{ $value | humanizePercentage }}"
    assert alerts[0]["annotations"]["summary"].startswith(
        "{{ $labels.journey }}/{{ $labels.step }} on {{ $labels.channel }}: p95 latency +"
    )


def test_every_step_s_alerts_keep_their_labels_and_wording(example_spec: Spec) -> None:
    """The generic rules' alerts, one per step, channel and quantile: the labels and the texts a
    rule written for the step had (the promtool suites check Prometheus renders them so)."""
    latency = [r for r in build(example_spec).instances() if r.alert == names.ALERT_LATENCY]
    step = [r for r in latency if (r.labels["journey"], r.labels["step"]) == (J, S)]
    assert [r.labels for r in step] == [
        {"service": SVC, "journey": J, "step": S, "channel": c, "severity": "ticket", "quantile": q}
        for q in ("0.95", "0.5")
        for c in ("app", "web", "phone", "branch")
    ]
    # every step × its journey's channels × 2 quantiles, from 2 rules
    plans = build(example_spec).plan.steps
    assert len(latency) == sum(2 * len(p.channels) for p in plans) == 88
    description = (
        step[1]
        .annotations["description"]
        .expand({"volume": 120.0, "since": 0.0, "baseline": 1.0, "current": 1.2, "change": 0.2})
    )
    assert description == (
        "The p95 latency of step bill_detail in journey bill_inquiry on channel web over the last "
        "10m is above its baseline (the same 10m window one day earlier) by more than the +10% "
        "threshold, measured on 120 web steps, since 1970-01-01 00:00:00 +0000 UTC."
    )


def test_a_trailing_baseline_ends_where_the_recent_window_starts() -> None:
    spec = parse_with_overrides(
        EXAMPLE_SPEC.read_text(), ["defaults: {regression: {baseline: trailing 6h}}"]
    )
    [base] = _named(_rules(spec), "cx:step_duration_seconds_bucket:rate_baseline")
    assert base["expr"] == (
        "sum by (service, journey, step, channel, le) "
        f"(rate(cx_step_duration_seconds_bucket{SEL}[6h] offset 10m))"
    )
    [p95] = _named(_rules(spec), "cx:step_duration_seconds:p95_baseline")
    assert p95["expr"].endswith(
        _unchanged("6h] offset 10m").replace("[6h] offset 10m]", "[6h] offset 10m")
    )


def test_burn_rate_alerts_follow_the_sre_workbook_table(
    example_rules: list[dict[str, Any]],
) -> None:
    rules = example_rules
    burns = _named(rules, names.ALERT_GOOD_BURN)
    assert [
        (a["labels"]["long_window"], a["labels"]["short_window"], a["labels"]["severity"], a["for"])
        for a in burns
    ] == [("1h", "5m", "page", "2m"), ("6h", "30m", "page", "15m"), ("3d", "6h", "ticket", "3h")]
    budget = f"{ON} (1 - cx:step_objective:ratio{SEL})"
    assert burns[0]["expr"] == (
        f"(cx:step_bad:ratio_rate1h{SEL} / {budget} > 14.4\n"
        f"and {ON} cx:step_bad:ratio_rate5m{SEL} / {budget} > 14.4)\n"
        f"and {ON} sum by (service, journey, step) "
        f"(avg_over_time(cx:step_steps:rate5m{SEL}[1h])) * 3600 >= {ON} group_left () "
        f"cx:step_min_volume:steps{SEL}"
    )
    accuracy = _named(rules, names.ALERT_ACCURACY_BURN)
    assert [a["expr"].split(" > ")[1].split("\n")[0] for a in accuracy] == ["14.4", "6", "1"]
    check = "on (service, journey, step, check)"
    assert f"/ {check} (1 - cx:check_objective:ratio{SEL}) > 14.4" in accuracy[0]["expr"]
    [bad_1h] = _named(rules, "cx:step_bad:ratio_rate1h")
    # the 1h window averages the 5m rates recorded once per step
    by = "sum by (service, journey, step)"
    good = f"{by} (avg_over_time(cx:step_good_steps:rate5m{SEL}[1h]))"
    steps = f"{by} (avg_over_time(cx:step_steps:rate5m{SEL}[1h]))"
    assert bad_1h["expr"] == f"clamp(1 - ({good} or 0 * {steps}) / ({steps} > 0), 0, 1)"
    [bad_5m] = _named(rules, "cx:step_bad:ratio_rate5m")
    good = f"{by} (rate(cx_good_steps_total{SEL}[5m]))"
    steps = f"{by} (rate(cx_steps_total{SEL}[5m]))"
    assert bad_5m["expr"] == f"clamp(1 - ({good} or 0 * {steps}) / ({steps} > 0), 0, 1)"


def test_thresholds_are_the_spec_series_held_through_a_scrape_gap(
    example_rules: list[dict[str, Any]],
) -> None:
    # the max over the instances exposing it now, held for an hour when none does
    [exposed] = _named(example_rules, names.rec_exposed(names.REC_MIN_CHANGE))
    assert exposed["expr"] == f"max by (service, journey, step) (cx_step_min_change_ratio{SEL})"
    [held] = _named(example_rules, names.REC_MIN_CHANGE)
    now = f"cx:step_min_change:ratio_exposed{SEL}"
    assert held["expr"] == f"{now}\nor last_over_time({now}[1h])"
    # a step's next step (policy) is held only while no instance exposes another one
    [following] = _named(example_rules, names.REC_STEP_NEXT)
    now = f"cx:step_next:info_exposed{SEL}"
    assert following["expr"] == f"{now}\nor (last_over_time({now}[1h]) unless {ON} {now})"
    # one policy in the example spec: no rule selects by it
    assert not _named(example_rules, names.REC_STEP_POLICY)
    assert all("cx:step_policy:info" not in r["expr"] for r in example_rules)


def test_conversion_rules_relabel_transitions_to_step_and_to_step(
    example_rules: list[dict[str, Any]], example_spec: Spec
) -> None:
    rules = example_rules
    [conversion] = _named(rules, names.REC_CONVERSION)
    moved = (
        f"sum by (service, journey, from_step, to_step) (rate(cx_step_transitions_total{SEL}[10m]))"
    )
    assert conversion["expr"] == (
        "clamp((sum by (service, journey, step, to_step) "
        f'(label_replace({moved}, "step", "$1", "from_step", "(.*)")) '
        f"and on (service, journey, step, to_step) cx:step_next:info{SEL}) "
        f"/ {ON} group_left () "
        f"(sum by (service, journey, step) (cx:step_classes:rate_recent{SEL}) > 0), 0, 1)"
    )
    # cx_steps_total is read once per window, by class; rates and ratios sum the record
    [classes] = _named(rules, names.REC_CLASS_RATE)
    assert classes["expr"] == (
        "sum by (service, journey, step, channel, outcome, timeliness) "
        f"(rate(cx_steps_total{SEL}[10m]))"
    )
    raw = [r for r in rules if "(rate(cx_steps_total" in r["expr"]]
    assert [r["record"] for r in raw] == [
        names.REC_CLASS_RATE,
        names.REC_CLASS_RATE_BASELINE,
        names.REC_STEPS_RATE5M,
        names.rec_bad_ratio("5m"),
    ]
    assert len(_named(rules, names.ALERT_CONVERSION_DROP)) == 1
    drops = [r for r in build(example_spec).instances() if r.alert == names.ALERT_CONVERSION_DROP]
    assert [(d.labels["step"], d.labels["to_step"]) for d in drops] == [
        ("login", "bill_total"),
        ("bill_total", "bill_detail"),
        ("payee", "amount"),
        ("amount", "confirm"),
        ("confirm", "receipt"),
        ("apply", "upload_documents"),
        ("upload_documents", "sign"),
        ("call_answered", "issue_resolved"),
    ]


def test_every_ratio_guards_its_denominator_and_every_quantile_drops_nan(
    example_rules: list[dict[str, Any]],
) -> None:
    for rule in example_rules:
        expr = rule["expr"]
        if rule.get("record", "").startswith("cx:step_duration_seconds:"):
            assert f") > 0\nunless {ON} (changes(" in expr, expr
        elif ":ratio_" in rule.get("record", "") and not rule["group"].endswith(".spec"):
            assert expr.startswith("clamp("), expr
            assert re.search(
                r" / (on \(service, journey, step\) group_left \(\) )?\(.* > 0\), 0, 1\)$", expr
            ), expr


def test_histograms_are_only_ever_aggregated_per_step(example_rules: list[dict[str, Any]]) -> None:
    # the contact centre's call histograms are per journey (docs/contact-centre.md), not steps
    rules = [
        r for r in example_rules if not r.get("record", "").startswith(names.REC_CONTACT_PREFIX)
    ]
    bucket_rules = [r for r in rules if "_bucket" in r["expr"]]
    # recent/baseline bucket rates recorded once; p95/p50 × recent/baseline × per step and per
    # channel read the records — one rule each for all 12 steps
    assert len([r for r in bucket_rules if "(rate(" in r["expr"]]) == 2
    assert len(bucket_rules) == 2 + 4 * 2
    for rule in rules:
        for clause in re.findall(r"sum by \(([^)]*)\)", rule["expr"]):
            keys = clause.split(", ")
            assert keys[:2] == ["service", "journey"], rule
            if "le" in keys:
                assert "step" in keys, rule


def test_rules_name_only_exposed_metrics_and_declared_rule_names(
    example_rules: list[dict[str, Any]],
) -> None:
    rules = example_rules
    exposed = set()
    for metric, (kind, _, _) in names.METRICS.items():
        exposed |= {f"{metric}_bucket", f"{metric}_count"} if kind == "histogram" else {metric}
    declared = {
        names.REC_STEP_RATE,
        names.REC_STEP_RATE_BASELINE,
        names.REC_TIMELINESS,
        names.REC_APDEX,
        names.REC_GOOD,
        names.REC_ERRORS,
        names.REC_ACCURACY,
        names.REC_CONVERSION,
        names.REC_CONVERSION_BASELINE,
        names.REC_STEPS_RATE5M,
        names.REC_GOOD_RATE5M,
        names.REC_CHECKS_RATE5M,
        names.REC_STEP_TARGET,
        names.REC_BASELINE_MISSING,
        names.REC_CHANNEL_RATE,
        names.REC_CHANNEL_RATE_BASELINE,
        names.REC_CLASS_RATE,
        names.REC_CLASS_RATE_BASELINE,
        names.REC_STEP_OBJECTIVE,
        names.REC_CHECK_OBJECTIVE,
        names.REC_MIN_CHANGE,
        names.REC_MIN_VOLUME,
        names.REC_STEP_NEXT,
        *(
            names.rec_exposed(r)
            for r in (
                names.REC_STEP_OBJECTIVE,
                names.REC_CHECK_OBJECTIVE,
                names.REC_MIN_CHANGE,
                names.REC_MIN_VOLUME,
                names.REC_STEP_NEXT,
            )
        ),
        names.rec_bucket_rate(names.RECENT),
        names.rec_bucket_rate(names.BASELINE),
    }
    declared |= {
        f(q, s)
        for q in (0.95, 0.5)
        for s in (names.RECENT, names.BASELINE)
        for f in (names.rec_quantile, names.rec_channel_quantile)
    }
    declared |= {
        f(w)
        for w in names.BURN_WINDOWS
        for f in (names.rec_bad_ratio, names.rec_accuracy_fail_ratio)
    }
    declared |= {  # contact_centre's contact block
        names.rec_contact(i)
        for i in (
            "answer_rate",
            "service_level",
            "satisfaction",
            "transfer_rate",
            "ticket_rate",
            "complaint_rate",
            "first_contact_resolution",
            "abandon_rate",
            "asa",
            "aht",
            "p90_handle",
        )
    }
    assert {r["record"] for r in rules if "record" in r} == declared
    assert {r["alert"] for r in rules if "alert" in r} == {
        names.ALERT_LATENCY,
        names.ALERT_GOOD_BURN,
        names.ALERT_ACCURACY_BURN,
        names.ALERT_CONVERSION_DROP,
        names.ALERT_FOLLOWUP_LAG,  # loan_application/upload_documents is a key step
        names.ALERT_TARGET_CHANGED,
        names.ALERT_CONTACT_OBJECTIVE,  # contact_centre has a contact block
    }
    used = set()
    for rule in rules:
        used |= set(re.findall(r"\b(cx_[a-z_]+)\{", rule["expr"]))
        assert set(re.findall(r"\b(cx:[a-z0-9_:]+)\{", rule["expr"])) <= declared
    assert used == {
        "cx_step_duration_seconds_bucket",
        "cx_steps_total",
        "cx_good_steps_total",
        "cx_accuracy_checks_total",
        "cx_step_transitions_total",
        "cx_followups_oldest_due_seconds",
        "cx_step_target_seconds",
        "cx_step_objective_ratio",
        "cx_check_objective_ratio",
        "cx_step_min_change_ratio",
        "cx_step_min_volume",
        "cx_step_next_info",
        "cx_contacts_total",
        "cx_contact_answer_wait_seconds_count",
        "cx_contact_answer_wait_seconds_sum",
        "cx_contact_handle_seconds_bucket",
        "cx_contact_handle_seconds_count",
        "cx_contact_handle_seconds_sum",
        "cx_contact_flags_total",
        "cx_contact_resolutions_total",
        "cx_feedback_responses_total",
    }
    contact = {
        f"{m}{suffix}"
        for m in names.CONTACT_METRICS
        for suffix in (("_bucket", "_count", "_sum") if m.endswith("_seconds") else ("",))
    }
    assert used <= exposed | set(names.FOLLOWUP_METRICS) | contact


def test_objectives_whose_fast_burn_cannot_fire_leave_those_alerts_out(example_spec: Spec) -> None:
    ruleset = build(example_spec)
    assert ruleset.notes == (
        "journeys[contact_centre].steps[issue_resolved].checks[first_contact_resolution]"
        ".objective 0.7: the 14.4× (1h/5m), 6× (6h/30m) burn-rate alerts would need more than "
        "100% bad events and cannot fire; left out",
    )
    fcr = [
        r.labels
        for r in ruleset.instances()
        if r.alert == names.ALERT_ACCURACY_BURN and r.labels["check"] == "first_contact_resolution"
    ]
    assert [(x["long_window"], x["short_window"]) for x in fcr] == [("3d", "6h")]
    assert ruleset.count() == (59, 18)


def test_output_is_deterministic_with_a_header_naming_spec_and_fingerprint(
    example_spec: Spec,
) -> None:
    first, second = render(build(example_spec)), render(build(load_spec(EXAMPLE_SPEC)))
    assert first == second
    assert first.splitlines()[:4] == [
        f"# Prometheus rules generated by cxmetrics 0.1.0 from {example_spec.source}",
        f"# (service bank_app, spec fingerprint {example_spec.fingerprint}).",
        "# Do not edit: change the spec and run 'cxmetrics rules' again.",
        "groups:",
    ]
    groups = [g["name"] for g in _load(first)["groups"]]
    assert groups == [
        f"cxmetrics.bank_app.{kind}" for kind in ("spec", "indicators", "slo", "alerts")
    ] + ["cxmetrics.loan_application.followups", "cxmetrics.contact_centre.contact"]


def test_dashboard_link_uses_the_step_dashboard_uid() -> None:
    spec = parse_with_overrides(
        EXAMPLE_SPEC.read_text(), ["dashboard_url: https://grafana.bank.example/"]
    )
    [latency] = [
        r
        for r in build(spec).instances()
        if r.alert == names.ALERT_LATENCY
        and (r.labels["step"], r.labels["quantile"], r.labels["channel"]) == (S, "0.95", "app")
    ]
    # the latency alert opens the step dashboard on its step and channel
    assert latency.annotations["dashboard"].expand({}) == (
        "https://grafana.bank.example/d/cx-bill_inquiry-steps?var-step=bill_detail&var-channel=app"
    )
    [generic] = _named(_rules(spec), names.ALERT_LATENCY)[:1]
    assert generic["annotations"]["dashboard"] == (
        "https://grafana.bank.example/d/cx-{{ $labels.journey }}-steps"
        "?var-step={{ $labels.step }}&var-channel={{ $labels.channel }}"
    )
    [burn] = _named(_rules(spec), names.ALERT_GOOD_BURN)[:1]
    assert burn["annotations"]["dashboard"] == (
        "https://grafana.bank.example/d/cx-{{ $labels.journey }}-steps"
    )


def test_a_long_journey_name_links_to_its_digested_dashboard_uid() -> None:
    long = "a_journey_name_far_too_long_for_grafana"
    spec = parse_with_overrides(
        EXAMPLE_SPEC.read_text(),
        ["dashboard_url: https://g.example\njourneys: [{name: bill_inquiry}]"],
    )
    spec = spec.model_copy(
        update={"journeys": (spec.journeys[0].model_copy(update={"name": long}),)}
    )
    [generic] = _named(_rules(spec), names.ALERT_GOOD_BURN)[:1]
    uid = dashboard_uid(long, "steps")
    assert uid != f"cx-{long}-steps"
    assert generic["annotations"]["dashboard"] == (
        f'https://g.example/d/{{{{ if eq $labels.journey "{long}" }}}}{uid}'
        "{{ else }}cx-{{ $labels.journey }}-steps{{ end }}"
    )


def test_prometheus_operator_format_wraps_the_same_groups(example_spec: Spec) -> None:
    plain = _load(render(build(example_spec)))
    text = render(
        build(example_spec),
        "prometheus-operator",
        namespace="monitoring",
        labels={"release": "prom"},
    )
    assert text.startswith("# PrometheusRule generated by cxmetrics")
    document = _load(text)
    assert {k: document[k] for k in ("apiVersion", "kind", "metadata")} == {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "cxmetrics-bank-app",
            "namespace": "monitoring",
            "labels": {
                "app.kubernetes.io/managed-by": "cxmetrics",
                "app.kubernetes.io/part-of": "bank-app",
                "release": "prom",
            },
            "annotations": {"cxmetrics/spec-fingerprint": example_spec.fingerprint},
        },
    }
    assert document["spec"] == plain


@pytest.mark.slow
def test_promtool_checks_the_rule_file(tmp_path: Path, example_spec: Spec) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(render(build(example_spec)))
    code, out = promtool("check", "rules", str(path))
    assert (code, out.strip().splitlines()) == (
        0,
        [f"Checking {path}", "  SUCCESS: 77 rules found"],
    )


# -- overrides -----------------------------------------------------------------------------------


def test_overrides_merge_mappings_and_named_lists_by_name() -> None:
    base = {
        "defaults": {"regression": {"window": "10m", "for": "5m"}},
        "journeys": [
            {"name": "a", "steps": [{"name": "x", "target": "1s"}]},
            {"name": "b", "steps": []},
        ],
    }
    override = {
        "defaults": {"regression": {"window": "20s"}},
        "journeys": [{"name": "a", "steps": [{"name": "x", "target": "2s"}]}],
    }
    assert merge(base, override) == {
        "defaults": {"regression": {"window": "20s", "for": "5m"}},
        "journeys": [
            {"name": "a", "steps": [{"name": "x", "target": "2s"}]},
            {"name": "b", "steps": []},
        ],
    }


def test_an_override_goes_through_the_spec_validation() -> None:
    with pytest.raises(SpecError) as caught:
        parse_with_overrides(
            EXAMPLE_SPEC.read_text(),
            ["defaults: {regression: {windw: 1m}}"],
            "spec.yaml",
            ["short.yaml"],
        )
    assert [str(i) for i in caught.value.issues] == [
        "spec.yaml + short.yaml: defaults.regression.windw: unknown field 'windw' "
        "(did you mean 'window'?)"
    ]


# -- specs that cannot give valid rules ----------------------------------------------------------


def _run(*args: str) -> Any:
    return CliRunner().invoke(rules_command, list(args))


def _bad_spec(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    text = EXAMPLE_SPEC.read_text()
    assert old in text
    text = text.replace(old, new, 1)
    path = tmp_path / "cxmetrics.yaml"
    path.write_text(text)
    return path, text[: text.index(new)].count("\n") + 1


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "baseline: 1d ",
            "baseline: offset 5m",
            "defaults.regression.baseline",
            "an offset baseline of 5m overlaps the 10m regression window it is compared with "
            "(offset the baseline by at least the window, e.g. 'baseline: 1d', or use 'trailing 6h')",
        ),
        (
            "period: 28d",
            "period: 1d",
            "defaults.objectives.period",
            "an SLO period of 1d is shorter than the 3d window of the ticket burn-rate alert (SRE "
            "workbook) (use at least 3d; 28d or 30d is usual)",
        ),
        (
            "min_change: 0.10",
            "min_change: 1.5",
            "defaults.regression.min_change",
            "min_change 1.5 also sets the conversion-drop threshold, and the conversion from one step "
            "to the next cannot drop by 100% or more (use a value below 1 (0.1 = a 10% change))",
        ),
        (
            "window: 10m",
            "window: 1.5ms",
            "defaults.regression.window",
            "0.0015s is not a whole number of milliseconds, which Prometheus durations need (write "
            "e.g. '250ms', '10m' or '1d')",
        ),
        (
            "quantiles: [0.95, 0.5]",
            "quantiles: [0.95, 0.95]",
            "defaults.regression.quantiles",
            "a quantile is listed twice (list each quantile once, e.g. [0.95, 0.5])",
        ),
    ],
)
def test_a_spec_that_cannot_give_valid_rules_is_rejected_naming_the_field(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    spec, line = _bad_spec(tmp_path, old, new)
    out = tmp_path / "rules.yml"
    out.write_text("previous rules\n")
    result = _run(str(spec), "-o", str(out))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{spec}:{line}: {field}: {message}",
        f"error: {spec}: cannot generate rules; 1 problem(s), nothing written",
    ]
    assert out.read_text() == "previous rules\n"


def test_a_step_override_is_named_as_the_field_at_fault(tmp_path: Path) -> None:
    spec, line = _bad_spec(
        tmp_path,
        "        target: 1.5s\n",
        "        target: 1.5s\n        regression: {baseline: offset 1m}\n",
    )
    result = _run(str(spec))
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"{spec}:{line + 1}: journeys[bill_inquiry].steps[bill_detail].regression.baseline: an "
        "offset baseline of 1m overlaps the 10m regression window it is compared with (offset "
        "the baseline by at least the window, e.g. 'baseline: 1d', or use 'trailing 6h')"
    )


# -- the command ---------------------------------------------------------------------------------


def test_command_writes_the_rule_file_and_reports_what_it_left_out(tmp_path: Path) -> None:
    out = tmp_path / "rules.yml"
    result = _run(str(EXAMPLE_SPEC), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text() == render(build(load_spec(EXAMPLE_SPEC)))
    assert result.output.splitlines() == [
        "note: journeys[contact_centre].steps[issue_resolved].checks[first_contact_resolution]"
        ".objective 0.7: the 14.4× (1h/5m), 6× (6h/30m) burn-rate alerts would need more than "
        "100% bad events and cannot fire; left out",
        f"wrote 59 recording and 18 alerting rules in 6 groups to {out}",
    ]


@pytest.mark.slow
def test_command_checks_both_formats_with_promtool(tmp_path: Path) -> None:
    out = tmp_path / "rule.yaml"
    result = _run(
        str(EXAMPLE_SPEC),
        "-o",
        str(out),
        "--format",
        "prometheus-operator",
        "--check",
        "--label",
        "release=prom",
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "  SUCCESS: 77 rules found"
    assert _load(out.read_text())["kind"] == "PrometheusRule"


def test_command_refuses_tests_without_a_plain_rule_file(tmp_path: Path) -> None:
    result = _run(str(EXAMPLE_SPEC), "--tests", str(tmp_path / "t.yml"))
    assert (result.exit_code, result.output) == (
        1,
        "error: --tests needs a plain rule file: use -o FILE and the default --format rules\n",
    )


def test_page_alerts_keep_firing_through_a_scrape_gap(
    example_rules: list[dict[str, Any]],
) -> None:
    burns = [
        r
        for r in example_rules
        if r.get("alert") in (names.ALERT_GOOD_BURN, names.ALERT_ACCURACY_BURN)
    ]
    assert {(r["labels"]["severity"], r.get("keep_firing_for")) for r in burns} == {
        ("page", "10m"),
        ("ticket", None),
    }
