"""``cxmetrics analyze`` exit codes through the real entry point: each outcome has its own code
and says so on stderr — judged with no regression (0), regressions (3), nothing could be judged
(4), no record matched the spec (5), bad input (1)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cxmetrics.spec.model import Spec
from tests.helpers.bank_log import bank_events, write_log
from tests.helpers.paths import EXAMPLE_SPEC, ROOT

CLI = ROOT / ".venv" / "bin" / "cxmetrics"
T0 = 1_700_000_000.0

OTHER_SPEC = """\
version: 1
service: shop
journeys:
  - name: checkout
    steps:
      - name: pay
        target: 1s
"""


def analyze(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "analyze", *map(str, args)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def small_log(example_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 40 journeys: every step far below min_volume (100), so no indicator can be judged
    events = bank_events(example_spec, 40, seed=5, t0=T0, shift_at=T0 + 1e9)
    return write_log(tmp_path_factory.mktemp("small") / "events.jsonl", events)


@pytest.mark.slow
@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_nothing_judged_exits_4_and_says_so(small_log: Path, as_json: bool) -> None:
    result = analyze(EXAMPLE_SPEC, "--events", small_log, *(["--json"] if as_json else []))
    assert result.returncode == 4, result.stderr
    assert "nothing could be judged" in result.stderr
    assert "No regression." not in result.stdout
    if as_json:
        verdicts = json.loads(result.stdout)["verdicts"]
        assert {v["verdict"] for v in verdicts} == {"insufficient_data"}


@pytest.mark.slow
def test_no_record_matching_the_spec_exits_5_and_says_so(small_log: Path, tmp_path: Path) -> None:
    spec = tmp_path / "shop.yaml"
    spec.write_text(OTHER_SPEC)
    records = len(small_log.read_text().splitlines())
    result = analyze(spec, "--events", small_log)
    assert result.returncode == 5, result.stderr
    assert f"none of the {records} records matched a journey or step of {spec}" in result.stderr


@pytest.mark.slow
def test_the_exit_codes_are_documented_in_help() -> None:
    result = subprocess.run([str(CLI), "analyze", "--help"], capture_output=True, text=True)
    text = " ".join(result.stdout.split())
    for line in (
        "0 judged, no regression",
        "1 bad input",
        "3 at least one regression",
        "4 nothing could be judged",
        "5 no record matched the spec",
    ):
        assert line in text
