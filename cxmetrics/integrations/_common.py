"""What the ASGI and WSGI middlewares share: reading the incoming journey context once per
request (``cxmetrics.propagation.carriers``: the ``baggage`` header, the ``cx-journey`` header or a
cookie); route maps; the outgoing headers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
from . import routes as routing
from .routes import Key, RouteMap


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
        self.routes = routing.parse_routes(routes)
        self.templated = routing.has_parameters(self.routes)
        self.matcher: Callable[[Any], tuple[str, str] | None] | None = None
        self.first_request = True
        self.cookie = cookie
        self.reader = Reader(cookie, channel_header)

    def framework(self, request: Any) -> tuple[routing.Matcher, set[Key]] | None:
        """The framework's route matcher for ``request`` and the routes the app declares."""
        return None

    def route_of(self, method: str, path: str, request: Any) -> tuple[str, str] | None:
        """The mapped step of the route serving this request (see ``routes``)."""
        if self.first_request:
            self.first_request = False
            try:
                found = self.framework(request)
                if found is not None:
                    self.matcher = found[0]
                    routing.report_unserved(self.routes, found[1])
            except Exception as exc:
                internal_error("middleware", exc)
        if not self.templated:
            return self.routes.get((method, path))
        if self.matcher is None:
            return None
        try:
            key = self.matcher(request)
        except Exception as exc:
            internal_error("middleware", exc)
            return None
        return self.routes.get(key) if key is not None else None

    def begin(self, carrier: Any, method: str, path: str, raw: Any = None) -> Served:
        """Make the caller's trace and the request's journey context current; start the
        route's step. ``carrier``: the ASGI header list or the WSGI environ, read once here (a
        rejected context is counted once; ``journey(headers=...)`` in the handler reuses it);
        ``raw``: the ASGI scope or WSGI environ, for the framework's route matching."""
        carried = self.reader.read(carrier)
        # Without a traceparent the propagator would return the current context: nothing to do.
        trace = carried.trace
        trace_token = otel_context.attach(trace_context(trace)) if trace is not None else None
        request = RequestScope(accepted(carried), carried.channel)
        request_token = journeys.request.set(request)
        try:
            route = self.route_of(method, path, raw) if self.routes else None
            step = journey(route[0]).step(route[1]).start() if route is not None else None
        except BaseException:
            journeys.request.reset(request_token)
            if trace_token is not None:
                otel_context.detach(trace_token)
            raise
        return Served(request, step, self.cookie, request_token, trace_token)
