"""Outgoing propagation for httpx: ``instrument(client)`` adds the current journey context and
trace context to every request the client sends (sync or async client)."""

from __future__ import annotations

from typing import Any

from ._common import outgoing


def _hook(request: Any) -> None:
    outgoing(request.headers)


async def _async_hook(request: Any) -> None:
    outgoing(request.headers)


def instrument(client: Any) -> Any:
    """Add propagation to an ``httpx.Client`` or ``httpx.AsyncClient``; returns the client."""
    import httpx

    hook = _async_hook if isinstance(client, httpx.AsyncClient) else _hook
    hooks = client.event_hooks
    hooks.setdefault("request", [])
    if hook not in hooks["request"]:
        hooks["request"].append(hook)
    client.event_hooks = hooks
    return client
