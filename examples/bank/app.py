"""The example retail bank: a real ASGI app (Starlette, served by uvicorn) instrumented with
cxmetrics, with switchable faults for demos and tests.

Journeys (see ``cxmetrics.yaml`` beside this file): ``bill_inquiry`` (login → bill_total →
bill_detail, the detail lines reconciled against the total), ``transfer`` (payee → amount →
confirm → receipt), ``loan_application`` (apply → upload_documents → sign; customers who stall
after uploading their documents are followed up, see docs/followup.md) and ``contact_centre``
(call_answered → issue_resolved). Each request is one step; the journey context travels in the
``baggage`` header, signed with the app's context key, so the client (or the traffic generator)
carries one journey instance across requests. A loan customer's ``x-customer-id`` header is
attached as a keyed reference (``identify``): the raw id never leaves the request.

Latencies are simulated (lognormal per step) and multiplied by ``time_scale``; run with a spec
scaled by the same factor (``Spec.scaled``) to compress time without changing any indicator.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import cxmetrics
from cxmetrics.instrument.runtime import SpanMode
from cxmetrics.spec.load import load_spec
from cxmetrics.spec.model import Spec

SPEC_PATH = Path(__file__).with_name("cxmetrics.yaml")
_KEY = secrets.token_bytes(32)  # this process's own key when none is given

# (median seconds, sigma of log) per step. bill_detail: p95 = 0.6·e^(1.645·0.3) ≈ 0.98 s.
LATENCY: dict[str, tuple[float, float]] = {
    "login": (0.30, 0.35),
    "bill_total": (0.40, 0.35),
    "bill_detail": (0.60, 0.30),
    "payee": (0.20, 0.30),
    "amount": (0.10, 0.30),
    "confirm": (0.50, 0.35),
    "receipt": (0.25, 0.30),
    "apply": (0.80, 0.35),
    "upload_documents": (1.50, 0.40),
    "sign": (1.00, 0.30),
    "call_answered": (12.0, 0.50),
    "issue_resolved": (120.0, 0.60),
}
ROUTES: dict[str, tuple[str, str]] = {
    "/bill/login": ("bill_inquiry", "login"),
    "/bill/total": ("bill_inquiry", "bill_total"),
    "/bill/detail": ("bill_inquiry", "bill_detail"),
    "/transfer/payee": ("transfer", "payee"),
    "/transfer/amount": ("transfer", "amount"),
    "/transfer/confirm": ("transfer", "confirm"),
    "/transfer/receipt": ("transfer", "receipt"),
    "/loan/apply": ("loan_application", "apply"),
    "/loan/documents": ("loan_application", "upload_documents"),
    "/loan/sign": ("loan_application", "sign"),
    "/contact/answer": ("contact_centre", "call_answered"),
    "/contact/resolve": ("contact_centre", "issue_resolved"),
}


@dataclass
class Faults:
    """Switchable faults. ``latency``: step → factor (1.2 = +20% on the whole distribution);
    ``accuracy``: check → failure rate; ``errors``: step → error rate."""

    latency: dict[str, float] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)

    def update(self, data: dict[str, Any]) -> None:
        for name in ("latency", "accuracy", "errors"):
            if name in data:
                setattr(self, name, {str(k): float(v) for k, v in dict(data[name]).items()})


class Bank:
    def __init__(self, time_scale: float, seed: int | None) -> None:
        self.time_scale = time_scale
        self.random = random.Random(seed)
        self.faults = Faults()
        # When a list: (time.time(), seconds late) per step, how much longer than its simulated
        # backend asked the step took (the event loop waking late, the process descheduled while
        # it computed the answer): the busy machine's share of the step's latency.
        self.lateness: list[tuple[float, float]] | None = None
        # Steps being served: a customer who hung up leaves its step running to the end, and it
        # is counted when it ends (GET /admin/in-flight)
        self.in_flight = 0

    async def work(self, step: str) -> float:
        """Wait as the step's simulated backend does; the seconds it asked for."""
        median, sigma = LATENCY[step]
        seconds = self.random.lognormvariate(0.0, sigma) * median
        seconds *= self.faults.latency.get(step, 1.0) * self.time_scale
        await asyncio.sleep(seconds)
        if self.random.random() < self.faults.errors.get(step, 0.0):
            raise RuntimeError(f"injected error in {step}")
        return seconds

    def overran(self, started: float, asked: float) -> None:
        """Note how much longer than ``asked`` a step begun at ``started`` (perf_counter) took."""
        if self.lateness is not None:
            self.lateness.append((time.time(), time.perf_counter() - started - asked))

    def wrong(self, check: str) -> bool:
        return self.random.random() < self.faults.accuracy.get(check, 0.0)

    def bill(self, journey_id: str) -> tuple[Decimal, list[Decimal]]:
        """The customer's bill: the same in every step of one journey instance."""
        rng = random.Random(journey_id)
        lines = [Decimal(rng.randrange(100, 20000)) / 100 for _ in range(5)]
        return sum(lines, Decimal(0)), lines


