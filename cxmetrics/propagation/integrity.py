"""Authentication of the journey context: a keyed MAC member (``cx.mac=<key id>:<digest>``)
over the context's ``cx.*`` members, so a context a client (or anyone outside) wrote or changed is
told apart from one cxmetrics wrote.

The MAC is keyed BLAKE2b (128 bits) over the members in the codec's canonical form (``members``),
so the order a carrier lists them in does not matter. Keys rotate by id: the first key signs, every
key listed verifies (``{"k2": new, "k1": old}`` during a rotation). Pure: nothing here counts,
logs or raises on input; ``cxmetrics.instrument.carry`` counts a rejection.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

from .codec import KEY_MAC, JourneyContext, members

KEY_ID_RE = re.compile(r"[a-z0-9_]{1,16}")
MIN_KEY_BYTES = 16


class ContextKeys:
    """The secrets that sign and verify journey contexts (``key id → secret``; first signs)."""

    __slots__ = ("_keyed", "signing_id")

    def __init__(self, keys: Mapping[str, bytes | str]) -> None:
        if not keys:
            raise ValueError("context keys: give at least one 'key id': secret")
        self._keyed: dict[str, hashlib.blake2b] = {}
        for key_id, secret in keys.items():
            if not isinstance(key_id, str) or not KEY_ID_RE.fullmatch(key_id):
                raise ValueError(
                    f"context key id {key_id!r}: use 1-16 of a-z, 0-9 and _ (e.g. 'k2')"
                )
            data = secret.encode() if isinstance(secret, str) else bytes(secret)
            if len(data) < MIN_KEY_BYTES:
                raise ValueError(
                    f"context key {key_id!r} is {len(data)} bytes: use at least {MIN_KEY_BYTES} "
                    "random bytes (e.g. python -c 'import secrets; print(secrets.token_hex(32))')"
                )
            self._keyed[key_id] = hashlib.blake2b(
                key=hashlib.sha256(b"cxmetrics-context:" + data).digest(), digest_size=16
            )
        self.signing_id = next(iter(self._keyed))

    def derived(self, purpose: bytes) -> bytes:
        """A key for another purpose (fingerprints), derived from the signing key."""
        state = self._keyed[self.signing_id].copy()
        state.update(b"\x00derive:" + purpose)
        return state.digest()

    def mac(self, payload: str) -> str:
        """``,cx.mac=<id>:<digest>`` for the canonical members ``payload``."""
        state = self._keyed[self.signing_id].copy()
        state.update(payload.encode())
        return f",{KEY_MAC}={self.signing_id}:{state.hexdigest()}"

    def verify(self, context: JourneyContext) -> str | None:
        """``None`` when ``context`` carries a valid MAC, else the rejection reason."""
        sent = context.mac
        if sent is None:
            return "unsigned"
        key_id, _, digest = sent.partition(":")
        keyed = self._keyed.get(key_id)
        if keyed is None:
            return "unknown_key"
        state = keyed.copy()
        state.update(
            members(
                context.journey,
                context.journey_id,
                context.last_step,
                context.channel,
                context.fingerprints,
                context.customer_ref,
                segment=context.segment,
                started=context.started,
            ).encode()
        )
        return None if hmac.compare_digest(state.hexdigest(), digest) else "bad_mac"


CONTEXT_KEY_ENV = "CXMETRICS_CONTEXT_KEY"


def resolve(
    key: bytes | str | None,
    keys: Mapping[str, bytes | str] | None,
    environ: Mapping[str, str],
) -> ContextKeys | None:
    """The configured context keys: ``keys`` (rotation: first signs), else ``key`` (id ``k1``),
    else ``$CXMETRICS_CONTEXT_KEY`` (id ``k1``), else ``None``. Raises ``ValueError`` on a bad
    key or id."""
    if keys:
        return ContextKeys(keys)
    secret = key if key is not None else environ.get(CONTEXT_KEY_ENV) or None
    return ContextKeys({"k1": secret}) if secret is not None else None


NO_KEY_MESSAGE = (
    "cxmetrics: no context key (configure(context_key=...) or $CXMETRICS_CONTEXT_KEY): journey "
    "contexts from other requests and processes are ignored, because a client can write them "
    "and nothing can authenticate them; journeys are measured within each request only "
    "(no transitions, channel switches, customer references or consistency checks across "
    "requests), and fingerprints use a random key of this process. There is no default key."
)
