"""Delivering a finished report, once: by mail (SMTP) or to a webhook, with retries, and a local
ledger so a re-run of the same period sends nothing twice.

- ``smtp://host:port`` (plain, optionally upgraded with STARTTLS) or ``smtps://host:port``
  (TLS from the first byte): one message with the Markdown digest as its text part and the HTML
  report as its HTML alternative. Its ``Message-ID`` is derived from the report's idempotency key,
  so a mail system that sees it twice can tell.
- ``https://…`` (or ``http://`` on a trusted network): one ``POST`` of a JSON body — ``id``,
  ``service``, ``period``, ``text`` (the digest; the field chat tools such as Slack and Mattermost
  read), ``link`` when the report is published somewhere, else ``html`` (the whole page) — with an
  ``Idempotency-Key`` header equal to ``id``.

The idempotency key is derived from the service and the period (``bank_app/week-2024-03-11``), not
from the run: every run for the same period has the same key. Before sending, the ledger (a JSON
Lines file, locked for the whole delivery so two runs cannot both send) is read; a target that
already received this key is skipped unless ``force``. A delivery is recorded only once the
receiver accepted it.

Retries: connection failures, timeouts, SMTP 4xx answers and HTTP 408/429/5xx are retried up to
``retries`` times, waiting ``delay``, then twice as long each time; anything else (a refused
recipient, HTTP 400/401/404) fails at once, as repeating it cannot help.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

from .._exceptions import CxError

SCHEMES = ("smtp", "smtps", "http", "https")
TIMEOUT = 30.0


@dataclass(frozen=True)
class Report:
    """What is delivered: the period's identity and the report in both forms."""

    service: str
    period_key: str  # e.g. week-2024-03-11
    period_label: str  # e.g. week of 2024-03-11
    subject: str
    digest: str  # Markdown
    html: str
    link: str | None = None

    @property
    def key(self) -> str:
        return f"{self.service}/{self.period_key}"

    @property
    def key_hash(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()[:32]

    @property
    def message_id(self) -> str:
        return f"<cxmetrics.{self.key_hash}@{self.service}.report>"


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Outcome:
    target: str  # without credentials
    sent: bool  # False: already delivered earlier (ledger)
    attempts: int


class DeliveryError(CxError):
    """A delivery failed for good (after its retries, or at once when retrying cannot help)."""


class _Retryable(Exception):
    pass


def check_target(target: str) -> str:
    """``target`` if its scheme is known, else a ``CxError`` saying what is."""
    parsed = urllib.parse.urlsplit(target)
    if parsed.scheme not in SCHEMES or not parsed.hostname:
        raise CxError(
            f"--deliver {public(target)!r}: write smtp://host:port, smtps://host:port or "
            "https://host/path"
        )
    return target


def public(target: str) -> str:
    """The target without user and password, for messages and the ledger."""
    parsed = urllib.parse.urlsplit(target)
    if parsed.username is None and parsed.password is None:
        return target
    host = parsed.hostname or ""
    netloc = host + (f":{parsed.port}" if parsed.port else "")
    return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))


def deliver(
    report: Report,
    target: str,
    ledger: str | os.PathLike[str],
    *,
    mail: Mail | None = None,
    force: bool = False,
    retries: int = 3,
    delay: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Send ``report`` to ``target`` unless the ledger says it was sent; record it when sent."""
    check_target(target)
    shown = public(target)
    scheme = urllib.parse.urlsplit(target).scheme
    if scheme.startswith("smtp") and (mail is None or not mail.recipients or not mail.sender):
        raise CxError(f"{shown}: mail needs --from and at least one --to")
    with _locked(Path(ledger)) as book:
        if not force and any(
            e.get("key") == report.key and e.get("target") == shown for e in _entries(book)
        ):
            return Outcome(shown, False, 0)
        attempts = 0
        wait = delay
        while True:
            attempts += 1
            try:
                if scheme.startswith("smtp"):
                    assert mail is not None
                    _send_mail(report, target, mail)
                else:
                    _post(report, target)
                break
            except _Retryable as exc:
                if attempts > retries:
                    raise DeliveryError(
                        f"{shown}: not delivered after {attempts} attempts: {exc}"
                    ) from None
                sleep(wait)
                wait *= 2
        entry = {
            "key": report.key,
            "target": shown,
            "sent_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "attempts": attempts,
            "message_id": report.message_id,
        }
        book.seek(0, os.SEEK_END)
        book.write(json.dumps(entry) + "\n")
        book.flush()
        os.fsync(book.fileno())
    return Outcome(shown, True, attempts)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as book:
        fcntl.flock(book.fileno(), fcntl.LOCK_EX)
        try:
            yield book
        finally:
            fcntl.flock(book.fileno(), fcntl.LOCK_UN)


def _entries(book: Any) -> list[dict[str, Any]]:
    book.seek(0)
    out = []
    for line in book:
        with contextlib.suppress(ValueError):  # a torn last line from a crash: not a delivery
            entry = json.loads(line)
            if isinstance(entry, dict):
                out.append(entry)
    return out


# ---------------------------------------------------------------------------------------------
# SMTP


def message(report: Report, mail: Mail) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = report.subject
    msg["From"] = mail.sender
    msg["To"] = ", ".join(mail.recipients)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = report.message_id
    msg["X-Cxmetrics-Report"] = report.key
    msg.set_content(report.digest)
    msg.add_alternative(report.html, subtype="html")
    return msg


def _send_mail(report: Report, target: str, mail: Mail) -> None:
    parsed = urllib.parse.urlsplit(target)
    host = parsed.hostname or "localhost"
    implicit = parsed.scheme == "smtps"
    port = parsed.port or (465 if implicit else 25)
    context = ssl.create_default_context()
    try:
        client: smtplib.SMTP = (
            smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
            if implicit
            else smtplib.SMTP(host, port, timeout=TIMEOUT)
        )
        with client:
            if mail.starttls:
                client.starttls(context=context)
            if mail.user is not None:
                client.login(mail.user, mail.password or "")
            client.send_message(message(report, mail))
    except smtplib.SMTPResponseException as exc:
        said = exc.smtp_error
        detail = (
            f"{exc.smtp_code} {said.decode(errors='replace') if isinstance(said, bytes) else said}"
        )
        if 400 <= exc.smtp_code < 500:
            raise _Retryable(detail) from None
        raise DeliveryError(f"{public(target)}: the mail server refused: {detail}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"{public(target)}: recipients refused: {exc.recipients}") from None
    except smtplib.SMTPServerDisconnected as exc:
        raise _Retryable(str(exc) or "disconnected") from None
    except smtplib.SMTPException as exc:  # e.g. STARTTLS or AUTH not offered: will not change
        raise DeliveryError(f"{public(target)}: {exc}") from None
    except OSError as exc:  # refused, unreachable, timed out, TLS handshake
        raise _Retryable(str(exc) or type(exc).__name__) from None


# ---------------------------------------------------------------------------------------------
# webhook


def payload(report: Report) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": report.key_hash,
        "key": report.key,
        "service": report.service,
        "period": {"key": report.period_key, "label": report.period_label},
        "subject": report.subject,
        "text": report.digest,
    }
    if report.link:
        body["link"] = report.link
    else:
        body["html"] = report.html
    return body


def _post(report: Report, target: str) -> None:
    request = urllib.request.Request(
        target,
        data=json.dumps(payload(report)).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": report.key_hash,
            "User-Agent": "cxmetrics-report",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Retryable(f"HTTP {exc.code}") from None
        raise DeliveryError(f"{public(target)}: the receiver answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise _Retryable(str(reason)) from None
