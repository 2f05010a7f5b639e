"""A local follow-up receiver: verifies signatures, accepts each idempotency key once.

What a bank's CRM endpoint must do, runnable (``cxmetrics followup receive``) for the demo and to
rehearse a deployment: a request whose signature does not verify is answered 401; every item of
a verified one is appended to ``out`` (JSON lines) the first time its ``idempotency_key`` is seen,
and counted as a duplicate after that. ``fail_first`` answers 500 to the first requests, to watch
the worker retry. ``GET /stats`` returns the counts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from . import delivery

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Receiver:
    def __init__(self, secret: bytes, out: Path, fail_first: int = 0) -> None:
        self.secret = secret
        self.out = out
        self.fail_first = fail_first
        self.keys: set[str] = set()
        self.stats = {"requests": 0, "accepted": 0, "duplicates": 0, "unsigned": 0, "failed": 0}
        self._lock = threading.Lock()
        self._file = open(out, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/stats":
            await _answer(send, 200, json.dumps(self.stats).encode())
            return
        payload = b""
        while True:
            message = await receive()
            payload += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status = self.accept(headers.get(delivery.SIGNATURE_HEADER), payload)
        await _answer(send, status, b"")

    def accept(self, signature: str | None, payload: bytes) -> int:
        with self._lock:
            self.stats["requests"] += 1
            if self.stats["requests"] <= self.fail_first:
                self.stats["failed"] += 1
                return 500
            if not delivery.verify(self.secret, signature, payload):
                self.stats["unsigned"] += 1
                return 401
            try:
                items = json.loads(payload)["followups"]
            except (ValueError, KeyError, TypeError):
                return 400
            for item in items:
                key = item.get("idempotency_key")
                if key in self.keys:
                    self.stats["duplicates"] += 1
                    continue
                self.keys.add(key)
                self.stats["accepted"] += 1
                self._file.write(json.dumps(item) + "\n")
            self._file.flush()
            return 200

    def close(self) -> None:
        self._file.close()


async def _answer(send: Send, status: int, content: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": content})
