"""The example bank under sustained load, without and with cxmetrics, from a second process.

Two uvicorn processes (one worker each) serve the same bank app: ``create_app(instrument=False)``
(the same routes and the same work, not one cxmetrics call) and ``create_app()`` with cxmetrics on,
spans ``interesting``. Both install the same OpenTelemetry SDK (a BatchSpanProcessor and an
exporter that discards), so the instrumented side pays for the spans it creates. wrk (Debian's)
drives each over loopback in turn, in the order without, with, with, without (ABBA: drift in the
machine cancels out), ``--duration`` seconds per run. Servers are pinned to CPU 0 and wrk to
CPU 1, so the load generator does not steal the server's CPU.

Seven operating points, each with its own pair of servers:

1. **Shipped, half load**, 2. **shipped, two-thirds load** and 3. **shipped, three-quarter
   load**: the bank as it ships (its simulated backends take 100 ms–1 s, its step targets as in
   ``cxmetrics.yaml``), with as many connections as keep the server without cxmetrics busy
   50% / 67% / 75% of its CPU (measured under a probe load and scaled, twice; several hundred to
   a thousand connections). This is the issue's test as written: the example bank app under
   sustained load. cxmetrics adds up to a quarter to the CPU of the bank's requests, so these
   points aim at the busy shares where the goal holds and where it stops holding (the
   calibration can land low: run 4's two-thirds point measured 52-56% without cxmetrics).
4. **Half load** and 5. **three-quarter load**, time compressed: the bank's simulated backend
   latencies and its step targets both × 0.01 (1-6 ms backends, targets scaled alike, so
   timeliness classes and the ``interesting`` spans occur as in the real app), and as many
   connections as keep the server without cxmetrics at 50% / 75% of the capacity measured just
   before (closed loop: connections = rate × time per request). A handler of ≈ 200 µs of CPU
   around a few ms of waiting: whatever cxmetrics costs shows up as queueing, so in latency and
   through it in throughput.
6. **Saturated**: backends × 0.001 (0.1-0.6 ms sleeps, far below the server's CPU time per
   request), 32 connections: the server is CPU-bound and every microsecond cxmetrics costs is
   lost throughput. Step targets × 0.05 there: under saturation every request waits for the
   event loop, and targets of a fraction of a millisecond would make every step frustrated and
   every step a span, which is not the ``interesting`` mode a bank runs. The example's handlers
   do no work of their own (≈ 100 µs of CPU, nearly all Starlette's), so this point prices
   cxmetrics against the cheapest request a Python web app can serve.
7. **Saturated, 1 ms handler**: the same, with each bank request also doing work of its own, as
   a bank's requests do: it serializes and parses a 600-line account statement (``json``, ≈ 1 ms
   of CPU, the same work in both servers, outside cxmetrics). Is cxmetrics' cost per request a
   constant the request's own work dilutes, or does that work make it dearer (its code and data
   evicted from the CPU's caches between steps)?

The goal (throughput with cxmetrics ≥ 97% of without, p99 within 5%) is checked at each point
and the verdict printed; the server CPU microseconds per request, the garbage collector's share
and where cxmetrics' time goes in-process are printed to explain it.

Requests: journeys ``bill_inquiry`` (login → bill_total → bill_detail, with its reconcile and
consistency checks) and ``transfer`` (payee → amount → confirm → receipt), each later step
carrying its journey context in ``baggage`` as a real client does. Exactness: every request the
instrumented server handled (counted by a wrapper outside cxmetrics) must equal the step counts
in its ``/metrics``, per step, at every point.

Run: ``python benchmarks/bench_load.py`` (4 × 60 s per point, ≈ 35 min; ``--quick``: 4 × 10 s;
``--only <point>``; ``--connections N``: N connections at every point, no calibration;
``--gc-freeze``: both servers freeze their start-up objects, as the demo
does; ``--gc-threshold N``: both servers collect the young generation every N allocations instead
of CPython's 700).
Requires wrk: ``apt-get install -y --no-install-recommends wrk``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_THROUGHPUT = 0.97
GOAL_P99 = 1.05
SERVER_CPU, LOAD_CPU = 0, 1
JOURNEY_IDS = 128  # distinct journey instances cycled through by the load generator
TICKS = os.sysconf("SC_CLK_TCK")


# -- the server side (run as: bench_load.py --serve ...) -----------------------------------------


def serve(
    port: int,
    instrument: bool,
    time_scale: float,
    target_scale: float,
    freeze: bool,
    threshold: int | None = None,
    statement_lines: int = 0,
) -> None:
    import uvicorn
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    from cxmetrics.spec.load import load_spec
    from examples.bank.app import ROUTES, SPEC_PATH, create_app

    exported = Counter[str]()

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            exported["spans"] += len(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    trace.set_tracer_provider(provider)
    # create_app scales the spec by time_scale; pre-scale so targets end up × target_scale.
    spec = load_spec(SPEC_PATH).scaled(target_scale / time_scale)
    app = create_app(
        spec, time_scale=time_scale, seed=7, spans="interesting", instrument=instrument
    )
    served = Counter[str]()
    rng = random.Random(1)
    statement = [
        {
            "date": f"2026-11-{1 + i % 28:02d}",
            "payee": f"payee {rng.randrange(10**6)}",
            "amount": f"{rng.randrange(1, 10**6) / 100:.2f}",
            "balance": f"{rng.randrange(10**8) / 100:.2f}",
        }
        for i in range(statement_lines)
    ]
    import gc

    gc_time = [0.0, 0.0, 0.0]
    gc_count = [0, 0, 0]
    gc_t0 = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_t0[0] = time.perf_counter()
        else:
            gc_time[info["generation"]] += time.perf_counter() - gc_t0[0]
            gc_count[info["generation"]] += 1

    gc.callbacks.append(on_gc)

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/_served":
            provider.force_flush()
            body = json.dumps(
                {
                    "by_path": served,
                    "spans": exported["spans"],
                    "gc_time": gc_time,
                    "gc_count": gc_count,
                    "objects": len(gc.get_objects()),
                }
            ).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        path = scope.get("path", "")
        if statement and path in ROUTES:  # the request's own work (scenario 6)
            json.loads(json.dumps(statement))

        async def counting(message: Any) -> None:
            if message["type"] == "http.response.start":
                served[path] += 1
            await send(message)

        await app(scope, receive, counting)

    config = uvicorn.Config(
        counted,
        host="127.0.0.1",
        port=port,
        workers=1,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    if threshold:
        gc.set_threshold(threshold, *gc.get_threshold()[1:])
    if freeze:  # what a tuned server does after start-up: the collector skips what is loaded
        gc.collect()
        gc.freeze()
    uvicorn.Server(config).run()


# Contexts cross requests only when signed: the served app (this process's environment, which
# its server inherits) and the load generator share one context key.
CONTEXT_KEY = "bench-context-key-0123456789abcdef"
os.environ["CXMETRICS_CONTEXT_KEY"] = CONTEXT_KEY

# -- the load generator -----------------------------------------------------------------------


def journey_requests() -> list[tuple[str, str | None]]:
    """(path, baggage) of whole journeys, ``JOURNEY_IDS`` instances of each, every later step
    carrying the context the bank app would have sent back (its fingerprints included)."""
    from cxmetrics.instrument.fingerprints import fingerprint
    from cxmetrics.propagation.codec import JourneyContext, encode
    from cxmetrics.propagation.integrity import ContextKeys
    from examples.bank.app import Bank

    keys = ContextKeys({"k1": CONTEXT_KEY})  # what the app signs with ($CXMETRICS_CONTEXT_KEY)
    key = keys.derived(b"fingerprints")  # its fingerprint key (none configured: derived)
    bank = Bank(1.0, None)
    requests: list[tuple[str, str | None]] = []
    for n in range(JOURNEY_IDS):
        jid = hashlib.sha256(f"bench-{n}".encode()).hexdigest()[:32]
        total, _ = bank.bill(jid)
        total_fp = {"bill_total": fingerprint(total, key)}
        bill = [
            ("/bill/login", None, {}),
            ("/bill/total", "login", {}),
            ("/bill/detail", "bill_total", total_fp),
        ]
        amount_fp = {"amount": fingerprint(Decimal("125.00"), key)}
        transfer = [
            ("/transfer/payee", None, {}),
            ("/transfer/amount", "payee", {}),
            ("/transfer/confirm", "amount", amount_fp),
            ("/transfer/receipt", "confirm", amount_fp),
        ]
        for journey, steps in (("bill_inquiry", bill), ("transfer", transfer)):
            for route, last, fps in steps:
                if last is None:
                    requests.append((route, None))
                else:
                    ctx = JourneyContext(journey, jid, last, "app", fps)
                    requests.append((route, encode(ctx, "", keys.mac)))
    return requests


def wrk_script(path: Path) -> None:
    """A wrk script cycling through ``journey_requests()``."""
    lines = ["local specs = {"]
    for route, baggage in journey_requests():
        lines.append(f'  {{"{route}", {f"{chr(34)}{baggage}{chr(34)}" if baggage else "false"}}},')
    lines += [
        "}",
        "local reqs = {}",
        "init = function(args)  -- wrk.format needs the Host header wrk sets before init",
        "  for n, s in ipairs(specs) do",
        '    reqs[n] = wrk.format("GET", s[1], s[2] and {["baggage"] = s[2]} or nil)',
        "  end",
        "end",
        "local i = 0",
        "request = function()",
        "  i = i % #reqs + 1",
        "  return reqs[i]",
        "end",
        "done = function(summary, latency, requests)",
        "  local e = summary.errors",
        '  io.write(string.format(\'{"requests": %d, "duration_us": %d, "connect": %d, '
        '"read": %d, "write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, '
        '"p99_us": %d, "max_us": %d}\\n\', summary.requests, summary.duration, e.connect, '
        "e.read, e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(90), "
        "latency:percentile(99), latency.max))",
        "end",
    ]
    path.write_text("\n".join(lines) + "\n")


def run_wrk(
    script: Path, url: str, seconds: float, connections: int, server_pid: int
) -> dict[str, float]:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{int(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    server_before, machine_before = process_cpu(server_pid), machine_cpu()
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {LOAD_CPU}),
    )
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = process_cpu(server_pid) - server_before
    machine = machine_cpu() - machine_before
    wrk = (wrk_after.ru_utime + wrk_after.ru_stime) - (wrk_before.ru_utime + wrk_before.ru_stime)
    line = [x for x in result.stdout.splitlines() if x.startswith("{")][-1]
    out: dict[str, float] = json.loads(line)
    wall = out["duration_us"] / 1e6
    out["rps"] = out["requests"] / wall
    out["server_cpu_s"] = server
    out["cpu_us_per_request"] = server / out["requests"] * 1e6
    out["busy"] = server / wall  # share of its CPU the server used
    out["others_cpu"] = max(machine - server - wrk, 0.0) / wall  # CPUs used by anything else
    return out


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (every CPU, from /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICKS


# -- where cxmetrics' time goes, per call, in this process -------------------------------------


def breakdown() -> list[tuple[str, float]]:
    """Microseconds per cxmetrics call of the bank's request handler (best of 5 runs)."""
    import timeit

    from prometheus_client import CollectorRegistry
    from starlette.datastructures import Headers

    import cxmetrics
    from cxmetrics.instrument.fingerprints import fingerprint
    from cxmetrics.propagation.codec import JourneyContext, encode
    from cxmetrics.propagation.integrity import ContextKeys
    from cxmetrics.spec.load import load_spec
    from examples.bank.app import SPEC_PATH, Bank

    cxmetrics.configure(load_spec(SPEC_PATH), registry=CollectorRegistry(), spans="interesting")
    keys = ContextKeys({"k1": CONTEXT_KEY})
    key = keys.derived(b"fingerprints")
    jid = "ab" * 16
    total, lines = Bank(1.0, None).bill(jid)
    fps = {"bill_total": fingerprint(total, key)}
    baggage = encode(JourneyContext("bill_inquiry", jid, "bill_total", "app", fps), "", keys.mac)
    headers = Headers(raw=[(b"host", b"x"), (b"baggage", baggage.encode())])
    context = cxmetrics.extract(headers)
    journey = cxmetrics.journey("bill_inquiry", context=context)
    shown = sum(lines, Decimal(0))

    def step() -> None:
        with journey.step("bill_total"):
            pass

    def checks() -> None:
        with journey.step("bill_detail") as s:
            s.reconcile("total_matches_details", expected=total, actual=shown)
            s.consistent("detail_consistent_with_total", shown)

    from starlette.requests import Request
    from starlette.responses import JSONResponse

    scope = {"type": "http", "headers": headers.raw}
    body = {"journey": "bill_inquiry", "step": "bill_detail"}

    def plumbing() -> None:  # what only the instrumented handler does besides cxmetrics calls
        JSONResponse(body, headers={"baggage": baggage})

    calls = [
        (
            "journey(headers=...): read context + channel, resume",
            lambda: cxmetrics.journey("bill_inquiry", headers=Request(scope).headers),
        ),
        ("extract(headers): parse the incoming baggage", lambda: cxmetrics.extract(headers)),
        (
            "journey(context=...): resume the instance",
            lambda: cxmetrics.journey("bill_inquiry", context=context),
        ),
        ("journey(): start a new instance", lambda: cxmetrics.journey("bill_inquiry")),
        ("with j.step(...): time and count one step", step),
        ("a step with reconcile() + consistent()", checks),
        ("s.fingerprint(total)", lambda: fingerprint(total, key)),
        ("j.baggage(): format the outgoing context", journey.baggage),
        ("(the app: response with the baggage header)", plumbing),
        ("(the app: response without a header, for scale)", lambda: JSONResponse(body)),
    ]
    out = []
    for name, fn in calls:
        best = min(timeit.repeat(fn, number=5000, repeat=5)) / 5000 * 1e6
        out.append((name, best))
    cxmetrics.shutdown()
    return out


