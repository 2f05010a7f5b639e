"""``cxmetrics watch`` end to end: the example bank under real traffic, a real Prometheus scraping
it, a real Alertmanager routing to a real webhook receiver, and the watch process between them.

One run (module fixture), every process started here and stopped by PID: a stable phase, then two
faults on ``bill_detail`` — the demo's latency fault (+20%) and an accuracy fault (10% of the bills
shown with a detail line that does not add up to the total); once their alerts have reached the
webhook the watch is stopped with SIGTERM and started again on the same state file while the
faults continue.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cxmetrics._binaries import ALERTMANAGER, PROMETHEUS, require_binary
from cxmetrics.analysis import promapi
from cxmetrics.local import stack
from cxmetrics.spec import names
from tests.helpers.paths import EXAMPLE_SPEC, ROOT
from tests.helpers.receivers import Hook, webhook_receiver

# A latency regression is judged: never beside another test that keeps the cores busy (make
# test's parallel workers).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("timing")]

CLI = ROOT / ".venv" / "bin" / "cxmetrics"
TIME_SCALE = 1.0
STABLE_S = 45.0  # traffic before the fault
FAULT = {"latency": {"bill_detail": 1.2}, "accuracy": {"total_matches_details": 0.1}}
# A wrong detail line fails both of bill_detail's checks: the lines do not add up to the total
# (total_matches_details) and what is shown no longer matches the total's fingerprint
# (detail_consistent_with_total).
CHECKS = ("detail_consistent_with_total", "total_matches_details")
CHANNELS = ("app", "web")  # bill_inquiry's channels: each judged on its own
OVERRIDE = """
defaults:
  regression:
    window: 20s
    baseline: trailing 40s
    for: 15s
"""
TRAFFIC = (
    "import asyncio, sys\n"
    "from examples.bank import traffic\n"
    "asyncio.run(traffic.run(sys.argv[1], float(sys.argv[2]), concurrency=96, seed=11,"
    " drain=False))\n"
)


def _wait(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got = check()
        except OSError:
            got = None
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}")


def _process(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        os.kill(process.pid, sig)
        try:
            return process.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
            raise AssertionError(f"pid {process.pid} ignored signal {sig}") from None
    return int(process.returncode)


def _end(process: subprocess.Popen[bytes]) -> None:
    """Clean-up: SIGTERM, then SIGKILL after 10 s (uvicorn waits for open connections)."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)


