"""A real ASGI app under uvicorn on loopback, for tests that speak HTTP to it; posting JSON to a
server and waiting, bounded, for what a server should come to show."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def post_json(url: str, body: dict[str, Any]) -> None:
    """POST ``body`` as JSON; anything but 200 fails the test."""
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    """Until ``predicate()`` is true, at most ``timeout`` seconds (then fail naming ``what``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


@contextmanager
def serve_app(app: Any, port: int) -> Iterator[str]:
    """Serve an ASGI ``app`` with uvicorn in a thread on 127.0.0.1:``port``; yields the base URL."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
