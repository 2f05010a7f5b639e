"""Series per instance for the fleet spec, counted from the real exposition.

The spec: ``--journeys`` journeys × ``--steps`` steps × ``--channels`` channels (targets 100-500 ms,
one accuracy check on each journey's last step). Every (journey, step, channel) is driven through
the real runtime (``journey()`` / ``step()`` / ``check()``), then the exposition's samples are
counted, by family. Three states:

- idle: configured, no traffic (what the spec pre-allocates);
- once: every combination driven once (an ok, satisfied step; its check passed);
- worst: every combination driven with every outcome × timeliness class and the check both
  passing and failing, plus per journey and channel one undeclared step and check (the ``other``
  slots) and csat feedback: the steady state of a busy fleet, the number the budget is held to.

``--voice``: the worst case also hears every NPS score (0-10), every CSAT score (1-5), a complaint
and a praise per journey and channel at the journey's last step (the voice of the customer at
its fullest, feedback given where journeys end). ``--segment-target F`` gives the first declared
segment its own target F × T on every step (``by_segment``; needs ``--segments``): the price of
per-segment targets is the bounds they add to each step's layout.

Durations come from a scripted clock (``steps._perf``), so the classes are exact and the run
takes seconds. The same script runs against an older checkout (``PYTHONPATH=<tree>``) to give
the "before" figure: it uses only the API both have.

    .venv/bin/python benchmarks/bench_series.py [--journeys 50 --steps 10 --channels 3]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable

import yaml
from prometheus_client import CollectorRegistry

import cxmetrics
from cxmetrics.instrument import steps as steps_module
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.model import Spec

BUDGET = 30_000  # series per instance, for the 50 × 10 × 3 fleet spec (issue: series budget)


def fleet_spec(
    journeys: int, steps: int, channels: int, segments: int = 0, segment_target: float = 0.0
) -> Spec:
    names = ["app", "web", "phone", "branch", "chat", "post"][:channels]
    document: dict[str, object] = {
        "version": 1,
        "service": "fleet",
        "channels": names,
        **({"segments": [f"seg{k}" for k in range(segments)]} if segments else {}),
        "journeys": [
            {
                "name": f"j{j:02d}",
                "steps": [
                    {"name": f"s{s:02d}", "target": f"{100 * (1 + s % 5)}ms"}
                    | ({"checks": [{"name": "amount_ok"}]} if s == steps - 1 else {})
                    | (
                        {
                            "by_segment": {
                                "seg0": {"target": f"{100 * (1 + s % 5) * segment_target:g}ms"}
                            }
                        }
                        if segment_target
                        else {}
                    )
                    for s in range(steps)
                ],
            }
            for j in range(journeys)
        ],
    }
    return parse_spec(yaml.safe_dump(document), "<fleet>")


class ScriptedClock:
    """``perf_counter`` stand-in: the step started next lasts ``duration`` seconds."""

    def __init__(self) -> None:
        self.now = 0.0
        self.duration = 0.0
        self.starting = True

    def __call__(self) -> float:
        if not self.starting:
            self.now += self.duration
        self.starting = not self.starting
        return self.now


def count(registry: CollectorRegistry) -> Counter[str]:
    by_family: Counter[str] = Counter()
    for family in registry.collect():
        if family.name.startswith("cx_"):
            by_family[family.name] += len(family.samples)
    return by_family


def drive(spec: Spec, clock: ScriptedClock, worst: bool, voice: bool = False) -> None:
    """One journey instance per (journey, channel, class, outcome), walking the steps in order."""
    classes = (0.5, 2.0, 8.0) if worst else (0.5,)
    outcomes = (False, True) if worst else (False,)
    segments = getattr(spec, "segments", ())
    for journey in spec.journeys:
        for channel in spec.channels:
            for factor in classes:
                for error, segment in itertools.product(outcomes, segments or (None,)):
                    extra = {"segment": segment} if segment else {}
                    with cxmetrics.journey(journey.name, channel=channel, **extra) as j:
                        for step in journey.steps:
                            clock.duration = step.target * factor
                            s = j.step(step.name)
                            s.start()
                            for check in step.checks:
                                s.check(check.name, not error)
                            s.finish(error=error)
            if worst:
                with cxmetrics.journey(journey.name, channel=channel) as j:
                    clock.duration = 0.01
                    with j.step("undeclared_step") as s:
                        s.check("undeclared_check", True)
                    j.feedback(csat=3)
            if worst and voice:
                last = journey.steps[-1]
                with cxmetrics.journey(journey.name, channel=channel) as j:
                    clock.duration = 0.01
                    with j.step(last.name):
                        pass
                    for score in range(11):
                        j.feedback(nps=score)
                    for score in range(1, 6):
                        j.feedback(csat=score)
                    j.feedback(category="problem")
                    j.feedback(category="praise")


def measure(spec: Spec, state: str, voice: bool = False) -> Counter[str]:
    registry = CollectorRegistry()
    cxmetrics.configure(spec, registry=registry, spans="off")
    clock = ScriptedClock()
    real: Callable[[], float] = steps_module._perf
    steps_module._perf = clock
    try:
        if state != "idle":
            drive(spec, clock, worst=state == "worst", voice=voice)
        return count(registry)
    finally:
        steps_module._perf = real
        cxmetrics.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--journeys", type=int, default=50)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--segments", type=int, default=0, help="declared segments, all used")
    parser.add_argument("--voice", action="store_true", help="every NPS/CSAT score, topics")
    parser.add_argument(
        "--segment-target", type=float, default=0.0, help="the first segment's target, × T"
    )
    args = parser.parse_args()
    logging.getLogger("cxmetrics").setLevel(logging.ERROR)  # undeclared names, no context key
    spec = fleet_spec(args.journeys, args.steps, args.channels, args.segments, args.segment_target)
    print(
        f"fleet spec: {args.journeys} journeys × {args.steps} steps × {args.channels} channels"
        + (f" × {args.segments} segments" if args.segments else "")
    )
    results = {}
    for state in ("idle", "once", "worst"):
        start = time.perf_counter()
        results[state] = measure(spec, state, args.voice)
        took = time.perf_counter() - start
        print(f"  {state:<6} {sum(results[state].values()):>8,} series   ({took:.1f} s)")
    print("worst case by family:")
    for family, n in results["worst"].most_common():
        print(f"  {family:<40} {n:>8,}")
    worst = sum(results["worst"].values())
    verdict = "within" if worst <= BUDGET else "OVER"
    print(f"worst case {worst:,} series per instance: {verdict} the budget of {BUDGET:,}")


if __name__ == "__main__":
    main()
