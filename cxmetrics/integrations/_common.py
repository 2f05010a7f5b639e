"""What the ASGI and WSGI middlewares share: reading the incoming journey context from the
``baggage`` header, the ``cx-journey`` header or a cookie; route maps; the outgoing headers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import Token
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, unquote

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..instrument import scope
from ..instrument.journeys import JourneyInstance, journey
from ..instrument.scope import RequestScope
from ..instrument.state import STATE, internal_error
from ..instrument.steps import StepInstance
from ..propagation import context as cxcontext
from ..propagation.context import (
    BAGGAGE_HEADER,
    CHANNEL_HEADER,
    MAX_HEADER_BYTES,
    ContextRejected,
    JourneyContext,
    parse_header,
)
from . import routes as routing
from .routes import Key, RouteMap

JOURNEY_HEADER = "cx-journey"
DEFAULT_COOKIE = "cx_journey"


def incoming(headers: Mapping[str, str], cookie: str | None) -> JourneyContext | None:
    """The request's journey context: baggage, then the ``cx-journey`` header, then the cookie.

    A malformed or oversized value is ignored (a new instance starts) and counted in
    ``cx_journey_context_rejected_total``; it never raises and is never used as a label.
    """
    candidates = [headers.get(BAGGAGE_HEADER), headers.get(JOURNEY_HEADER)]
    if cookie is not None and len(headers.get("cookie", "")) > MAX_HEADER_BYTES:
        runtime = STATE.runtime
        if runtime is not None:
            runtime.count_rejected("oversized")
    elif cookie is not None and "cookie" in headers:
        try:
            jar: SimpleCookie = SimpleCookie()
            jar.load(headers["cookie"])
            if cookie in jar:
                candidates.append(unquote(jar[cookie].value))
        except Exception:  # a broken Cookie header is the client's problem, not ours
            candidates.append(None)
    for value in candidates:
        if not value:
            continue
        try:
            found = parse_header(value)
        except ContextRejected as exc:
            runtime = STATE.runtime
            if runtime is not None:
                runtime.count_rejected(exc.reason)
            return None
        if found is not None:
            return found
    return None


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
        cxcontext.inject(headers)
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
        scope.request.reset(self._request_token)
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
        self.channel_header = channel_header.lower()
        self.cookie = cookie
        # The only request headers the middlewares read (every other one is left undecoded),
        # as ASGI header names and as WSGI environ keys.
        wanted = [BAGGAGE_HEADER, JOURNEY_HEADER, "cookie", self.channel_header]
        wanted += ["traceparent", "tracestate"]  # W3C trace context, read by trace_context()
        self.wanted_raw = {name.encode("latin-1"): name for name in wanted}
        self.wanted_environ = {"HTTP_" + n.upper().replace("-", "_"): n for n in wanted}

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

    def begin(self, headers: Mapping[str, str], method: str, path: str, raw: Any = None) -> Served:
        """Make the caller's trace and the request's journey context current; start the
        route's step. ``headers``: the request's ``wanted`` headers, names in lower case;
        ``raw``: the ASGI scope or WSGI environ, for the framework's route matching."""
        # Without a traceparent the propagator would return the current context: nothing to do.
        trace_token = (
            otel_context.attach(trace_context(headers)) if "traceparent" in headers else None
        )
        request = RequestScope(
            incoming(headers, self.cookie), headers.get(self.channel_header) or None
        )
        request_token = scope.request.set(request)
        try:
            route = self.route_of(method, path, raw) if self.routes else None
            step = journey(route[0]).step(route[1]).start() if route is not None else None
        except BaseException:
            scope.request.reset(request_token)
            if trace_token is not None:
                otel_context.detach(trace_token)
            raise
        return Served(request, step, self.cookie, request_token, trace_token)
