"""WSGI middleware (Flask, Django through WSGI, any WSGI app).

::

    app.wsgi_app = CxMiddleware(app.wsgi_app, routes={"GET /bill/detail": ("bill_inquiry",
                                                                          "bill_detail")})

The same behaviour as the ASGI middleware (``cxmetrics.integrations.asgi``): journey context in,
channel, upstream trace context, route-mapped steps measured until ``start_response``, and the
journey context written back on the response.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import context as otel_context

from ..journeys import journey
from ..scope import request_scope
from ._common import (
    CHANNEL_HEADER,
    RouteMap,
    incoming,
    parse_routes,
    response_headers,
    trace_context,
)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class CxMiddleware:
    def __init__(
        self,
        app: WSGIApp,
        routes: RouteMap | None = None,
        channel_header: str = CHANNEL_HEADER,
        cookie: str | None = None,
    ) -> None:
        self.app = app
        self.routes = parse_routes(routes)
        self.channel_environ = "HTTP_" + channel_header.upper().replace("-", "_")
        self.cookie = cookie

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        token = otel_context.attach(trace_context(headers))
        try:
            with request_scope(
                incoming(headers, self.cookie), environ.get(self.channel_environ) or None
            ) as request:
                route = self.routes.get(
                    (environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""))
                )
                step = journey(route[0]).step(route[1]).start() if route is not None else None

                def start_wrapper(
                    status: str, response_headers_: list[tuple[str, str]], exc_info: Any = None
                ) -> Any:
                    if step is not None:
                        step.finish(error=status[:1] == "5")
                    extra = response_headers(request.latest, self.cookie)
                    if extra:
                        response_headers_ = [
                            (k, v) for k, v in response_headers_ if k.lower() != "baggage"
                        ] + extra
                    return start_response(status, response_headers_, exc_info)

                try:
                    return self.app(environ, start_wrapper)
                except BaseException as exc:
                    if step is not None:
                        step.finish(exc=exc)
                    raise
        finally:
            otel_context.detach(token)
