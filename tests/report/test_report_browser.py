"""``cxmetrics report`` through its real entry point, opened in headless Chromium.

One report (module fixture) of the bank log of test_report.py — bill_detail 25% slower and 5% of
its ``total_matches_details`` checks failing from 14:05 UTC — written by the CLI, then loaded in
Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: no websocket
client needed). The page must load with no console message, exception or failed load, its
charts must draw (pixels of the right colours in a screenshot of the chart), and its summary
must name the injected regressions.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cxmetrics.report import style
from cxmetrics.report.charts import BAND_OPEN
from cxmetrics.spec.model import Spec
from tests.helpers.paths import EXAMPLE_SPEC

from .test_report import CLI, SHIFT_AT, UTC, bank_log

pytestmark = pytest.mark.slow  # every test here starts a server or a subprocess

INSTALL = "apt-get install -y --no-install-recommends chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--window-size=1280,900",
)


class Chromium:
    """Headless Chromium over the DevTools protocol on fds 3 (commands in) and 4 (answers out),
    messages separated by NUL bytes."""

    def __init__(self, profile: Path) -> None:
        binary = shutil.which("chromium")
        if binary is None:
            pytest.fail(f"chromium is not installed; install it with: {INSTALL}")
        to_browser, from_browser = os.pipe(), os.pipe()
        # the browser expects the pipe on fds 3 and 4: hand them over high, let bash move them
        inbound = fcntl.fcntl(to_browser[0], fcntl.F_DUPFD, 10)
        outbound = fcntl.fcntl(from_browser[1], fcntl.F_DUPFD, 10)
        for fd in (to_browser[0], from_browser[1]):
            os.close(fd)
        args = [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe"]
        move = f'exec 3<&{inbound} 4>&{outbound} {inbound}<&- {outbound}>&-; exec "$@"'
        self.process = subprocess.Popen(
            ["/bin/bash", "-c", move, "chromium", *args, "about:blank"],
            pass_fds=(inbound, outbound),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(inbound)
        os.close(outbound)
        self._out = os.fdopen(to_browser[1], "wb", buffering=0)
        self._in = os.fdopen(from_browser[0], "rb", buffering=0)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        self._out.write(json.dumps(message).encode() + b"\0")
        while True:
            answer = self.receive()
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer["result"]
                return result
            self.events.append(answer)

    def receive(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = self._in.read(1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def open(self, url: str) -> Tab:
        """A new tab on ``url``, loaded and painted."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        tab = Tab(self, session, target)
        for domain in ("Page", "Runtime", "Log"):
            tab.send(f"{domain}.enable")
        tab.send("Page.navigate", url=url)
        while not any(e.get("method") == "Page.loadEventFired" for e in tab.events()):
            self.events.append(self.receive())
        tab.evaluate("new Promise(r => requestAnimationFrame(() => r(1)))")
        return tab

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.send("Browser.close")
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._out.close()
        self._in.close()


class Tab:
    def __init__(self, browser: Chromium, session: str, target: str) -> None:
        self.browser, self.session, self.target = browser, session, target

    def close(self) -> None:
        self.browser.send("Target.closeTarget", targetId=self.target)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.send(method, self.session, **params)

    def events(self) -> list[dict[str, Any]]:
        return [e for e in self.browser.events if e.get("sessionId") == self.session]

    def problems(self) -> list[str]:
        """Everything DevTools' console would show: console calls, uncaught exceptions, and
        log entries (failed loads, CSP violations, interventions)."""
        out = []
        for event in self.events():
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                values = [str(a.get("value", a.get("description"))) for a in params["args"]]
                out.append(f"console.{params['type']}: {' '.join(values)}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                thrown = details.get("exception", {}).get("description", "")
                out.append(f"{details['text']} {thrown}")
            elif method == "Log.entryAdded":
                entry = params["entry"]
                out.append(f"{entry['level']} ({entry['source']}): {entry['text']}")
        return out

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"]["text"])
        return result["result"].get("value")

    def screenshot(self, selector: str) -> bytes:
        """A PNG of the element ``selector`` at 1:1 scale."""
        self.send("Page.bringToFront")  # a background tab does not paint
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return {x: r.x + scrollX, y: r.y + scrollY, "
            "width: r.width, height: r.height}; })()"
        )
        shot = self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={**box, "scale": 1},
        )
        return base64.b64decode(shot["data"])


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB(A) rows of an 8-bit truecolour PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                near = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + near) & 255
        rows.append(bytes(line) if bpp == 3 else bytes(b for k, b in enumerate(line) if k % 4 != 3))
        previous = line
    return width, height, rows


