"""Fingerprints: cross-step consistency without carrying amounts.

A step remembers a keyed digest of a value (``s.fingerprint(total)``); a later step of the same
journey instance, in any process, compares its own value's digest with it (``s.consistent``).
Only the digest travels, in the journey context.
"""

from __future__ import annotations

import hashlib
from decimal import Context, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

_QUANTUM = Decimal("0.000001")
_EXACT = Context(prec=80)  # fingerprints never depend on the caller's decimal context
_KEYED: dict[bytes, hashlib.blake2b] = {}  # fingerprint key → a keyed state to copy


def fingerprint(value: Any, key: bytes) -> str:
    """A keyed 64-bit digest of ``value``; numbers are compared to 6 decimal places."""
    base = _KEYED.get(key)
    if base is None:
        if len(_KEYED) >= 16:
            _KEYED.clear()
        base = _KEYED[key] = hashlib.blake2b(key=key, digest_size=8)
    digest = base.copy()
    digest.update(_canonical(value).encode())
    return digest.hexdigest()


def _canonical(value: Any) -> str:
    kind = type(value)  # exact types first: an ABC isinstance check costs more than the digest
    if kind is Decimal:
        return "n:" + _number_text(value)
    if kind is int and -_INT_FAST < value < _INT_FAST:
        return f"n:{value}"
    if kind is str:
        return f"s:{value}"
    if isinstance(value, bool):
        return f"b:{value}"
    if isinstance(value, (int, float, Decimal, Fraction)):
        try:
            number = (
                value
                if isinstance(value, Decimal)
                else Decimal(str(float(value)) if isinstance(value, (float, Fraction)) else value)
            )
            return "n:" + _number_text(number)
        except (InvalidOperation, ValueError, OverflowError):
            return f"n:{value!r}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    return f"s:{value}"


_INT_FAST = 10**40


def _number_text(number: Decimal) -> str:
    """``number`` rounded to 6 decimal places, without trailing zeros, in plain notation."""
    if number.is_finite():
        text = str(number)
        if "E" not in text and len(text) <= 40:  # ≤ 6 places: rounding changes nothing
            whole, _, places = text.partition(".")
            if len(places) <= 6:
                places = places.rstrip("0")
                return f"{whole}.{places}" if places else whole
    rounded = number.quantize(_QUANTUM, context=_EXACT).normalize(_EXACT)
    return format(rounded, "f")
