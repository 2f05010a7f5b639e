"""``cxmetrics analyze --compare 7d`` through its entry point, on two simulated weeks of the bank
(``tests.helpers.bank_log.two_weeks``: bill_detail 25% slower and 5% of a check failing in the
second): the last week against the one before, and a log with nothing a week earlier."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cxmetrics.spec.model import Spec
from tests.helpers.bank_log import TWO_WEEKS_T0, WEEK, two_weeks, write_log
from tests.helpers.paths import EXAMPLE_SPEC, ROOT

CLI = ROOT / ".venv" / "bin" / "cxmetrics"


def run(log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "analyze", str(EXAMPLE_SPEC), "--events", str(log), "--step", "1h", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TZ": "UTC", "COLUMNS": "200"},
    )


@pytest.mark.slow
def test_compare_7d_finds_the_step_that_got_worse(example_spec: Spec, tmp_path: Path) -> None:
    log = write_log(tmp_path / "events.jsonl", two_weeks(example_spec))
    result = run(log, "--since", "7d", "--json", "--compare", "7d")
    assert result.returncode in (0, 3), result.stderr
    comparison = json.loads(result.stdout)["comparison"]
    assert comparison["baseline"] is True
    assert comparison["worst"] == {"journey": "bill_inquiry", "step": "bill_detail"}
    assert comparison["previous"]["end"] == "2024-03-11T00:00:00.000+00:00"
    detail = next(s for s in comparison["steps"] if s["step"] == "bill_detail")
    significant = sorted(k for k, c in detail["changes"].items() if c["significant"])
    assert significant == ["accuracy", "good_ratio", "p95", "timeliness"]
    assert detail["affected"]["failed_checks"] == 124
    assert [s["step"] for s in comparison["steps"] if any(
        c["significant"] for c in s["changes"].values()
    )] == ["bill_detail"]  # fmt: skip
    table = run(log, "--since", "7d", "--compare", "7d")
    assert "Compared with 1w earlier" in table.stdout
    assert "Worst step period over period: bill_detail (bill_inquiry)" in table.stdout


@pytest.mark.slow
def test_compare_without_a_week_before_says_no_baseline_yet(
    example_spec: Spec, tmp_path: Path
) -> None:
    second = [e for e in two_weeks(example_spec) if e.time > TWO_WEEKS_T0 + WEEK]
    log = write_log(tmp_path / "events.jsonl", second)
    result = run(log, "--compare", "7d")
    assert result.returncode in (0, 3), result.stderr
    assert "No baseline yet: 1w earlier has no traffic" in result.stdout
    assert "no traffic" not in result.stdout.replace("has no traffic", "")
    data = json.loads(run(log, "--json", "--compare", "7d").stdout)["comparison"]
    assert data["baseline"] is False and data["worst"] is None
