"""A service of its own: one step ``checkout/pay`` run continuously, its /metrics served.

Usage: ``python -m tests.helpers.service_process SPEC PORT FAST_MS SLOW_MS SLOW_AFTER_S``: steps
take ``FAST_MS``, then ``SLOW_MS`` from ``SLOW_AFTER_S`` seconds after the start. Stopped by its
PID.
"""

from __future__ import annotations

import sys
import time

from prometheus_client import CollectorRegistry, start_http_server

import cxmetrics


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
