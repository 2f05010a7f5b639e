"""One reader of the journey context per request: what the middlewares, ``journey(headers=)`` and
``extract`` read, and a rejection counted exactly once per request; the bounded cookie parser."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import cxmetrics
from cxmetrics.integrations.asgi import CxMiddleware as AsgiMiddleware
from cxmetrics.integrations.wsgi import CxMiddleware as WsgiMiddleware
from cxmetrics.integrations.wsgi import StartResponse
from cxmetrics.propagation.carriers import Reader, cookie_value
from cxmetrics.propagation.codec import JourneyContext, Rejected
from tests.helpers.keys import signed
from tests.helpers.paths import EXAMPLE_SPEC

BAD = "cx.journey=bill_inquiry,cx.id=nothex"
GOOD = signed(JourneyContext("bill_inquiry", "ab" * 16, "bill_total", "app"))


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    registry = CollectorRegistry()
    cxmetrics.configure(EXAMPLE_SPEC, registry=registry, spans="off", strict=True)
    yield registry
    cxmetrics.shutdown()


def rejected(registry: CollectorRegistry) -> float:
    return sum(
        s.value
        for f in registry.collect()
        for s in f.samples
        if s.name == "cx_journey_context_rejected_total"
    )


def asgi_app() -> Starlette:
    async def detail(request: Request) -> JSONResponse:
        j = cxmetrics.journey("bill_inquiry", headers=request.headers)
        resumed_from = j.last_step
        with j.step("bill_detail"):
            pass
        return JSONResponse({"id": j.journey_id, "last": resumed_from})

    app = Starlette(routes=[Route("/bill/detail", detail)])
    app.add_middleware(AsgiMiddleware, routes={"GET /bill/total": ("bill_inquiry", "bill_total")})
    return app


def test_a_rejected_context_behind_the_middleware_and_journey_headers_counts_once(
    registry: CollectorRegistry,
) -> None:
    transport = httpx.ASGITransport(app=asgi_app())

    async def three_bad_requests() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [await client.get("/bill/detail", headers={"baggage": BAD}) for _ in range(3)]

    responses = asyncio.run(three_bad_requests())
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all(r.json()["last"] is None for r in responses)  # a new instance each time
    assert rejected(registry) == 3


def test_the_wsgi_middleware_reads_the_environ_once(registry: CollectorRegistry) -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        j = cxmetrics.journey("bill_inquiry", headers=environ)
        with j.step("bill_detail"):
            pass
        start_response("200 OK", [("content-type", "text/plain")])
        return [(j.last_step or "").encode()]

    wrapped = WsgiMiddleware(app)
    with httpx.Client(transport=httpx.WSGITransport(app=wrapped), base_url="http://t") as client:
        bad = client.get("/bill/detail", headers={"baggage": BAD})
        good = client.get("/bill/detail", headers={"baggage": GOOD, "x-cx-channel": "web"})
    assert bad.status_code == good.status_code == 200
    assert rejected(registry) == 1
    assert good.headers["baggage"].startswith(
        f"cx.journey=bill_inquiry,cx.id={'ab' * 16},cx.step=bill_detail,cx.channel=web"
    )


def test_every_carrier_shape_reads_the_same() -> None:
    reader = Reader("cx_journey")
    expected = ("bill_inquiry", "ab" * 16, "bill_total", "web")
    shapes = [
        [(b"baggage", GOOD.encode()), (b"x-cx-channel", b"web")],
        {"Baggage": GOOD, "X-CX-Channel": "web"},
        {"REQUEST_METHOD": "GET", "HTTP_BAGGAGE": GOOD, "HTTP_X_CX_CHANNEL": "web"},
        {"cx-journey": GOOD, "x-cx-channel": "web"},
        {"cookie": f"a=1; cx_journey={GOOD.replace(',', '%2C')}; b=2", "x-cx-channel": "web"},
    ]
    for carrier in shapes:
        carried = reader.read(carrier)
        context = carried.context
        assert isinstance(context, JourneyContext), carrier
        assert (context.journey, context.journey_id, context.last_step, carried.channel) == (
            expected
        )
    # The first carrier with a context wins; a rejected one is not passed over.
    both = reader.read({"baggage": "tenant=acme", "cookie": f"cx_journey={GOOD}"})
    assert isinstance(both.context, JourneyContext)
    assert reader.read({"baggage": BAD, "cookie": f"cx_journey={GOOD}"}).context == Rejected(
        "bad_id"
    )
    oversized = {"cookie": "x=" + "a" * 9000}
    assert reader.read(oversized).context == Rejected("oversized")
    assert Reader().read(oversized).context is None  # no cookie configured: cookies not read


def test_cookie_values_are_read_like_browsers_send_them() -> None:
    assert cookie_value('a=1; cx_journey="x%2Cy"; b=2', "cx_journey") == "x,y"
    assert cookie_value("cx_journey=v", "cx_journey") == "v"
    assert cookie_value("cx_journeyx=v; other=w", "cx_journey") is None
    assert cookie_value("", "cx_journey") is None


def test_a_cookie_of_backslashes_costs_about_what_a_normal_cookie_costs() -> None:
    # The standard library's cookie parser is quadratic on this input (300-430 ms a request).
    hostile = {"cookie": 'cx_journey="' + "\\" * 8000 + '"'}
    normal = {"cookie": "session=abc; cx_journey=" + GOOD.replace(",", "%2C")}
    reader = Reader("cx_journey")

    def cost(carrier: dict[str, str]) -> float:
        started = time.perf_counter()
        for _ in range(200):
            reader.read(carrier)
        return time.perf_counter() - started

    cost(normal), cost(hostile)  # warm up
    assert cost(hostile) < 50 * cost(normal)
