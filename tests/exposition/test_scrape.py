"""A real Prometheus scrapes the instrumented bank app and returns the expected step counts."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from cxmetrics.analysis import promapi
from cxmetrics.local import stack
from examples.bank import traffic
from examples.bank.app import ROUTES, create_app
from tests.helpers.servers import serve_app

pytestmark = pytest.mark.slow  # every test here starts a server or a subprocess


def test_prometheus_scrapes_exact_step_counts(tmp_path: Path) -> None:
    port = stack.free_port()
    app = create_app(time_scale=0.01, seed=5, spans="off")
    with serve_app(app, port) as url:
        prom = stack.prometheus(tmp_path, [f"127.0.0.1:{port}"]).start()
        pid = prom.pid
        assert pid is not None
        try:
            stats = asyncio.run(traffic.run(url, duration=4.0, concurrency=8, seed=5))
            expected = {ROUTES[path][1]: count for path, count in stats.by_path.items()}
            assert stats.errors == 0 and sum(expected.values()) > 100
            query = "sum by (step) (cx_steps_total)"
            deadline = time.monotonic() + 20
            seen: dict[str, float] = {}
            while time.monotonic() < deadline:
                seen = {
                    r["metric"]["step"]: float(r["value"][1])
                    for r in promapi.query(prom.url, query)
                    if float(r["value"][1]) > 0
                }
                if seen == expected:
                    break
                time.sleep(0.5)
            assert seen == expected
            # transitions scraped too: every bill_detail request came after a bill_total
            result = promapi.query(
                prom.url,
                'sum(cx_step_transitions_total{journey="bill_inquiry",'
                'from_step="bill_total",to_step="bill_detail"})',  # over channels and segments
            )
            assert [float(r["value"][1]) for r in result] == [expected["bill_detail"]]
        finally:
            prom.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped by PID and reaped
