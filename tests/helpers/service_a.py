"""Service A (ASGI, Starlette under uvicorn): login (route-mapped) and bill_total (marked in the
handler), which also calls service B's /audit through an instrumented httpx client.

Usage: ``python -m tests.helpers.service_a SPEC PORT SPANS_FILE B_URL``.
"""

from __future__ import annotations

import sys

import httpx
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import cxmetrics
from cxmetrics.integrations import httpx as cx_httpx
from cxmetrics.integrations.asgi import CxMiddleware

from .spans_to_file import install


def build(b_url: str) -> Starlette:
    downstream = cx_httpx.instrument(httpx.AsyncClient(base_url=b_url))

    async def login(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def total(request: Request) -> Response:
        with cxmetrics.journey("bill_inquiry") as j:
            with j.step("bill_total") as s:
                s.fingerprint(123)
            audit = (await downstream.get("/audit")).json()
        return JSONResponse({"journey_id": j.journey_id, "audit": audit})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/bill/login", login, methods=["POST"]),
            Route("/bill/total", total),
            Route("/metrics", metrics),
        ]
    )
    app.add_middleware(CxMiddleware, routes={"POST /bill/login": ("bill_inquiry", "login")})
    return app


if __name__ == "__main__":
    spec, port, spans_file, b_url = sys.argv[1:5]
    tracer = install(spans_file)
    cxmetrics.configure(spec, spans="always", tracer=tracer, strict=True)
    uvicorn.run(build(b_url), host="127.0.0.1", port=int(port), log_level="warning")
