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
    """``carried``'s context when it is well formed and authenticated by the runtime's context
    keys, else ``None`` after counting why (``unsigned``, ``bad_mac``, ``unknown_key``, or
    ``no_key`` when no key is configured: nothing from outside can then be trusted)."""
    context = carried.context
    if context is None:
        return None
    runtime = STATE.runtime
    if runtime is None:
        return None  # not configured: nothing to authenticate it with, nothing to resume
    if type(context) is Rejected:
        runtime.count_rejected(context.reason)
        return None
    keys = runtime.context_keys
    reason = "no_key" if keys is None else keys.verify(context)  # type: ignore[arg-type]
    if reason is not None:
        runtime.count_rejected(reason)
        return None
    return context  # type: ignore[return-value]  # not a Rejected: an authenticated context


def extract(headers: Any) -> JourneyContext | None:
    """The journey context in HTTP ``headers`` (any mapping; header names case-insensitive).

    Returns ``None`` when there is none, it is malformed or not authenticated by the configured
    context key, or cxmetrics is not configured (a rejection is counted in
    ``cx_journey_context_rejected_total``); never raises.
    """
    return receive(headers)[0]
