"""Bad event logs through the real ``cxmetrics`` entry point: bad records are skipped and counted
(file:line and why), the rest is analysed exactly as without them, and nothing allocates by a
record's timestamp."""

from __future__ import annotations

import json
import resource
import subprocess
from pathlib import Path

import pytest

from cxmetrics.spec.model import Spec
from tests.helpers.bank_log import bank_events, write_log
from tests.helpers.paths import EXAMPLE_SPEC, ROOT

CLI = ROOT / ".venv" / "bin" / "cxmetrics"
T0 = 1_700_000_000.0
BAD_AT = 101  # the line number the bad record takes

GOOD_STEP = {
    "time": T0 + 10.0,
    "journey": "bill_inquiry",
    "step": "login",
    "channel": "app",
    "journey_id": "f" * 32,
    "previous_step": None,
    "duration": 0.2,
    "outcome": "ok",
    "timeliness": "satisfied",
    "good": True,
    "checks": [],
    "customer_ref": None,
    "kind": "step",
}
FEEDBACK = {
    "time": T0 + 10.0,
    "journey": "bill_inquiry",
    "step": "login",
    "journey_id": "f" * 32,
    "scale": "csat",
    "score": 4,
    "kind": "feedback",
}


def _step(**changes: object) -> str:
    return json.dumps({**GOOD_STEP, **changes})


SHAPES = {
    "time zero": _step(time=0),
    "time 50 years ahead": _step(time=T0 + 50 * 365.25 * 86400),
    "time 1e300": _step(time=1e300),
    "a JSON list": "[1, 2, 3]",
    "JSON null": "null",
    "a JSON number": "42",
    "a JSON string": '"step"',
    "duration a string": _step(duration="0.2"),
    "duration null": _step(duration=None),
    "time a string": _step(time=str(T0)),
    "time null": _step(time=None),
    "duration Infinity": _step(duration=float("inf")),
    "time -Infinity": _step(time=float("-inf")),
    "score a string": json.dumps({**FEEDBACK, "score": "9"}),
    "journey a list": _step(journey=["bill_inquiry"]),
    "100k-deep JSON": "[" * 100_000 + "]" * 100_000,
    "duration negative": _step(duration=-1.0),
}


def _limited() -> None:
    # A record must not make the analysis allocate by its timestamp: 1.5 GB is plenty for this log.
    resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limited,
    )


@pytest.fixture(scope="module")
def good_log(example_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    events = bank_events(example_spec, 600, seed=3, t0=T0, shift_at=T0 + 1e9, feedback=True)
    return write_log(tmp_path_factory.mktemp("good") / "events.jsonl", events)


@pytest.fixture(scope="module")
def good_run(good_log: Path) -> subprocess.CompletedProcess[str]:
    return cli("analyze", EXAMPLE_SPEC, "--events", good_log, "--json")


def _with_line(good_log: Path, directory: Path, line: str, at: int = BAD_AT) -> Path:
    lines = good_log.read_text().splitlines(keepends=True)
    lines.insert(at - 1, line + "\n")
    path = directory / "events.jsonl"
    path.write_text("".join(lines))
    return path


def _same_analysis(run: subprocess.CompletedProcess[str], good: str) -> None:
    got, want = json.loads(run.stdout), json.loads(good)
    got.pop("source"), want.pop("source")
    assert got == want


@pytest.mark.slow
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_bad_record_is_skipped_counted_and_named(
    shape: str, good_log: Path, good_run: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    assert good_run.returncode in (0, 4), good_run.stderr
    path = _with_line(good_log, tmp_path, SHAPES[shape])
    run = cli("analyze", EXAMPLE_SPEC, "--events", path, "--json")
    assert "Traceback" not in run.stderr
    assert run.returncode == good_run.returncode, run.stderr
    assert f"{path}: skipped 1 bad record(s) of {len(path.read_text().splitlines())}" in run.stderr
    assert f"{path}:{BAD_AT}: " in run.stderr
    _same_analysis(run, good_run.stdout)
    report = cli("report", EXAMPLE_SPEC, "--events", path, "-o", tmp_path / "r.html")
    assert "Traceback" not in report.stderr
    assert report.returncode == 0, report.stderr
    assert f"{path}:{BAD_AT}: " in report.stderr


@pytest.mark.slow
def test_a_truncated_last_line_is_skipped_not_the_whole_log(
    good_log: Path, good_run: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    text = good_log.read_text()
    path.write_text(text + _step()[:57])  # the writer was cut mid-line
    total = len(text.splitlines()) + 1
    run = cli("analyze", EXAMPLE_SPEC, "--events", path, "--json")
    assert run.returncode == good_run.returncode, run.stderr
    assert f"{path}: skipped 1 bad record(s) of {total}" in run.stderr
    assert f"{path}:{total}: truncated last line" in run.stderr
    _same_analysis(run, good_run.stdout)


@pytest.mark.slow
def test_only_the_first_reasons_are_listed(good_log: Path, tmp_path: Path) -> None:
    lines = good_log.read_text().splitlines(keepends=True)
    for at in range(10, 30):
        lines[at] = "null\n"
    path = tmp_path / "events.jsonl"
    path.write_text("".join(lines))
    run = cli("analyze", EXAMPLE_SPEC, "--events", path, "--json")
    assert f"{path}: skipped 20 bad record(s) of {len(lines)}" in run.stderr
    named = [line for line in run.stderr.splitlines() if line.startswith(f"  {path}:")]
    assert [n.split(":")[1] for n in named] == ["11", "12", "13", "14", "15"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "content",
    [
        "latin-1".encode("utf-16"),
        json.dumps(GOOD_STEP).encode("utf-16"),
        b'{"time": 1.0, "journey": "caf\xe9"}\n',
    ],
    ids=["utf-16 text", "utf-16 record", "latin-1"],
)
def test_a_log_that_is_not_utf8_is_an_error_naming_the_file(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(content)
    run = cli("analyze", EXAMPLE_SPEC, "--events", path)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith(f"error: {path}: ")
    assert "not UTF-8" in run.stderr