def pixels_near(rows: list[bytes], colour: str, tolerance: int = 24) -> int:
    target = bytes.fromhex(colour.lstrip("#"))
    return sum(
        1
        for row in rows
        for k in range(0, len(row), 3)
        if all(abs(row[k + c] - target[c]) <= tolerance for c in range(3))
    )


# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(example_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("report")
    log = bank_log(example_spec, directory / "events.jsonl")
    out = directory / "out" / "report.html"
    result = subprocess.run(
        [str(CLI), "report", str(EXAMPLE_SPEC), "--events", str(log), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TZ": "UTC"},
    )
    assert result.returncode == 0, result.stderr
    # the headline: how many regressions are open is the detector's business; two are injected
    assert re.fullmatch(rf"{re.escape(str(out))}: \d+ regressions need attention\n", result.stdout)
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    chromium = Chromium(tmp_path_factory.mktemp("profile"))
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="module")
def page(report: Path, browser: Chromium) -> Tab:
    return browser.open(report.as_uri())


def test_page_loads_without_console_errors(page: Tab) -> None:
    assert page.evaluate("document.readyState") == "complete"
    assert page.problems() == []


def test_the_console_check_catches_a_broken_page(browser: Chromium, tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<!DOCTYPE html><html lang="en"><title>broken</title><img src="missing.png" alt="">'
        '<script>console.error("boom"); notDefined();</script></html>'
    )
    tab = browser.open(broken.as_uri())
    problems = tab.problems()
    tab.close()
    assert "console.error: boom" in problems
    assert any(p.startswith("Uncaught") and "notDefined" in p for p in problems)
    assert "error (network): Failed to load resource: net::ERR_FILE_NOT_FOUND" in problems


def test_summary_names_the_injected_regressions(page: Tab) -> None:
    summary = page.evaluate("document.getElementById('summary').innerText")
    latency = re.search(
        r"bill_detail got (\d+)% slower at (\d\d):(\d\d) \(p95 .+ → .+\); ([\d,]+) customers affected",
        summary,
    )
    assert latency is not None, summary
    assert 15 <= int(latency.group(1)) <= 40  # +25% injected
    minutes = int(latency.group(2)) * 60 + int(latency.group(3))
    assert abs(minutes - (14 * 60 + 5)) <= 2, UTC(SHIFT_AT)
    assert int(latency.group(4).replace(",", "")) > 500
    accuracy = re.search(
        r"bill_detail accuracy dropped at (\d\d:\d\d): total_matches_details passed for (9\d\.\d)% of customers \(was 100\.0%\)",
        summary,
    )
    assert accuracy is not None, summary
    assert 93.0 <= float(accuracy.group(2)) <= 97.0  # 5% failing
    assert re.match(r"\d+ regressions need attention\n", summary), summary


def test_charts_render(page: Tab, tmp_path_factory: pytest.TempPathFactory) -> None:
    sizes = page.evaluate(
        "[...document.querySelectorAll('svg.chart')].map(s => {"
        " const r = s.getBoundingClientRect(); return [s.id, r.width, r.height]; })"
    )
    assert len(sizes) == 44 and all(w > 300 and h > 100 for _, w, h in sizes), sizes
    png = page.screenshot("#latency-bill_inquiry-bill_detail")
    (tmp_path_factory.getbasetemp() / "latency-bill_detail.png").write_bytes(png)
    width, height, rows = decode_png(png)
    assert width > 900 and height > 250
    painted = sum(
        1 for row in rows for k in range(0, len(row), 3) if row[k : k + 3] != b"\xff\xff\xff"
    )
    assert painted > 0.15 * width * height  # axes, grid, three lines and the regression band
    assert pixels_near(rows, style.P95) > 300  # the p95 line
    assert pixels_near(rows, style.TARGET, 40) > 200  # the dashed target line
    assert pixels_near(rows, BAND_OPEN, 6) > 0.1 * width * height  # the regression band
    blank = decode_png(page.screenshot("#summary"))[2]  # no chart: a control for the counts
    assert pixels_near(blank, style.P95) == 0
