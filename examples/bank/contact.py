"""The bank's contact centre as a call-detail export, for ``cxmetrics import`` (docs/import.md).

A seeded simulation of a queue with ``agents`` agents: calls arrive at random (Poisson), wait for
the first free agent, and give up when their patience (random, some very short: short abandons)
runs out first; the platform fails a few outright. Answered calls are handled for a random time,
some are transferred, some raise a ticket or a complaint (wrap-up code); a share of customers
call back within hours (repeat contacts); a third of answered calls leave a CSAT score. One
customer in ten is ``vip`` (more patient, more demanding in the survey), the rest ``mass``; a
fifth of the calls are call backs asked for on the website (channel ``web``: the customer waits
longer for them). Rows are written in offered-time order, the columns of the default
``contact.records`` mapping::

    python -m examples.bank.contact calls.csv --calls 5000
    cxmetrics import examples/bank/cxmetrics.yaml calls.csv --events events.jsonl
"""

from __future__ import annotations

import argparse
import csv
import heapq
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
    "channel",
    "segment",
)


@dataclass(frozen=True)
class Shape:
    """The centre's traffic and behaviour."""

    calls_per_hour: float = 120.0
    agents: int = 11  # 120 calls an hour × 4.5 min: 9 erlangs, agents 82% busy
    handle_mean: float = 240.0  # seconds, exponential above a 30 s floor
    patience_mean: float = 90.0  # seconds a caller waits before giving up
    impatient: float = 0.05  # share who hang up within seconds (short abandons)
    failed: float = 0.02  # calls the platform drops
    transfer: float = 0.08
    ticket: float = 0.15
    complaint: float = 0.02
    call_back: float = 0.12  # share of answered calls whose customer calls again
    survey: float = 0.33
    customers: int = 5000
    vip: float = 0.1  # share of customers in the vip segment
    web: float = 0.2  # share of calls that are call backs asked for on the website


def simulate(n: int, start: float, shape: Shape = Shape(), seed: int = 7) -> Iterator[list[str]]:
    """``n`` export rows (without the header), in offered order."""
    rng = random.Random(seed)
    free_at = [start] * shape.agents  # a heap of the times agents become free
    heapq.heapify(free_at)
    call_backs: list[tuple[float, str]] = []  # (offered, customer) of scheduled repeat calls
    t = start
    for k in range(n):
        t += rng.expovariate(shape.calls_per_hour / 3600.0)
        if call_backs and call_backs[0][0] <= t:
            offered, customer = heapq.heappop(call_backs)
        else:
            offered, customer = t, f"cust{rng.randrange(shape.customers)}"
        row = _call(rng, shape, f"call{k:07d}", customer, offered, free_at)
        if row[4] and rng.random() < shape.call_back:  # answered: may call again
            heapq.heappush(call_backs, (float(row[5]) + rng.uniform(600, 6 * 3600), customer))
        yield row


def _segment(shape: Shape, customer: str) -> str:
    return "vip" if int(customer.removeprefix("cust")) < shape.vip * shape.customers else "mass"


def _call(
    rng: random.Random, shape: Shape, call_id: str, customer: str, offered: float, free: list[float]
) -> list[str]:
    segment = _segment(shape, customer)
    channel = "web" if rng.random() < shape.web else "phone"
    where = [channel, segment]
    if rng.random() < shape.failed:
        ended = offered + rng.uniform(0.5, 5)
        return [
            call_id,
            customer,
            "care",
            _t(offered),
            "",
            _t(ended),
            "0",
            "failed",
            "",
            "",
            *where,
        ]
    patience = (
        rng.uniform(0.5, 4.5)
        if rng.random() < shape.impatient
        else rng.expovariate(1 / shape.patience_mean)
    )
    patience *= (2.0 if segment == "vip" else 1.0) * (3.0 if channel == "web" else 1.0)
    agent_free = free[0]
    answer = max(offered, agent_free)
    if answer - offered > patience:
        gave_up = _t(offered + patience)
        return [call_id, customer, "care", _t(offered), "", gave_up, "0", "", "", "", *where]
    handle = 30 + rng.expovariate(1 / shape.handle_mean)
    heapq.heapreplace(free, answer + handle)
    draw = rng.random()
    outcome = "ticket" if draw < shape.ticket else "resolved"
    wrap = "complaint" if rng.random() < shape.complaint else ""
    transferred = "1" if rng.random() < shape.transfer else "0"
    scores = (8, 10, 17, 35, 30) if segment == "vip" else (5, 7, 13, 35, 40)
    survey = str(rng.choices((1, 2, 3, 4, 5), scores)[0])
    survey = survey if rng.random() < shape.survey else ""
    ended = answer + handle
    return [
        call_id,
        customer,
        "care",
        _t(offered),
        _t(answer),
        _t(ended),
        transferred,
        outcome,
        wrap,
        survey,
        *where,
    ]


def _t(seconds: float) -> str:
    return f"{seconds:.3f}"


def write(path: Path, n: int, start: float | None = None, seed: int = 7) -> Counter[str]:
    """Write an export of ``n`` calls ending about now; returns the count per disposition."""
    shape = Shape()
    begin = start if start is not None else time.time() - n / shape.calls_per_hour * 3600 - 3600
    totals: Counter[str] = Counter()
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for row in simulate(n, begin, shape, seed):
            writer.writerow(row)
            totals["answered" if row[4] else "failed" if row[7] == "failed" else "abandoned"] += 1
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a simulated call-detail export.")
    parser.add_argument("path", type=Path)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    totals = write(args.path, args.calls, seed=args.seed)
    print(f"{args.path}: {args.calls:,} calls {dict(totals)}")


if __name__ == "__main__":
    main()
