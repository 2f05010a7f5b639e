"""Hand-computed call-detail fixtures for the contact-centre indicators (docs/contact-centre.md).

``CALLS``: eight calls, times in seconds after ``t0`` (offered, answered or None, ended). With a
5 s short-abandon threshold, a 20 s service level and a 1 h repeat window:

- offered 8: answered 5 (calls 1, 2, 6, 7, 8), short abandon 1 (3: 3 s), abandoned 1 (4: 40 s),
  failed 1 (5);
- answered within 20 s: 4 (waits 10, 15, 20, 5; call 2 waited 30 s);
- service level 4/7 without short abandons, 4/8 with; answer rate 5/8; abandon rate 1/7 or 2/8;
- ASA (10 + 30 + 15 + 20 + 5) / 5 = 16 s; AHT (300 + 180 + 600 + 120 + 60) / 5 = 252 s;
  p90 handle from the buckets: rank 4.5 falls in (420, 600] holding one call → 510 s;
- transfer 1/5 (call 2), ticket 1/5 (call 6), complaint 1/5 (call 7);
- repeats: customer A calls again (call 6, offered 1000) 690 s after call 1 ended → call 1 is a
  repeat, judged at 1000; calls 2, 6, 7 see no repeat within the hour → first contact, judged at
  3870, 5215 and 4940; call 8 (ended 6065) is still inside its window at the end of the data
  (6065) → unjudged. FCR 3/4;
- satisfaction (CSAT 4–5): scores 5, 2, 4 → 2/3.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cxmetrics._binaries import PROMETHEUS, PROMTOOL, require_binary
from cxmetrics.local import stack
from tests.helpers.paths import ROOT

CLI = ROOT / ".venv" / "bin" / "cxmetrics"
SPEC = ROOT / "tests" / "data" / "contact_centre.yaml"
RESOLUTION = 60.0

HEADER = (
    "call_id",
    "customer_ref",
    "queue",
    "offered_at",
    "answered_at",
    "ended_at",
    "transferred",
    "outcome",
    "wrap_code",
    "survey_score",
)
# (call id, customer, offered, answered, ended, transferred, outcome, wrap code, survey)
CALLS: tuple[tuple[str, str, float, float | None, float, bool, str, str, int | None], ...] = (
    ("c1", "A", 0, 10, 310, False, "resolved", "", 5),
    ("c2", "B", 60, 90, 270, True, "resolved", "", 2),
    ("c3", "C", 120, None, 123, False, "", "", None),
    ("c4", "D", 180, None, 220, False, "", "", None),
    ("c5", "E", 240, None, 245, False, "failed", "", None),
    ("c6", "A", 1000, 1015, 1615, False, "ticket", "", 4),
    ("c7", "F", 1200, 1220, 1340, False, "resolved", "COMPLAINT", None),
    ("c8", "B", 6000, 6005, 6065, False, "resolved", "", None),
)
EXPECTED = {
    "answer_rate": 5 / 8,
    "service_level": 4 / 7,
    "satisfaction": 2 / 3,
    "transfer_rate": 1 / 5,
    "ticket_rate": 1 / 5,
    "complaint_rate": 1 / 5,
    "first_contact_resolution": 3 / 4,
    "abandon_rate": 1 / 7,
    "asa": 16.0,
    "aht": 252.0,
    "p90_handle": 510.0,
}
EXPECTED_WITH_SHORT = {**EXPECTED, "service_level": 4 / 8, "abandon_rate": 2 / 8}
UNJUDGED = 1


def rows(t0: float, queue: str = "care") -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for call_id, customer, offered, answered, ended, transferred, outcome, wrap, survey in CALLS:
        out.append(
            {
                "call_id": f"{queue}-{call_id}",
                "customer_ref": customer,
                "queue": queue,
                "offered_at": t0 + offered,
                "answered_at": None if answered is None else t0 + answered,
                "ended_at": t0 + ended,
                "transferred": transferred,
                "outcome": outcome,
                "wrap_code": wrap,
                "survey_score": survey,
            }
        )
    return out


def write_csv(path: Path, records: list[dict[str, object]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for record in records:
            writer.writerow(["" if record[k] is None else _csv(record[k]) for k in HEADER])
    return path


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    with open(path, "w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return path


def _csv(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(value)
    return str(value)


@contextmanager
def backfilled(work: Path) -> Iterator[tuple[str, float, Path]]:
    """The calls of both fixture journeys (``care``, ``care_all``) imported by ``cxmetrics import
    --events --backfill`` into a fresh Prometheus (started on loopback, stopped on exit): yields
    (its URL, the time of the last sample, the event log)."""
    require_binary(PROMETHEUS)
    require_binary(PROMTOOL)
    t0 = (time.time() // RESOLUTION) * RESOLUTION - 4 * 3600  # inside the default retention
    export = write_csv(work / "calls.csv", rows(t0) + rows(t0, "care_all"))
    events = work / "events.jsonl"
    result = subprocess.run(
        [
            str(CLI),
            "import",
            str(SPEC),
            str(export),
            "--events",
            str(events),
            "--backfill",
            str(work / "data"),
            "--customer-key",
            "fixture-key",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last_event = t0 + 6065  # the last call's end
    at = math.ceil(last_event / RESOLUTION) * RESOLUTION
    server = stack.prometheus(work, [])
    with server.start(60):
        yield server.url, at, events
