"""CPU instructions per request of the example bank: without cxmetrics, with it, and with the
instrumentation a developer would write by hand instead.

Wall-clock throughput on a shared two-CPU machine drifts by a quarter between runs; the number of
CPU instructions a request executes hardly moves. This benchmark drives the bank app in-process
(its ASGI callable: the same Starlette stack as under uvicorn, without the HTTP parser and the
sockets) through the journey mix ``bench_load.py`` sends — ``bill_inquiry`` and ``transfer``,
each later step carrying its journey context in ``baggage`` — 32 requests in flight, backends
× 0.01. Each variant runs in its own process under ``perf stat -e instructions:u``,
once with ``--requests`` and once with twice as many, so start-up cancels out; median of
``--repeat`` pairs. Variants:

- ``bare``: ``create_app(instrument=False)``, the same routes and work without cxmetrics;
- ``prometheus-client by hand``: the bare handler plus what a developer writes for per-step
  latency and volume with prometheus-client alone (a histogram and a counter by journey and
  step); ``+ a span per step``: and an OpenTelemetry span around each step;
- ``cxmetrics``: ``create_app()``, spans ``interesting`` — the app as shipped;
- cxmetrics' parts added one at a time: ``journey(headers=...)``, the timed step, the accuracy
  checks (reconcile, fingerprints, consistency), the ``baggage`` response header.

Every variant installs the same OpenTelemetry SDK (batch processor, discarding exporter). The last
column is the throughput a CPU-bound server keeps: bare instructions / variant instructions.

Run: ``python benchmarks/bench_instructions.py`` (≈ 3 min). Needs ``perf`` with hardware
counters (Debian: ``apt-get install -y --no-install-recommends linux-perf``); without them it
measures CPU time instead, which is noisier, and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _asgi import http_scope  # noqa: E402

IN_FLIGHT = 32
TIME_SCALE = 0.01

VARIANTS = {
    "bare": "no cxmetrics (create_app(instrument=False))",
    "by_hand": "prometheus-client by hand: histogram + counter per step",
    "by_hand_span": "  + an OpenTelemetry span per step",
    "cxmetrics": "cxmetrics, the app as shipped (spans 'interesting')",
    "journey": "  cxmetrics part: journey(headers=...)",
    "step": "  + the timed step (with j.step(...))",
    "checks": "  + accuracy checks (reconcile, fingerprints, consistency)",
    "header": "  + the baggage response header (= the app as shipped)",
}


# -- the driven process (run as: bench_instructions.py --drive N VARIANT) ---------------------


def build(variant: str) -> Callable[..., Awaitable[None]]:
    """The ASGI app of one variant."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    trace.set_tracer_provider(provider)

    from examples.bank.app import create_app

    if variant in ("bare", "cxmetrics"):
        return create_app(time_scale=TIME_SCALE, seed=7, instrument=variant == "cxmetrics")
    if variant.startswith("by_hand"):
        return _by_hand(variant == "by_hand_span")
    return _parts(variant)


def _by_hand(span: bool) -> Callable[..., Awaitable[None]]:
    """The bare handler plus hand-written prometheus-client (and OpenTelemetry) calls."""
    from opentelemetry import trace
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from examples.bank.app import ROUTES, Bank, _accuracy, _Unmeasured

    registry = CollectorRegistry()
    latency = Histogram(
        "bank_step_duration_seconds", "Step latency", ["journey", "step"], registry=registry
    )
    steps = Counter(
        "bank_steps", "Steps by outcome", ["journey", "step", "outcome"], registry=registry
    )
    tracer = trace.get_tracer("bank")
    bank = Bank(TIME_SCALE, 7)

    async def handle(request: Request) -> Response:
        journey_name, step_name = ROUTES[request.url.path]
        t0 = time.perf_counter()
        outcome = "ok"
        if span:
            with tracer.start_as_current_span(step_name):
                await bank.work(step_name)
        else:
            await bank.work(step_name)
        shown = _accuracy(bank, _Unmeasured(), step_name, "uninstrumented")  # type: ignore[arg-type]
        latency.labels(journey_name, step_name).observe(time.perf_counter() - t0)
        steps.labels(journey_name, step_name, outcome).inc()
        return JSONResponse({"journey": journey_name, "step": step_name, **shown})

    return Starlette(routes=[Route(path, handle, methods=["GET", "POST"]) for path in ROUTES])


