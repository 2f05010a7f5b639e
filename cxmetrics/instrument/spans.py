"""OpenTelemetry spans for steps, through opentelemetry-api only (docs/architecture.md).

Span modes: ``always`` (a current span per step, children nest), ``interesting`` (a span only for
frustrated, inaccurate or failed steps, created after the fact with its real start time), ``off``.
The app chooses the SDK and exporter; with none installed the API is a cheap no-op.

A failed step's exception becomes a span event ``exception`` with ``exception.type`` (the class
name) and ``exception.message`` masked by ``redaction.redact_text`` (digit runs → ``#``, e-mail
addresses → ``<email>``), without the stack: an app's messages carry card numbers, IBANs, amounts
and customer ids. ``configure(span_exception_messages=True)`` records the raw message and stack
instead (``Span.record_exception``), for apps whose messages are known to be clean.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN as _NO_SPAN
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace import propagation as _propagation

from ..spec import names
from .events import CheckResult
from .redaction import redact_text
from .slots import StepSlot

TIMELINESS = names.TIMELINESS_CLASSES


class _Exceptions:
    raw = False  # set by configure(span_exception_messages=...)


def record_raw_exceptions(on: bool) -> None:
    """Whether spans get an exception's raw message and stack (default: no, masked message)."""
    _Exceptions.raw = on


def tracer() -> trace.Tracer:
    from .._version import __version__

    return trace.get_tracer("cxmetrics", __version__)


def _attributes(
    slot: StepSlot, journey_id: str, previous: str | None, customer: str | None
) -> dict[str, Any]:
    # One dict, one SDK call: every attribute set costs a validation pass in the SDK, so spans
    # carry only what the span itself does not already say (its duration and status do).
    attributes = dict(slot.span_attributes)
    attributes[names.ATTR_JOURNEY_ID] = journey_id
    if previous is not None:
        attributes[names.ATTR_PREVIOUS_STEP] = previous
    if customer is not None:
        attributes[names.ATTR_CUSTOMER] = customer
    return attributes


def start(
    tr: trace.Tracer, slot: StepSlot, journey_id: str, previous: str | None, customer: str | None
) -> tuple[Span, object]:
    """Start the step's span and make it current; returns the span and the context token."""
    span = tr.start_span(
        slot.span_name, attributes=_attributes(slot, journey_id, previous, customer)
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    return span, token


def finish(
    span: Span,
    token: object,
    cls: int,
    error: bool,
    failed: Sequence[str],
    exc: BaseException | None,
) -> None:
    _result(span, cls, error, failed, exc)
    span.end()
    otel_context.detach(token)  # type: ignore[arg-type]


def after_the_fact(
    tr: trace.Tracer,
    slot: StepSlot,
    journey_id: str,
    previous: str | None,
    customer: str | None,
    duration: float,
    cls: int,
    error: bool,
    checks: Sequence[CheckResult],
    exc: BaseException | None,
) -> None:
    """Emit the span of an interesting step that already ended (``interesting`` mode)."""
    end = time.time_ns()
    span = tr.start_span(
        slot.span_name,
        attributes=_attributes(slot, journey_id, previous, customer),
        start_time=end - int(duration * 1e9),
    )
    for check in checks:
        if not check.passed:
            check_failed(span, check.name, check.relative_error)
    _result(span, cls, error, [c.name for c in checks if not c.passed], exc)
    span.end(end_time=end)


def check_failed(span: Span, name: str, relative_error: float | None) -> None:
    attributes: dict[str, Any] = {names.ATTR_CHECK: name}
    if relative_error is not None:
        attributes[names.ATTR_RELATIVE_ERROR] = relative_error
    span.add_event(names.EVENT_CHECK_FAILED, attributes)


# The key the API keeps the current span under. Read directly, the current span costs two
# function calls instead of four on every step (``trace.get_current_span`` is the same lookup);
# an API without it gets the public call.
_SPAN_KEY: str | None = getattr(_propagation, "_SPAN_KEY", None)


def exemplar(span: Span | None, duration: float) -> tuple[str, float, float] | None:
    """(trace id, value, timestamp) when a sampled span is at hand, else ``None``."""
    if span is None:
        current = (
            otel_context.get_current().get(_SPAN_KEY)
            if _SPAN_KEY is not None
            else trace.get_current_span()
        )
        if current is None or current is _NO_SPAN or not isinstance(current, Span):
            return None
        span = current
    ctx = span.get_span_context()
    if not ctx.trace_flags.sampled:
        return None
    return format(ctx.trace_id, "032x"), duration, time.time()


def _result(
    span: Span, cls: int, error: bool, failed: Sequence[str], exc: BaseException | None
) -> None:
    if failed:
        span.set_attributes(
            {names.ATTR_TIMELINESS: TIMELINESS[cls], names.ATTR_FAILED_CHECKS: list(failed)}
        )
    else:
        span.set_attribute(names.ATTR_TIMELINESS, TIMELINESS[cls])
    if error:
        if exc is not None:
            if _Exceptions.raw:
                span.record_exception(exc)
            else:
                span.add_event(
                    "exception",
                    {"exception.type": type(exc).__name__, "exception.message": _message(exc)},
                )
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__ if exc else "marked failed"))


def _message(exc: BaseException) -> str:
    try:
        return redact_text(str(exc))
    except Exception:  # an exception whose __str__ raises, or returns something odd
        return "<message unavailable>"
