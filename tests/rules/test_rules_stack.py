"""``cxmetrics stack up|down`` through the real entry point: a Prometheus loaded with the spec's
rules and an Alertmanager start on loopback, their PIDs are recorded, ``down`` stops exactly
those; a missing binary is an error that says how to install it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cxmetrics.analysis import promapi
from cxmetrics.local import stack
from cxmetrics.rules import build, render
from cxmetrics.spec.load import load_spec
from tests.helpers.paths import EXAMPLE_SPEC

pytestmark = pytest.mark.slow  # every test here starts a server or a subprocess

CLI = str(Path(sys.executable).with_name("cxmetrics"))


def _cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=env,
        check=False,
    )


def _gone(pid: int) -> bool:
    """Exited (a zombie waiting for its reaper counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _api(url: str) -> Any:
    status, body = promapi.http_get(url)
    assert status == 200, body
    return json.loads(body)["data"]


def test_stack_up_serves_the_rules_and_down_stops_its_processes(tmp_path: Path) -> None:
    state = tmp_path / "stack"
    app = f"127.0.0.1:{stack.free_port()}"  # no app needed: the target is simply down
    up = _cli(
        "stack", "up", EXAMPLE_SPEC, "--target", app, "--state-dir", state, "--interval", "1s"
    )
    entries: dict[str, Any] = {}
    if (state / "state.json").exists():
        entries = json.loads((state / "state.json").read_text())
    try:
        assert up.returncode == 0, up.stderr
        assert sorted(entries) == ["alertmanager", "prometheus"]
        prom, am = entries["prometheus"], entries["alertmanager"]
        assert up.stdout.splitlines() == [
            f"prometheus    {prom['url']}  (pid {prom['pid']}, scraping {app} every 1s, "
            "59 recording + 18 alerting rules)",
            f"alertmanager  {am['url']}  (pid {am['pid']})",
            f"state         {state}  (stop with: cxmetrics stack down --state-dir {state})",
        ]
        assert (state / "rules.yml").read_text() == render(build(load_spec(EXAMPLE_SPEC)))
        groups = _api(f"{prom['url']}/api/v1/rules")["groups"]
        assert sorted(g["name"] for g in groups) == sorted(
            [
                *(f"cxmetrics.bank_app.{kind}" for kind in ("spec", "indicators", "slo", "alerts")),
                "cxmetrics.loan_application.followups",
                "cxmetrics.contact_centre.contact",
            ]
        )
        assert sum(len(g["rules"]) for g in groups) == 77
        deadline = time.monotonic() + 15
        targets: list[dict[str, Any]] = []
        managers: list[dict[str, Any]] = []
        while not (targets and managers) and time.monotonic() < deadline:
            targets = _api(f"{prom['url']}/api/v1/targets")["activeTargets"]
            managers = _api(f"{prom['url']}/api/v1/alertmanagers")["activeAlertmanagers"]
            time.sleep(0.2)
        assert [t["scrapeUrl"] for t in targets] == [f"http://{app}/metrics"]
        assert [m["url"] for m in managers] == [f"{am['url']}/api/v2/alerts"]
        assert promapi.http_get(f"{am['url']}/-/ready")[0] == 200

        down = _cli("stack", "down", "--state-dir", state)
        assert (down.returncode, down.stdout.splitlines()) == (
            0,
            [
                f"stopped alertmanager (pid {am['pid']})",
                f"stopped prometheus (pid {prom['pid']})",
            ],
        )
        assert _gone(prom["pid"]) and _gone(am["pid"])
        assert not (state / "state.json").exists()
        again = _cli("stack", "down", "--state-dir", state)
        assert (again.returncode, again.stdout) == (0, f"no stack recorded in {state}\n")
    finally:
        for entry in entries.values():
            if not _gone(entry["pid"]):
                os.kill(entry["pid"], signal.SIGKILL)


def test_stack_up_without_the_binaries_says_how_to_install_them(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    up = _cli(
        "stack", "up", EXAMPLE_SPEC, "--target", "127.0.0.1:9", "--state-dir", tmp_path, env=env
    )
    assert (up.returncode, up.stdout, up.stderr) == (
        1,
        "",
        "error: 'prometheus-alertmanager' is not installed; install it with: apt-get install "
        "-y --no-install-recommends prometheus prometheus-alertmanager\n",
    )
    assert not (tmp_path / "state.json").exists()
