"""A Starlette app for the event-log durability test, served by uvicorn in its own process.

``GET /step`` runs one bill_inquiry ``login`` step through ``cxmetrics.journey`` and, once the
step has finished (so its record has been handed to the event log), appends the journey id to
``$CX_TEST_COMPLETED`` before answering: that file is the app's own account of what it completed,
which the test compares with the event log after ``kill -TERM``.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import cxmetrics
from cxmetrics.integrations.asgi import CxMiddleware
from tests.helpers.paths import EXAMPLE_SPEC

cxmetrics.configure(
    EXAMPLE_SPEC, registry=CollectorRegistry(), spans="off", event_log=os.environ["CX_TEST_LOG"]
)
_completed = os.open(os.environ["CX_TEST_COMPLETED"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)


async def step(request: Request) -> PlainTextResponse:
    with cxmetrics.journey("bill_inquiry", channel="app") as j:
        with j.step("login"):
            pass
        ident = j.journey_id
    os.write(_completed, f"{ident}\n".encode())
    return PlainTextResponse(ident)


app = Starlette(routes=[Route("/step", step)])
app.add_middleware(CxMiddleware, routes={})
