"""Simulated customers driving the bank app over real HTTP, with realistic abandonment.

Each customer picks a journey, walks its steps in order carrying the journey context (the
``baggage`` response header goes back on the next request), and may give up after any step.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

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
    "contact_centre": (0.1, [("/contact/answer", 0.9), ("/contact/resolve", 1.0)]),
}
CHANNELS = {
    "bill_inquiry": ("app", "web"),
    "transfer": ("app", "web"),
    "contact_centre": ("phone",),
}


@dataclass
class TrafficStats:
    journeys: int = 0
    requests: int = 0
    errors: int = 0
    by_path: dict[str, int] = field(default_factory=dict)


async def customer(
    client: httpx.AsyncClient, rng: random.Random, stats: TrafficStats, journey: str | None = None
) -> None:
    """One customer through one journey instance."""
    if journey is None:
        names = list(JOURNEYS)
        journey = rng.choices(names, weights=[JOURNEYS[n][0] for n in names])[0]
    channel = rng.choice(CHANNELS[journey])
    headers = {"x-cx-channel": channel}
    stats.journeys += 1
    for path, keep_going in JOURNEYS[journey][1]:
        response = await client.post(path, headers=headers)
        stats.requests += 1
        stats.by_path[path] = stats.by_path.get(path, 0) + 1
        if response.status_code != 200:
            stats.errors += 1
        baggage = response.headers.get("baggage")
        if baggage:
            headers["baggage"] = baggage
        if rng.random() > keep_going or response.status_code != 200:
            return


async def run(
    base_url: str,
    duration: float,
    concurrency: int = 20,
    seed: int = 7,
    journey: str | None = None,
    on_tick: Callable[[float, TrafficStats], None] | None = None,
) -> TrafficStats:
    """Drive ``concurrency`` customers at a time for ``duration`` seconds."""
    stats = TrafficStats()
    deadline = time.monotonic() + duration
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as client:

        async def worker(index: int) -> None:
            rng = random.Random(seed * 1000 + index)
            while time.monotonic() < deadline:
                await customer(client, rng, stats, journey)

        async def ticker() -> None:
            started = time.monotonic()
            while time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                if on_tick is not None:
                    on_tick(min(1.0, (time.monotonic() - started) / duration), stats)

        await asyncio.gather(ticker(), *(worker(i) for i in range(concurrency)))
    return stats