# -- orchestration ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        data: bytes = response.read()
        return data


def start_server(instrument: bool, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable,
        __file__,
        "--serve",
        str(port),
        "--instrument",
        str(int(instrument)),
        "--time-scale",
        str(args.time_scale),
        "--target-scale",
        str(args.target_scale),
        *(["--gc-freeze"] if args.gc_freeze else []),
        *(["--gc-threshold", str(args.gc_threshold)] if args.gc_threshold else []),
        *(["--statement-lines", str(args.statement_lines)] if args.statement_lines else []),
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CPU})
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            get(url + "/_served")
            return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit(f"the bank app did not start on port {port}") from None
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(15)


def step_counts(exposition: str) -> tuple[dict[str, float], dict[str, float]]:
    from prometheus_client.parser import text_string_to_metric_families

    by_step: defaultdict[str, float] = defaultdict(float)
    by_class: defaultdict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "cx_steps_total" and sample.value:
                by_step[sample.labels["step"]] += sample.value
                key = f"{sample.labels['outcome']}/{sample.labels['timeliness']}"
                by_class[key] += sample.value
    return dict(by_step), dict(by_class)


SCENARIOS = {
    # name: (backend time scale, step target scale, load as a share of the server's capacity,
    # or None: saturate it with 32 connections; lines of the statement each request renders)
    "shipped_half_load": (1.0, 1.0, 0.5, 0),
    "shipped_two_thirds_load": (1.0, 1.0, 2 / 3, 0),
    "shipped_three_quarter_load": (1.0, 1.0, 0.75, 0),
    "half_load": (0.01, 0.01, 0.5, 0),
    "three_quarter_load": (0.01, 0.01, 0.75, 0),
    "saturated": (0.001, 0.05, None, 0),
    "saturated_1ms_handler": (0.001, 0.05, None, 600),
}
PROBE_CONNECTIONS = 200  # the capacity probe of the shipped points (see calibrate())


