"""A real Redis Cluster on loopback: three primaries (``redis-server --cluster-enabled yes``) on
random free ports in temp dirs, joined by ``redis-cli --cluster create``, stopped by PID."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .redis_server import INSTALL


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(n: int) -> list[int]:
    """``n`` ports free on loopback whose cluster bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < n:
        port = random.randrange(20000, 45000)
        if port not in ports and _free(port) and _free(port + 10000):
            ports.append(port)
    return ports


class RedisCluster:
    def __init__(self, directory: Path, primaries: int = 3) -> None:
        for binary in ("redis-server", "redis-cli"):
            if shutil.which(binary) is None:
                raise RuntimeError(f"{binary} is not installed; install it with: {INSTALL}")
        self.dir = directory
        self.ports = cluster_ports(primaries)
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The URL cxmetrics takes for a cluster: any node, scheme ``redis+cluster``."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self) -> RedisCluster:
        for port in self.ports:
            node = self.dir / str(port)
            node.mkdir(parents=True, exist_ok=True)
            log = open(node / "redis.log", "ab")  # noqa: SIM115 - closed with the process
            self.procs.append(
                subprocess.Popen(
                    [
                        "redis-server",
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--dir",
                        str(node),
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                        "--appendonly",
                        "yes",
                        "--save",
                        "",
                        "--daemonize",
                        "no",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
        try:
            for port in self.ports:
                self._wait(lambda p=port: self._call(p, "PING").startswith("+PONG"), "PING")
            subprocess.run(
                [
                    "redis-cli",
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{p}" for p in self.ports),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            for port in self.ports:
                self._wait(
                    lambda p=port: "cluster_state:ok" in self._call(p, "CLUSTER INFO"),
                    "cluster_state:ok",
                )
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, ready: object, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():  # type: ignore[operator]
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"a cluster node exited while waiting for {what}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis Cluster: no {what} after {timeout}s")
            time.sleep(0.1)

    @staticmethod
    def _call(port: int, command: str) -> str:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                sock.sendall(command.encode() + b"\r\n")
                time.sleep(0.05)
                return sock.recv(65536).decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.procs = []
