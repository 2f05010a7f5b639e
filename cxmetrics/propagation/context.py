"""The journey context that travels with a journey instance across requests and processes.

Journey state lives in the context, not in process memory (docs/architecture.md). A
``JourneyContext`` (journey name, instance id, last step, channel, fingerprints for cross-step
consistency) rides in W3C baggage (``baggage`` header) under ``cx.*`` keys. Everything read from
outside is validated before use; a malformed or oversized context is ignored and counted, never
trusted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import unquote

from ..spec.names import (
    CONTEXT_REJECTED,  # noqa: F401  (documented counter for rejections)
    is_name,
)

BAGGAGE_HEADER = "baggage"
CHANNEL_HEADER = "x-cx-channel"  # the channel the customer is on now (app, web, ...)
KEY_JOURNEY, KEY_ID, KEY_STEP, KEY_CHANNEL, KEY_FINGERPRINTS, KEY_CUSTOMER = (
    "cx.journey",
    "cx.id",
    "cx.step",
    "cx.channel",
    "cx.fp",
    "cx.cust",
)
_KEYS = (KEY_JOURNEY, KEY_ID, KEY_STEP, KEY_CHANNEL, KEY_FINGERPRINTS, KEY_CUSTOMER)
MAX_HEADER_BYTES = 8192  # W3C baggage limit
MAX_FINGERPRINTS = 8
_ID_RE = re.compile(r"^[0-9a-f]{16,32}$")
_FP_RE = re.compile(r"^[0-9a-f]{16}$")
# The exact form ``format_baggage`` writes, in its order, with nothing else in the header: one
# match parses and validates it (the hot path of every resumed request). Anything else, valid or
# not, goes through ``parse_baggage`` + ``parse_context``, which decide the same for this form.
_N = r"[a-z][a-z0-9_]{0,62}"
_OWN_FORM = re.compile(
    rf"cx\.journey=({_N}),cx\.id=([0-9a-f]{{16,32}})"
    rf"(?:,cx\.step=({_N}))?(?:,cx\.channel=({_N}))?"
    rf"((?:,cx\.fp=({_N}:[0-9a-f]{{16}}(?:\|{_N}:[0-9a-f]{{16}}){{0,{MAX_FINGERPRINTS - 1}}}))?"
    r"(?:,cx\.cust=([0-9a-f]{16}))?)"
)
# A context's fields: journey, id, last step, channel, fingerprints, customer reference, and the
# text of its digest members (``digest_members``' form) when it can be sent on as it came.
Fields = tuple[str, str, str | None, str | None, Mapping[str, str], str | None, str | None]


def new_journey_id() -> str:
    """A fresh opaque instance id: 16 random bytes as 32 hex characters."""
    return os.urandom(16).hex()


@dataclass(frozen=True, slots=True)
class JourneyContext:
    """What a journey instance carries between requests. All fields are validated names/ids."""

    journey: str
    journey_id: str
    last_step: str | None = None
    channel: str | None = None
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    customer_ref: str | None = (
        None  # a keyed digest (cxmetrics.instrument.redaction), never the raw id
    )

    def with_step(self, step: str) -> JourneyContext:
        return replace(self, last_step=step)


_SET_FIELDS = tuple(getattr(JourneyContext, f.name).__set__ for f in fields(JourneyContext))


def _validated(
    journey: str,
    journey_id: str,
    last_step: str | None,
    channel: str | None,
    fingerprints: Mapping[str, str],
    customer_ref: str | None,
) -> JourneyContext:
    """A ``JourneyContext`` from fields already validated, built without the frozen
    dataclass's per-field ``object.__setattr__`` (a third of the cost, on every request): one
    object, no instance dict, so a request in flight holds one object less for the collector."""
    context: JourneyContext = object.__new__(JourneyContext)
    journey_set, id_set, step_set, channel_set, fingerprints_set, customer_set = _SET_FIELDS
    journey_set(context, journey)
    id_set(context, journey_id)
    step_set(context, last_step)
    channel_set(context, channel)
    fingerprints_set(context, fingerprints)
    customer_set(context, customer_ref)
    return context


class ContextRejected(ValueError):
    """An incoming context that cannot be trusted; ``reason`` is a bounded label value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_context(entries: Mapping[str, str]) -> JourneyContext | None:
    """Validate ``cx.*`` baggage entries. ``None`` when absent; ``ContextRejected`` when bad."""
    journey = entries.get(KEY_JOURNEY)
    journey_id = entries.get(KEY_ID)
    if journey is None and journey_id is None:
        return None
    if journey is None or not is_name(journey):
        raise ContextRejected("bad_journey")
    if journey_id is None or not _ID_RE.fullmatch(journey_id):
        raise ContextRejected("bad_id")
    step = entries.get(KEY_STEP) or None
    if step is not None and not is_name(step):
        raise ContextRejected("bad_step")
    channel = entries.get(KEY_CHANNEL) or None
    if channel is not None and not is_name(channel):
        raise ContextRejected("bad_channel")
    fingerprints: dict[str, str] = {}
    raw = entries.get(KEY_FINGERPRINTS) or ""
    if raw:
        items = raw.split("|")
        if len(items) > MAX_FINGERPRINTS:
            raise ContextRejected("too_many_fingerprints")
        for item in items:
            key, _, digest = item.partition(":")
            if not is_name(key) or not _FP_RE.fullmatch(digest):
                raise ContextRejected("bad_fingerprint")
            fingerprints[key] = digest
    customer = entries.get(KEY_CUSTOMER) or None
    if customer is not None and not _FP_RE.fullmatch(customer):
        raise ContextRejected("bad_customer_ref")
    return _validated(journey, journey_id, step, channel, fingerprints, customer)


