"""A journey whose steps run in different OS processes, linked only by the propagated header."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.paths import EXAMPLE_SPEC, ROOT

pytestmark = pytest.mark.slow  # every test here starts a server or a subprocess


def run_step(step: str, headers: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.helpers.step_process", str(EXAMPLE_SPEC), step],
        input=json.dumps(headers),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def transitions(exposition: str) -> dict[tuple[str, str], float]:
    out = {}
    for family in text_string_to_metric_families(exposition):
        if family.name == "cx_step_transitions":
            for sample in family.samples:
                if sample.value:
                    out[(sample.labels["from_step"], sample.labels["to_step"])] = sample.value
    return out


def test_two_processes_yield_exactly_one_transition() -> None:
    first = run_step("bill_total", {})
    second = run_step("bill_detail", first["headers"])
    assert second["journey_id"] == first["journey_id"]
    assert transitions(first["metrics"]) == {}
    assert transitions(second["metrics"]) == {("bill_total", "bill_detail"): 1.0}
    started = 'cx_journeys_started_total{channel="app",journey="bill_inquiry",segment="none",service="bank_app"}'
    assert f"{started} 1.0" in first["metrics"]
    assert f"{started} 0.0" in second["metrics"]
    fresh = run_step("bill_detail", {})  # no context: a new instance, no transition
    assert fresh["journey_id"] != first["journey_id"]
    assert transitions(fresh["metrics"]) == {}
