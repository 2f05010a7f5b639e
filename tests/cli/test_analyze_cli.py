"""``cxmetrics analyze`` through its real entry point, on generated bank event logs.

The logs are written with ``EventLog`` from a simulation of the example bank (its latency model
and its customers' abandonment): 8,000 journeys over about 67 minutes, once stable and once with
bill_detail 25% slower from minute 33 on.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from cxmetrics.spec.model import Spec
from tests.helpers.bank_log import bank_events, write_log
from tests.helpers.paths import EXAMPLE_SPEC, ROOT

pytestmark = pytest.mark.slow  # every test here starts a server or a subprocess

CLI = ROOT / ".venv" / "bin" / "cxmetrics"
T0 = 1_700_000_000.0
SHIFT_AT = T0 + 2000.0


@pytest.fixture(scope="module")
def logs(example_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("logs")
    return {
        "shifted": write_log(
            directory / "shifted.jsonl",
            bank_events(
                example_spec,
                8000,
                seed=1,
                t0=T0,
                shift_at=SHIFT_AT,
                slower={"bill_detail": 1.25},
                feedback=True,
            ),
        ),
        "stable": write_log(
            directory / "stable.jsonl",
            bank_events(example_spec, 8000, seed=2, t0=T0, shift_at=SHIFT_AT, feedback=True),
        ),
    }


def analyze(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "analyze", *map(str, args)], capture_output=True, text=True, timeout=60
    )


def test_latency_shift_on_bill_detail_is_found_and_named(logs: dict[str, Path]) -> None:
    result = analyze(EXAMPLE_SPEC, "--events", logs["shifted"], "--json")
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    found = report["regressions"]
    assert {f"{r['journey']}/{r['step']}" for r in found} == {"bill_inquiry/bill_detail"}
    first = found[0]
    assert (first["indicator"], first["statistic"]) == ("latency", "p95")
    assert 0.15 <= first["change"] <= 0.35  # +25% injected
    assert first["current"] > first["baseline"] > 0.8  # p95 of the bank's bill_detail ≈ 0.98 s
    start = datetime.fromisoformat(first["start"]).timestamp()
    assert abs(start - SHIFT_AT) <= 120  # a change point estimate: within ~100 bill_detail steps
    assert first["confidence"] >= 0.99
    assert first["affected"] > 100
    assert "shift is detectable" in first["sensitivity"]
    detail = next(s for s in report["steps"] if s["step"] == "bill_detail")
    assert detail["exact_quantiles"] is True
    assert detail["quantiles"]["p95"] > 1.0  # the whole log's p95 moved above 1 s
    verdicts = {(v["step"], v["indicator"], v["subject"]): v["verdict"] for v in report["verdicts"]}
    assert verdicts[("bill_detail", "latency", None)] == "regressed"
    assert verdicts[("bill_total", "latency", None)] == "stable"
    assert verdicts[("bill_total", "conversion", "bill_detail")] == "stable"


def test_stable_log_exits_0(logs: dict[str, Path]) -> None:
    result = analyze(EXAMPLE_SPEC, "--events", logs["stable"], "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["regressions"] == []
    assert {s["journey"] for s in report["steps"]} == {
        "bill_inquiry",
        "transfer",
        "loan_application",  # in the spec, not in the synthetic log: listed without traffic
        "contact_centre",
    }
    login = next(s for s in report["steps"] if s["step"] == "login")
    assert login["next_step"] == "bill_total"
    assert 0.90 <= login["conversion"] <= 0.94  # the simulated customers continue with p = 0.92


def test_table_names_the_step_the_size_and_since_when(logs: dict[str, Path]) -> None:
    result = analyze(EXAMPLE_SPEC, "--events", logs["shifted"])
    assert result.returncode == 3, result.stderr
    out = result.stdout
    assert out.index("Steps") < out.index("Journeys") < out.index("Regressions")
    rows = [line for line in out.splitlines() if "latency p95" in line]
    assert rows and all(
        row.startswith("│ bill_inquiry/bill_detail │ latency p95 │") for row in rows
    )
    since = datetime.fromtimestamp(SHIFT_AT).astimezone().strftime("%H:%M")
    named = [line for line in out.splitlines() if line.startswith("│ bill_inquiry/bill_detail │")]
    assert any(since in line for line in named)  # "since 22:46:4x", local time (a narrow
    # terminal puts the column in a continued table, still named by the step)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--events", "missing.jsonl"), "cannot read event log missing.jsonl"),
        ((), "give exactly one data source"),
        (("--events", "x.jsonl", "--prometheus", "http://x"), "give exactly one data source"),
        (("--events", "bad.jsonl"), "bad.jsonl:1: not a cxmetrics event"),
        (("--events", "bad.jsonl", "--step", "soon"), "'soon' is not a duration"),
        (("--events", "bad.jsonl", "--bogus"), "No such option '--bogus'"),
    ],
)
def test_bad_input_exits_1_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"kind": "nothing"}\n')
    result = analyze(EXAMPLE_SPEC, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_invalid_spec_exits_1_naming_the_line(tmp_path: Path) -> None:
    spec = tmp_path / "cxmetrics.yaml"
    spec.write_text("service: shop\njourneys:\n  - name: shop\n    steps: []\n")
    result = analyze(spec, "--events", "x.jsonl")
    assert result.returncode == 1
    assert f"{spec}:4: journeys[shop].steps: needs at least one entry" in result.stderr
