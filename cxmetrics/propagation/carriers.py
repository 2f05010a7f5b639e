"""Where a journey context travels in HTTP, and the one reader of it.

A request carries its journey context in the ``baggage`` header (W3C baggage, what cxmetrics and
its client integrations send), else in a ``cx-journey`` header, else in a cookie the app chose;
the channel the customer is on in ``x-cx-channel`` (or a header the app chose). ``Reader.read``
takes any carrier in one pass — an ASGI header list (names in lower case, as ASGI requires), an
object with such a list as ``raw`` (Starlette's ``request.headers``), a WSGI ``environ``, or any
mapping (names case-insensitive) — and decodes the context with ``codec.decode``. It is pure: it
neither counts nor logs; ``cxmetrics.instrument.carry`` counts a rejection once per request.

Cookies are read by a bounded parser linear in the header's length (the standard library's
``http.cookies`` is quadratic on some inputs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from .codec import MAX_HEADER_BYTES, JourneyContext, Rejected, decode

BAGGAGE_HEADER = "baggage"
JOURNEY_HEADER = "cx-journey"
CHANNEL_HEADER = "x-cx-channel"  # the channel the customer is on now (app, web, ...)
TRACE_HEADERS = ("traceparent", "tracestate")  # W3C trace context, for the middlewares
DEFAULT_COOKIE = "cx_journey"


class Carried:
    """What a carrier holds: the journey context (or its rejection), the channel, and the W3C
    trace context headers (``None`` without a ``traceparent``)."""

    __slots__ = ("channel", "context", "trace")

    def __init__(
        self,
        context: JourneyContext | Rejected | None,
        channel: str | None,
        trace: Mapping[str, str] | None,
    ) -> None:
        self.context, self.channel, self.trace = context, channel, trace


class Reader:
    """Reads ``Carried`` from a request's carrier; built once per middleware (or once for all)."""

    __slots__ = ("_cookie", "_environ", "_names", "_raw", "channel_header")

    def __init__(self, cookie: str | None = None, channel_header: str = CHANNEL_HEADER) -> None:
        self._cookie = cookie
        self.channel_header = channel_header.lower()
        names = [BAGGAGE_HEADER, JOURNEY_HEADER, self.channel_header, *TRACE_HEADERS]
        if cookie is not None:
            names.append("cookie")
        # The only headers read (every other one is left undecoded): by lower-case name, as
        # ASGI header names and as WSGI environ keys.
        self._names = {name: name for name in names}
        self._raw = {name.encode("latin-1"): name for name in names}
        self._environ = {"HTTP_" + name.upper().replace("-", "_"): name for name in names}

    def read(self, carrier: Any) -> Carried:
        """The journey context, channel and trace headers in ``carrier`` (see the module)."""
        found: dict[str, str] = {}
        if isinstance(carrier, dict) and "REQUEST_METHOD" in carrier:  # a WSGI environ
            for key, lower in self._environ.items():
                value = carrier.get(key)
                if value is not None:
                    found[lower] = str(value)
            return self._carried(found)
        raw = (
            carrier
            if isinstance(carrier, (list, tuple))
            else None
            if isinstance(carrier, dict)  # no attribute lookup that fails on every plain dict
            else getattr(carrier, "raw", None)
        )
        if isinstance(raw, (list, tuple)):
            wanted = self._raw  # names in lower case, as ASGI requires: no .lower() per header
            for key, value in raw:
                name = wanted.get(key)
                if name is not None:
                    _add(found, name, value.decode("latin-1"))
        else:
            names = self._names
            for key, value in carrier.items():
                name = names.get(str(key).lower())
                if name is not None:
                    _add(found, name, str(value))
        return self._carried(found)

    def _carried(self, found: dict[str, str]) -> Carried:
        text = found.get(BAGGAGE_HEADER)
        context = decode(text) if text else None
        if context is None:
            text = found.get(JOURNEY_HEADER)
            context = decode(text) if text else None
        if context is None and self._cookie is not None and "cookie" in found:
            context = _cookie_context(found["cookie"], self._cookie)
        trace = found if "traceparent" in found else None
        return Carried(context, found.get(self.channel_header) or None, trace)


def _add(found: dict[str, str], name: str, value: str) -> None:
    # Several headers of one name are one list (as W3C baggage says); cookies are '; '-joined.
    if name in found:
        value = f"{found[name]}{'; ' if name == 'cookie' else ','}{value}"
    found[name] = value


def _cookie_context(header: str, cookie: str) -> JourneyContext | Rejected | None:
    if len(header) > MAX_HEADER_BYTES:
        return Rejected("oversized")
    value = cookie_value(header, cookie)
    return decode(value) if value else None


def cookie_value(header: str, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header, percent-decoded, quotes removed;
    ``None`` when absent. One split and one partition per cookie: linear in the header."""
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                value = value[1:-1]
            return unquote(value) if "%" in value else value
    return None


def header(carrier: Any, name: str) -> str | None:
    """The value of header ``name`` (lower case) in a mapping carrier, names case-insensitive:
    what ``inject`` merges with (an outgoing request's existing baggage)."""
    getter = getattr(carrier, "get", None)
    if getter is not None:
        value = getter(name)
        if value is not None:
            return str(value)
    for key, value in carrier.items():
        if str(key).lower() == name:
            return str(value)
    return None


READER = Reader()  # baggage and x-cx-channel, no cookie: ``extract`` and ``journey(headers=)``
