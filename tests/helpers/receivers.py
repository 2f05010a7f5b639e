"""Real receivers for report delivery, on loopback and random free ports: an SMTP server
(aiosmtpd) and an HTTP webhook receiver (the standard library's threading HTTP server). Each can
be told to turn the first ``fail_first`` deliveries away with a temporary error (SMTP 421, HTTP
503), so a test sees the sender retry."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INSTALL = "pip install -e '.[dev]'  (brings aiosmtpd)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Mailbox:
    fail_first: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refused: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refused < self.fail_first:
            self.refused += 1
            return "421 4.3.2 Service not available, try again later"
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 OK"


@contextmanager
def smtp_server(
    port: int, fail_first: int = 0, accounts: dict[str, str] | None = None
) -> Iterator[Mailbox]:
    """With ``accounts`` (user → password) the server offers AUTH and requires it."""
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword
    except ImportError as exc:  # pragma: no cover - a broken dev install
        raise RuntimeError(f"aiosmtpd is missing; install it with: {INSTALL}") from exc
    box = Mailbox(fail_first)

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            accounts is not None
            and isinstance(data, LoginPassword)
            and accounts.get(data.login.decode()) == data.password.decode()
        )
        return AuthResult(success=ok, handled=False)

    extra: dict[str, Any] = {}
    if accounts is not None:
        extra = {"authenticator": authenticate, "auth_required": True, "auth_require_tls": False}
    controller = Controller(box, hostname="127.0.0.1", port=port, ready_timeout=10, **extra)
    controller.start()  # waits until the server answers, or raises after ready_timeout
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Hook:
    fail_first: int = 0
    status_after: int = 200
    requests: list[tuple[dict[str, str], dict[str, Any], int]] = field(default_factory=list)

    @property
    def accepted(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        return [(h, b) for h, b, status in self.requests if status < 300]


@contextmanager
def webhook_receiver(port: int, fail_first: int = 0, status: int = 200) -> Iterator[Hook]:
    hook = Hook(fail_first, status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            code = 503 if len(hook.requests) < hook.fail_first else hook.status_after
            hook.requests.append((dict(self.headers.items()), body, code))
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
