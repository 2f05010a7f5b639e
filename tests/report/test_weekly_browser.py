"""The weekly report in headless Chromium: ``cxmetrics report --period week --compare previous``
on two simulated weeks of the bank (bill_detail 25% slower and 5% of a check failing in the
second week), opened over the DevTools pipe of test_report_browser.py. It must load without a
console message, draw (screenshots decoded, non-blank, with the colours of what they show), and
its summary must name the worst step and its change week over week."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cxmetrics.report.journey_map import KIND_COLOURS
from cxmetrics.spec.model import Spec
from tests.helpers.bank_log import two_weeks, write_log
from tests.helpers.paths import EXAMPLE_SPEC

from .test_report import CLI
from .test_report_browser import Chromium, Tab, decode_png, pixels_near

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weekly(example_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("weekly")
    log = write_log(directory / "events.jsonl", two_weeks(example_spec))
    out = directory / "weekly.html"
    result = subprocess.run(
        [
            str(CLI), "report", str(EXAMPLE_SPEC), "--events", str(log), "--period", "week",
            "--compare", "previous", "--at", "2024-03-18T06:00", "-o", str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TZ": "UTC"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    chromium = Chromium(tmp_path_factory.mktemp("profile"))
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="module")
def page(weekly: Path, browser: Chromium) -> Tab:
    return browser.open(weekly.as_uri())


def test_weekly_report_loads_without_console_errors(page: Tab) -> None:
    assert page.evaluate("document.readyState") == "complete"
    assert page.evaluate("document.title") == "Customer experience — bank_app, week of 2024-03-11"
    assert page.problems() == []


def test_summary_names_the_worst_step_and_its_change_week_over_week(page: Tab) -> None:
    summary = page.evaluate("document.getElementById('summary').innerText")
    found = re.search(
        r"Worst step week over week: bill_detail \(bill_inquiry\): good steps (\d+\.\d+)% "
        r"\(was (\d+\.\d+)%\), (\d+) more customers had a bad step; p95 (.+?) \(was (.+?), "
        r"(\d+)% slower\)",
        summary,
    )
    assert found is not None, summary
    now, was = float(found.group(1)), float(found.group(2))
    assert now < was
    assert 20 <= int(found.group(6)) <= 32  # +25% injected
    # the section below says the same, with the table that marks it
    changes = page.evaluate("document.getElementById('changes').innerText")
    assert changes.startswith("Compared with week of 2024-03-04")
    worse = page.evaluate(
        "[...document.querySelectorAll('#changes td.worse')].map(td => "
        "td.closest('tr').querySelector('th').innerText)"
    )
    assert worse == ["bill_detail"] * 4


def test_the_weekly_page_and_its_journey_map_draw(
    page: Tab, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shot = page.screenshot("#changes")
    (tmp_path_factory.getbasetemp() / "weekly-changes.png").write_bytes(shot)
    width, height, rows = decode_png(shot)
    assert width > 900 and height > 300
    painted = sum(
        1 for row in rows for k in range(0, len(row), 3) if row[k : k + 3] != b"\xff\xff\xff"
    )
    assert painted > 0.02 * width * height  # text, rules and the red cells
    assert pixels_near(rows, "#a40e26", 30) > 50  # the significant worsenings, in red

    shot = page.screenshot("#map-bill_inquiry")
    (tmp_path_factory.getbasetemp() / "weekly-map.png").write_bytes(shot)
    width, height, rows = decode_png(shot)
    assert width > 400 and height > 100
    assert pixels_near(rows, KIND_COLOURS["forward"]) > 2000  # the forward cells (92% and 86%)
    control = decode_png(page.screenshot("#summary"))[2]
    assert pixels_near(control, KIND_COLOURS["forward"]) == 0