def mean_sleep(time_scale: float) -> float:
    """Mean simulated backend time per request of the wrk script's mix (seconds)."""
    from examples.bank.app import LATENCY

    steps = ["login", "bill_total", "bill_detail", "payee", "amount", "confirm", "receipt"]
    means = [LATENCY[s][0] * math.exp(LATENCY[s][1] ** 2 / 2) for s in steps]
    return sum(means) / len(means) * time_scale


def calibrate(
    script: Path, url: str, seconds: float, pid: int, time_scale: float, load: float
) -> tuple[int, float]:
    """Connections that keep the server without cxmetrics at ``load`` of its CPU, and the
    requests per second it can do CPU-bound.

    Compressed time: capacity measured by saturating the server with 32 connections, then
    connections = load × capacity × time per request (closed loop). The bank's own latencies
    (100 ms–1 s backends) would need thousands of connections to saturate it, and its CPU per
    request falls as connections rise (more requests per event-loop turn), so there the server's
    busy share is measured under ``PROBE_CONNECTIONS`` and the connections scaled to ``load``,
    twice.
    """
    if time_scale < 0.1:
        capacity = run_wrk(script, url, seconds, 32, pid)["rps"]
        return max(1, round(load * capacity * (mean_sleep(time_scale) + 1 / capacity))), capacity
    connections = PROBE_CONNECTIONS
    for _ in range(2):
        probe = run_wrk(script, url, max(seconds, 10.0), connections, pid)
        connections = max(1, round(connections * load / probe["busy"]))
    return connections, 1e6 / probe["cpu_us_per_request"]


