"""The main job from a wheel: built from this checkout, installed with the ``demo`` extra into a
fresh venv outside it, ``cxmetrics demo --fast`` run from an empty directory finds the injected
faults (the example bank ships in the wheel as ``cxmetrics._examples.bank``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT

pytestmark = pytest.mark.slow

BANK = ["__init__.py", "app.py", "cxmetrics.yaml", "serve.py", "traffic.py"]


def test_the_wheel_runs_the_fast_demo_outside_a_checkout(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        timeout=600,
        env=env,
    )
    [wheel] = wheels.glob("cxmetrics-*.whl")
    shipped = zipfile.ZipFile(wheel).namelist()
    assert sorted(n.rsplit("/", 1)[1] for n in shipped if "/_examples/bank/" in n) == BANK
    assert not [n for n in shipped if n.startswith("examples/")]  # one copy, under cxmetrics

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=env)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"{wheel}[demo]"],
        check=True,
        timeout=1200,
        env=env,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import cxmetrics; print(cxmetrics.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=empty,
        env=env,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv)

    result = subprocess.run(
        [str(venv / "bin" / "cxmetrics"), "demo", "--fast", "--json", "--out", "out"],
        capture_output=True,
        text=True,
        cwd=empty,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    found = sorted((r["step"], r["indicator"], r["subject"]) for r in summary["regressions"])
    # The faulty detail line breaks both of bill_detail's checks: the reconciliation with the
    # total, and the consistency with the total shown one step earlier.
    assert found == [
        ("bill_detail", "accuracy", "detail_consistent_with_total"),
        ("bill_detail", "accuracy", "total_matches_details"),
        ("bill_detail", "latency", None),
    ]
    assert summary["timeouts"] == 0
    out = empty / "out"
    for name in ("cxmetrics.yaml", "events.jsonl", "rules.yml", "report.html"):
        assert (out / name).stat().st_size > 0
    assert len(list((out / "dashboards").glob("*.json"))) == 6
