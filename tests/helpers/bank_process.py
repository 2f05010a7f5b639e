"""The example bank as an app instance of its own: one OS process under uvicorn, its /metrics
scraped as its own target, its event log in its own file.

Usage: ``python -m tests.helpers.bank_process PORT EVENT_LOG TIME_SCALE SEED``. Stopped by
SIGTERM to its PID: uvicorn answers what is in flight, then the lifespan shutdown closes the
event log (uvicorn re-raises the signal and never reaches ``atexit``).

``BankProcess`` starts one from a test, waits until it answers and stops it by its PID.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry

import cxmetrics
from examples.bank.app import create_app
from tests.helpers.paths import ROOT


class BankProcess:
    """One bank app process on ``127.0.0.1:port``."""

    def __init__(self, port: int, event_log: Path, time_scale: float, seed: int) -> None:
        self.port, self.event_log = port, event_log
        self.url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "tests.helpers.bank_process", str(port), str(event_log)]
        self.process = subprocess.Popen(
            [*argv, str(time_scale), str(seed)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/admin/faults", timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"the bank app did not start on port {port}: {self.stderr()}"
                    ) from None
                time.sleep(0.1)

    def stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        """SIGTERM, then wait for the graceful exit (the event log closed)."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        if self.process.stderr is not None:
            self.process.stderr.close()


def main() -> None:
    port, event_log, time_scale, seed = sys.argv[1:5]
    app = create_app(
        None,
        CollectorRegistry(),
        time_scale=float(time_scale),
        seed=int(seed),
        spans="off",
        event_log=event_log,
    )

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        cxmetrics.shutdown()  # flushes and closes the event log

    app.router.lifespan_context = lifespan
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
