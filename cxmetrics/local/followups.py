"""The demo's follow-up rig: a local redis-server, the reference receiver and one worker.

``cxmetrics demo`` runs it when follow-ups are asked for (``--followups``) or, by default, when
they can run here (the ``redis-server`` binary and the ``redis`` package are installed); without
them the demo runs as before and says follow-ups were skipped and why. The rig changes the
example's ``loan_application/upload_documents`` policy to the demo's time scale (due ``after``
seconds) and its webhook to the local receiver; everything it writes lands in ``out_dir``.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._binaries import REDIS_INSTALL_HINT, REDIS_SERVER, require_binary
from .._exceptions import CxError
from ..spec.model import Spec
from .stack import free_port

Mode = Literal["auto", "on", "off"]
JOURNEY, STEP = "loan_application", "upload_documents"
UNTIL = 3600.0  # the demo's 'until': nothing it delivers is that late


def unavailable() -> str:
    """Why follow-ups cannot run here, or ``""``."""
    if shutil.which(REDIS_SERVER) is None:
        return f"redis-server is not installed ({REDIS_INSTALL_HINT})"
    for module in ("redis", "urllib3", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            return f"the Python package {module} is missing (pip install 'cxmetrics[followup]')"
    return ""


def with_policy(spec: Spec, webhook: str, after: float, until: float) -> Spec:
    """``spec`` with the demo's follow-up policy on the key step (seconds, local receiver)."""
    journeys = []
    for journey in spec.journeys:
        if journey.name == JOURNEY:
            steps = []
            for step in journey.steps:
                if step.name == STEP and step.followup is not None:
                    policy = step.followup.model_copy(
                        update={"webhook": webhook, "queue": None, "after": after, "until": until}
                    )
                    step = step.model_copy(update={"followup": policy})
                steps.append(step)
            journey = journey.model_copy(update={"steps": tuple(steps)})
        journeys.append(journey)
    return spec.model_copy(update={"journeys": tuple(journeys)})


@dataclass
class FollowUpRun:
    """What the rig saw: customers the traffic left waiting at the key step (raw ids, kept in
    the demo's memory only) and what the receiver accepted (customer references)."""

    redis_url: str
    webhook: str
    after: float
    received: Path
    customer_key: bytes
    stalled: list[str] = field(default_factory=list)
    cut_off: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    left_in_store: int = 0
    metrics: str = ""  # the worker's exposition at the end (cx_followups_*), for the report

    def refs(self, ids: list[str]) -> set[str]:
        from ..instrument.redaction import customer_ref, make_redactor

        redact = make_redactor(self.customer_key, None)
        return {r for r in (customer_ref(redact, i) for i in ids) if r is not None}

    def summary(self) -> dict[str, Any]:
        """Counts for ``cxmetrics demo --json``: the stalled customers (chose not to sign) must
        all be delivered; customers the end of the run stopped after the key step are delivered
        too (they are waiting there); nobody else; each once."""
        got = [d.get("customer_ref") for d in self.delivered]
        stalled, cut = self.refs(self.stalled), self.refs(self.cut_off)
        return {
            "journey": JOURNEY,
            "step": STEP,
            "after_seconds": self.after,
            "stalled": len(self.stalled),
            "cut_off_by_the_end": len(self.cut_off),
            "delivered": len(got),
            "delivered_stalled": len(stalled & set(got)),
            "missing": len(stalled - set(got)),
            "strangers": len(set(got) - stalled - cut),
            "duplicates": self.stats.get("duplicates", 0),
            "unsigned": self.stats.get("unsigned", 0),
            "left_in_store": self.left_in_store,
            "received": str(self.received),
        }


@contextmanager
def redis_server(work: Path, timeout: float = 15.0) -> Iterator[str]:
    """A throw-away redis-server on a free loopback port (no persistence), stopped by PID."""
    binary = require_binary(REDIS_SERVER)
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work)]
    argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    with open(work / "redis.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not _pong(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise CxError(f"redis-server did not start: {(work / 'redis.log').read_text()}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _work(spec: Spec, url: str, secret: bytes, stop: Any, exposition: str) -> None:
    """The worker's process (its own interpreter: its threads never hold the app's GIL): deliver
    until ``stop`` is set, then write its metrics to ``exposition``."""
    from prometheus_client import generate_latest

    from ..followup.worker import Worker

    # Few threads: the worker shares the machine with the app whose latencies are judged.
    worker = Worker(spec, url, secret, concurrency=2, batch=100, lease=10.0)
    try:
        worker.run(stop, 0.2)
    finally:
        Path(exposition).write_text(generate_latest(worker.registry).decode())
        worker.close()


@contextmanager
def rig(spec: Spec, out_dir: Path, after: float, serve: Any) -> Iterator[tuple[Spec, FollowUpRun]]:
    """Start redis-server, the receiver (served with ``serve``, the demo's uvicorn thread) and
    one worker in a process of its own; yield the spec to run the app with and the run's record.
    On exit (after the app stopped recording) the worker gets ``after`` + 10 s to deliver what
    is still due."""
    import multiprocessing

    from ..followup import store
    from ..followup.receiver import Receiver

    secret = secrets.token_bytes(32)
    received = out_dir / "followups.jsonl"
    received.unlink(missing_ok=True)
    receiver = Receiver(secret, received)
    with ExitStack() as stack:
        stack.callback(receiver.close)
        url = stack.enter_context(redis_server(out_dir / "redis"))
        base = stack.enter_context(serve(receiver))
        webhook = f"{base}/hooks/stalled"
        local = with_policy(spec, webhook, after, UNTIL)
        run = FollowUpRun(url, webhook, after, received, secrets.token_bytes(32))
        exposition = out_dir / "followups-worker.prom"
        exposition.unlink(missing_ok=True)
        db = store.connect(url, 5.0)
        stack.callback(db.close)
        parts = list(store.partitions(local))
        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        process = context.Process(
            target=_work, args=(local, url, secret, stop, str(exposition)), daemon=True
        )
        process.start()
        try:
            yield local, run
            deadline = time.monotonic() + after + 10.0
            while _tracked(db, parts) and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            stop.set()
            process.join(20)
            if process.is_alive():
                process.kill()
                process.join(5)
            run.left_in_store = _tracked(db, parts)
            run.metrics = exposition.read_text() if exposition.exists() else ""
        run.stats = dict(receiver.stats)
        if received.exists():
            import json

            run.delivered = [json.loads(x) for x in received.read_text().splitlines() if x]


def _tracked(db: Any, parts: list[Any]) -> int:
    """Instances still waiting in the store (due or not)."""
    return sum(int(db.zcard(p.key("due"))) for p in parts)