def _metrics(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _active(url: str, step: str, indicator: str) -> float | None:
    """bill_inquiry/``step``'s cx_regression_active of ``indicator``, summed over its quantiles,
    checks and channels (None before a verdict)."""
    values = [
        value
        for (name, labels), value in _metrics(url).items()
        if name == names.REGRESSION_ACTIVE
        and dict(labels)["journey"] == "bill_inquiry"
        and dict(labels)["step"] == step
        and dict(labels)["indicator"] == indicator
    ]
    return sum(values) if values else None


def _watch_url(log: Path, after: int) -> str | None:
    for line in log.read_text(errors="replace").splitlines()[after:]:
        if "serving /metrics on " in line:
            return line.split("serving /metrics on ")[1].removesuffix("/metrics").strip()
    return None


@dataclass
class Run:
    hook: Hook
    first_exit: int
    second_exit: int
    watch_log: str
    restarted_active: dict[str, float | None]
    other_active: dict[tuple[str, str], float]
    state: dict[str, Any]
    notified_before_restart: int


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    require_binary(PROMETHEUS)
    require_binary(ALERTMANAGER)
    work = tmp_path_factory.mktemp("watch-stack")
    override = work / "override.yaml"
    override.write_text(OVERRIDE)
    state_file = work / "watch-state.json"
    watch_log = work / "watch.log"
    hook_port = stack.free_port()
    app_port = stack.free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    started: list[subprocess.Popen[bytes]] = []
    with (
        webhook_receiver(hook_port) as hook,
        stack.alertmanager(work / "am", f"http://127.0.0.1:{hook_port}/hook").start() as am,
    ):
        try:
            app = _process(
                [
                    sys.executable,
                    "-m",
                    "examples.bank.serve",
                    "--port",
                    str(app_port),
                    "--time-scale",
                    str(TIME_SCALE),
                ],
                work / "app.log",
            )
            started.append(app)
            _wait(lambda: promapi.http_get(app_url + "/metrics")[0] == 200, 30, "the bank app")
            with stack.prometheus(work / "prom", [f"127.0.0.1:{app_port}"]).start() as prom:
                watch_argv = [
                    str(CLI), "watch", str(EXAMPLE_SPEC), "--override", str(override),
                    "--prometheus", prom.url, "--alertmanager", am.url,
                    "--step", "1s", "--interval", "1s", "--history", "90s", "--delay", "2s",
                    "--state", str(state_file), "--listen", "127.0.0.1:0",
                ]  # fmt: skip
                traffic = _process(
                    [sys.executable, "-c", TRAFFIC, app_url, str(STABLE_S + 90)],
                    work / "traffic.log",
                )
                started.append(traffic)
                first = _process(watch_argv, watch_log)
                started.append(first)
                url = _wait(lambda: _watch_url(watch_log, 0), 30, "the watch's /metrics")
                time.sleep(STABLE_S)
                request = urllib.request.Request(
                    app_url + "/admin/faults",
                    json.dumps(FAULT).encode(),
                    {"content-type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 200
                _wait(lambda: hook.accepted, 60, "the first alert at the webhook")
                # judged per channel: bill_inquiry is served on app and web, both faulty
                every = "both channels' regressions in the watch's metrics"
                _wait(lambda: _active(url, "bill_detail", "latency") == 2.0, 90, every)
                _wait(lambda: _active(url, "bill_detail", "accuracy") == 4.0, 30, every)
                _wait(lambda: len(_sent(hook)) == 6, 10, "the six alerts at the webhook")
                time.sleep(3.0)  # Alertmanager's group_interval: the last notification lands
                notified = len(hook.accepted)
                first_exit = _stop(first)
                lines = len(watch_log.read_text().splitlines())
                second = _process(watch_argv, watch_log)
                started.append(second)
                url = _wait(lambda: _watch_url(watch_log, lines), 30, "the restarted watch")
                time.sleep(20.0)  # reads after the restart, the fault still on
                metrics = _metrics(url)
                restarted_active = {
                    indicator: _active(url, "bill_detail", indicator)
                    for indicator in ("latency", "accuracy", "errors")
                }
                other = {
                    (dict(labels)["step"], dict(labels)["indicator"]): value
                    for (name, labels), value in metrics.items()
                    if name == names.REGRESSION_ACTIVE
                    and value
                    and (dict(labels)["step"], dict(labels)["indicator"])
                    not in (("bill_detail", "latency"), ("bill_detail", "accuracy"))
                }
                second_exit = _stop(second)
                state = json.loads(state_file.read_text())
        finally:
            for process in reversed(started):
                _end(process)
        time.sleep(2.0)  # the last notifications
    yield Run(
        hook,
        first_exit,
        second_exit,
        watch_log.read_text(errors="replace"),
        restarted_active,
        other,
        state,
        notified,
    )


def _alerts(hook: Hook) -> list[tuple[str, dict[str, Any]]]:
    return [(body["status"], a) for _, body in hook.accepted for a in body["alerts"]]


def _sent(hook: Hook) -> set[tuple[str, str, str]]:
    """The distinct alerts at the webhook: (alertname, channel, check)."""
    return {
        (a["labels"]["alertname"], a["labels"]["channel"], a["labels"].get("check", ""))
        for _, a in _alerts(hook)
    }


#: the annotation keys every alert of the watch carries (as the generated latency rule's)
ANNOTATIONS = {"summary", "description", "baseline", "current", "change", "since", "runbook_url"}


def test_the_injected_regression_reaches_the_webhook_and_nothing_else(run: Run) -> None:
    alerts = _alerts(run.hook)
    assert alerts, run.watch_log
    steps = {(a["labels"]["journey"], a["labels"]["step"]) for _, a in alerts}
    assert steps == {("bill_inquiry", "bill_detail")}, run.watch_log
    # judged per channel (as the rules do): one alert per channel the step is served on, one per
    # check for accuracy; no error-rate alert, nothing for any other step
    assert _sent(run.hook) == {
        *((names.ALERT_LATENCY, channel, "") for channel in CHANNELS),
        *((names.ALERT_ACCURACY_REGRESSION, c, check) for c in CHANNELS for check in CHECKS),
    }, run.watch_log
    latency = [(s, a) for s, a in alerts if a["labels"]["alertname"] == names.ALERT_LATENCY]
    for _, alert in latency:
        labels = alert["labels"]
        # +20% moves every quantile: the alert names the one whose chart found it first
        quantile = labels["quantile"]
        assert quantile in ("0.95", "0.5")
        channel = labels["channel"]
        assert labels == {
            "alertname": "CxStepLatencyRegression",
            "service": "bank_app",
            "journey": "bill_inquiry",
            "step": "bill_detail",
            "channel": channel,
            "severity": "ticket",
            "quantile": quantile,
        }
        notes = alert["annotations"]
        pname = f"p{float(quantile) * 100:g}"
        assert notes["summary"].startswith(
            f"bill_inquiry/bill_detail on {channel}: {pname} latency +"
        )
        assert set(notes) == ANNOTATIONS
    assert run.other_active == {}


def test_the_accuracy_fault_reaches_the_webhook_as_one_alert_per_channel_and_check(
    run: Run,
) -> None:
    accuracy = [
        a for _, a in _alerts(run.hook) if a["labels"]["alertname"] == "CxStepAccuracyRegression"
    ]
    sent = {(a["labels"]["channel"], a["labels"].get("check")) for a in accuracy}
    assert sent == {(channel, check) for channel in CHANNELS for check in CHECKS}, run.watch_log
    for alert in accuracy:
        labels = alert["labels"]
        channel, check = labels["channel"], labels["check"]
        assert labels == {
            "alertname": "CxStepAccuracyRegression",
            "service": "bank_app",
            "journey": "bill_inquiry",
            "step": "bill_detail",
            "channel": channel,
            "check": check,
            "severity": "ticket",
        }
        notes = alert["annotations"]
        # no failure before the fault; 10% after it, read since the estimated change point on a
        # few hundred checks (17.55% on 245 in one CI run). Simulated (a clean young stream, 8
        # checks a window, read 15 windows after the alarm) the 99th percentile is ~15%: 25% is
        # the CI run's reading with room, not what the sizing justifies
        assert notes["baseline"] == "0%"
        assert 0.05 < float(notes["current"].removesuffix("%")) / 100 < 0.25, notes
        assert notes["summary"].startswith(
            f"bill_inquiry/bill_detail on {channel}: check {check} fails {notes['current']} (was"
            f" 0%), pass rate {notes['change']} ["
        ), notes
        assert notes["summary"].endswith(f"] since {notes['since']}")
        assert set(notes) == ANNOTATIONS
        assert notes["runbook_url"].endswith("docs/runbook.md#cxstepaccuracyregression")


def test_a_restart_neither_loses_nor_duplicates_the_alert(run: Run) -> None:
    statuses = [status for status, _ in _alerts(run.hook)]
    groups = {body["groupKey"] for _, body in run.hook.accepted}
    assert len(groups) == 2  # Alertmanager groups by alertname, journey and step
    assert "resolved" not in statuses, statuses
    # no notification after the restart: the restarted watch re-sent the same six alerts (one
    # per channel, and per check for accuracy), Alertmanager had nothing new
    notified = run.notified_before_restart
    assert len(run.hook.accepted) == notified, [body for _, body in run.hook.accepted]
    assert run.restarted_active == {"latency": 2.0, "accuracy": 4.0, "errors": 0.0}
    assert "resuming with 6 alert(s) firing" in run.watch_log
    quantiles = {
        a["labels"]["channel"]: a["labels"]["quantile"]
        for _, a in _alerts(run.hook)
        if a["labels"]["alertname"] == names.ALERT_LATENCY
    }
    assert sorted(run.state["alerts"]) == sorted(
        [
            f"alertname=CxStepLatencyRegression,channel={channel},journey=bill_inquiry,"
            f"quantile={quantiles[channel]},service=bank_app,severity=ticket,step=bill_detail"
            for channel in CHANNELS
        ]
        + [
            f"alertname=CxStepAccuracyRegression,channel={channel},check={check},"
            "journey=bill_inquiry,service=bank_app,severity=ticket,step=bill_detail"
            for channel in CHANNELS
            for check in CHECKS
        ]
    )


def test_sigterm_stops_the_watch_cleanly(run: Run) -> None:
    assert (run.first_exit, run.second_exit) == (0, 0)
    assert "Traceback" not in run.watch_log
    assert run.watch_log.count("stopped") == 2
    # which baselines latency is judged against: said once per process, not at every read while
    # the open regressions hold the range's start (the hours it holds grow)
    assert run.watch_log.count("latency judged against trailing baselines") == 2, run.watch_log
