"""Customer identifiers, only ever as keyed digests.

A journey instance may carry a reference to its customer (``j.identify(customer_id)``) so spans
and event records can be joined with CRM data by whoever holds the key. The raw identifier never
leaves this module: by default it becomes HMAC-SHA256(key, id), 16 hex characters. It is never a
metric label (series count must not grow with customers; docs/architecture.md).

The key comes from ``configure(customer_key=...)`` or ``$CXMETRICS_CUSTOMER_KEY``. Without one, a
random per-process key is used (references then match only within one process) and a warning is
logged once. ``configure(redact=fn)`` replaces the digest with your own function.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable

from .state import log_once

CUSTOMER_KEY_ENV = "CXMETRICS_CUSTOMER_KEY"
REF_PATTERN = re.compile(r"^[0-9a-f]{16}$")
Redact = Callable[[str], str]


def hmac_redactor(key: bytes) -> Redact:
    def redact(customer_id: str) -> str:
        return hmac.new(key, customer_id.encode("utf-8"), hashlib.sha256).hexdigest()[:16]

    return redact


def make_redactor(key: bytes | str | None, redact: Redact | None) -> Redact:
    if redact is not None:
        return redact
    raw = key if key is not None else os.environ.get(CUSTOMER_KEY_ENV)
    if raw is None:
        return _lazy_random()
    return hmac_redactor(raw.encode() if isinstance(raw, str) else raw)


def _lazy_random() -> Redact:
    key = os.urandom(32)
    inner = hmac_redactor(key)

    def redact(customer_id: str) -> str:
        log_once(
            "customer-key",
            "cxmetrics: no customer key configured (configure(customer_key="
            "...) or $%s); customer references match only within this process",
            CUSTOMER_KEY_ENV,
        )
        return inner(customer_id)

    return redact


def customer_ref(redact: Redact, customer_id: object) -> str | None:
    """The reference for ``customer_id``; ``None`` when the hook returns something unusable."""
    ref = redact(str(customer_id))
    if not isinstance(ref, str) or not REF_PATTERN.fullmatch(ref):
        log_once(
            "customer-ref",
            "cxmetrics: the redact hook must return 16 lower-case hex "
            "characters; customer reference dropped",
        )
        return None
    return ref
