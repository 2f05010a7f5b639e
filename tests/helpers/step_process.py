"""One step of the bank journey in its own OS process, linked to others only by headers.

Usage: ``python -m tests.helpers.step_process SPEC STEP`` reads a JSON header dict on stdin,
runs ``STEP`` of ``bill_inquiry`` as the journey those headers describe, and prints a JSON object
with the outgoing headers and this process's exposition.
"""

from __future__ import annotations

import json
import sys

from prometheus_client import CollectorRegistry, generate_latest

import cxmetrics


def main() -> None:
    spec, step = sys.argv[1], sys.argv[2]
    registry = CollectorRegistry()
    cxmetrics.configure(spec, registry=registry, spans="off", strict=True)
    incoming = json.loads(sys.stdin.read() or "{}")
    journey = cxmetrics.journey("bill_inquiry", context=cxmetrics.extract(incoming))
    with journey, journey.step(step):
        pass
    outgoing: dict[str, str] = {}
    journey.inject(outgoing)
    print(
        json.dumps(
            {
                "headers": outgoing,
                "metrics": generate_latest(registry).decode(),
                "journey_id": journey.journey_id,
            }
        )
    )


if __name__ == "__main__":
    main()
