"""ASGI middleware (Starlette, FastAPI, any ASGI 3 app).

::

    app.add_middleware(CxMiddleware, routes={"GET /bill/total": ("bill_inquiry", "bill_total")})

Per HTTP request: the journey context comes from ``baggage`` / ``cx-journey`` / the cookie and
becomes the context ``cxmetrics.journey()`` resumes; the channel comes from ``x-cx-channel``; the
upstream trace context (``traceparent``) becomes current so step spans join the caller's trace.
A route-mapped step is measured from the request's arrival to the response start (a 5xx or an
exception is outcome ``error``). The response carries the journey onward (``baggage`` header, and
``Set-Cookie`` when ``cookie`` is set).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry import context as otel_context

from ..journeys import journey
from ..scope import request_scope
from ..steps import StepInstance
from ._common import (
    CHANNEL_HEADER,
    RouteMap,
    incoming,
    parse_routes,
    response_headers,
    trace_context,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class CxMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        routes: RouteMap | None = None,
        channel_header: str = CHANNEL_HEADER,
        cookie: str | None = None,
    ) -> None:
        self.app = app
        self.routes = parse_routes(routes)
        self.channel_header = channel_header.lower()
        self.cookie = cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for raw_key, raw_value in scope.get("headers", ()):
            key = raw_key.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        token = otel_context.attach(trace_context(headers))
        try:
            with request_scope(
                incoming(headers, self.cookie), headers.get(self.channel_header) or None
            ) as request:
                route = self.routes.get((scope.get("method", "GET"), scope.get("path", "")))
                step: StepInstance | None = None
                if route is not None:
                    step = journey(route[0]).step(route[1]).start()

                async def send_wrapper(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        if step is not None:
                            step.finish(error=int(message.get("status", 200)) >= 500)
                        extra = response_headers(request.latest, self.cookie)
                        if extra:
                            message["headers"] = [
                                *[
                                    (k, v)
                                    for k, v in message.get("headers", ())
                                    if k.lower() != b"baggage"
                                ],
                                *[(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra],
                            ]
                    await send(message)

                try:
                    await self.app(scope, receive, send_wrapper)
                except BaseException as exc:
                    if step is not None:
                        step.finish(exc=exc)
                    raise
        finally:
            otel_context.detach(token)
