"""Outgoing propagation for requests: ``instrument(session)`` adds the current journey context
and trace context to every request the session sends."""

from __future__ import annotations

from typing import Any

from ._common import outgoing


def instrument(session: Any) -> Any:
    """Wrap ``session.send`` so each prepared request carries the journey; returns the session."""
    if getattr(session, "_cxmetrics_instrumented", False):
        return session
    send = session.send

    def send_with_journey(request: Any, **kwargs: Any) -> Any:
        outgoing(request.headers)
        return send(request, **kwargs)

    session.send = send_with_journey
    session._cxmetrics_instrumented = True
    return session
