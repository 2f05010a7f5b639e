"""A standalone ``/metrics`` endpoint for apps that do not expose one themselves.

Binds 127.0.0.1 by default: exposing metrics beyond the host is a decision, not an accident.
Optional TLS (``certfile``/``keyfile``; TLS 1.2 or later; the handshake runs in the connection's
own thread, so a client that stalls it holds only that thread) and HTTP basic auth
(``basic_auth=(user, password)``, compared in constant time). prometheus-client renders the
exposition (``make_wsgi_app``: text or OpenMetrics by ``Accept``, gzip, ``name[]`` filters).

A request that cannot be served — the scraper disconnects mid-response, a TLS handshake fails,
a client stalls past ``timeout`` — is counted in ``cx_internal_errors_total{component="server"}``
and logged once; the server keeps serving everyone else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import socket
import ssl
import sys
import threading
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app

from ..instrument.state import internal_error, log_once

if TYPE_CHECKING:  # wsgiref.types is Python 3.11+
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


def start_http_server(
    port: int = 9464,
    addr: str = "127.0.0.1",
    registry: CollectorRegistry | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``registry`` (default: the global one) on ``http(s)://addr:port/metrics``.

    ``certfile``/``keyfile`` turn on TLS; ``basic_auth=(user, password)`` requires those
    credentials (send them only over TLS or loopback). ``timeout`` bounds how long one client
    may hold its connection idle. ``port=0`` picks a free port (``server.server_port``).
    Returns the server and its thread; ``server.shutdown()`` then ``server.server_close()``
    stop it. Misconfiguration (a missing certificate, an address in use) raises here.
    """
    if keyfile is not None and certfile is None:
        raise ValueError("keyfile given without certfile: pass the certificate too")
    app = make_wsgi_app(registry if registry is not None else REGISTRY)
    if basic_auth is not None:
        user, password = basic_auth
        if not user or not password or ":" in user:
            raise ValueError("basic_auth needs a user without ':' and a non-empty password")
        app = _with_basic_auth(app, user, password)
        if certfile is None and not _loopback(addr):
            log_once(
                "server-cleartext-auth",
                "cxmetrics: metrics endpoint on %s uses basic auth without TLS; the password "
                "crosses the network in clear text (pass certfile/keyfile)",
                addr,
            )
    context = _tls_context(certfile, keyfile) if certfile is not None else None
    family = socket.AF_INET
    if addr:  # "" is every IPv4 interface, as in socketserver
        family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)[0][0]
    server_class = type("_MetricsServer", (_MetricsServer,), {"address_family": family})
    handler_class = type("_MetricsHandler", (_MetricsHandler,), {"timeout": timeout})
    httpd: _MetricsServer = server_class((addr, port), handler_class)
    httpd.tls = context
    httpd.set_app(app)
    thread = threading.Thread(target=httpd.serve_forever, name="cxmetrics-http", daemon=True)
    thread.start()
    return httpd, thread


class _MetricsServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        if self.tls is not None:
            # No handshake here: this is the accepting thread, one stalled client would block all.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, _Quiet):
            return
        _count(exc, f"a request from {client_address[0]} failed ({exc!r})")


class _Quiet(Exception):
    """A connection that ended before saying anything (a TCP health check): not a failure."""


class _MetricsHandler(WSGIRequestHandler):
    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except (ssl.SSLEOFError, ConnectionResetError) as exc:
                raise _Quiet() from exc
        super().setup()
        self.wfile = _Writer(self.wfile)  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:
        return None  # no access log on stderr for every scrape


class _Writer:
    """The response stream: a client gone mid-response is counted, then wsgiref lets it go."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, data: bytes) -> int:
        try:
            return int(self._inner.write(data))
        except _DISCONNECTS as exc:
            _count(exc, "a scraper disconnected mid-response")
            raise

    def flush(self) -> None:
        try:
            self._inner.flush()
        except _DISCONNECTS as exc:
            _count(exc, "a scraper disconnected mid-response")
            raise

    @property
    def closed(self) -> bool:
        return bool(self._inner.closed)

    def close(self) -> None:
        self._inner.close()


def _count(exc: BaseException | None, what: str) -> None:
    internal_error(
        "server",
        exc,
        f"cxmetrics: metrics endpoint: {what}; it keeps serving (further failures are "
        'counted only, in cx_internal_errors_total{component="server"})',
    )


def _with_basic_auth(app: WSGIApplication, user: str, password: str) -> WSGIApplication:
    # Digests of equal length, compared with compare_digest: neither the credentials' length
    # nor the position of the first wrong byte shows in the response time.
    expected = hashlib.sha256(f"{user}:{password}".encode()).digest()
    challenge = ("WWW-Authenticate", 'Basic realm="cxmetrics", charset="UTF-8"')

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        scheme, _, token = str(environ.get("HTTP_AUTHORIZATION", "")).partition(" ")
        try:
            given = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            given = b""
        ok = hmac.compare_digest(hashlib.sha256(given).digest(), expected)
        if ok and scheme.lower() == "basic":
            served: Iterable[bytes] = app(environ, start_response)
            return served
        body = b"401 Unauthorized\n"
        start_response(
            "401 Unauthorized",
            [challenge, ("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return guarded


def _tls_context(certfile: str, keyfile: str | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context


def _loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return addr == "localhost"
