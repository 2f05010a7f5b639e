"""Provisioning dashboards into a running Grafana over its HTTP API, with grafana-client.

``provision()`` makes the folder exist, then upserts each dashboard by uid:

- absent in Grafana → created;
- present, unedited, same content → left alone (a second run changes nothing);
- present, unedited, different content → updated, posting the remote ``version`` without
  ``overwrite``, so a save in Grafana between our read and our write is a 412, not a lost edit;
- present but edited in Grafana since cxmetrics wrote it (its content no longer matches the
  digest cxmetrics recorded in its ``cxmetrics-digest:`` tag), or not written by cxmetrics at
  all → refused, unless ``force``.

Transient failures (5xx, connection reset or refused, timeouts) are retried with exponential
backoff; 401/403/404/412, unreachable servers and answers that are not what Grafana sends (not
JSON, not an object, a dashboard of the wrong shape) become ``ProvisionError`` with a clear
message. The token is handed to grafana-client and scrubbed from every message, even when the
server quotes it back (``Bearer ***``). Plain http to a host other than loopback is refused
(the token would cross the network in clear text) unless ``insecure=True``.
"""

from __future__ import annotations

import ipaddress
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .._exceptions import CxError
from . import content_digest, recorded_digest
from .queries import SERVICE_VAR

INSTALL_HINT = "pip install 'cxmetrics[grafana]'"
Action = Literal["create", "update", "unchanged", "refuse"]
T = TypeVar("T")


class ProvisionError(CxError):
    """Provisioning stopped: the message says why and what to do; ``status`` is Grafana's HTTP
    status when it answered with an error."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Change:
    uid: str
    title: str
    action: Action
    reason: str = ""


@dataclass
class Report:
    folder_created: bool = False
    changes: list[Change] = field(default_factory=list)

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def refused(self) -> list[Change]:
        return [c for c in self.changes if c.action == "refuse"]


def redact(url: str) -> str:
    """``url`` without user info, fit for messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost" or host.endswith(".localhost")


_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s'\",;]+")


