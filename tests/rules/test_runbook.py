"""Every generated alert links its runbook section, and the section exists in docs/runbook.md."""

from __future__ import annotations

import re

import yaml

from cxmetrics.rules import build, render
from cxmetrics.rules.promql import RUNBOOK
from cxmetrics.spec import names
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.model import Spec
from tests.helpers import feedback
from tests.helpers.followup_app import spec_text
from tests.helpers.paths import ROOT


def _anchors() -> set[str]:
    text = (ROOT / RUNBOOK).read_text(encoding="utf-8")
    return {
        re.sub(r"[^a-z0-9 _-]", "", m.group(1).strip().lower()).replace(" ", "-")
        for m in re.finditer(r"^#{1,6} (.+)$", text, re.MULTILINE)
    }


def _alerts(spec: Spec) -> list[dict[str, object]]:
    doc = yaml.safe_load(render(build(spec)))
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_every_alert_of_the_example_links_an_existing_runbook_section(
    example_spec: Spec,
) -> None:
    alerts = _alerts(example_spec) + _alerts(parse_spec(spec_text(after="2h", until="3d")))
    kinds = {str(a["alert"]) for a in alerts}
    assert kinds == {
        names.ALERT_LATENCY,
        names.ALERT_GOOD_BURN,
        names.ALERT_ACCURACY_BURN,
        names.ALERT_CONVERSION_DROP,
        names.ALERT_FOLLOWUP_LAG,
        names.ALERT_TARGET_CHANGED,
        names.ALERT_CONTACT_OBJECTIVE,
    }
    anchors = _anchors()
    for alert in alerts:
        annotations = alert["annotations"]
        assert isinstance(annotations, dict)
        url = annotations["runbook_url"]
        assert url == f"{RUNBOOK}#{str(alert['alert']).lower()}"
        assert url.split("#")[1] in anchors, url


def test_the_feedback_alert_links_its_runbook_section() -> None:
    alerts = [
        a for a in _alerts(parse_spec(feedback.SPEC)) if a["alert"] == names.ALERT_FEEDBACK_DROP
    ]
    assert len(alerts) == 3  # nps against objective and baseline, csat against baseline
    anchors = _anchors()
    for alert in alerts:
        annotations = alert["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook_url"] == f"{RUNBOOK}#cxfeedbackscoredrop"
        assert "cxfeedbackscoredrop" in anchors
