"""The journey context a request brings into the app, read once per request, a rejection
counted once (``cx_journey_context_rejected_total``) on the configured runtime.

Reading and decoding the text is ``cxmetrics.propagation``'s (pure); this module adds the count.
Writing the context out is ``JourneyInstance.inject`` / ``cxmetrics.inject``. Nothing here raises.
"""

from __future__ import annotations

from typing import Any

from ..propagation.carriers import READER, Carried, Reader
from ..propagation.codec import JourneyContext, Rejected
from .state import STATE, internal_error


def receive(carrier: Any, reader: Reader = READER) -> tuple[JourneyContext | None, str | None]:
    """The journey context and channel a request carries; a rejected context is counted (once:
    call this once per request) and treated as absent. Never raises."""
    try:
        carried = reader.read(carrier)
    except Exception as exc:  # a carrier of a shape no reader knows is the caller's problem
        internal_error("propagation", exc)
        return None, None
    return accepted(carried), carried.channel


def accepted(carried: Carried) -> JourneyContext | None:
    """``carried``'s context, or ``None`` after counting its rejection."""
    context = carried.context
    if type(context) is Rejected:
        runtime = STATE.runtime
        if runtime is not None:
            runtime.count_rejected(context.reason)
        return None
    return context  # type: ignore[return-value]  # not a Rejected: a context or None


def extract(headers: Any) -> JourneyContext | None:
    """The journey context in HTTP ``headers`` (any mapping; header names case-insensitive).

    Returns ``None`` when there is none or it is malformed (the rejection is counted in
    ``cx_journey_context_rejected_total``); never raises.
    """
    return receive(headers)[0]
