"""What a follow-up delivery looks like on the wire, and how a receiver trusts it.

A webhook delivery is ``POST`` of ``{"followups": [item, ...]}`` (one or more items); each item
has an ``idempotency_key`` (the same on every retry of the same stall, a digest that reveals no
id) and the fields the spec lists. The body is signed: ``X-Cx-Signature: t=<unix time>,v1=<hex
HMAC-SHA256(secret, "<t>." + body)>``; a receiver recomputes it with the shared secret, rejects a
mismatch or a stale ``t`` (replay), and drops items whose key it has already accepted.
A queue delivery appends each item to the Redis stream ``cxfu:queue:<name>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timezone
from typing import Any

SIGNATURE_HEADER = "x-cx-signature"
SECRET_ENV = "CXMETRICS_FOLLOWUP_SECRET"
TOLERANCE = 300.0


def queue_key(name: str, prefix: str = "cxfu") -> str:
    return f"{prefix}:queue:{name}"


def idempotency_key(journey: str, step: str, instance: str, since: float) -> str:
    return hashlib.sha256(f"{journey}:{step}:{instance}:{since:.3f}".encode()).hexdigest()[:32]


def item(
    fields: tuple[str, ...],
    key: str,
    journey: str,
    step: str,
    since: float,
    channel: str,
    segment: str | None,
    customer_ref: str | None,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "journey": journey,
        "step": step,
        "stalled_since": datetime.fromtimestamp(since, timezone.utc).isoformat(
            timespec="milliseconds"
        ),
        "channel": channel,
        "segment": segment,
        "customer_ref": customer_ref,
    }
    return {"idempotency_key": key, **{f: values[f] for f in fields}}


def body(items: list[dict[str, Any]]) -> bytes:
    return json.dumps({"followups": items}, separators=(",", ":")).encode()


def sign(secret: bytes, payload: bytes, now: float | None = None) -> str:
    stamp = str(int(now if now is not None else time.time()))
    digest = hmac.new(secret, stamp.encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def verify(secret: bytes, header: str | None, payload: bytes, now: float | None = None) -> bool:
    """``True`` when ``header`` signs ``payload`` with ``secret`` within ``TOLERANCE`` seconds."""
    if not header:
        return False
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        stamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - stamp) > TOLERANCE:
        return False
    expected = hmac.new(secret, f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)
