"""docs/quickstart.md, run end to end as a new user would: its files written as shown, its shell
blocks run in order in a fresh directory (the uvicorn server for real, on a free port), and what
the page says they print checked."""

from __future__ import annotations

import importlib.metadata
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cxmetrics.local.stack import free_port
from tests.helpers.paths import ROOT

PAGE = (ROOT / "docs" / "quickstart.md").read_text()
BLOCKS = re.findall(r"```(\w+)(?: file=(\S+))?\n(.*?)```", PAGE, flags=re.S)


def shell(script: str, cwd: Path, port: int) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(cwd),
    }
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace("8000", str(port))],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def wait_ready(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url + "/metrics", timeout=1)
            return
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start: {log.read_text()}") from None
            time.sleep(0.1)


def test_the_install_line_names_extras_that_exist() -> None:
    (install,) = [code for lang, _, code in BLOCKS if lang == "sh" and "pip install" in code]
    extras = importlib.metadata.metadata("cxmetrics").get_all("Provides-Extra") or []
    assert install.strip() == 'pip install "cxmetrics[all]" uvicorn pytest'
    assert "all" in extras


@pytest.mark.slow
def test_the_quickstart_runs_end_to_end(tmp_path: Path) -> None:
    port = free_port()
    texts = [code for lang, _, code in BLOCKS if lang == "text"]
    files = {name: code for _, name, code in BLOCKS if name}
    assert sorted(files) == ["app.py", "cxmetrics.yaml", "test_app.py"]
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    scripts = [code for lang, name, code in BLOCKS if lang == "sh" and "pip install" not in code]
    validate, walk, test, analyze, generate = scripts

    result = shell(validate, tmp_path, port)
    assert (result.returncode, result.stdout) == (
        0,
        "ok: cxmetrics.yaml: service card_service, 1 journey, 3 steps, 2 accuracy checks\n",
    )
    assert "prints `" + result.stdout.strip() + "`" in PAGE

    start, rest = walk.split("\n", 1)
    assert start == "uvicorn app:app --port 8000 &"
    log = tmp_path / "uvicorn.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "uvicorn"), "app:app", "--port", str(port)],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}", server, log)
        result = shell(rest, tmp_path, port)
        assert result.returncode == 0, result.stderr
        assert result.stdout.endswith(texts[0]), result.stdout

        result = shell(test, tmp_path, port)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 passed" in result.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)

    assert analyze.startswith("kill %1")
    result = shell(analyze.split("\n", 1)[1], tmp_path, port)
    # A handful of requests is too little to judge: exit code 4, said on stderr.
    assert result.returncode == 4, result.stdout + result.stderr
    assert "every verdict is insufficient_data" in result.stderr
    for step in ("enter_card", "verify_otp", "activated"):
        assert f"card_activation/{step}" in result.stdout

    result = shell(generate, tmp_path, port)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in (tmp_path / "dashboards").iterdir()) == [
        "cx-card_activation-overview.json",
        "cx-card_activation-steps.json",
        "cx-card_service-home.json",
    ]
    assert "cx:" in (tmp_path / "cx-rules.yml").read_text()
