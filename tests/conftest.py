"""Shared fixtures: the example spec, a fresh cxmetrics recording per test, real servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cxmetrics import config
from cxmetrics.spec.load import load_spec
from cxmetrics.spec.model import Spec
from cxmetrics.testing import Recording

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_SPEC = ROOT / "examples" / "bank" / "cxmetrics.yaml"


@pytest.fixture(scope="session")
def example_spec() -> Spec:
    return load_spec(EXAMPLE_SPEC)


@pytest.fixture
def cxmetrics_spec(example_spec: Spec) -> Spec:
    return example_spec


@pytest.fixture
def rec(example_spec: Spec) -> Iterator[Recording]:
    recording = Recording(example_spec)
    try:
        yield recording
    finally:
        recording.close()


@pytest.fixture(autouse=True)
def _no_leftover_configuration() -> Iterator[None]:
    yield
    config.shutdown()


@contextmanager
def serve_app(app: Any, port: int) -> Iterator[str]:
    """Serve an ASGI ``app`` with uvicorn in a thread on 127.0.0.1:``port``; yields the base URL."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
