"""Counts stay exact under threads and asyncio; instances never leak into each other."""

from __future__ import annotations

import asyncio
import random
import threading

import cxmetrics
from cxmetrics.testing import Recording


def test_eight_threads_fifty_thousand_steps_each_counts_exact(rec: Recording) -> None:
    per_thread = 50_000
    barrier = threading.Barrier(8)

    def work(index: int) -> None:
        barrier.wait()
        with cxmetrics.journey("transfer", channel="app") as j:
            for _ in range(per_thread):
                with j.step("payee"):
                    pass

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    labels = {"journey": "transfer", "step": "payee", "channel": "app"}
    total = 8 * per_thread
    step = {"journey": "transfer", "step": "payee"}  # the histogram adds every channel
    assert rec.value("cx_step_duration_seconds_count", **step) == total
    assert rec.value("cx_step_duration_seconds_bucket", **step, le="+Inf") == total
    assert rec.value("cx_steps_total", **labels, outcome="ok", timeliness="satisfied") == total
    assert rec.value("cx_good_steps_total", **labels) == total
    # each thread's instance: one start, then payee → payee repeats
    assert rec.value("cx_journeys_started_total", journey="transfer", channel="app") == 8
    assert (
        rec.value(
            "cx_step_transitions_total", journey="transfer", from_step="payee", to_step="payee"
        )
        == total - 8
    )


def test_thousand_concurrent_async_journeys_do_not_cross_talk(rec: Recording) -> None:
    async def customer(index: int) -> tuple[str, list[str]]:
        rng = random.Random(index)
        async with cxmetrics.journey("bill_inquiry", channel="web") as j:
            seen = []
            for step in ("login", "bill_total", "bill_detail"):
                async with j.step(step):
                    await asyncio.sleep(rng.random() / 1000)
                    assert cxmetrics.current_journey() is j
                    seen.append(j.journey_id)
            return j.journey_id, seen

    async def main() -> list[tuple[str, list[str]]]:
        return await asyncio.gather(*(customer(i) for i in range(1000)))

    results = asyncio.run(main())
    assert len({journey_id for journey_id, _ in results}) == 1000
    assert all(seen == [journey_id] * 3 for journey_id, seen in results)
    for from_step, to_step in (("login", "bill_total"), ("bill_total", "bill_detail")):
        assert (
            rec.value(
                "cx_step_transitions_total",
                journey="bill_inquiry",
                from_step=from_step,
                to_step=to_step,
            )
            == 1000
        )
    assert (
        rec.value(
            "cx_step_transitions_total",
            journey="bill_inquiry",
            from_step="login",
            to_step="bill_detail",
        )
        == 0
    )
    by_instance: dict[str, list[str]] = {}
    for record in rec.recorder.steps:
        by_instance.setdefault(record.journey_id, []).append(record.step)
    assert all(s == ["login", "bill_total", "bill_detail"] for s in by_instance.values())
    assert cxmetrics.current_journey() is None
