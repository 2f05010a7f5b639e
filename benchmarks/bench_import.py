"""``cxmetrics import`` on a generated call export: rows per second, peak memory, totals.

A seeded generator writes ``--rows`` call-detail rows (default 100,000) over a week, in offered
order, for the example spec of ``tests/data/contact_centre.yaml`` (queue ``care``): 80% answered
(waits 0-60 s, handle 30 s-20 min), 12% abandoned (some short), 3% failed, repeat callers among
20,000 customers, surveys on a third, and 1 row in 200 deliberately bad (a timestamp that is not
one). Then, in one run:

- **bare**: the same file read with ``csv.reader`` and nothing done (the floor any importer pays);
- **bare + JSON**: ``csv.reader``, each row made a dict and written as one ``json.dumps`` line
  (what the least an importer writing JSON lines does; the importer writes five lines a row);
- **import → event log**: ``import_calls`` writing the event log to a file;
- **import → event log + backfill**: also the OpenMetrics file for ``promtool``;
- **peak memory**: ``tracemalloc``'s peak of the event-log import, at a fifth of the rows and at
  all of them (flat: the peak must not grow with the rows).

Totals are checked against the generator's: rows, rejected, offered, answered, abandoned (short
and not), failed. Goal: ≥ 50,000 rows/s for the event-log import.

    .venv/bin/python benchmarks/bench_import.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxmetrics.analysis import contact  # noqa: E402
from cxmetrics.instrument.redaction import hmac_redactor  # noqa: E402
from cxmetrics.records.importer import ImportReport, import_calls  # noqa: E402
from cxmetrics.records.openmetrics import Backfill  # noqa: E402
from cxmetrics.spec import names  # noqa: E402
from cxmetrics.spec.load import load_spec  # noqa: E402
from tests.helpers.calls import HEADER  # noqa: E402

SPEC = ROOT / "tests" / "data" / "contact_centre.yaml"
GOAL = 50_000.0
BAD_EVERY = 200


def generate(path: Path, rows: int, seed: int = 1) -> Counter[str]:
    """Write the export; returns the expected totals."""
    rng = random.Random(seed)
    t = time.time() - 8 * 86400
    span = 7 * 86400 / rows
    expected: Counter[str] = Counter()
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for k in range(rows):
            t += rng.expovariate(1 / span)
            call = f"c{k}"
            customer = f"cust{rng.randrange(20_000)}"
            if k % BAD_EVERY == BAD_EVERY - 1:
                writer.writerow([call, customer, "care", "not-a-time", "", f"{t + 9:.3f}"])
                expected["rejected"] += 1
                continue
            expected["offered"] += 1
            draw = rng.random()
            outcome, wrap, answered = "", "", ""
            if draw < 0.80:
                wait = rng.uniform(0, 60)
                ended = t + wait + rng.uniform(30, 1200)
                answered = f"{t + wait:.3f}"
                outcome = rng.choice(("resolved", "resolved", "resolved", "ticket"))
                wrap = "COMPLAINT" if rng.random() < 0.02 else ""
                expected["answered"] += 1
            elif draw < 0.97:
                wait = rng.uniform(0, 120)
                ended = t + wait
                expected["short_abandoned" if wait < 5 else "abandoned"] += 1
            else:
                ended = t + rng.uniform(0, 10)
                outcome = "failed"
                expected["failed"] += 1
            survey = str(rng.randint(1, 5)) if answered and rng.random() < 0.33 else ""
            transferred = "1" if answered and rng.random() < 0.08 else "0"
            writer.writerow(
                [
                    call,
                    customer,
                    "care",
                    f"{t:.3f}",
                    answered,
                    f"{ended:.3f}",
                    transferred,
                    outcome,
                    wrap,
                    survey,
                ]
            )
    expected["rows"] = rows
    return expected


def bare(path: Path) -> float:
    start = time.perf_counter()
    with open(path, newline="") as handle:
        for _ in csv.reader(handle):
            pass
    return time.perf_counter() - start


def bare_json(path: Path, out: Path) -> float:
    """Rows as dicts, one ``json.dumps`` line each, written in the same 1,024-row batches."""
    start = time.perf_counter()
    with open(path, newline="") as handle, open(out, "wb") as sink:
        reader = csv.reader(handle)
        header = next(reader)
        batch: list[str] = []
        for fields in reader:
            batch.append(json.dumps(dict(zip(header, fields, strict=False))) + "\n")
            if len(batch) >= 1024:
                sink.write("".join(batch).encode())
                batch.clear()
        sink.write("".join(batch).encode())
    return time.perf_counter() - start


CPU: list[float] = []  # CPU seconds of each run, beside its wall-clock seconds


def run(path: Path, out: Path, backfill: bool) -> tuple[float, ImportReport]:
    spec = load_spec(SPEC)
    redact = hmac_redactor(b"bench-key")
    filler = Backfill(60.0) if backfill else None
    start, cpu = time.perf_counter(), time.process_time()
    with open(out, "wb") as events:
        report = import_calls(spec, path, "csv", redact, events=events, backfill=filler)
    if filler is not None:
        filler.write(out.with_suffix(".om"))
    CPU.append(time.process_time() - cpu)
    return time.perf_counter() - start, report


def peak(path: Path, out: Path) -> int:
    tracemalloc.start()
    run(path, out, backfill=False)
    _, high = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return high


def check(report: ImportReport, expected: Counter[str]) -> None:
    counts = report.counts["care"]
    calls: Counter[str] = Counter()
    for (disposition, _), n in counts.series[names.CONTACTS].items():
        calls[disposition] += int(n)
    got = {
        "rows": report.rows,
        "rejected": report.rejected,
        "offered": contact.offered(counts),
        **{d: calls[d] for d in names.DISPOSITIONS},
    }
    want = {k: expected[k] for k in got}
    if got != want:
        raise SystemExit(f"totals differ from the file's: got {got}, expected {want}")
    print(f"totals equal to the file's: {got}")
    print(f"rejected with reasons: {dict(report.reasons)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        export, small = work / "calls.csv", work / "small.csv"
        expected = generate(export, args.rows)
        generate(small, args.rows // 5)
        size = os.path.getsize(export)
        print(f"export: {args.rows:,} rows, {size / 1e6:.1f} MB")
        floor = min(bare(export) for _ in range(3))
        floor_json = min(bare_json(export, work / "bare.jsonl") for _ in range(3))
        timings = []
        report = None
        CPU.clear()
        for _ in range(3):
            elapsed, report = run(export, work / "events.jsonl", backfill=False)
            timings.append(elapsed)
        assert report is not None
        check(report, expected)
        events_s = min(timings)
        events_cpu = min(CPU)
        both_s = min(run(export, work / "both.jsonl", backfill=True)[0] for _ in range(2))
        print(f"bare csv.reader:              {args.rows / floor:>10,.0f} rows/s")
        print(f"bare csv.reader + json.dumps: {args.rows / floor_json:>10,.0f} rows/s")
        print(
            f"import → event log:           {args.rows / events_s:>10,.0f} rows/s "
            f"({events_s / floor_json:.2f}× the time of csv.reader + json.dumps; goal "
            f"≥ {GOAL:,.0f}: {'met' if args.rows / events_s >= GOAL else 'MISSED'})"
        )
        print(
            f"  (CPU time: {args.rows / events_cpu:,.0f} rows/s; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
        )
        print(
            f"import → event log + backfill: {args.rows / both_s:>9,.0f} rows/s "
            f"({both_s / floor:.1f}× the bare read)"
        )
        events_size = os.path.getsize(work / "events.jsonl")
        print(f"event log: {events_size / 1e6:.1f} MB")
        low, high = peak(small, work / "p1.jsonl"), peak(export, work / "p2.jsonl")
        print(
            f"peak traced memory: {low / 1e6:.1f} MB at {args.rows // 5:,} rows, "
            f"{high / 1e6:.1f} MB at {args.rows:,} rows ({high / low:.2f}×; the repeat "
            "judgments keep the answered calls of the last repeat window)"
        )


if __name__ == "__main__":
    main()