class Grafana:
    """A grafana-client ``GrafanaApi`` with retries and clear errors."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        retries: int = 4,
        delay: float = 1.0,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str], None] | None = None,
        insecure: bool = False,
    ) -> None:
        try:
            from grafana_client.api import GrafanaApi
        except ImportError as exc:
            raise ProvisionError(
                f"provisioning needs grafana-client; install it with: {INSTALL_HINT}"
            ) from exc
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProvisionError(
                f"--grafana-url {redact(url)!r} is not an http(s) URL, "
                "e.g. http://grafana.example:3000"
            )
        if parts.scheme == "http" and not loopback(parts.hostname) and not insecure:
            raise ProvisionError(
                f"refusing to send the Grafana token in clear text to {parts.hostname}: use an "
                "https:// URL, or pass --insecure if the network to it is trusted"
            )
        self.cleartext = parts.scheme == "http" and not loopback(parts.hostname)
        self.url = redact(url)
        self._token = token
        self.api = GrafanaApi.from_url(self.url, credential=token, timeout=timeout)
        self.retries, self.delay, self.sleep = retries, delay, sleep
        self.on_retry = on_retry
        self.attempts = 0  # requests sent, retries included (for progress and tests)

    def close(self) -> None:
        """Close the HTTP session (its pooled keep-alive connections)."""
        self.api.client.s.close()

    def __enter__(self) -> Grafana:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scrub(self, text: str) -> str:
        """``text`` without the token, nor any credential after ``Bearer``/``Basic``."""
        if self._token:
            text = text.replace(self._token, "***")
        return _CREDENTIAL.sub(r"\1\2***", text)

    def call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, retried on transient failures; errors mapped to ``ProvisionError``,
        scrubbed of the token."""
        try:
            return self._call(what, fn, *args)
        except ProvisionError as exc:
            raise ProvisionError(self.scrub(str(exc)), exc.status) from None

    def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        from grafana_client.client import GrafanaException, GrafanaTimeoutError
        from niquests.exceptions import JSONDecodeError, RequestException

        last, unreachable = "", False
        for attempt in range(self.retries + 1):
            if attempt:
                pause = min(self.delay * 2 ** (attempt - 1), 30.0)
                if self.on_retry is not None:
                    self.on_retry(
                        self.scrub(f"{what}: {last}; retry {attempt}/{self.retries} in {pause:g}s")
                    )
                self.sleep(pause)
            self.attempts += 1
            try:
                return fn(*args)
            except GrafanaTimeoutError:
                last, unreachable = "timed out", True
            except GrafanaException as exc:
                status = int(exc.status_code or 0)
                if status and not 500 <= status < 600:
                    raise self._client_error(what, status, exc) from None
                last = f"{status} {_message(exc)}" if status else _message(exc)
                unreachable = not status
            except JSONDecodeError:
                raise self.unexpected(what, "not JSON") from None
            except RequestException as exc:  # connection refused / reset, read errors
                last, unreachable = _reason(exc), True
        problem = "cannot reach Grafana at" if unreachable else "kept failing: Grafana at"
        raise ProvisionError(
            f"{what}: {problem} {self.url} ({last}); gave up after {self.retries + 1} attempts"
        )

    def _client_error(self, what: str, status: int, exc: Exception) -> ProvisionError:
        text = {
            401: "Grafana rejected the token (401 Unauthorized): set GRAFANA_TOKEN or "
            "--token-file to a valid service-account token",
            403: "the token is not allowed to do this (403 Forbidden): give the service account "
            "the Editor role, or dashboards:write and folders:create, in this organisation",
            404: f"not found (404) at {self.url}: is --grafana-url Grafana's root URL, "
            "including any sub-path it is served under?",
            412: "changed in Grafana while cxmetrics was updating it (412 Precondition Failed: "
            "version mismatch); run again to re-check, or pass --force to overwrite",
        }.get(status, f"Grafana answered {status}: {_message(exc)}")
        return ProvisionError(f"{what}: {text}", status)

    def unexpected(self, what: str, detail: str) -> ProvisionError:
        return ProvisionError(
            f"{what}: unexpected answer from Grafana at {self.url} ({detail}); is --grafana-url "
            "Grafana's root URL, and not a proxy's or another service's?"
        )

    def get_or_none(
        self, what: str, fn: Callable[[str], dict[str, Any]], uid: str
    ) -> dict[str, Any] | None:
        """``fn(uid)`` (a JSON object), or ``None`` when Grafana answers 404."""
        try:
            found = self.call(what, fn, uid)
        except ProvisionError as exc:
            if exc.status == 404:
                return None
            raise
        if not isinstance(found, dict):
            raise self.unexpected(what, f"a JSON {_kind(found)}, not an object")
        return found


def _kind(value: object) -> str:
    return {list: "array", str: "string", type(None): "null", bool: "boolean", dict: "object"}.get(
        type(value), "number"
    )


