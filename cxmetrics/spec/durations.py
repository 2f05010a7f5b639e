"""Durations as people write them in the spec (``800ms``, ``1.5s``, ``10m``, ``1d``).

Parsed to seconds for the runtime, formatted back to Prometheus duration syntax for rules.
"""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_PROM_ORDER = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_duration(text: str | float | int) -> float:
    """Seconds in ``text`` (plain numbers are seconds); ``ValueError`` shows the accepted forms."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ValueError(f"expected a duration like '800ms' or '1.5s', got {type(text).__name__}")
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        match = _PATTERN.match(text)
        if match is None:
            raise ValueError(
                f"{text!r} is not a duration; write a number and a unit, e.g. '800ms', '1.5s', "
                "'10m', '6h', '1d', '1w'"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not seconds > 0:
        raise ValueError(f"a duration must be positive, got {text!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be finite, got {text!r}")
    return seconds


def prometheus_duration(seconds: float) -> str:
    """``seconds`` in Prometheus syntax (``1d6h``, ``90s``, ``250ms``)."""
    millis = round(seconds * 1000)
    if millis <= 0:
        raise ValueError(f"duration {seconds!r}s is below Prometheus' 1ms resolution")
    whole, ms = divmod(millis, 1000)
    parts: list[str] = []
    for unit, size in _PROM_ORDER:
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    if ms:
        parts.append(f"{ms}ms")
    return "".join(parts)


def human_duration(seconds: float) -> str:
    """Short human form for tables and messages: ``850ms``, ``1.2s``, ``10m``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    return prometheus_duration(round(seconds))
