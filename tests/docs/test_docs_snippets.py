"""Every Python snippet in docs/integrations runs as written, against real servers."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.keys import CONTEXT_KEY
from tests.helpers.paths import EXAMPLE_SPEC, ROOT

pytestmark = pytest.mark.slow  # every test here starts a server or a subprocess

DOCS = ROOT / "docs" / "integrations"


def snippets(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S)


def run(tmp_path: Path, code: str, harness: str = "") -> str:
    shutil.copyfile(EXAMPLE_SPEC, tmp_path / "cxmetrics.yaml")
    (tmp_path / "snippet.py").write_text(code)
    script = harness or "import snippet\n"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PYTHONPATH": f"{tmp_path}:{ROOT}",
            "PATH": "/usr/bin:/bin",
            "CXMETRICS_CONTEXT_KEY": CONTEXT_KEY.decode(),  # as the pages tell a deployment
        },
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


SERVE = """
import threading, time, httpx
from prometheus_client import REGISTRY, generate_latest
from cxmetrics.local.stack import free_port
import snippet
port = free_port()
{start}
url = f"http://127.0.0.1:{{port}}"
deadline = time.monotonic() + 15
while True:
    try:
        r = httpx.get(url + "/bill/total"); break
    except httpx.TransportError:
        assert time.monotonic() < deadline; time.sleep(0.05)
httpx.get(url + "/bill/detail", headers={{"baggage": r.headers["baggage"]}})
print(generate_latest(REGISTRY).decode())
"""
ASGI = SERVE.format(
    start="""
import uvicorn
server = uvicorn.Server(uvicorn.Config(snippet.app, host="127.0.0.1", port=port, log_level="error"))
threading.Thread(target=server.run, daemon=True).start()"""
)
WSGI = SERVE.format(
    start="""
from wsgiref.simple_server import make_server, WSGIRequestHandler
class Quiet(WSGIRequestHandler):
    def log_message(self, *a): pass
server = make_server("127.0.0.1", port, snippet.app, handler_class=Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()"""
)

EXPECTED = [
    'cx_step_transitions_total{channel="app",from_step="bill_total",journey="bill_inquiry",segment="none",service="bank_app",to_step="bill_detail"} 1.0',
    'cx_journeys_started_total{channel="app",journey="bill_inquiry",segment="none",service="bank_app"} 1.0',
    'cx_steps_total{channel="app",journey="bill_inquiry",outcome="ok",segment="none",service="bank_app",step="bill_total",timeliness="satisfied"} 1.0',
    'cx_steps_total{channel="app",journey="bill_inquiry",outcome="ok",segment="none",service="bank_app",step="bill_detail",timeliness="satisfied"} 1.0',
]


@pytest.mark.parametrize(("page", "harness"), [("starlette.md", ASGI), ("flask.md", WSGI)])
def test_framework_snippet_serves_one_journey_over_two_requests(
    tmp_path: Path, page: str, harness: str
) -> None:
    (code,) = snippets(page)
    exposition = run(tmp_path, code, harness).splitlines()
    for line in EXPECTED:
        assert line in exposition


def test_propagation_and_background_snippets_run(tmp_path: Path) -> None:
    pages = snippets("propagation.md")
    assert len(pages) == 2
    for code in pages:
        run(tmp_path, code)