def _read_dashboard(
    grafana: Grafana, what: str, found: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The dashboard and folder uid of a ``GET /api/dashboards/uid`` answer, checked."""
    if found is None:
        return None, None
    remote, meta = found.get("dashboard"), found.get("meta") or {}
    if not isinstance(remote, dict):
        raise grafana.unexpected(what, f"'dashboard' is a JSON {_kind(remote)}, not an object")
    if not isinstance(meta, dict):
        raise grafana.unexpected(what, f"'meta' is a JSON {_kind(meta)}, not an object")
    tags = remote.get("tags", [])
    if tags is not None and not isinstance(tags, list):
        raise grafana.unexpected(what, f"'tags' is a JSON {_kind(tags)}, not an array")
    folder = meta.get("folderUid")
    return remote, folder if isinstance(folder, str) else None


def _message(exc: Any) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping) and "message" in response:
        return str(response["message"])
    return str(getattr(exc, "message", exc))


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 200 else text[:200] + "…"


def plan_change(
    local: Mapping[str, Any],
    remote: Mapping[str, Any] | None,
    remote_folder: str | None,
    folder_uid: str,
    force: bool,
) -> Change:
    """What to do with ``local`` given the dashboard Grafana holds under its uid."""
    uid, title = str(local["uid"]), str(local.get("title", ""))
    if remote is None:
        return Change(uid, title, "create")
    recorded = recorded_digest(remote)
    theirs, ours = _service(remote), _service(local)
    if recorded is None:
        reason = "a dashboard with this uid exists in Grafana but was not written by cxmetrics"
    elif theirs is not None and ours is not None and theirs != ours:
        # uids name the journey, not the service (they must survive regeneration): two services
        # with a journey of the same name would take turns overwriting one dashboard
        reason = (
            f"this uid holds service '{theirs}''s dashboard of a journey of the same name; "
            f"give the journey a name of its own in one of the specs, or provision "
            f"'{ours}' to another Grafana organisation"
        )
    elif content_digest(remote) != recorded:
        reason = (
            f"edited in Grafana since cxmetrics provisioned it (version {remote.get('version')})"
        )
    else:
        if recorded == recorded_digest(local) and remote_folder == folder_uid:
            return Change(uid, title, "unchanged")
        return Change(uid, title, "update")
    if force:
        return Change(uid, title, "update", f"--force: overwriting; {reason}")
    return Change(uid, title, "refuse", reason)


def _service(board: Mapping[str, Any]) -> str | None:
    """The service a cxmetrics dashboard selects (its ``service`` variable), or None."""
    templating = board.get("templating")
    variables = templating.get("list") if isinstance(templating, Mapping) else None
    for variable in variables if isinstance(variables, list) else []:
        if isinstance(variable, Mapping) and variable.get("name") == SERVICE_VAR:
            current = variable.get("current")
            value = current.get("value") if isinstance(current, Mapping) else None
            return value if isinstance(value, str) else None
    return None


def provision(
    grafana: Grafana,
    dashboards: Sequence[Mapping[str, Any]],
    folder_uid: str,
    folder_title: str,
    *,
    dry_run: bool = False,
    force: bool = False,
    message: str = "cxmetrics",
    progress: Callable[[int, int, Change], None] | None = None,
) -> Report:
    """Make ``folder_uid`` exist and upsert ``dashboards`` into it (see the module docstring)."""
    api = grafana.api
    report = Report()
    grafana.call("connecting", api.health.check)
    folder = grafana.get_or_none(f"folder {folder_uid}", api.folder.get_folder, folder_uid)
    if folder is not None and folder.get("uid") != folder_uid:
        raise grafana.unexpected(
            f"folder {folder_uid}", f"the folder it returned has uid {folder.get('uid')!r}"
        )
    if folder is None:
        report.folder_created = True
        if not dry_run:
            _create_folder(grafana, folder_uid, folder_title)
    for index, local in enumerate(dashboards, 1):
        uid = str(local["uid"])
        what = f"dashboard {uid}"
        found = grafana.get_or_none(what, api.dashboard.get_dashboard, uid)
        remote, remote_folder = _read_dashboard(grafana, what, found)
        change = plan_change(local, remote, remote_folder, folder_uid, force)
        if change.action in ("create", "update") and not dry_run:
            _save(grafana, what, local, remote, folder_uid, message, overwrite=force)
        report.changes.append(change)
        if progress is not None:
            progress(index, len(dashboards), change)
    return report


def _create_folder(grafana: Grafana, uid: str, title: str) -> None:
    try:
        grafana.call(f"creating folder {uid}", grafana.api.folder.create_folder, title, uid)
    except ProvisionError as exc:
        # A retried create whose first attempt went through answers "exists": that is success.
        if (
            exc.status != 409
            or grafana.get_or_none(f"folder {uid}", grafana.api.folder.get_folder, uid) is None
        ):
            raise


def _save(
    grafana: Grafana,
    what: str,
    local: Mapping[str, Any],
    remote: Mapping[str, Any] | None,
    folder_uid: str,
    message: str,
    overwrite: bool,
) -> None:
    board = {k: v for k, v in local.items() if k not in ("id", "version")}
    if remote is not None:
        board["version"] = remote.get("version")
    body = {"dashboard": board, "folderUid": folder_uid, "overwrite": overwrite, "message": message}
    attempts = grafana.attempts
    try:
        grafana.call(f"saving {what}", grafana.api.dashboard.update_dashboard, body)
    except ProvisionError as exc:
        # After a retry, a 412 may only mean our first attempt was saved: check before failing.
        if exc.status != 412 or grafana.attempts - attempts < 2:
            raise
        found = grafana.get_or_none(what, grafana.api.dashboard.get_dashboard, str(local["uid"]))
        saved, _ = _read_dashboard(grafana, what, found)
        if saved is None or content_digest(saved) != recorded_digest(local):
            raise
