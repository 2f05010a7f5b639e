"""CxFollowUpLag: generated from the spec's max_lag, checked and unit-tested by real promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cxmetrics.rules.document import build, render
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.model import Spec
from tests.helpers.followup_app import spec_text


def _spec_text() -> str:
    return spec_text(after="2h", until="3d").replace(
        "          queue:", "          max_lag: 10m\n          queue:"
    )


def test_the_lag_alert_follows_the_spec() -> None:
    spec = parse_spec(_spec_text())
    followup = spec.journey("loan_application").step("upload_documents").followup
    assert followup is not None
    assert followup.max_lag == 600.0
    doc = yaml.safe_load(render(build(spec)))
    (group,) = [g for g in doc["groups"] if g["name"] == "cxmetrics.loan_application.followups"]
    (rule,) = group["rules"]
    assert rule["alert"] == "CxFollowUpLag"
    assert rule["expr"] == (
        'max by (service, journey, step) (cx_followups_oldest_due_seconds{service="bank",'
        'journey="loan_application",step="upload_documents"}) > 600'
    )
    assert rule["for"] == "1m"
    assert rule["annotations"]["summary"] == (
        "Follow-ups of loan_application/upload_documents are late: the oldest due one has waited "
        "{{ $value | humanizeDuration }} (bound 10m)"
    )


def test_only_journeys_with_key_steps_get_a_followup_group(example_spec: Spec) -> None:
    # The example bank: loan_application's upload_documents is its only key step.
    groups = [g for g in build(example_spec).groups if g.name.endswith(".followups")]
    assert [(g.name, len(g.rules)) for g in groups] == [("cxmetrics.loan_application.followups", 1)]


UNIT = """\
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'cx_followups_oldest_due_seconds{service="bank",journey="loan_application",step="upload_documents",instance="w1"}'
        values: '0 300 590 660 720 780 840 0'
      - series: 'cx_followups_oldest_due_seconds{service="bank",journey="loan_application",step="upload_documents",instance="w2"}'
        values: '0 300 590 660 720 780 840 0'
      # another service's workers, late all along, sharing the journey and step names
      - series: 'cx_followups_oldest_due_seconds{service="other",journey="loan_application",step="upload_documents",instance="w3"}'
        values: '900x8'
    alert_rule_test:
      - eval_time: 3m
        alertname: CxFollowUpLag
        exp_alerts: []
      - eval_time: 4m
        alertname: CxFollowUpLag
        exp_alerts:
          - exp_labels: {severity: ticket, service: bank, journey: loan_application, step: upload_documents}
            exp_annotations:
              summary: "Follow-ups of loan_application/upload_documents are late: the oldest due one has waited 12m 0s (bound 10m)"
              description: "Customers who stalled at this step are not being handed over in time: check that 'cxmetrics followup run' workers are up (cx_followups_sent_total rising) and that the target accepts deliveries (cx_followups_retried_total, cx_followups_dead_letters)."
              runbook_url: "docs/runbook.md#cxfollowuplag"
      - eval_time: 7m
        alertname: CxFollowUpLag
        exp_alerts: []
"""


@pytest.mark.slow
def test_promtool_checks_and_fires_the_lag_alert(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install -y prometheus"
    (tmp_path / "rules.yaml").write_text(render(build(parse_spec(_spec_text()))))
    (tmp_path / "test.yaml").write_text(UNIT)
    check = subprocess.run(
        [promtool, "check", "rules", "rules.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    result = subprocess.run(
        [promtool, "test", "rules", "test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