def scenario(name: str, args: argparse.Namespace, script: Path) -> tuple[bool, bool]:
    """Run one operating point; return (counts exact, goal met)."""
    from examples.bank.app import ROUTES

    time_scale, target_scale, load, statement_lines = SCENARIOS[name]
    point = argparse.Namespace(
        time_scale=time_scale,
        target_scale=target_scale,
        gc_freeze=args.gc_freeze,
        gc_threshold=args.gc_threshold,
        statement_lines=statement_lines,
    )
    servers = {n: start_server(n == "with", point) for n in ("without", "with")}
    try:
        connections, capacity = 32, 0.0
        if args.connections:  # given: no calibration, and no load share to claim
            connections, load = args.connections, None
        elif load is not None:
            process, url = servers["without"]
            connections, capacity = calibrate(
                script, url, args.warmup, process.pid, time_scale, load
            )
        print(
            f"\n== {name}: backend latencies × {time_scale}, step targets × {target_scale}, "
            f"wrk -t1 -c{connections}"
            + (f" (≈ {load:.0%} of the {capacity:.0f} req/s the server can do)" if load else "")
            + (
                f"; each request also renders a {statement_lines}-line statement"
                if statement_lines
                else ""
            )
            + f"; ABBA, {args.duration:.0f} s per run after a {args.warmup:.0f} s warm-up each"
        )
        for process, url in servers.values():
            run_wrk(script, url, args.warmup, connections, process.pid)
        runs: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
        for side in ("without", "with", "with", "without"):
            process, url = servers[side]
            gc_before = json.loads(get(url + "/_served"))
            result = run_wrk(script, url, args.duration, connections, process.pid)
            gc_after = json.loads(get(url + "/_served"))
            for n in range(3):
                result[f"gc_s{n}"] = gc_after["gc_time"][n] - gc_before["gc_time"][n]
                result[f"gc_n{n}"] = gc_after["gc_count"][n] - gc_before["gc_count"][n]
            result["objects"] = gc_after["objects"]
            runs[side].append(result)
            errors = sum(int(result[k]) for k in ("connect", "read", "write", "status", "timeout"))
            print(
                f"  {side:<8} {result['rps']:7.1f} req/s  p50 {result['p50_us'] / 1e3:6.2f} "
                f"ms  p99 {result['p99_us'] / 1e3:6.2f} ms  max "
                f"{result['max_us'] / 1e3:7.2f} ms  server CPU "
                f"{result['cpu_us_per_request']:6.1f} us/req, {result['busy']:4.0%} busy  "
                f"other load {result['others_cpu']:4.2f} CPU  ({int(result['requests'])} "
                f"requests, {errors} errors)"
            )
        served = {n: json.loads(get(url + "/_served")) for n, (_, url) in servers.items()}
        exposition = get(servers["with"][1] + "/metrics").decode()
    finally:
        for process, _ in servers.values():
            stop(process)

    def total(side: str, key: str) -> float:
        return sum(r[key] for r in runs[side])

    rps = {n: total(n, "requests") / (total(n, "duration_us") / 1e6) for n in runs}
    p99 = {n: total(n, "p99_us") / len(runs[n]) for n in runs}
    throughput_ratio = rps["with"] / rps["without"]
    p99_ratio = p99["with"] / p99["without"]
    cpu = {n: total(n, "server_cpu_s") / total(n, "requests") * 1e6 for n in runs}
    met = throughput_ratio >= GOAL_THROUGHPUT and p99_ratio <= GOAL_P99

    def verdict(ok: bool) -> str:
        return "ok" if ok else "GOAL MISSED"

    print(
        f"throughput with/without: {rps['with']:.1f} / {rps['without']:.1f} req/s = "
        f"{throughput_ratio:.3f}  (goal >= {GOAL_THROUGHPUT})  "
        f"{verdict(throughput_ratio >= GOAL_THROUGHPUT)}"
    )
    print(
        f"p99 latency with/without: {p99['with'] / 1e3:.2f} / {p99['without'] / 1e3:.2f} ms = "
        f"{p99_ratio:.3f}  (goal <= {GOAL_P99})  {verdict(p99_ratio <= GOAL_P99)}"
    )
    print(
        f"server CPU per request with/without: {cpu['with']:.1f} / {cpu['without']:.1f} us: "
        f"cxmetrics costs {cpu['with'] - cpu['without']:.1f} us per request (CPU-bound "
        f"throughput ratio {cpu['without'] / cpu['with']:.3f})"
    )
    for side in ("without", "with"):
        requests = total(side, "requests")
        by_gen = [total(side, f"gc_s{n}") / requests * 1e6 for n in range(3)]
        per_1000 = [total(side, f"gc_n{n}") / requests * 1000 for n in range(3)]
        print(
            f"  garbage collector, {side}: {sum(by_gen):.1f} us per request (generations 0/1/2: "
            + "/".join(f"{x:.1f}" for x in by_gen)
            + "); collections per 1000 requests "
            + "/".join(f"{x:.2f}" for x in per_1000)
            + f"; {int(runs[side][-1]['objects'])} tracked objects at the end"
        )
    expected = {ROUTES[p][1]: float(c) for p, c in served["with"]["by_path"].items() if p in ROUTES}
    counted, classes = step_counts(exposition)
    handled = int(sum(expected.values()))
    frustrated = sum(v for k, v in classes.items() if k.endswith("/frustrated"))
    errors_total = sum(v for k, v in classes.items() if k.startswith("error/"))
    exact = counted == expected
    spans = served["with"]["spans"]
    print(
        f"exactness: {handled} requests handled by the instrumented server (incl. warm-up), "
        f"cx_steps_total per step {'equal' if exact else 'DIFFERENT'}: "
        f"{json.dumps(counted, sort_keys=True)}"
    )
    print(
        f"steps by outcome/timeliness: {json.dumps(classes, sort_keys=True)}; spans exported: "
        f"{spans} ({spans / max(handled, 1):.2%} of steps; "
        f"{frustrated + errors_total:.0f} frustrated or failed)"
    )
    return exact, met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--instrument", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--time-scale", type=float, default=0.01, help=argparse.SUPPRESS)
    parser.add_argument("--target-scale", type=float, default=0.01, help=argparse.SUPPRESS)
    parser.add_argument("--statement-lines", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument(
        "--connections", type=int, help="N connections at every point (no calibration)"
    )
    parser.add_argument("--only", choices=sorted(SCENARIOS), help="run one operating point")
    parser.add_argument("--quick", action="store_true", help="10 s runs")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="both servers call gc.freeze() after start-up (as the demo does)",
    )
    parser.add_argument(
        "--gc-threshold",
        type=int,
        help="both servers' young-generation collection threshold (CPython's default: 700)",
    )
    args = parser.parse_args()
    if args.serve:
        serve(
            args.serve,
            bool(args.instrument),
            args.time_scale,
            args.target_scale,
            args.gc_freeze,
            args.gc_threshold,
            args.statement_lines,
        )
        return 0
    if args.quick:
        args.duration, args.warmup = 10.0, 2.0
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y --no-install-recommends wrk", file=sys.stderr)
        return 2
    if len(os.sched_getaffinity(0)) < 2:
        print("needs 2 CPUs (server on one, wrk on the other)", file=sys.stderr)
        return 2
    print(
        f"bank app under uvicorn (1 worker) vs wrk -t1, over loopback; Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs; server on CPU {SERVER_CPU}, wrk "
        f"on CPU {LOAD_CPU}; spans 'interesting' through the OpenTelemetry SDK (batch processor, "
        "discarding exporter) installed in both servers"
    )
    exact, met = True, {}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "journeys.lua"
        wrk_script(script)
        for name in [args.only] if args.only else list(SCENARIOS):
            point_exact, met[name] = scenario(name, args, script)
            exact = exact and point_exact
    os.sched_setaffinity(0, {SERVER_CPU})
    print("\nwhere cxmetrics' time goes (in-process, best of 5, us per call):")
    for name, micros in breakdown():
        print(f"  {name:<50} {micros:6.1f}")
    print(
        "\nload goal (throughput >= 0.97, p99 <= 1.05): met at "
        + (", ".join(n for n, ok in met.items() if ok) or "none")
        + "; missed at "
        + (", ".join(n for n, ok in met.items() if not ok) or "none")
    )
    # Exit status: exactness is correctness (1 when violated); a missed performance goal is
    # reported above, not an error, so `make bench` goes on to the other benchmarks.
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
