"""A standalone ``/metrics`` endpoint for apps that do not expose one themselves.

Binds 127.0.0.1 by default: exposing metrics beyond the host is a decision, not an accident.
TLS and basic auth are prometheus-client's own (``certfile``/``keyfile``; an auth wrapper is
out of scope here, put a proxy in front).
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client import start_http_server as _start


def start_http_server(
    port: int = 9464,
    addr: str = "127.0.0.1",
    registry: CollectorRegistry | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``registry`` (default: the global one) on ``http://addr:port/metrics``.

    Returns the server and its thread; ``server.shutdown()`` stops it.
    """
    return _start(
        port,
        addr=addr,
        registry=registry if registry is not None else REGISTRY,
        certfile=certfile,
        keyfile=keyfile,
    )
