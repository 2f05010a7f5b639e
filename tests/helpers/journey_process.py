"""One step of the bank's ``bill_inquiry`` in its own OS process, timed end to end.

Usage: ``python -m tests.helpers.journey_process SPEC STEP SECONDS EVENTS`` reads a JSON header
dict on stdin, resumes the journey those headers describe (the context is authenticated with
``$CXMETRICS_CONTEXT_KEY``), runs ``STEP`` for ``SECONDS``, writes its records to the JSONL event
log ``EVENTS`` and prints a JSON object with the outgoing headers, this process's exposition and
the instance id.
"""

from __future__ import annotations

import json
import sys
import time

from prometheus_client import CollectorRegistry, generate_latest

import cxmetrics


def main() -> None:
    spec, step, seconds, events = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    registry = CollectorRegistry()
    cxmetrics.configure(spec, registry=registry, spans="off", strict=True, event_log=events)
    incoming = json.loads(sys.stdin.read() or "{}")
    journey = cxmetrics.journey("bill_inquiry", headers=incoming)
    with journey, journey.step(step):
        time.sleep(seconds)
    outgoing: dict[str, str] = {}
    journey.inject(outgoing)
    metrics = generate_latest(registry).decode()
    cxmetrics.shutdown()  # flushes the event log
    print(json.dumps({"headers": outgoing, "metrics": metrics, "journey_id": journey.journey_id}))


if __name__ == "__main__":
    main()
