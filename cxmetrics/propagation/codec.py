"""The journey-context codec: a ``JourneyContext`` to and from the ``cx.*`` members of a W3C
``baggage`` value, as pure functions (modelled on OpenTelemetry's propagators).

``decode(text)`` gives the context, ``None`` when the text carries none, or ``Rejected(reason)``
when its ``cx.*`` members are malformed or oversized: everything read from outside is validated
before use, and a rejected context is never trusted. ``encode(context)`` writes the members back,
keeping any other baggage members. Nothing here counts, logs or raises: the caller decides what a
rejection means (``cxmetrics.instrument.carry`` counts it once per request).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from urllib.parse import unquote

from ..spec.names import is_name

KEY_JOURNEY, KEY_ID, KEY_STEP, KEY_CHANNEL, KEY_FINGERPRINTS, KEY_CUSTOMER, KEY_MAC = (
    "cx.journey",
    "cx.id",
    "cx.step",
    "cx.channel",
    "cx.fp",
    "cx.cust",
    "cx.mac",  # the MAC over the others (cxmetrics.propagation.integrity)
)
# The customer segment the app set on the instance (``journey(segment=…)``), MAC-covered like
# the rest; written after the channel.
KEY_SEGMENT = "cx.seg"
# When the instance's first step started (milliseconds since the epoch), MAC-covered: the live
# end-to-end journey duration is measured from it at the last step, in whatever process.
KEY_STARTED = "cx.t0"
KEYS = (
    KEY_JOURNEY,
    KEY_ID,
    KEY_STEP,
    KEY_CHANNEL,
    KEY_SEGMENT,
    KEY_STARTED,
    KEY_FINGERPRINTS,
    KEY_CUSTOMER,
    KEY_MAC,
)
MAX_HEADER_BYTES = 8192  # W3C baggage limit
MAX_FINGERPRINTS = 8
_ID_RE = re.compile(r"[0-9a-f]{16,32}")
_FP_RE = re.compile(r"[0-9a-f]{16}")
_MAC_RE = re.compile(r"[a-z0-9_]{1,16}:[0-9a-f]{32}")
_MILLIS_RE = re.compile(r"[0-9]{1,15}")


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
    mac: str | None = None  # ``<key id>:<digest>`` as received; checked by the runtime's keys
    segment: str | None = None  # a validated name; the runtime folds undeclared ones to ``other``
    started: int | None = None  # the first step's start, ms since the epoch (``cx.t0``)

    def with_step(self, step: str) -> JourneyContext:
        return replace(self, last_step=step)


@dataclass(frozen=True, slots=True)
class Rejected:
    """An incoming context that cannot be trusted; ``reason`` is a bounded label value."""

    reason: str


# -- decode ---------------------------------------------------------------------------------------


def decode(text: str) -> JourneyContext | Rejected | None:
    """The journey context in a ``baggage`` value: ``None`` when it carries no ``cx.*`` context,
    ``Rejected(reason)`` when its ``cx.*`` members are malformed. Other members are ignored."""
    own = _OWN_FORM.fullmatch(text)
    if own is not None:
        return _own(*own.groups())
    if "cx." not in text:  # no member of ours (keys are never percent-encoded): one C scan
        return None
    entries = _entries(text)
    if isinstance(entries, Rejected):
        return entries
    return _context(entries)


# The exact form ``encode`` writes, in its order, with nothing else in the value: one match
# parses and validates it, the case of every resumed request. It pays: on bench_middleware's
# baggage, ``decode`` takes 1.2 µs this way against 5.1 µs through ``_entries`` + ``_context``
# (best of 15 × 2,000 calls, one process, this machine under load): about 4 µs of a middleware
# request that costs +9-10 µs in all. Anything else, valid or not, takes the general path, which
# decides the same for this form (tests/propagation/test_fast_paths.py).
_N = r"[a-z][a-z0-9_]{0,62}"
_OWN_FORM = re.compile(
    rf"cx\.journey=({_N}),cx\.id=([0-9a-f]{{16,32}})"
    rf"(?:,cx\.step=({_N}))?(?:,cx\.channel=({_N}))?(?:,cx\.seg=({_N}))?(?:,cx\.t0=([0-9]{{1,15}}))?"
    rf"(?:,cx\.fp=({_N}:[0-9a-f]{{16}}(?:\|{_N}:[0-9a-f]{{16}}){{0,{MAX_FINGERPRINTS - 1}}}))?"
    r"(?:,cx\.cust=([0-9a-f]{16}))?"
    r"(?:,cx\.mac=([a-z0-9_]{1,16}:[0-9a-f]{32}))?"
)


def _own(
    journey: str,
    journey_id: str,
    step: str | None,
    channel: str | None,
    segment: str | None,
    started: str | None,
    fps: str | None,
    customer: str | None,
    mac: str | None,
) -> JourneyContext:
    fingerprints: dict[str, str] = {}
    if fps:
        for item in fps.split("|"):
            key, _, digest = item.partition(":")
            fingerprints[key] = digest
    t0 = int(started) if started else None
    return _validated(journey, journey_id, step, channel, fingerprints, customer, mac, segment, t0)


_SET_FIELDS = tuple(getattr(JourneyContext, f.name).__set__ for f in fields(JourneyContext))


def _validated(
    journey: str,
    journey_id: str,
    last_step: str | None,
    channel: str | None,
    fingerprints: Mapping[str, str],
    customer_ref: str | None,
    mac: str | None = None,
    segment: str | None = None,
    started: int | None = None,
) -> JourneyContext:
    """A ``JourneyContext`` from fields already validated, built without the frozen
    dataclass's per-field ``object.__setattr__`` (a third of its construction cost)."""
    context: JourneyContext = object.__new__(JourneyContext)
    (
        journey_set,
        id_set,
        step_set,
        channel_set,
        fingerprints_set,
        customer_set,
        mac_set,
        segment_set,
        started_set,
    ) = _SET_FIELDS
    journey_set(context, journey)
    id_set(context, journey_id)
    step_set(context, last_step)
    channel_set(context, channel)
    fingerprints_set(context, fingerprints)
    customer_set(context, customer_ref)
    mac_set(context, mac)
    segment_set(context, segment)
    started_set(context, started)
    return context


