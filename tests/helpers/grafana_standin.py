"""A loopback stand-in for the parts of Grafana's HTTP API that grafana-client calls.

No Grafana server can be installed where cxmetrics is developed and tested (docs/architecture.md), so
HTTP provisioning is tested against this: a real HTTP/1.1 server on 127.0.0.1 that keeps state
and implements, after Grafana 11's documented behaviour,

- ``GET /api/health`` (no auth) and ``GET /api/frontend/settings`` (grafana-client's health check);
- ``GET /api/folders/{uid}``, ``POST /api/folders`` (409 when the uid exists);
- ``GET /api/dashboards/uid/{uid}`` (``{"dashboard", "meta"}``, 404 when absent);
- ``POST /api/dashboards/db`` with Grafana's save semantics: create at version 1; an update must
  carry the stored ``version`` unless ``overwrite`` (else 412 ``version-mismatch``); another
  dashboard's title in the same folder is 412 ``name-exists``; an unknown folder is 400.

Every ``/api`` call except health needs ``Authorization: Bearer <token>`` (401 otherwise); a
read-only token gets 403 on writes. Malformed requests (not JSON, wrong types, bad uids) are 400.
Tests can edit a dashboard as a person in the UI would, inject 5xx answers or connection resets,
make the next answers echo the request's ``Authorization`` header in their error message (as some
proxies and misconfigured servers do), make the next answers malformed (a body that is not JSON,
or JSON of the wrong shape, with status 200), and read the request log. With ``renderer`` set,
``GET /d/{uid}`` draws a stored dashboard as a static HTML page from a real Prometheus's answers
(``tests.helpers.grafana_render``) for a headless browser to open. ``host`` binds another
address than 127.0.0.1 (to test what the client does with a non-loopback URL).
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.helpers.grafana_render import Renderer

UID = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")
VERSION = "11.6.0"


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    status: int  # 0: the connection was reset instead of answered
    authorized: bool


class GrafanaStandIn:
    def __init__(
        self, token: str, read_only_token: str | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.token, self.read_only_token = token, read_only_token
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> {"dashboard", "folderUid", ...}
        self.log: list[Logged] = []
        self._faults: list[int] = []  # HTTP status to answer, or 0 to reset the connection
        self._lock = threading.Lock()
        self._next_id = 1
        self._edit_after_read: dict[str, str] = {}
        self._reset_after_save = False
        self._echo: list[int] = []  # statuses of the next answers that echo Authorization
        self._malformed: list[bytes | None] = []  # next answers' raw bodies; None: the real one
        # Set to draw stored dashboards at /d/<uid> (anonymous viewing, as a browser opens them)
        self.renderer: Renderer | None = None
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)
        return f"http://{host}:{port}"

    def __enter__(self) -> GrafanaStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # -- test controls ----------------------------------------------------------------------

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (0: reset the connection instead)."""
        with self._lock:
            self._faults.extend(statuses)

    def echo_authorization_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses and a message quoting the request's
        ``Authorization`` header (the token)."""
        with self._lock:
            self._echo.extend(statuses)

    def malformed_next(self, *bodies: bytes | None) -> None:
        """Answer the next requests (health checks excepted) with status 200 and these bodies
        (``None``: answer that request normally)."""
        with self._lock:
            self._malformed.extend(bodies)

    def edit_in_ui(self, uid: str, title: str) -> None:
        """Save a change to a dashboard as a person in Grafana's UI would (new version)."""
        with self._lock:
            self._edit(uid, title)

    def edit_after_next_read(self, uid: str, title: str) -> None:
        """Someone saves ``uid`` in the UI right after the next time it is read: a race."""
        with self._lock:
            self._edit_after_read[uid] = title

    def reset_after_next_save(self) -> None:
        """Store the next dashboard saved, then reset the connection instead of answering."""
        with self._lock:
            self._reset_after_save = True

    def _edit(self, uid: str, title: str) -> None:
        stored = self.dashboards[uid]
        stored["dashboard"]["title"] = title
        stored["version"] += 1
        stored["dashboard"]["version"] = stored["version"]

    def writes(self) -> list[Logged]:
        return [e for e in self.log if e.method != "GET"]

    # -- the API ------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
                authorized = token in (standin.token, standin.read_only_token) and token is not None
                path = self.path.split("?", 1)[0]
                if method == "GET" and path.startswith("/d/") and standin.renderer is not None:
                    self._page(path.removeprefix("/d/").split("/")[0], self.path)
                    return
                with standin._lock:
                    fault = standin._faults.pop(0) if standin._faults else None
                    echo = standin._echo.pop(0) if standin._echo else None
                    health = path in ("/api/health", "/api/frontend/settings")
                    raw_body = (
                        standin._malformed.pop(0) if standin._malformed and not health else None
                    )
                if echo is not None:
                    standin.log.append(Logged(method, path, echo, authorized))
                    self._answer(echo, json.dumps({"message": f"bad header {auth!r}"}).encode())
                    return
                if raw_body is not None:
                    standin.log.append(Logged(method, path, 200, authorized))
                    self._answer(200, raw_body)
                    return
                if fault == 0:
                    self._reset(method, path, authorized)
                    return
                if fault is not None:
                    status, body = fault, {"message": "stand-in: injected failure"}
                else:
                    status, body = standin._route(
                        method, path, raw, self.headers.get("Content-Type", ""), token
                    )
                    with standin._lock:
                        saved = status == 200 and path == "/api/dashboards/db"
                        if saved and standin._reset_after_save:
                            standin._reset_after_save = False
                            self._reset(method, path, authorized)
                            return
                standin.log.append(Logged(method, path, status, authorized))
                self._answer(status, json.dumps(body).encode())

            def _page(self, uid: str, url: str) -> None:
                with standin._lock:
                    stored = standin.dashboards.get(uid)
                    board = json.loads(json.dumps(stored["dashboard"])) if stored else None
                if board is None or standin.renderer is None:
                    self._answer(404, b'{"message": "Dashboard not found"}')
                    return
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
                page = standin.renderer.page(board, query).encode()
                standin.log.append(Logged("GET", f"/d/{uid}", 200, False))
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def _answer(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _reset(self, method: str, path: str, authorized: bool) -> None:
                standin.log.append(Logged(method, path, 0, authorized))
                # SO_LINGER 0: close with RST, the client sees "connection reset by peer"
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True

        return Handler

    def _route(
        self, method: str, path: str, raw: bytes, content_type: str, token: str | None
    ) -> tuple[int, Any]:
        if method == "GET" and path == "/api/health":
            return 200, {"database": "ok", "version": VERSION}
        if not path.startswith("/api/"):
            return 404, {"message": "Not found"}
        if token is None or token not in (self.token, self.read_only_token):
            return 401, {"message": "Unauthorized"}
        if method != "GET" and token == self.read_only_token:
            return 403, {"message": "You'll need additional permissions to perform this action."}
        body: Any = None
        if method in ("POST", "PUT"):
            if not content_type.startswith("application/json"):
                return 400, {"message": "bad request: expected application/json"}
            try:
                body = json.loads(raw)
            except ValueError:
                return 400, {"message": "bad request data"}
        with self._lock:
            return self._api(method, path, body)

    def _api(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")[1:]  # after "api"
        if method == "GET" and parts == ["frontend", "settings"]:
            return 200, {
                "buildInfo": {"version": VERSION, "commit": "stand-in", "edition": "Open Source"}
            }
        if parts[:1] == ["folders"]:
            if method == "GET" and len(parts) == 2:
                folder = self.folders.get(parts[1])
                return (200, folder) if folder else (404, {"message": "folder not found"})
            if method == "POST" and len(parts) == 1:
                return self._create_folder(body)
        if parts[:2] == ["dashboards", "uid"] and len(parts) == 3 and method == "GET":
            return self._get_dashboard(parts[2])
        if parts == ["dashboards", "db"] and method == "POST":
            return self._save_dashboard(body)
        return 404, {"message": "Not found"}

    def _create_folder(self, body: Any) -> tuple[int, Any]:
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("title"), str)
            or not body["title"].strip()
        ):
            return 400, {"message": "folder title cannot be empty"}
        uid = body.get("uid")
        if not isinstance(uid, str) or not UID.match(uid):
            return 400, {"message": "invalid uid for folder provided"}
        if set(body) - {"title", "uid", "parentUid", "description"}:
            return 400, {"message": f"bad request data: unknown fields {sorted(set(body))}"}
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        folder = {
            "id": self._id(),
            "uid": uid,
            "title": body["title"],
            "url": f"/dashboards/f/{uid}",
            "version": 1,
        }
        self.folders[uid] = folder
        return 200, folder

    def _get_dashboard(self, uid: str) -> tuple[int, Any]:
        stored = self.dashboards.get(uid)
        if stored is None:
            return 404, {"message": "Dashboard not found"}
        folder = self.folders.get(stored["folderUid"] or "", {})
        meta = {
            "slug": _slug(stored["dashboard"]["title"]),
            "url": f"/d/{uid}",
            "folderUid": stored["folderUid"] or "",
            "folderTitle": folder.get("title", ""),
            "version": stored["version"],
            "provisioned": False,
            "canSave": True,
        }
        answer = {"dashboard": json.loads(json.dumps(stored["dashboard"])), "meta": meta}
        if uid in self._edit_after_read:
            self._edit(uid, self._edit_after_read.pop(uid))
        return 200, answer

    def _save_dashboard(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("dashboard"), dict):
            return 400, {"message": "bad request data: 'dashboard' must be an object"}
        board = body["dashboard"]
        title, uid = board.get("title"), board.get("uid")
        if not isinstance(title, str) or not title.strip():
            return 400, {"message": "Dashboard title cannot be empty"}
        if not isinstance(uid, str) or not UID.match(uid):
            return 400, {"message": "uid contains illegal characters or is too long"}
        overwrite, folder_uid = body.get("overwrite", False), body.get("folderUid")
        if not isinstance(overwrite, bool) or not isinstance(body.get("message", ""), str):
            return 400, {"message": "bad request data: 'overwrite' is a boolean, 'message' text"}
        if folder_uid not in (None, "") and folder_uid not in self.folders:
            return 400, {"message": "folder not found"}
        if not isinstance(board.get("panels", []), list):
            return 400, {"message": "bad request data: 'panels' must be a list"}
        existing = self.dashboards.get(uid)
        for other_uid, other in self.dashboards.items():
            if (
                other_uid != uid
                and other["folderUid"] == folder_uid
                and other["dashboard"]["title"] == title
                and not overwrite
            ):
                return 412, {
                    "status": "name-exists",
                    "message": "A dashboard with the same name in the folder already exists",
                }
        if existing is None:
            if board.get("id") not in (None, 0):
                return 404, {"message": "Dashboard not found"}
            version, ident = 1, self._id()
        else:
            if not overwrite and board.get("version") != existing["version"]:
                return 412, {
                    "status": "version-mismatch",
                    "message": "The dashboard has been changed by someone else",
                }
            version, ident = existing["version"] + 1, existing["id"]
        stored = {**board, "id": ident, "uid": uid, "version": version}
        self.dashboards[uid] = {
            "dashboard": stored,
            "folderUid": folder_uid,
            "id": ident,
            "version": version,
            "message": body.get("message", ""),
        }
        return 200, {
            "id": ident,
            "uid": uid,
            "url": f"/d/{uid}/{_slug(title)}",
            "status": "success",
            "version": version,
            "slug": _slug(title),
        }

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id - 1


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
