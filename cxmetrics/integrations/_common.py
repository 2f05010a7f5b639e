"""What the ASGI and WSGI middlewares share: reading the incoming journey context from the
``baggage`` header, the ``cx-journey`` header or a cookie; route maps; the outgoing headers."""

from __future__ import annotations

from collections.abc import Mapping
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

JOURNEY_HEADER = "cx-journey"
DEFAULT_COOKIE = "cx_journey"

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
        self.routes = parse_routes(routes)
        self.channel_header = channel_header.lower()
        self.cookie = cookie
        # The only request headers the middlewares read (every other one is left undecoded),
        # as ASGI header names and as WSGI environ keys.
        wanted = [BAGGAGE_HEADER, JOURNEY_HEADER, "cookie", self.channel_header]
        wanted += ["traceparent", "tracestate"]  # W3C trace context, read by trace_context()
        self.wanted_raw = {name.encode("latin-1"): name for name in wanted}
        self.wanted_environ = {"HTTP_" + n.upper().replace("-", "_"): n for n in wanted}

    def begin(self, headers: Mapping[str, str], method: str, path: str) -> Served:
        """Make the caller's trace and the request's journey context current; start the
        route's step. ``headers``: the request's ``wanted`` headers, names in lower case."""
        # Without a traceparent the propagator would return the current context: nothing to do.
        trace_token = (
            otel_context.attach(trace_context(headers)) if "traceparent" in headers else None
        )
        request = RequestScope(
            incoming(headers, self.cookie), headers.get(self.channel_header) or None
        )
        request_token = scope.request.set(request)
        try:
            route = self.routes.get((method, path))
            step = journey(route[0]).step(route[1]).start() if route is not None else None
        except BaseException:
            scope.request.reset(request_token)
            if trace_token is not None:
                otel_context.detach(trace_token)
            raise
        return Served(request, step, self.cookie, request_token, trace_token)