def _entries(text: str) -> dict[str, str] | Rejected:
    """The ``cx.*`` members of a baggage value (other members are left alone)."""
    if len(text.encode("utf-8", "replace")) > MAX_HEADER_BYTES:
        return Rejected("oversized")
    out: dict[str, str] = {}
    for member in text.split(","):
        key, sep, rest = member.partition("=")
        key = key.strip()
        if not sep or key not in KEYS:
            continue
        if key in out:
            return Rejected("duplicate_key")
        value = rest.split(";", 1)[0].strip()
        out[key] = unquote(value) if "%" in value else value
    return out


def _context(entries: Mapping[str, str]) -> JourneyContext | Rejected | None:
    """Validate ``cx.*`` members: ``None`` when absent."""
    journey = entries.get(KEY_JOURNEY)
    journey_id = entries.get(KEY_ID)
    if journey is None and journey_id is None:
        return None
    if journey is None or not is_name(journey):
        return Rejected("bad_journey")
    if journey_id is None or not _ID_RE.fullmatch(journey_id):
        return Rejected("bad_id")
    step = entries.get(KEY_STEP) or None
    if step is not None and not is_name(step):
        return Rejected("bad_step")
    channel = entries.get(KEY_CHANNEL) or None
    if channel is not None and not is_name(channel):
        return Rejected("bad_channel")
    segment = entries.get(KEY_SEGMENT) or None
    if segment is not None and not is_name(segment):
        return Rejected("bad_segment")
    started = entries.get(KEY_STARTED) or None
    if started is not None and not _MILLIS_RE.fullmatch(started):
        return Rejected("bad_started")
    fingerprints: dict[str, str] = {}
    raw = entries.get(KEY_FINGERPRINTS) or ""
    if raw:
        items = raw.split("|")
        if len(items) > MAX_FINGERPRINTS:
            return Rejected("too_many_fingerprints")
        for item in items:
            key, _, digest = item.partition(":")
            if not is_name(key) or not _FP_RE.fullmatch(digest):
                return Rejected("bad_fingerprint")
            fingerprints[key] = digest
    customer = entries.get(KEY_CUSTOMER) or None
    if customer is not None and not _FP_RE.fullmatch(customer):
        return Rejected("bad_customer_ref")
    mac = entries.get(KEY_MAC) or None
    if mac is not None and not _MAC_RE.fullmatch(mac):
        return Rejected("bad_mac")
    t0 = int(started) if started is not None else None
    return _validated(journey, journey_id, step, channel, fingerprints, customer, mac, segment, t0)


