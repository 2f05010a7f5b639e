"""A service of its own: one step ``checkout/pay`` run continuously, its /metrics served.

Usage: ``python -m tests.helpers.service_process SPEC PORT FAST_MS SLOW_MS SLOW_AFTER_S``: steps
take ``FAST_MS``, then ``SLOW_MS`` from ``SLOW_AFTER_S`` seconds after the start. Stopped by its
PID. ``spec_file`` writes such a service's spec, ``running`` runs one for a test.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, start_http_server

import cxmetrics
from tests.helpers.paths import ROOT


def spec_file(
    directory: Path, service: str, target: str, policy: Mapping[str, object] | None = None
) -> Path:
    """``<directory>/<service>.yaml``: ``service`` with the one step ``checkout/pay`` (target
    ``target``) and, when given, ``policy`` as its default regression policy."""
    document: dict[str, object] = {
        "version": 1,
        "service": service,
        "journeys": [{"name": "checkout", "steps": [{"name": "pay", "target": target}]}],
    }
    if policy is not None:
        document["defaults"] = {"regression": dict(policy)}
    path = directory / f"{service}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@contextmanager
def running(spec: Path, port: int, fast_ms: int, slow_ms: int, after_s: float) -> Iterator[None]:
    """The service of ``spec`` on ``127.0.0.1:port`` until the block ends (stopped by PID)."""
    argv = [sys.executable, "-m", "tests.helpers.service_process", str(spec), str(port)]
    process = subprocess.Popen(
        [*argv, str(fast_ms), str(slow_ms), str(after_s)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    spec, port = sys.argv[1], int(sys.argv[2])
    fast, slow, after = float(sys.argv[3]) / 1000, float(sys.argv[4]) / 1000, float(sys.argv[5])
    registry = CollectorRegistry()
    cxmetrics.configure(spec, registry=registry, spans="off", strict=True)
    start_http_server(port, addr="127.0.0.1", registry=registry)
    began = time.monotonic()
    while True:
        pause = slow if time.monotonic() - began >= after else fast
        with cxmetrics.journey("checkout") as j, j.step("pay"):
            time.sleep(pause)
        time.sleep(0.02)


if __name__ == "__main__":
    main()
