"""ASGI middleware (Starlette, FastAPI, any ASGI 3 app).

::

    app.add_middleware(CxMiddleware, routes={"GET /bill/total": ("bill_inquiry", "bill_total")})

Per HTTP request: the journey context comes from ``baggage`` / ``cx-journey`` / the cookie and
becomes the context ``cxmetrics.journey()`` resumes; the channel comes from ``x-cx-channel``; the
upstream trace context (``traceparent``) becomes current so step spans join the caller's trace.
A route-mapped step is measured from the request's arrival to the response start (a 5xx or an
exception is outcome ``error``). The response carries the journey onward (``baggage`` header, and
``Set-Cookie`` when ``cookie`` is set).

At the server's lifespan shutdown (uvicorn and hypercorn send it after the last response, when
they stop on SIGTERM or SIGINT), every open event log is flushed before the app sees the message:
uvicorn re-raises the signal once it has shut down, so ``atexit`` would never run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..exposition.eventlog import flush_open_logs
from . import routes
from ._common import Middleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class CxMiddleware(Middleware):
    def framework(self, request: Any) -> tuple[routes.Matcher, set[routes.Key]] | None:
        router = routes.starlette_router(request.get("app")) or routes.starlette_router(self.app)
        if router is None:
            return None
        return routes.starlette_matcher(router), routes.starlette_routes(router)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(
                scope, _flush_at_shutdown(receive) if scope["type"] == "lifespan" else receive, send
            )
            return
        served = self.begin(
            scope.get("headers", ()), scope.get("method", "GET"), scope.get("path", ""), scope
        )

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = served.responding(int(message.get("status", 200)))
                if extra:
                    out = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"baggage"]
                    out += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra]
                    message["headers"] = out
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            served.failed(exc)
            raise
        finally:
            served.end()


def _flush_at_shutdown(receive: Receive) -> Receive:
    async def receiving() -> Message:
        message = await receive()
        if message.get("type") == "lifespan.shutdown":
            flush_open_logs()
        return message

    return receiving
