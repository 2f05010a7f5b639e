"""Real Prometheus and Alertmanager processes on loopback (docs/rules.md).

Used by ``cxmetrics stack`` and by the test-suite: each server gets a free port on 127.0.0.1, a
temporary config and storage directory, a bounded readiness wait, and is stopped by PID.
Binaries come from Debian (``apt-get install -y --no-install-recommends prometheus
prometheus-alertmanager``); a missing one is a clear ``CxError`` with that command.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from .._binaries import ALERTMANAGER, PROMETHEUS, require_binary
from .._exceptions import CxError
from ..analysis.promapi import http_get


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """A server process we started; ``stop()`` ends it (and only it) by PID."""

    def __init__(
        self, name: str, argv: Sequence[str], url: str, ready_path: str, workdir: Path
    ) -> None:
        self.name, self.argv, self.url, self.ready_path = name, list(argv), url, ready_path
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, timeout: float = 30.0) -> Service:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CxError(
                    f"{self.name} exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                status, _ = http_get(self.url + self.ready_path, timeout=1.0)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise CxError(
            f"{self.name} not ready at {self.url} after {timeout:.0f}s:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def prometheus(
    workdir: str | os.PathLike[str],
    targets: Sequence[str],
    rule_files: Sequence[str | os.PathLike[str]] = (),
    alertmanager_url: str | None = None,
    interval: str = "1s",
    port: int | None = None,
    job: str = "app",
) -> Service:
    """A Prometheus (not yet started) scraping ``targets`` (``host:port``) every ``interval``."""
    binary = require_binary(PROMETHEUS)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}],
        "rule_files": [str(Path(f).resolve()) for f in rule_files],
    }
    if alertmanager_url is not None:
        host = urllib.parse.urlparse(alertmanager_url).netloc
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
    (work / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    argv = [
        binary,
        f"--config.file={work / 'prometheus.yml'}",
        f"--storage.tsdb.path={work / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--enable-feature=exemplar-storage",
        "--log.level=warn",
    ]
    return Service("prometheus", argv, f"http://127.0.0.1:{port}", "/-/ready", work)


def alertmanager(
    workdir: str | os.PathLike[str], webhook_url: str | None = None, port: int | None = None
) -> Service:
    """An Alertmanager (not yet started) routing every alert to ``webhook_url`` at once."""
    binary = require_binary(ALERTMANAGER)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    receiver: dict[str, Any] = {"name": "default"}
    if webhook_url is not None:
        receiver["webhook_configs"] = [{"url": webhook_url, "send_resolved": True}]
    config = {
        "route": {
            "receiver": "default",
            "group_by": ["alertname", "journey", "step"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [receiver],
    }
    (work / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    argv = [
        binary,
        f"--config.file={work / 'alertmanager.yml'}",
        f"--storage.path={work / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    return Service("alertmanager", argv, f"http://127.0.0.1:{port}", "/-/ready", work)
