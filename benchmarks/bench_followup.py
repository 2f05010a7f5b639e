"""What follow-ups cost: per request in the app process, and deliveries per second of a worker.

1. App process: a Starlette route mapped by ``CxMiddleware`` to the key step ``upload_documents``
   of ``loan_application`` (the request resumes the instance from ``baggage``), called in-process
   as in ``bench_middleware``; cxmetrics configured without follow-ups vs with the Redis tracker
   (``configure(followup=URL)``, a real redis-server started here). Rounds alternate; the best of
   each is kept. Two clocks: the request's own thread (the hot path: building the step record and
   queueing the registration) and the whole process (adds the background writer's batches and
   Redis round trips; each timed round ends when the tracker's queue is written).
2. Worker: ``--deliveries`` instances made due at once in the store, delivered by one in-process
   ``Worker`` to ``cxmetrics followup receive`` (a separate process, uvicorn) on loopback, one
   follow-up per POST (``--batch 1``) and 100 per POST; deliveries per second of wall time.
3. Memory: ``MEMORY USAGE`` of each key of the store and ``INFO memory`` before/after registering
   ``--instances`` instances, per tracked instance.

Run: ``python benchmarks/bench_followup.py`` (``--only app|worker|memory``; needs redis-server:
``apt-get install -y --no-install-recommends redis-server``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _asgi import http_scope  # noqa: E402

SPEC = """\
service: bank
journeys:
  - name: loan_application
    steps:
      - name: apply
        target: 2s
      - name: upload_documents
        target: 5s
        followup: {after: 2h, until: 3d, webhook: "WEBHOOK"}
      - name: sign
        target: 3s
