"""Live end-to-end journey time across OS processes (``cx_journey_duration_seconds``): the first
step's start travels in the signed journey context (``cx.t0``, covered by ``cx.mac``) and the
process running the last step records first step start → last step end.

- three processes run ``login`` (0.3 s), then — 0.4 s later — ``bill_total`` (0.1 s) and
  ``bill_detail`` (0.2 s): only the last records a journey time, one, between 1.0 s and the wall
  time the test measured around the three; the analyzer over the three processes' event logs
  (``analysis.journey_time``) gives the same time within 5 ms (the context carries whole ms);
- the client forges ``cx.t0`` an hour earlier, keeping the MAC: the context fails the MAC
  (``bad_mac`` counted), a fresh instance runs ``bill_detail`` and no journey time is recorded —
  the same with the MAC stripped (``unsigned``) — and the analyzer times nothing either.

Before this change the context carried no start, no process could time the journey, and the
exposition had no ``cx_journey_duration_seconds``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cxmetrics.analysis.journey_time import journey_times
from cxmetrics.exposition.eventlog import read_log
from cxmetrics.spec import names
from cxmetrics.spec.load import load_spec
from tests.helpers.paths import EXAMPLE_SPEC, ROOT

pytestmark = pytest.mark.slow  # starts subprocesses


def _run(step: str, seconds: float, headers: dict[str, str], events: Path) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.helpers.journey_process",
            str(EXAMPLE_SPEC),
            step,
            str(seconds),
            str(events),
        ],
        input=json.dumps(headers),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def _journey_times(exposition: str) -> tuple[float, float]:
    """(count, sum) of bill_inquiry's journey times, all channels."""
    count = total = 0.0
    for family in text_string_to_metric_families(exposition):
        if family.name != names.JOURNEY_DURATION:
            continue
        for sample in family.samples:
            if sample.labels.get(names.JOURNEY) != "bill_inquiry":
                continue
            if sample.name.endswith("_count"):
                count += sample.value
            elif sample.name.endswith("_sum"):
                total += sample.value
    return count, total


def _rejected(exposition: str, reason: str) -> float:
    for family in text_string_to_metric_families(exposition):
        if family.name == names.CONTEXT_REJECTED.removesuffix("_total"):
            for sample in family.samples:
                if sample.labels.get(names.REASON) == reason and sample.name.endswith("_total"):
                    return sample.value
    return 0.0


def _events(*paths: Path) -> list[Any]:
    out = []
    for path in paths:
        out += list(read_log(path).events)
    return out


def test_the_journey_time_crosses_processes_in_the_signed_context(tmp_path: Path) -> None:
    logs = [tmp_path / f"{k}.jsonl" for k in "abc"]
    before = time.time()
    first = _run("login", 0.3, {}, logs[0])
    assert re.search(r"cx\.t0=[0-9]{13},", first["headers"]["baggage"])
    time.sleep(0.4)
    second = _run("bill_total", 0.1, first["headers"], logs[1])
    third = _run("bill_detail", 0.2, second["headers"], logs[2])
    after = time.time()
    assert first["journey_id"] == second["journey_id"] == third["journey_id"]
    assert _journey_times(first["metrics"]) == (0.0, 0.0)
    assert _journey_times(second["metrics"]) == (0.0, 0.0)
    count, total = _journey_times(third["metrics"])
    assert count == 1.0
    assert 1.0 <= total <= after - before
    assert "cx.t0=" not in third["headers"]["baggage"]  # timed once: the start is forgotten
    spec = load_spec(EXAMPLE_SPEC)
    timed = journey_times(spec, _events(*logs))["bill_inquiry"]
    assert timed.completed == 1
    assert timed.mean == pytest.approx(total, abs=0.005)


@pytest.mark.parametrize("forgery", ["earlier start, MAC kept", "MAC stripped"])
def test_a_forged_start_time_is_never_used(tmp_path: Path, forgery: str) -> None:
    logs = [tmp_path / f"{k}.jsonl" for k in "abc"]
    first = _run("login", 0.0, {}, logs[0])
    second = _run("bill_total", 0.0, first["headers"], logs[1])
    baggage = second["headers"]["baggage"]
    t0 = int(re.search(r"cx\.t0=([0-9]+)", baggage).group(1))  # type: ignore[union-attr]
    forged = baggage.replace(f"cx.t0={t0}", f"cx.t0={t0 - 3_600_000}")
    reason = "bad_mac"
    if forgery == "MAC stripped":
        forged, reason = re.sub(r",cx\.mac=[^,]*", "", forged), "unsigned"
    third = _run("bill_detail", 0.0, {"baggage": forged}, logs[2])
    assert _rejected(third["metrics"], reason) == 1.0
    assert third["journey_id"] != first["journey_id"]  # not resumed: a fresh instance
    assert _journey_times(third["metrics"]) == (0.0, 0.0)
    spec = load_spec(EXAMPLE_SPEC)
    assert journey_times(spec, _events(*logs))["bill_inquiry"].completed == 0
