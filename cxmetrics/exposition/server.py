"""A standalone ``/metrics`` endpoint for apps that do not expose one themselves.

Binds 127.0.0.1 by default: exposing metrics beyond the host is a decision, not an accident.
Optional TLS (``certfile``/``keyfile``; TLS 1.2 or later; the handshake runs in the connection's
own thread, so a client that stalls it holds only that thread) and HTTP basic auth
(``basic_auth=(user, password)``, compared in constant time). prometheus-client renders the
exposition (``make_wsgi_app``: text or OpenMetrics by ``Accept``, gzip, ``name[]`` filters).

Connections cost no thread until their request has arrived: one thread accepts them (listen
backlog 128) and reads every request head without blocking (TLS handshakes included), holding at
most ``max_connections`` at once (beyond that the oldest is closed); a client must have sent its
whole request head within ``timeout`` seconds of connecting, however it trickles it. Complete
requests go to a pool of ``workers`` threads (at most that many requests rendered at once, more
queue briefly, past eight per worker they get 503). So 300 clients sending a byte every 1.5 s
hold 300 sockets and no thread, and a scrape is answered meanwhile.

A request that cannot be served — the scraper disconnects mid-response, a TLS handshake fails,
a client stalls past ``timeout`` — is counted in ``cx_internal_errors_total{component="server"}``
and logged once; the server keeps serving everyone else.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import io
import ipaddress
import selectors
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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
    max_connections: int = 512,
    workers: int = 4,
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``registry`` (default: the global one) on ``http(s)://addr:port/metrics``.

    ``certfile``/``keyfile`` turn on TLS; ``basic_auth=(user, password)`` requires those
    credentials (send them only over TLS or loopback). ``timeout`` bounds how long a client may
    take to send its request (from connecting to the end of its head) and each write of the
    response; ``max_connections`` connections are held while their requests arrive, ``workers``
    threads answer complete ones. ``port=0`` picks a free port (``server.server_port``).
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
    if max_connections < 1 or workers < 1:
        raise ValueError("max_connections and workers must be at least 1")
    server_class = type("_MetricsServer", (_MetricsServer,), {"address_family": family})
    handler_class = type("_MetricsHandler", (_MetricsHandler,), {"timeout": timeout})
    httpd: _MetricsServer = server_class((addr, port), handler_class)
    httpd.tls = context
    httpd.head_timeout, httpd.max_pending, httpd.workers = timeout, max_connections, workers
    httpd.set_app(app)
    thread = threading.Thread(target=httpd.serve_forever, name="cxmetrics-http", daemon=True)
    thread.start()
    return httpd, thread


MAX_HEAD = 16 << 10  # bytes: a scrape's request head is a few hundred


@dataclass
class _Pending:
    """A connection whose request head is still arriving."""

    address: Any
    deadline: float
    handshaken: bool
    head: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class _Request:
    sock: socket.socket
    head: bytes


class _MetricsServer(WSGIServer):
    allow_reuse_address = True
    request_queue_size = 128  # the listen backlog (socketserver's default is 5)
    tls: ssl.SSLContext | None = None
    head_timeout = 30.0
    max_pending = 512
    workers = 4

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._stopping = False
        self._stopped = threading.Event()
        self._stopped.set()
        self._busy = 0
        self._busy_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    # -- the accepting and head-reading thread ------------------------------------------------
    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._stopping = False
        self._stopped.clear()
        pending: dict[socket.socket, _Pending] = {}
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="cxmetrics-http")
        self.socket.setblocking(False)
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.socket, selectors.EVENT_READ)
                while not self._stopping:
                    for key, _ in selector.select(min(poll_interval, 0.25)):
                        conn = key.fileobj
                        assert isinstance(conn, socket.socket)
                        if conn is self.socket:
                            self._accept(selector, pending)
                        else:
                            self._read(conn, selector, pending, pool)
                    self._expire(selector, pending)
        finally:
            for conn in pending:
                _close(conn)
            pool.shutdown(wait=False)
            self._stopped.set()

    def shutdown(self) -> None:
        self._stopping = True
        self._stopped.wait()

    def _accept(
        self, selector: selectors.BaseSelector, pending: dict[socket.socket, _Pending]
    ) -> None:
        try:
            sock, address = self.socket.accept()
        except BlockingIOError:
            return
        except OSError as exc:  # out of descriptors (EMFILE): back off instead of spinning
            _count(exc, f"cannot accept a connection ({exc!r})")
            time.sleep(0.05)
            return
        if len(pending) >= self.max_pending:
            oldest = min(pending, key=lambda c: pending[c].deadline)
            selector.unregister(oldest)
            del pending[oldest]
            _close(oldest)
            _count(None, f"more than {self.max_pending} connections waiting; the oldest closed")
        sock.setblocking(False)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        pending[sock] = _Pending(address, time.monotonic() + self.head_timeout, self.tls is None)
        selector.register(sock, selectors.EVENT_READ)

    def _read(
        self,
        conn: socket.socket,
        selector: selectors.BaseSelector,
        pending: dict[socket.socket, _Pending],
        pool: ThreadPoolExecutor,
    ) -> None:
        state = pending[conn]

        def drop(exc: BaseException | None, what: str | None) -> None:
            selector.unregister(conn)
            del pending[conn]
            _close(conn)
            if what is not None:
                _count(exc, what)

        try:
            if not state.handshaken:
                assert isinstance(conn, ssl.SSLSocket)
                conn.do_handshake()
                state.handshaken = True
            data = conn.recv(4096)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return
        except (ssl.SSLEOFError, ConnectionResetError):
            drop(None, None)  # a TCP health check, or a client that gave up: not a failure
            return
        except OSError as exc:
            drop(exc, f"a request from {state.address[0]} failed ({exc!r})")
            return
        if not data:
            drop(None, None)
            return
        state.head += data
        end = _end_of_head(state.head)
        if end < 0:
            if len(state.head) > MAX_HEAD:
                drop(None, f"a request head from {state.address[0]} passed {MAX_HEAD} bytes")
            return
        selector.unregister(conn)
        del pending[conn]
        with self._busy_lock:
            full = self._busy >= 8 * self.workers
            if not full:
                self._busy += 1
        if full:
            _refuse(conn)
            _count(None, "too many requests at once; answered 503")
            return
        pool.submit(self._serve, conn, state.address, bytes(state.head[:end]))

    def _expire(
        self, selector: selectors.BaseSelector, pending: dict[socket.socket, _Pending]
    ) -> None:
        now = time.monotonic()
        late = [conn for conn, state in pending.items() if state.deadline <= now]
        for conn in late:
            address = pending.pop(conn).address
            selector.unregister(conn)
            _close(conn)
            _count(None, f"a client from {address[0]} did not send its request within the timeout")

    # -- a worker thread ----------------------------------------------------------------------
    def _serve(self, conn: socket.socket, address: Any, head: bytes) -> None:
        try:
            conn.setblocking(True)
            self.RequestHandlerClass(_Request(conn, head), address, self)  # type: ignore[arg-type]
        except Exception:
            self.handle_error(conn, address)
        finally:
            _close(conn)
            with self._busy_lock:
                self._busy -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        _count(exc, f"a request from {client_address[0]} failed ({exc!r})")


def _end_of_head(head: bytearray) -> int:
    """Where the request head ends (after its blank line), or -1 while it is incomplete."""
    for mark in (b"\r\n\r\n", b"\n\n"):
        at = head.find(mark)
        if at >= 0:
            return at + len(mark)
    return -1


def _close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.close()


def _refuse(conn: socket.socket) -> None:
    try:
        conn.setblocking(True)
        conn.settimeout(1.0)
        conn.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
    except OSError:
        pass
    _close(conn)


class _MetricsHandler(WSGIRequestHandler):
    def setup(self) -> None:
        request: _Request = self.request
        self.request = self.connection = request.sock
        self.connection.settimeout(self.timeout)  # bounds each write of the response
        self.rfile = io.BytesIO(request.head)
        self.wfile = _Writer(_SendAll(self.connection))  # type: ignore[assignment]

    def finish(self) -> None:
        self.rfile.close()

    def log_message(self, format: str, *args: Any) -> None:
        return None  # no access log on stderr for every scrape


class _SendAll:
    """An unbuffered response stream that writes everything it is given (``sendall``)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.closed = False

    def write(self, data: bytes) -> int:
        self._sock.sendall(data)
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


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