"""
BAGGAGE = (
    b"cx.journey=loan_application,cx.id=abababababababababababababababab,cx.step=apply,"
    b"cx.channel=app"
)
HEADERS = [
    (b"host", b"bank.example"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64)"),
    (b"accept", b"application/json"),
    (b"baggage", BAGGAGE),
]
ROUTES = {"GET /loan/documents": ("loan_application", "upload_documents")}
SECRET = "bench-secret"
CONTEXT_KEY = b"bench-context-key-0123456789abcdef"


def signed_headers() -> list[tuple[bytes, bytes]]:
    """``HEADERS`` with the baggage signed by ``CONTEXT_KEY``: the app (configured with the key)
    resumes the instance, as it does behind a real client; unsigned, it would start a new one."""
    from cxmetrics.propagation.codec import decode, encode
    from cxmetrics.propagation.integrity import ContextKeys

    context = decode(BAGGAGE.decode())
    assert context is not None
    signed = encode(context, "", ContextKeys({"k1": CONTEXT_KEY}).mac).encode()  # type: ignore[arg-type]
    return [*HEADERS[:-1], (b"baggage", signed)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    if shutil.which("redis-server") is None:
        raise SystemExit(
            "redis-server is missing: apt-get install -y --no-install-recommends redis-server"
        )
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def start_receiver(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("cxmetrics")),
            "followup",
            "receive",
            "--port",
            str(port),
            "--out",
            str(directory / "received.jsonl"),
        ],
        env={**os.environ, "CXMETRICS_FOLLOWUP_SECRET": SECRET},
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}/hooks"


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(15)


def app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from cxmetrics.integrations.asgi import CxMiddleware

    async def documents(request: Request) -> JSONResponse:
        return JSONResponse({"received": 3})

    wrapped = Starlette(routes=[Route("/loan/documents", documents)])
    wrapped.add_middleware(CxMiddleware, routes=ROUTES)
    return wrapped


async def drive(application: Any, n: int, tracker: Any) -> tuple[float, float]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    headers = signed_headers()
    proc0, thread0 = time.process_time(), time.thread_time()
    for _ in range(n):
        await application(http_scope("/loan/documents", headers), receive, send)
    thread = time.thread_time() - thread0
    if tracker is not None:
        tracker.wait(60.0)
    proc = time.process_time() - proc0
    return thread / n * 1e6, proc / n * 1e6


def bench_app(spec: Any, url: str, rounds: int, requests: int) -> None:
    from prometheus_client import CollectorRegistry

    import cxmetrics
    from cxmetrics.followup.tracker import Tracker
    from cxmetrics.instrument.state import STATE

    application = app()
    best: dict[str, tuple[float, float]] = {}

    async def run() -> None:
        for _ in range(rounds):
            for name in ("off", "on"):
                cxmetrics.configure(
                    spec,
                    registry=CollectorRegistry(),
                    spans="off",
                    followup=url if name == "on" else None,
                    context_key=CONTEXT_KEY,
                )
                runtime = STATE.runtime
                assert runtime is not None
                trackers = [s for s in runtime.step_hooks if isinstance(s, Tracker)]
                assert len(trackers) == (name == "on")
                gc.collect()
                thread, proc = await drive(application, requests, trackers[0] if trackers else None)
                old = best.get(name, (thread, proc))
                best[name] = (min(old[0], thread), min(old[1], proc))
                cxmetrics.shutdown()

    asyncio.run(run())
    (off_t, off_p), (on_t, on_p) = best["off"], best["on"]
    print(
        f"1. app process, best of {rounds} rounds × {requests} requests on the key step "
        "(Starlette + CxMiddleware, spans off), CPU time per request"
    )
    print(
        f"   request thread: tracker off {off_t:6.1f} us, on {on_t:6.1f} us: "
        f"+{on_t - off_t:4.1f} us, ratio off/on {off_t / on_t:.3f}"
    )
    print(
        f"   whole process:  tracker off {off_p:6.1f} us, on {on_p:6.1f} us: "
        f"+{on_p - off_p:4.1f} us, ratio off/on {off_p / on_p:.3f} (goal: +5 us or less)"
    )


def fill(spec: Any, url: str, n: int, due: float) -> None:
    """``n`` stalled instances of the key step, due at ``due``, written as the tracker does."""
    from cxmetrics.followup.tracker import Tracker
    from cxmetrics.instrument.events import StepRecord

    tracker = Tracker(spec, url, queue_size=n + 1)
    after = spec.journey("loan_application").step("upload_documents").followup.after
    for i in range(n):
        tracker.emit(
            StepRecord(
                due - after,
                "loan_application",
                "upload_documents",
                "app",
                os.urandom(16).hex(),
                "apply",
                0.5,
                "ok",
                "satisfied",
                True,
                (),
                f"{i:016x}",
            )
        )
    tracker.wait(120.0)
    tracker.close()


def bench_worker(spec: Any, url: str, deliveries: int, directory: Path) -> None:
    import redis

    from cxmetrics.followup.worker import Worker
    from cxmetrics.spec.load import parse_spec

    print(f"2. worker throughput, {deliveries} due follow-ups, one in-process worker → receiver")
    for batch in (1, 100):
        redis.Redis.from_url(url).flushall()
        proc, hook = start_receiver(directory)
        try:
            local = parse_spec(SPEC.replace("WEBHOOK", hook))
            fill(local, url, deliveries, time.time() - 1)
            worker = Worker(local, url, SECRET.encode(), batch=batch, concurrency=16, claim=500)
            t0 = time.perf_counter()
            sent = 0
            while sent < deliveries:
                done = worker.pass_once()
                if not done:
                    break
                sent += done
            elapsed = time.perf_counter() - t0
            delivered = sum(
                s.value
                for m in worker.registry.collect()
                if m.name == "cx_followups_sent"
                for s in m.samples
                if s.name == "cx_followups_sent_total"
            )
            worker.close()
            print(
                f"   {batch:3d} per POST: {delivered:.0f} delivered in {elapsed:5.2f} s = "
                f"{delivered / elapsed:7.0f} deliveries/s (goal: 5,000/s)"
            )
        finally:
            stop(proc)


def bench_memory(spec: Any, url: str, instances: int) -> None:
    import redis

    from cxmetrics.followup import store

    db = redis.Redis.from_url(url)
    db.flushall()
    before = int(cast("dict[str, Any]", db.info("memory"))["used_memory"])
    fill(spec, url, instances, time.time() + 3600)
    after = int(cast("dict[str, Any]", db.info("memory"))["used_memory"])
    keys = sum(
        int(cast("int | None", db.memory_usage(k, samples=0)) or 0)
        for p in store.partitions(spec)
        for k in (p.key("due"), p.key("data"))
    )
    print(f"3. memory, {instances} tracked instances over {store.SHARDS} partitions")
    print(
        f"   INFO used_memory +{(after - before) / instances:.0f} bytes per instance; "
        f"MEMORY USAGE of the due+data keys {keys / instances:.0f} bytes per instance"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=3000, help="requests per round")
    parser.add_argument("--deliveries", type=int, default=20000)
    parser.add_argument("--instances", type=int, default=200000)
    parser.add_argument("--only", choices=("app", "worker", "memory"), help="run one part")
    args = parser.parse_args()

    from cxmetrics.spec.load import parse_spec

    spec = parse_spec(SPEC.replace("WEBHOOK", "http://127.0.0.1:9/hooks"))
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_redis(Path(tmp))
        try:
            if args.only in (None, "app"):
                bench_app(spec, url, args.rounds, args.requests)
            if args.only in (None, "worker"):
                bench_worker(spec, url, args.deliveries, Path(tmp))
            if args.only in (None, "memory"):
                bench_memory(spec, url, args.instances)
        finally:
            stop(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
