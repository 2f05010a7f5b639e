"""How a value the app passed is shown in a message: bounded, and never raising."""

from __future__ import annotations


def shown(value: object, limit: int = 64) -> str:
    """``repr(value)`` cut to ``limit`` characters, for a message; never raises (a huge int, an
    object whose ``repr`` raises)."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"