def create_app(
    spec: Spec | None = None,
    registry: CollectorRegistry | None = None,
    time_scale: float = 1.0,
    seed: int | None = None,
    spans: SpanMode = "interesting",
    event_log: str | None = None,
    instrument: bool = True,
    followup: str | None = None,
    context_key: bytes | str | None = None,
    customer_key: bytes | str | None = None,
) -> Starlette:
    """The bank app. Configures cxmetrics with ``spec`` (default: the example spec), its targets
    scaled by ``time_scale`` like the simulated latencies. ``instrument=False``: the same routes
    doing the same work without a single cxmetrics call (the baseline of
    ``benchmarks/bench_load.py``). ``followup``: the Redis URL of the follow-up tracker (default
    ``$CXMETRICS_FOLLOWUP_REDIS``, else none). ``context_key``: the key signing the journey
    context (default ``$CXMETRICS_CONTEXT_KEY``, else a random key of this process: one process
    signs and reads its own contexts; several processes behind one balancer need a shared key).
    ``customer_key``: the key of ``identify``'s references (default ``$CXMETRICS_CUSTOMER_KEY``,
    else random per process)."""
    spec = spec or load_spec(SPEC_PATH)
    if time_scale != 1.0:
        spec = spec.scaled(time_scale)
    registry = registry if registry is not None else CollectorRegistry()
    if instrument:
        cxmetrics.configure(
            spec,
            registry=registry,
            spans=spans,
            event_log=event_log,
            followup=followup,
            context_key=context_key or os.environ.get("CXMETRICS_CONTEXT_KEY") or _KEY,
            customer_key=customer_key or os.environ.get("CXMETRICS_CUSTOMER_KEY") or _KEY,
            strict=True,
        )
    bank = Bank(time_scale, seed)

    async def handle(request: Request) -> Response:
        bank.in_flight += 1
        try:
            return await serve_step(request)
        finally:
            bank.in_flight -= 1

    async def serve_step(request: Request) -> Response:
        journey_name, step_name = ROUTES[request.url.path]
        if not instrument:
            await bank.work(step_name)
            shown = _accuracy(bank, _Unmeasured(), step_name, "uninstrumented")  # type: ignore[arg-type]
            return JSONResponse({"journey": journey_name, "step": step_name, **shown})
        # The journey context (baggage) and the channel (x-cx-channel) the client sent.
        journey = cxmetrics.journey(journey_name, headers=request.headers)
        customer = request.headers.get("x-customer-id")
        if customer:
            journey.identify(customer)
        body: dict[str, Any] = {"journey": journey_name, "step": step_name}
        status = 200
        try:
            started = time.perf_counter()
            with journey.step(step_name) as step:
                asked = await bank.work(step_name)
                body.update(_accuracy(bank, step, step_name, journey.journey_id))
            bank.overran(started, asked)
        except RuntimeError as exc:
            body, status = {"error": str(exc)}, 503
        # The response carries the journey onward: the client sends it back with the next step.
        return JSONResponse(body, status_code=status, headers={"baggage": journey.baggage()})

    async def metrics(request: Request) -> Response:
        # Rendered off the event loop: a few hundred kB of exposition would otherwise stall
        # every request in flight at each scrape, and show up in their latencies.
        # OpenMetrics when the scraper asks for it (Prometheus does): the only format that
        # carries the duration buckets' exemplars (trace ids).
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        body = await asyncio.to_thread(encoder, registry)
        return Response(body, headers={"content-type": content_type})

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            bank.faults.update(await request.json())
        return JSONResponse(bank.faults.__dict__)

    routes = [Route(path, handle, methods=["GET", "POST"]) for path in ROUTES]

    async def in_flight(request: Request) -> Response:
        return JSONResponse({"steps": bank.in_flight})

    routes += [Route("/metrics", metrics), Route("/admin/faults", faults, methods=["GET", "POST"])]
    routes += [Route("/admin/in-flight", in_flight)]
    app = Starlette(routes=routes)
    app.state.bank = bank
    app.state.registry = registry
    return app


class _Unmeasured:
    """A step's accuracy calls doing nothing, for ``create_app(instrument=False)``."""

    def fingerprint(self, value: Any, key: str | None = None) -> None:
        return None

    def reconcile(self, name: str, expected: Any, actual: Any) -> bool:
        return True

    def consistent(self, name: str, value: Any) -> bool:
        return True

    def check(self, name: str, passed: bool) -> bool:
        return passed


def _accuracy(
    bank: Bank, step: cxmetrics.StepInstance, step_name: str, journey_id: str
) -> dict[str, Any]:
    """The accuracy side of each step: what the customer is shown, checked as it is shown."""
    if step_name == "bill_total":
        total, _ = bank.bill(journey_id)
        step.fingerprint(total)
        return {"total": str(total)}
    if step_name == "bill_detail":
        total, lines = bank.bill(journey_id)
        if bank.wrong("total_matches_details"):
            lines[-1] += Decimal("1.00")  # a detail line that does not add up
        shown = sum(lines, Decimal(0))
        step.reconcile("total_matches_details", expected=total, actual=shown)
        step.consistent("detail_consistent_with_total", shown)
        return {"total": str(total), "lines": [str(x) for x in lines]}
    if step_name == "confirm":
        step.check("limits_applied", not bank.wrong("limits_applied"))
    if step_name == "amount":
        step.fingerprint(Decimal("125.00"))
    if step_name == "receipt":
        shown = Decimal("125.00") + (Decimal("1") if bank.wrong("receipt_matches_amount") else 0)
        step.consistent("receipt_matches_amount", shown)
    if step_name == "issue_resolved":
        step.check("first_contact_resolution", bank.random.random() < 0.75)
    return {}
