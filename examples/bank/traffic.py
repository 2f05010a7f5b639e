"""Simulated customers driving the bank app over real HTTP, with realistic abandonment.

Each customer picks a journey, walks its steps in order carrying the journey context (the
``baggage`` response header goes back on the next request), and may give up after any step.

A customer waits for each answer as long as the step's own targets allow (``step_timeouts``): a
phone call's resolution takes minutes, an app screen a second. A customer whose answer does not
come in time hangs up (counted in ``TrafficStats.timeouts``) and the next one starts; the run goes
on.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from cxmetrics.spec.load import load_spec
from cxmetrics.spec.model import Spec

from .app import ROUTES, SPEC_PATH

LOAN_STALL = 0.15  # share of loan applicants who stall after upload_documents
# journey → (weight, [(path, probability of continuing to the NEXT step after this one)])
JOURNEYS: dict[str, tuple[float, list[tuple[str, float]]]] = {
    "bill_inquiry": (0.6, [("/bill/login", 0.92), ("/bill/total", 0.85), ("/bill/detail", 1.0)]),
    "transfer": (
        0.3,
        [
            ("/transfer/payee", 0.9),
            ("/transfer/amount", 0.95),
            ("/transfer/confirm", 0.97),
            ("/transfer/receipt", 1.0),
        ],
    ),
    # 15% of the applicants who upload their documents do not sign: the follow-ups' customers.
    "loan_application": (
        0.1,
        [("/loan/apply", 0.8), ("/loan/documents", 1 - LOAN_STALL), ("/loan/sign", 1.0)],
    ),
    "contact_centre": (0.1, [("/contact/answer", 0.9), ("/contact/resolve", 1.0)]),
}
KEY_PATH = "/loan/documents"  # upload_documents, the key step with a follow-up
DIGITAL = "digital"  # bill_inquiry, transfer or loan_application, by weight
DIGITAL_JOURNEYS = ("bill_inquiry", "transfer", "loan_application")
CHANNELS = {
    "bill_inquiry": ("app", "web"),
    "transfer": ("app", "web"),
    "loan_application": ("app", "web"),
    "contact_centre": ("phone",),
}


# How long a customer waits for a step's answer: this many times the step's frustration
# threshold (the spec's tolerating threshold, 4 × target by default), and never less than
# MIN_TIMEOUT (a busy machine stalls short steps for seconds).
TIMEOUT_FACTOR = 2.0
MIN_TIMEOUT = 10.0


def step_timeouts(spec: Spec) -> dict[str, float]:
    """Per request path, the seconds a customer waits for its answer, sized from the step's
    targets in ``spec`` (pass the spec scaled like the app's latencies)."""
    return {
        path: max(MIN_TIMEOUT, TIMEOUT_FACTOR * spec.tolerating(spec.journey(j).step(s)))
        for path, (j, s) in ROUTES.items()
    }


@dataclass
class TrafficStats:
    journeys: int = 0
    requests: int = 0  # answered
    errors: int = 0  # answered with a status other than 200
    timeouts: int = 0  # not answered within the step's timeout: the customer hung up
    by_path: dict[str, int] = field(default_factory=dict)  # answered, per path
    # Loan customers answered at upload_documents who chose not to sign (the stalls a
    # follow-up is for), and those a timeout or the end of the run stopped between asking for
    # upload_documents and an answer to sign (the bank may or may not have them waiting).
    stalled: list[str] = field(default_factory=list)
    cut_off: list[str] = field(default_factory=list)


async def customer(
    client: httpx.AsyncClient,
    rng: random.Random,
    stats: TrafficStats,
    journey: str | None = None,
    deadline: float = float("inf"),
    timeouts: dict[str, float] | None = None,
) -> None:
    """One customer through one journey instance (``timeouts``: per path, see
    ``step_timeouts``; default: httpx's)."""
    if journey is None or journey == DIGITAL:
        names = [n for n in JOURNEYS if journey is None or n in DIGITAL_JOURNEYS]
        journey = rng.choices(names, weights=[JOURNEYS[n][0] for n in names])[0]
    channel = rng.choice(CHANNELS[journey])
    headers = {"x-cx-channel": channel}
    customer_id = ""
    if journey == "loan_application":  # the bank knows who applies; cxmetrics keeps a reference
        customer_id = headers["x-customer-id"] = f"customer-{rng.randrange(10**9)}"
    stats.journeys += 1
    waiting = False  # answered at the key step, not (yet) at a later one
    try:
        for path, keep_going in JOURNEYS[journey][1]:
            if time.monotonic() > deadline:
                return  # the run is over: the customer leaves mid-journey
            # From the moment the key step is asked for, the bank may have it (an answer cut
            # off by a timeout or the end of the run may still have been recorded).
            waiting = waiting or path == KEY_PATH
            try:
                if timeouts is None:
                    response = await client.post(path, headers=headers)
                else:
                    response = await client.post(path, headers=headers, timeout=timeouts[path])
            except httpx.TimeoutException:
                stats.timeouts += 1
                return  # the customer hangs up; the journey instance is abandoned
            stats.requests += 1
            stats.by_path[path] = stats.by_path.get(path, 0) + 1
            waiting = path == KEY_PATH and response.status_code == 200
            if response.status_code != 200:
                stats.errors += 1
            baggage = response.headers.get("baggage")
            if baggage:
                headers["baggage"] = baggage
            if rng.random() > keep_going or response.status_code != 200:
                if waiting:
                    stats.stalled.append(customer_id)
                    waiting = False
                return
    finally:
        if waiting:  # stopped by the end of the run, a timeout or a cancellation
            stats.cut_off.append(customer_id)


async def run(
    base_url: str,
    duration: float,
    concurrency: int = 20,
    seed: int = 7,
    journey: str | None = None,
    on_tick: Callable[[float, TrafficStats], None] | None = None,
    drain: bool = True,
    timeouts: dict[str, float] | None = None,
    until: Callable[[], bool] | None = None,
) -> TrafficStats:
    """Drive ``concurrency`` customers at a time for ``duration`` seconds (or until ``until()``,
    asked at every tick, says to stop).

    ``drain``: wait for the requests in flight at the deadline (exact counts); else cancel them.
    ``timeouts``: per path, how long a customer waits (default: ``step_timeouts`` of the example
    spec unscaled, long enough for an app at any ``time_scale`` up to 1).
    """
    if timeouts is None:
        timeouts = step_timeouts(load_spec(SPEC_PATH))
    stats = TrafficStats()
    deadline = time.monotonic() + duration

    async def worker(index: int, only: str | None) -> None:
        # One connection per customer line: httpx's shared pool costs O(connections) of CPU
        # per request, which would make the load generator the bottleneck.
        rng = random.Random(seed * 1000 + index)
        async with httpx.AsyncClient(base_url=base_url) as client:
            while time.monotonic() < deadline:
                await customer(client, rng, stats, only, deadline, timeouts)

    async def ticker() -> None:
        nonlocal deadline
        started = time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            if on_tick is not None:
                on_tick(min(1.0, (time.monotonic() - started) / duration), stats)
            if until is not None and until():
                deadline = time.monotonic()

    # Phone calls last minutes, app screens a second: callers get their own few lines so they
    # do not crowd out the digital customers (weights are shares of digital arrivals).
    if journey is None:
        phone = max(1, concurrency // 8)
        plan = [DIGITAL] * (concurrency - phone) + ["contact_centre"] * phone
    else:
        plan = [journey] * concurrency
    tasks = [asyncio.ensure_future(worker(i, only)) for i, only in enumerate(plan)]
    await ticker()
    # Past the deadline customers leave mid-journey; without ``drain`` the requests in flight
    # are cancelled too (slow contact-centre calls would otherwise hold the run open).
    if not drain:
        for task in tasks:
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=not drain)
    return stats