def parse_baggage(value: str) -> dict[str, str]:
    """The ``cx.*`` entries of a W3C baggage header value (other members are left alone)."""
    if len(value.encode("utf-8", "replace")) > MAX_HEADER_BYTES:
        raise ContextRejected("oversized")
    out: dict[str, str] = {}
    for member in value.split(","):
        key, sep, rest = member.partition("=")
        key = key.strip()
        if not sep or key not in _KEYS:
            continue
        if key in out:
            raise ContextRejected("duplicate_key")
        value = rest.split(";", 1)[0].strip()
        out[key] = unquote(value) if "%" in value else value
    return out


def parse_header(value: str) -> JourneyContext | None:
    """The journey context in a ``baggage`` header value: ``None`` when it has none,
    ``ContextRejected`` when its ``cx.*`` entries are malformed. Other members are ignored."""
    fields = own_fields(value)
    if fields is None:
        return parse_context(parse_baggage(value))
    return _validated(*fields[:6])


def own_fields(value: str) -> Fields | None:
    """The fields of a ``baggage`` value in exactly the form cxmetrics writes, which one match
    parses and validates; ``None`` for anything else (``parse_header`` decides it). Its digest
    members come back as text too, to be sent on unchanged while no step adds a fingerprint."""
    own = _OWN_FORM.fullmatch(value)
    if own is None:
        return None
    journey, journey_id, step, channel, tail, fps, customer = own.groups()
    fingerprints: dict[str, str] = {}
    if fps:
        items = fps.split("|")
        for item in items:
            key, _, digest = item.partition(":")
            fingerprints[key] = digest
        if len(fingerprints) < len(items):
            tail = None  # a repeated key: formatted again, it keeps only its last digest
    return journey, journey_id, step, channel, fingerprints, customer, tail


def context_fields(context: JourneyContext) -> Fields:
    """``context`` as ``own_fields`` gives a header's fields (its digest members to be formatted
    again). Its fingerprints are shared, read-only: an instance copies them before adding one."""
    return (
        context.journey,
        context.journey_id,
        context.last_step,
        context.channel,
        context.fingerprints,
        context.customer_ref,
        None,
    )


def format_baggage(context: JourneyContext, existing: str = "") -> str:
    """A baggage header value with ``context``'s ``cx.*`` entries replacing any old ones."""
    ours = own_members(*context_fields(context)[:6])
    if not existing:
        return ours
    members = [m.strip() for m in existing.split(",") if m.strip()]
    kept = [m for m in members if m.partition("=")[0].strip() not in _KEYS]
    return ",".join([*kept, ours])


