"""What the ``service`` label costs a scrape: the exposition with and without it, in one run.

The collector labels every journey-scoped series with the spec's ``service`` at collect time (the
hot path — recording a step — is untouched). This measures the scrape: ``generate_latest`` of the
real collector, and of the same samples collected once and replayed with and without the
``service`` label (so the difference is the label alone), for the fleet spec's 50 journeys × 10
steps × 3 channels.

    .venv/bin/python benchmarks/bench_scrape.py [--journeys 50 --steps 10 --channels 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

import cxmetrics
from cxmetrics.spec import names

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet import fleet_spec


class _Replay(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def _without_service(families: list[Metric]) -> list[Metric]:
    out = []
    for family in families:
        copy = Metric(family.name, family.documentation, family.type, family.unit)
        copy.samples = [
            Sample(
                s.name,
                {k: v for k, v in s.labels.items() if k != names.SERVICE},
                s.value,
                s.timestamp,
                s.exemplar,
            )
            for s in family.samples
        ]
        out.append(copy)
    return out


def _per_call(fn: Callable[[], bytes], seconds: float = 3.0) -> tuple[float, int]:
    size = len(fn())
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return (time.perf_counter() - start) / n, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--journeys", type=int, default=50)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--channels", type=int, default=3)
    args = parser.parse_args()
    spec = fleet_spec(args.journeys, args.steps, args.channels)
    live = CollectorRegistry()
    cxmetrics.configure(spec, registry=live, spans="off")
    try:
        families = list(live.collect())
        with_label, bare = CollectorRegistry(), CollectorRegistry()
        with_label.register(_Replay(families))
        bare.register(_Replay(_without_service(families)))
        scrape, scrape_bytes = _per_call(lambda: generate_latest(live))
        labelled, labelled_bytes = _per_call(lambda: generate_latest(with_label))
        plain, plain_bytes = _per_call(lambda: generate_latest(bare))
    finally:
        cxmetrics.shutdown()
    samples = sum(len(f.samples) for f in families)
    print(
        f"exposition of {args.journeys} journeys × {args.steps} steps × {args.channels} "
        f"channels: {samples:,} samples"
    )
    for what, per, size in (
        ("scrape, real collector (with service)", scrape, scrape_bytes),
        ("replay with the service label", labelled, labelled_bytes),
        ("replay without it (bare)", plain, plain_bytes),
    ):
        print(f"  {what:<38} {per * 1000:8.1f} ms  {size:,} B")
    print(
        f"  the label costs {labelled / plain:.2f}x render time and "
        f"{labelled_bytes / plain_bytes:.2f}x bytes per scrape; recording a step: unchanged"
    )


if __name__ == "__main__":
    main()