def _parts(variant: str) -> Callable[..., Awaitable[None]]:
    """The shipped handler with only the first parts of cxmetrics' work."""
    from prometheus_client import CollectorRegistry
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    import cxmetrics
    from cxmetrics.spec.load import load_spec
    from examples.bank.app import ROUTES, SPEC_PATH, Bank, _accuracy, _Unmeasured

    spec = load_spec(SPEC_PATH).scaled(TIME_SCALE)
    cxmetrics.configure(spec, registry=CollectorRegistry(), spans="interesting", strict=True)
    bank = Bank(TIME_SCALE, 7)
    unmeasured: Any = _Unmeasured()

    async def handle(request: Request) -> Response:
        journey_name, step_name = ROUTES[request.url.path]
        journey = cxmetrics.journey(journey_name, headers=request.headers)
        body: dict[str, Any] = {"journey": journey_name, "step": step_name}
        if variant == "journey":
            await bank.work(step_name)
            body.update(_accuracy(bank, unmeasured, step_name, journey.journey_id))
            return JSONResponse(body)
        with journey.step(step_name) as step:
            await bank.work(step_name)
            checked = step if variant != "step" else unmeasured
            body.update(_accuracy(bank, checked, step_name, journey.journey_id))
        if variant != "header":
            return JSONResponse(body)
        return JSONResponse(body, headers={"baggage": journey.baggage()})

    return Starlette(routes=[Route(path, handle, methods=["GET", "POST"]) for path in ROUTES])


def drive(n: int, variant: str) -> None:
    import bench_load

    app = build(variant)
    cycle = bench_load.journey_requests()
    sent = 0

    async def one(path: str, baggage: str | None) -> None:
        headers = [(b"host", b"127.0.0.1")]
        if baggage:
            headers.append((b"baggage", baggage.encode()))
        scope = http_scope(path, headers)
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)
        if statuses != [200]:
            raise SystemExit(f"{variant}: {path} answered {statuses}")

    async def client() -> None:
        nonlocal sent
        while sent < n:
            path, baggage = cycle[sent % len(cycle)]
            sent += 1
            await one(path, baggage)

    async def main() -> None:
        await asyncio.gather(*(client() for _ in range(IN_FLIGHT)))

    asyncio.run(main())


# -- the measuring side -------------------------------------------------------------------------


def perf_usable() -> bool:
    if shutil.which("perf") is None:
        return False
    probe = subprocess.run(
        ["perf", "stat", "-x,", "-e", "instructions:u", "true"],
        capture_output=True,
        text=True,
    )
    return probe.returncode == 0 and bool(re.match(r"\d+,", probe.stderr.strip().splitlines()[-1]))


def run_once(n: int, variant: str, use_perf: bool) -> float:
    """User-space instructions of one driven process; CPU seconds without perf."""
    command = [sys.executable, __file__, "--drive", str(n), variant]
    if not use_perf:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, check=True, cwd=ROOT)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = subprocess.run(
        ["perf", "stat", "-x,", "-e", "instructions:u", "--", *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{result.stderr[-2000:]}")
    for line in result.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].isdigit() and fields[2].startswith("instructions"):
            return float(fields[0])
    raise SystemExit(f"{variant}: perf printed no instruction count:\n{result.stderr[-2000:]}")


def per_request(variant: str, n: int, repeat: int, use_perf: bool) -> float:
    """Median over ``repeat`` pairs of (2n − n) runs: instructions (or CPU s) per request."""
    work = []
    for _ in range(repeat):
        small = run_once(n, variant, use_perf)
        work.append((run_once(2 * n, variant, use_perf) - small) / n)
    return statistics.median(work)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drive", nargs=2, metavar=("N", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 requests, one pair")
    parser.add_argument(
        "--only", nargs="+", choices=list(VARIANTS), help="these variants (bare always runs)"
    )
    args = parser.parse_args()
    if args.drive:
        drive(int(args.drive[0]), args.drive[1])
        return 0
    if args.quick:
        args.requests, args.repeat = 2_000, 1
    use_perf = perf_usable()
    unit = "instructions" if use_perf else "CPU µs"
    print(
        f"bank app in-process, {IN_FLIGHT} requests in flight, backends x {TIME_SCALE}; Python "
        f"{platform.python_version()}; {args.requests:,} requests per measurement, median of "
        f"{args.repeat}; "
        + (
            "perf stat, user-space instructions"
            if use_perf
            else "perf with hardware counters not available (apt-get install -y "
            "--no-install-recommends linux-perf): CPU time instead, noisier"
        )
    )
    os.environ.setdefault("PYTHONHASHSEED", "0")
    chosen = [v for v in VARIANTS if not args.only or v == "bare" or v in args.only]
    results = {}
    for variant in chosen:
        work = per_request(variant, args.requests, args.repeat, use_perf)
        results[variant] = work if use_perf else work * 1e6
    bare = results["bare"]
    print(f"\n{'':<62} {unit + '/request':>20} {'vs bare':>9} {'CPU-bound ratio':>16}")
    for variant in chosen:
        work, label = results[variant], VARIANTS[variant]
        print(f"{label:<62} {work:>20,.0f} {work - bare:>+9,.0f} {bare / work:>16.3f}")
    if "cxmetrics" not in results or "by_hand" not in results:
        return 0
    ours, hand = results["cxmetrics"] - bare, results["by_hand"] - bare
    print(
        f"\ncxmetrics adds {ours:,.0f} {unit} per request ({ours / bare:.1%} of the bare request); "
        f"prometheus-client by hand adds {hand:,.0f} ({hand / bare:.1%}): cxmetrics costs "
        f"{ours / hand:.1f}x the hand-written histogram and counter"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