def own_members(
    journey: str,
    journey_id: str,
    last_step: str | None,
    channel: str | None,
    fingerprints: Mapping[str, str],
    customer_ref: str | None,
) -> str:
    """The ``cx.*`` baggage members, in the order ``parse_header`` reads fastest. Our values are
    validated names, hex ids and digests: nothing to percent-encode."""
    return (
        f"{KEY_JOURNEY}={journey},{KEY_ID}={journey_id}"
        + step_members(last_step, channel)
        + digest_members(fingerprints, customer_ref)
    )


def step_members(last_step: str | None, channel: str | None) -> str:
    """``,cx.step=…,cx.channel=…`` (either may be absent)."""
    out = f",{KEY_STEP}={last_step}" if last_step else ""
    return f"{out},{KEY_CHANNEL}={channel}" if channel else out


def digest_members(fingerprints: Mapping[str, str], customer_ref: str | None) -> str:
    """``,cx.fp=…,cx.cust=…`` (either may be absent); the newest ``MAX_FINGERPRINTS`` kept."""
    out = ""
    if fingerprints:
        items = list(fingerprints.items())
        if len(items) > MAX_FINGERPRINTS:
            items = items[-MAX_FINGERPRINTS:]
        out = f",{KEY_FINGERPRINTS}=" + "|".join([f"{k}:{v}" for k, v in items])
    return f"{out},{KEY_CUSTOMER}={customer_ref}" if customer_ref else out


def extract(headers: Mapping[str, str] | Any) -> JourneyContext | None:
    """The journey context in HTTP ``headers`` (any mapping; header names case-insensitive).

    Returns ``None`` when there is none or it is malformed (the rejection is counted in
    ``cx_journey_context_rejected_total`` and never raises).
    """
    value = _header(headers, BAGGAGE_HEADER)
    return _context_in(value) if value else None


def read_headers(headers: Any) -> tuple[str | None, str | None]:
    """The ``baggage`` and ``x-cx-channel`` values of a request's headers, read in one pass for
    ``journey(name, headers=...)``; empty ones are ``None``.

    ``headers``: an ASGI header list (``[(b"baggage", b"...")]``, names in lower case as ASGI
    requires), an object with such a list as ``raw`` (Starlette's and FastAPI's
    ``request.headers``), or any mapping (names case-insensitive). Several ``baggage`` headers
    are one list, as W3C baggage says.
    """
    raw = headers if isinstance(headers, list) else getattr(headers, "raw", None)
    if isinstance(raw, list):
        baggage: str | None = None
        channel: str | None = None
        for key, value in raw:
            if key == _RAW_BAGGAGE:
                text = value.decode("latin-1")
                baggage = text if baggage is None else f"{baggage},{text}"
            elif key == _RAW_CHANNEL and channel is None:
                channel = value.decode("latin-1")
    else:
        baggage, channel = _header(headers, BAGGAGE_HEADER), _header(headers, CHANNEL_HEADER)
    return baggage or None, channel or None


_RAW_BAGGAGE, _RAW_CHANNEL = BAGGAGE_HEADER.encode(), CHANNEL_HEADER.encode()


def _context_in(value: str) -> JourneyContext | None:
    try:
        return parse_header(value)
    except ContextRejected as exc:
        from ..instrument import state as _state

        runtime = _state.STATE.runtime
        if runtime is not None:
            runtime.count_rejected(exc.reason)
        return None


def inject(headers: MutableMapping[str, str], context: JourneyContext | None = None) -> None:
    """Write ``context`` (default: the current journey's) into ``headers`` as W3C baggage."""
    if context is None:
        from ..instrument.journeys import current_journey

        journey = current_journey()
        if journey is None:
            return
        context = journey.context()
    existing = _header(headers, BAGGAGE_HEADER) or ""
    for name in [k for k in headers if k.lower() == BAGGAGE_HEADER]:
        del headers[name]
    headers[BAGGAGE_HEADER] = format_baggage(context, existing)


def _header(headers: Any, name: str) -> str | None:
    getter = getattr(headers, "get", None)
    if getter is not None:
        value = getter(name)
        if value is not None:
            return str(value)
    try:
        for key, value in headers.items():
            if str(key).lower() == name:
                return str(value)
    except AttributeError:
        return None
    return None
