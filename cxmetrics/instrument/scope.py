"""Which journey instance is current, and the journey context of the request being served.

Two context variables (each reset with its token when the scope ends): the instance made current by
``with journey(...)``, and a request scope set by the framework middlewares
(``cxmetrics.integrations``) holding the incoming journey context and the instances the request
touched, so the response can carry the journey onward.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..propagation.context import JourneyContext
    from .journeys import JourneyInstance

current: ContextVar[JourneyInstance | None] = ContextVar("cxmetrics_journey", default=None)


class RequestScope:
    """The journey side of one request: what came in, and the latest instance it touched."""

    __slots__ = ("channel", "incoming", "latest")

    def __init__(self, incoming: JourneyContext | None, channel: str | None = None) -> None:
        self.incoming = incoming
        self.channel = channel
        self.latest: JourneyInstance | None = None


request: ContextVar[RequestScope | None] = ContextVar("cxmetrics_request", default=None)


def current_journey() -> JourneyInstance | None:
    """The journey instance made current by ``with journey(...)`` (or a middleware), if any."""
    return current.get()