# -- encode ---------------------------------------------------------------------------------------


def encode(
    context: JourneyContext, existing: str = "", sign: Callable[[str], str] | None = None
) -> str:
    """A baggage value with ``context``'s ``cx.*`` members replacing any in ``existing``;
    ``sign`` (``ContextKeys.mac``) appends the ``cx.mac`` member over them."""
    ours = members(
        context.journey,
        context.journey_id,
        context.last_step,
        context.channel,
        context.fingerprints,
        context.customer_ref,
        segment=context.segment,
        started=context.started,
    )
    if sign is not None:
        ours += sign(ours)
    if not existing:
        return ours
    kept = [
        m.strip()
        for m in existing.split(",")
        if m.strip() and m.partition("=")[0].strip() not in KEYS
    ]
    return ",".join([*kept, ours])


def members(
    journey: str,
    journey_id: str,
    last_step: str | None,
    channel: str | None,
    fingerprints: Mapping[str, str],
    customer_ref: str | None,
    *,
    segment: str | None = None,
    started: int | None = None,
) -> str:
    """The ``cx.*`` members of a context given by its fields, in the order ``decode`` reads
    fastest; the newest ``MAX_FINGERPRINTS`` fingerprints are kept. Our values are validated
    names, hex ids, digests and digits: nothing to percent-encode. Written in parts (``head``,
    ``step_members``, ``segment_member``, ``started_member``, ``digest_members``) so a runtime
    can prepare the first two once."""
    return (
        f"{head(journey)}{journey_id}{step_members(last_step, channel)}"
        f"{segment_member(segment)}{started_member(started)}"
        f"{digest_members(fingerprints, customer_ref)}"
    )


def head(journey: str) -> str:
    """``cx.journey=…,cx.id=`` (the instance id follows)."""
    return f"{KEY_JOURNEY}={journey},{KEY_ID}="


def step_members(last_step: str | None, channel: str | None) -> str:
    """``,cx.step=…,cx.channel=…`` (either may be absent)."""
    out = f",{KEY_STEP}={last_step}" if last_step else ""
    return f"{out},{KEY_CHANNEL}={channel}" if channel else out


def segment_member(segment: str | None) -> str:
    """``,cx.seg=…`` (absent when the instance has no segment)."""
    return f",{KEY_SEGMENT}={segment}" if segment else ""


def started_member(started: int | None) -> str:
    """``,cx.t0=…`` (absent when the instance has no known start: its first step ran nowhere
    this context went through)."""
    return f",{KEY_STARTED}={started}" if started is not None else ""


def digest_members(fingerprints: Mapping[str, str], customer_ref: str | None) -> str:
    """``,cx.fp=…,cx.cust=…`` (either may be absent); the newest ``MAX_FINGERPRINTS`` kept."""
    out = ""
    if fingerprints:
        items = list(fingerprints.items())[-MAX_FINGERPRINTS:]
        out = f",{KEY_FINGERPRINTS}=" + "|".join([f"{k}:{v}" for k, v in items])
    return f"{out},{KEY_CUSTOMER}={customer_ref}" if customer_ref else out
