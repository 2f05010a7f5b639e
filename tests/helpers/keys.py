"""The context key the test session signs journey contexts with (set in the environment by
``tests/conftest.py``), and a signer for contexts a test writes by hand."""

from __future__ import annotations

from cxmetrics.propagation.codec import JourneyContext, encode
from cxmetrics.propagation.integrity import ContextKeys

CONTEXT_KEY = b"tests-context-key-0123456789abcdef"
KEYS = ContextKeys({"k1": CONTEXT_KEY})


def signed(context: JourneyContext, existing: str = "") -> str:
    """``context`` as a baggage value signed with the session's key, as cxmetrics writes it."""
    return encode(context, existing, KEYS.mac)
