"""A loan-application spec with a follow-up, and an app process that runs journeys through it.

``python -m tests.helpers.followup_app REDIS_URL START COUNT STALL_EVERY [PAUSE]`` runs journeys
``START .. START+COUNT-1``: each applies and uploads its documents; every journey whose index
``i`` has ``i % 100 < STALL_EVERY`` stalls there, the others sign (an optional sixth argument
pauses that many seconds per journey). It prints one JSON line with
what it did and the tracker's counters.
"""

from __future__ import annotations

import json
import sys

SPEC = """\
service: bank
channels: [app, web]
segments: [vip, mass]
journeys:
  - name: loan_application
    tags: {segment: retail}
    steps:
      - name: apply
        target: 2s
      - name: upload_documents
        target: 5s
        followup:
          after: {after}
          until: {until}
          webhook: {webhook}
          queue: relationship_managers
      - name: sign
        target: 3s
"""
CUSTOMER_KEY = b"test-customer-key"


def spec_text(
    webhook: str = "http://127.0.0.1:9/hooks", after: str = "1s", until: str = "1h"
) -> str:
    return SPEC.replace("{after}", after).replace("{until}", until).replace("{webhook}", webhook)


def stalls(index: int, stall_every: int) -> bool:
    return index % 100 < stall_every


def run(start: int, count: int, stall_every: int, pause: float = 0.0) -> int:
    import time

    import cxmetrics

    stalled = 0
    for i in range(start, start + count):
        j = cxmetrics.journey("loan_application", channel="app")
        j.identify(f"customer-{i}")
        with j.step("apply"):
            pass
        with j.step("upload_documents"):
            pass
        if pause:
            time.sleep(pause)
        if stalls(i, stall_every):
            stalled += 1
            continue
        with j.step("sign"):
            pass
    return stalled


def main() -> None:
    import tempfile

    from prometheus_client import CollectorRegistry, generate_latest

    import cxmetrics
    from cxmetrics import config
    from cxmetrics.instrument.state import STATE
    from cxmetrics.spec.load import parse_spec

    url, start, count, stall_every = sys.argv[1], *map(int, sys.argv[2:5])
    pause = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    registry = CollectorRegistry()
    spec = parse_spec(spec_text())
    with tempfile.TemporaryDirectory():
        cxmetrics.configure(
            spec, registry=registry, spans="off", customer_key=CUSTOMER_KEY, followup=url
        )
        stalled = run(start, count, stall_every, pause)
        (tracker,) = [s for s in STATE.runtime.step_hooks if hasattr(s, "wait")]  # type: ignore[union-attr]
        flushed = tracker.wait(60.0)
        exposition = generate_latest(registry).decode()
        config.shutdown()
    print(json.dumps({"stalled": stalled, "flushed": flushed, "metrics": exposition}), flush=True)


if __name__ == "__main__":
    main()
