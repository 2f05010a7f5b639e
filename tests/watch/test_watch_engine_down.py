"""``cxmetrics watch`` against a Prometheus that is not there yet: every failed read is counted on
/metrics and logged once, never a traceback; once a real Prometheus answers on that address the
watch reads again by itself; SIGTERM stops it with exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cxmetrics._binaries import PROMETHEUS, require_binary
from cxmetrics.local import stack
from cxmetrics.spec import names
from tests.helpers.paths import EXAMPLE_SPEC, ROOT

pytestmark = pytest.mark.slow
CLI = ROOT / ".venv" / "bin" / "cxmetrics"


def _counters(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("cx_watch_")
    }


def _wait_for(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_prometheus_that_is_down_is_counted_logged_once_and_retried(tmp_path: Path) -> None:
    require_binary(PROMETHEUS)
    prom_port, metrics_port = stack.free_port(), stack.free_port()
    log = tmp_path / "watch.log"
    argv = [
        str(CLI), "watch", str(EXAMPLE_SPEC),
        "--prometheus", f"http://127.0.0.1:{prom_port}",
        "--step", "1s", "--interval", "200ms", "--history", "30s", "--delay", "1s",
        "--listen", f"127.0.0.1:{metrics_port}",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{metrics_port}"
    with open(log, "wb") as out:
        watch = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        _wait_for(lambda: "serving /metrics" in log.read_text(), 30, "the watch to start")
        _wait_for(lambda: _counters(url).get(names.WATCH_READ_FAILURES, 0) >= 5, 30, "failed reads")
        assert _counters(url).get(names.WATCH_READS) == 0
        with stack.prometheus(tmp_path / "prom", [], port=prom_port).start():
            _wait_for(lambda: _counters(url).get(names.WATCH_READS, 0) >= 2, 30, "good reads")
            os.kill(watch.pid, signal.SIGTERM)
            assert watch.wait(20) == 0
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait(10)
    text = log.read_text()
    assert "Traceback" not in text
    failed = [line for line in text.splitlines() if "read failed" in line]
    assert len(failed) == 1, text
    assert f"cannot reach Prometheus at http://127.0.0.1:{prom_port}" in failed[0]
    assert "reading again from" in text
    assert text.rstrip().endswith("stopped")
