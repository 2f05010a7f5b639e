"""The weekly report: two simulated weeks of the bank (``tests.helpers.bank_log.two_weeks``:
bill_detail 25% slower and 5% of a check failing in the second), compared week over week — the
digest word for word, the page's comparison, customers-affected and journey-map sections, "no
baseline yet" on a first week, and ``cxmetrics report --period`` through its entry point."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import timezone
from pathlib import Path

import pytest

from cxmetrics.analysis.analyzer import analyze
from cxmetrics.analysis.comparison import Comparison, compare
from cxmetrics.analysis.periods import Period, calendar_period, previous_period
from cxmetrics.analysis.sources import Timeline, from_events
from cxmetrics.instrument.events import Event
from cxmetrics.report import render_report, summarize
from cxmetrics.report.digest import digest
from cxmetrics.spec.model import Spec
from tests.helpers.bank_log import TWO_WEEKS_T0, WEEK, two_weeks, write_log
from tests.helpers.paths import EXAMPLE_SPEC

from .test_report import CLI, UTC


def section(html: str, ident: str) -> str:
    """The text of ``<section id=ident>``, tags removed, entities as written."""
    found = re.search(rf'<section id="{ident}".*?</section>', html, re.S)
    assert found is not None, ident
    return re.sub(r"<[^>]+>", " ", found.group(0)).replace("  ", " ").strip()


AT = "2024-03-18T06:00"  # a Monday morning: the week of 2024-03-11 is complete


@pytest.fixture(scope="module")
def events(example_spec: Spec) -> list[Event]:
    return two_weeks(example_spec)


def week(spec: Spec, events: list[Event], at: float) -> tuple[Timeline, Comparison, Period]:
    current = calendar_period("week", at, UTC.tz)
    previous = previous_period(current, UTC.tz)
    now, before = (from_events(spec, events, 3600, p.start, p.end) for p in (current, previous))
    return now, compare(spec, now.total(), before.total(), (current, previous)), current


@pytest.fixture(scope="module")
def weekly(example_spec: Spec, events: list[Event]) -> tuple[Timeline, Comparison, Period, str]:
    timeline, comparison, current = week(example_spec, events, TWO_WEEKS_T0 + 2 * WEEK + 3600)
    analysis = analyze(example_spec, timeline)
    html = render_report(
        example_spec, timeline, analysis, tz=timezone.utc, comparison=comparison, generated=0.0
    )
    return timeline, comparison, current, html


def test_digest_names_the_worst_step_and_its_change(
    example_spec: Spec, weekly: tuple[Timeline, Comparison, Period, str]
) -> None:
    timeline, comparison, current, _ = weekly
    summary = summarize(example_spec, analyze(example_spec, timeline), UTC)
    text = digest(example_spec.service, current, summary, comparison, "https://x.example/r.html")
    assert text == (
        "**Customer experience — bank_app, week of 2024-03-11** (compared with week of "
        "2024-03-04)\n"
        "- Worst step week over week: bill_detail (bill_inquiry): good steps 93.9% (was 99.91%), "
        "145 more customers had a bad step; p95 1.23 s (was 968 ms, 27% slower); on time 99.0% "
        "(was 99.91%); accuracy 97.4% (was 100.0%).\n"
        "- 1 step significantly worse and 0 better than week of 2024-03-04 (two-sided tests at "
        "99%).\n"
        "- Customers affected in the week: 234 failed checks, 0 frustrated steps, 0 failed "
        "steps, 947 customers who left a journey.\n"
        "- Within the week: no regression found; 1 step below objective.\n"
        "- Full report: https://x.example/r.html\n"
    )


def test_the_page_opens_with_the_week_over_week_verdict(
    weekly: tuple[Timeline, Comparison, Period, str],
) -> None:
    html = weekly[3]
    summary = section(html, "summary")
    assert summary.startswith("No regression found; 1 step below objective")
    assert (
        "Worst step week over week: bill_detail (bill_inquiry): good steps 93.9% (was 99.91%)"
        in summary
    )
    changes = section(html, "changes")
    assert changes.startswith("Compared with week of 2024-03-04")
    assert "no baseline" not in changes and "no traffic" not in changes
    # the significant worsenings of bill_detail are marked, nothing else is
    marked = re.findall(
        r'<td class="(worse|better)" title="significantly \w+">([▲▼]) ([^<]+)<', html
    )
    assert marked == [
        ("worse", "▲", "1.23 s"),
        ("worse", "▼", "99.0%"),
        ("worse", "▼", "97.4%"),
        ("worse", "▼", "93.9%"),
    ]


def test_the_page_counts_customers_affected_and_maps_each_journey(
    weekly: tuple[Timeline, Comparison, Period, str],
) -> None:
    html = weekly[3]
    affected = section(html, "affected")
    assert "Failed checks" in affected and "Left the journey" in affected
    row = re.search(r"<th scope=\"row\">bill_detail</th>((?:<td>.*?</td>){4})</tr>", html)
    assert row is not None
    cells = re.findall(r"<td>([\d,]+)<span class=\"small\">was ([\d,]+)</span></td>", row.group(1))
    assert cells == [("124", "0"), ("0", "0"), ("0", "0"), ("0", "0")]
    for journey in ("bill_inquiry", "transfer", "contact_centre"):
        assert f'<svg id="map-{journey}" class="chart" role="img"' in html
    assert "login → bill_total: 2,777 customers (91.9%)" in html
    assert "<strong>login → bill_total → bill_detail</strong> — 79.1%" in html


def test_a_first_week_has_no_baseline_yet(example_spec: Spec, events: list[Event]) -> None:
    timeline, comparison, _ = week(example_spec, events, TWO_WEEKS_T0 + WEEK + 3600)
    html = render_report(
        example_spec,
        timeline,
        analyze(example_spec, timeline),
        tz=timezone.utc,
        comparison=comparison,
    )
    assert (
        section(html, "summary").count(
            "No baseline yet: week of 2024-02-26 has no traffic, so this week is not compared with "
            "the one before."
        )
        == 1
    )
    changes = section(html, "changes")
    assert changes.count("no baseline yet") == 12 * 7
    assert "no traffic" not in changes.replace("has no traffic", "")
    assert 'class="worse"' not in html and 'class="better"' not in html


# ---------------------------------------------------------------------------------------------
# the command


@pytest.fixture(scope="module")
def log(events: list[Event], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_log(tmp_path_factory.mktemp("weeks") / "events.jsonl", events)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "report", str(EXAMPLE_SPEC), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "TZ": "UTC"},
    )


@pytest.mark.slow
def test_weekly_report_command_writes_the_page_and_the_digest(log: Path, tmp_path: Path) -> None:
    args = ("--events", str(log), "--period", "week", "--compare", "previous", "--at", AT)
    result = run(*args, "-o", "out/weekly.html", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "out/weekly.html: No regression found; 1 step below objective",
        "Worst step week over week: bill_detail (bill_inquiry): good steps 93.9% (was 99.91%), "
        "145 more customers had a bad step; p95 1.23 s (was 968 ms, 27% slower); on time 99.0% "
        "(was 99.91%); accuracy 97.4% (was 100.0%).",
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["weekly.html", "weekly.md"]
    digest_text = (tmp_path / "out" / "weekly.md").read_text()
    assert digest_text.startswith("**Customer experience — bank_app, week of 2024-03-11**")
    html = (tmp_path / "out" / "weekly.html").read_text()
    assert "<title>Customer experience — bank_app, week of 2024-03-11</title>" in html


@pytest.mark.slow
@pytest.mark.parametrize(
    ("period", "first"),
    [
        ("day", "out.html: No regression found; 1 step below objective"),
        ("month", None),  # February 2024: nothing in the log
    ],
)
def test_day_and_month_periods(log: Path, tmp_path: Path, period: str, first: str | None) -> None:
    result = run(
        "--events", str(log), "--period", period, "--compare", "previous", "--at", AT,
        "-o", "out.html", cwd=tmp_path,
    )  # fmt: skip
    if first is None:
        assert result.returncode == 1
        assert result.stderr.startswith(f"error: {log} holds no events in the February 2024;")
        assert list(tmp_path.iterdir()) == []
        return
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == first
    assert lines[1] == "No step got significantly worse than 2024-03-16."


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--compare", "previous"), "--compare, --at and --deliver need --period"),
        (("--period", "week", "--since", "1h"), "--since and --period exclude each other"),
        (("--period", "week", "--at", "monday"), "--at 'monday': write a date or time"),
        (("--period", "week", "--deliver", "ftp://x"), "--deliver 'ftp://x': write smtp://"),
    ],
)
def test_period_options_bad_input(
    log: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = run("--events", str(log), *args, cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []
