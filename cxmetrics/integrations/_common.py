"""What the ASGI and WSGI middlewares share: reading the incoming journey context once per
request (``cxmetrics.propagation.carriers``: the ``baggage`` header, the ``cx-journey`` header or a
cookie); route maps; the outgoing headers."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import Token
from typing import Any
from urllib.parse import quote

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..instrument import journeys
from ..instrument.carry import accepted
from ..instrument.journeys import JourneyInstance, RequestScope, journey
from ..instrument.state import internal_error
from ..instrument.steps import StepInstance
from ..propagation.carriers import BAGGAGE_HEADER, CHANNEL_HEADER, Reader

RouteMap = Mapping[str, tuple[str, str]]
"""``{"GET /bill/total": ("bill_inquiry", "bill_total")}``: a route's step, by method and path."""


def parse_routes(routes: RouteMap | None) -> dict[tuple[str, str], tuple[str, str]]:
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for key, target in (routes or {}).items():
        method, _, path = key.strip().partition(" ")
        if not path.startswith("/") or len(target) != 2:
            raise ValueError(
                f"route {key!r}: write 'METHOD /path': ('journey', 'step'), "
                "e.g. 'GET /bill/total': ('bill_inquiry', 'bill_total')"
            )
        out[(method.upper(), path)] = (target[0], target[1])
    return out


def response_headers(instance: JourneyInstance | None, cookie: str | None) -> list[tuple[str, str]]:
    """Headers carrying ``instance``'s context back to the client."""
    if instance is None or not instance.journey_id:
        return []
    try:
        ours = instance.baggage()
        out = [(BAGGAGE_HEADER, ours)]
        if cookie is not None:
            out.append(
                ("set-cookie", f"{cookie}={quote(ours, safe='')}; Path=/; HttpOnly; SameSite=Lax")
            )
        return out
    except Exception as exc:
        internal_error("middleware", exc)
        return []


_TRACE_CONTEXT = TraceContextTextMapPropagator()


def trace_context(headers: Mapping[str, str]) -> Any:
    """The upstream trace context (``traceparent``), so step spans join the caller's trace.

    Only W3C trace context: the ``baggage`` header is ours to validate (the global propagator
    would parse it too, and log a warning per hostile request)."""
    return _TRACE_CONTEXT.extract(headers)


def outgoing(headers: Any) -> None:
    """Write the current trace context and journey context into outgoing request ``headers``."""
    try:
        propagate.inject(headers)
        journeys.inject(headers)
    except Exception as exc:
        internal_error("propagation", exc)


class Served:
    """One request as the middlewares see it: its scope, and the route-mapped step, if any.
    ``end()`` must be called once the app has returned (the middlewares do it in ``finally``)."""

    __slots__ = ("_request_token", "_trace_token", "cookie", "request", "step")

    def __init__(
        self,
        request: RequestScope,
        step: StepInstance | None,
        cookie: str | None,
        request_token: Token[RequestScope | None],
        trace_token: object,
    ) -> None:
        self.request, self.step, self.cookie = request, step, cookie
        self._request_token, self._trace_token = request_token, trace_token

    def responding(self, status: int) -> list[tuple[str, str]]:
        """The response is starting: end the route's step, return the headers to add."""
        if self.step is not None:
            self.step.finish(error=status >= 500)
        return response_headers(self.request.latest, self.cookie)

    def failed(self, exc: BaseException) -> None:
        if self.step is not None:
            self.step.finish(exc=exc)

    def end(self) -> None:
        """Restore the request and trace context that were current before ``begin()``."""
        journeys.request.reset(self._request_token)
        if self._trace_token is not None:
            otel_context.detach(self._trace_token)  # type: ignore[arg-type]


class Middleware:
    """What the ASGI and WSGI middlewares share: configuration and serving one request."""

    def __init__(
        self,
        app: Any,
        routes: RouteMap | None = None,
        channel_header: str = CHANNEL_HEADER,
        cookie: str | None = None,
    ) -> None:
        self.app = app
        self.routes = parse_routes(routes)
        self.cookie = cookie
        self.reader = Reader(cookie, channel_header)

    def begin(self, carrier: Any, method: str, path: str) -> Served:
        """Make the caller's trace and the request's journey context current; start the
        route's step. ``carrier``: the ASGI header list or the WSGI environ, read once here (a
        rejected context is counted once; ``journey(headers=...)`` in the handler reuses it)."""
        carried = self.reader.read(carrier)
        # Without a traceparent the propagator would return the current context: nothing to do.
        trace = carried.trace
        trace_token = otel_context.attach(trace_context(trace)) if trace is not None else None
        request = RequestScope(accepted(carried), carried.channel)
        request_token = journeys.request.set(request)
        try:
            route = self.routes.get((method, path))
            step = journey(route[0]).step(route[1]).start() if route is not None else None
        except BaseException:
            journeys.request.reset(request_token)
            if trace_token is not None:
                otel_context.detach(trace_token)
            raise
        return Served(request, step, self.cookie, request_token, trace_token)
