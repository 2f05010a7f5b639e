"""Customer identifiers, only ever as keyed digests.

A journey instance may carry a reference to its customer (``j.identify(customer_id)``) so spans
and event records can be joined with CRM data by whoever holds the key. The raw identifier never
leaves this module: by default it becomes HMAC-SHA256(key, id), 16 hex characters. It is never a
metric label (series count must not grow with customers; docs/architecture.md).

The key comes from ``configure(customer_key=...)`` or ``$CXMETRICS_CUSTOMER_KEY``. Without one, a
random per-process key is used (references then match only within one process) and a warning is
logged once. ``configure(redact=fn)`` replaces the digest with your own function; what it
returns must be 16 lower-case hex characters, and is refused (dropped, logged once) when it is the
identifier itself or all decimal digits — a card number, account number or numeric customer id
that happens to fit the pattern. The default digest never is: it takes the first 16-character
window of the HMAC that holds a letter.

``redact_text`` masks what looks like customer data in free text (exception messages on spans):
every run of digits (with the spaces, dots, commas, dashes, slashes or apostrophes inside it) —
card numbers, IBANs' digits, amounts, numeric ids — becomes ``#``, e-mail addresses ``<email>``.
"""

from __future__ import annotations

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
        digest = hmac.digest(key, customer_id.encode("utf-8"), "sha256").hex()
        # All-decimal references look like card numbers and are refused: about 1 in 1,850
        # digests starts with 16 digits; the next windows of the same digest are used then.
        for start in range(0, len(digest) - 15, 16):
            window = digest[start : start + 16]
            if not window.isdigit():
                return window
        return digest[:15] + "a"  # 64 decimal digits: never seen, but still not all-decimal

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
    raw = str(customer_id)
    ref = redact(raw)
    if not isinstance(ref, str) or not REF_PATTERN.fullmatch(ref):
        log_once(
            "customer-ref",
            "cxmetrics: the redact hook must return 16 lower-case hex "
            "characters; customer reference dropped",
        )
        return None
    if ref.isdigit() or ref in raw:
        log_once(
            "customer-ref-raw",
            "cxmetrics: the redact hook returned the identifier itself or a number that may be a "
            "card or account number; customer reference dropped (return a keyed digest)",
        )
        return None
    return ref


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DIGITS = re.compile(r"\d(?:[\d.,' /-]*\d)?")
MAX_TEXT = 256


def redact_text(text: str) -> str:
    """``text`` with digit runs masked as ``#`` and e-mail addresses as ``<email>``, cut to
    256 characters (see the module docstring)."""
    return _DIGITS.sub("#", _EMAIL.sub("<email>", text[: MAX_TEXT * 4]))[:MAX_TEXT]
