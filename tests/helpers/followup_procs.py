"""Real processes for follow-up tests: the receiver, workers and app processes, stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from .paths import ROOT
from .redis_server import free_port

SECRET = "test-followup-secret"
CLI = str(Path(sys.executable).with_name("cxmetrics"))


class Receiver:
    def __init__(self, directory: Path, fail_first: int = 0) -> None:
        self.port = free_port()
        self.out = directory / "received.jsonl"
        log = open(directory / "receiver.log", "ab")  # noqa: SIM115 - closed below
        self.proc = subprocess.Popen(
            [
                CLI,
                "followup",
                "receive",
                "--port",
                str(self.port),
                "--out",
                str(self.out),
                "--fail-first",
                str(fail_first),
            ],
            env={**os.environ, "CXMETRICS_FOLLOWUP_SECRET": SECRET},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                self.stats()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"receiver did not start: {(directory / 'receiver.log').read_text()}"
                    ) from None
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=5) as r:
            return dict(json.loads(r.read()))

    def items(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines()]

    def stop(self) -> None:
        stop(self.proc)


def start_worker(
    directory: Path, spec: Path, redis_url: str, name: str, *args: str
) -> subprocess.Popen[bytes]:
    log = open(directory / f"{name}.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [CLI, "followup", "run", "--spec", str(spec), "--redis", redis_url, *args],
        env={**os.environ, "CXMETRICS_FOLLOWUP_SECRET": SECRET},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    log.close()
    return proc


def start_app(
    redis_url: str, start: int, count: int, stall_every: int, pause: float = 0.0
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.helpers.followup_app",
            redis_url,
            str(start),
            str(count),
            str(stall_every),
            str(pause),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def app_result(proc: subprocess.Popen[str], timeout: float = 300) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"app process failed: {err}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
