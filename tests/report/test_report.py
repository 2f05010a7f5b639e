"""The HTML report, without a browser: the summary's exact words for known analyses, step
statuses, and that the page is one self-contained, accessible file.

``bank_log`` writes the event log the browser tests (test_report_browser.py) also use: the example
bank's latency model and its customers' abandonment, one journey every 0.5 s, and from SHIFT_AT on
bill_detail 25% slower and 5% of its ``total_matches_details`` checks failing.
"""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cxmetrics.analysis.analyzer import Analysis, Finding, Verdict, analyze
from cxmetrics.analysis.counts import Window
from cxmetrics.analysis.indicators import compute
from cxmetrics.analysis.regression import Regression, Sensitivity
from cxmetrics.analysis.sources import from_events, from_jsonl
from cxmetrics.instrument.events import CheckResult, Event, StepRecord
from cxmetrics.report import (
    Clock,
    charts,
    render_report,
    step_statuses,
    summarize,
    text,
    write_report,
)
from cxmetrics.spec.load import load_spec, parse_spec
from cxmetrics.spec.model import Spec
from tests.helpers.bank_log import bank_events, write_log
from tests.helpers.paths import EXAMPLE_SPEC, ROOT

CLI = ROOT / ".venv" / "bin" / "cxmetrics"

T0 = datetime(2024, 3, 5, 13, 30, tzinfo=timezone.utc).timestamp()
SHIFT_AT = T0 + 2100.0  # 14:05 UTC
UTC = Clock(timezone.utc)


def bank_log(spec: Spec, path: Path, journeys: int = 6000, fault: bool = True) -> Path:
    """bill_detail 25% slower and 5% of its reconciles failing from 14:05 (when ``fault``)."""
    events = bank_events(
        spec,
        journeys,
        seed=1,
        t0=T0,
        shift_at=SHIFT_AT if fault else float("inf"),
        slower={"bill_detail": 1.25},
        failing={"total_matches_details": 0.05},
    )
    return write_log(path, events)


def at(hh: int, mm: int) -> float:
    return datetime(2024, 3, 5, hh, mm, tzinfo=timezone.utc).timestamp()


def known_analysis(
    spec: Spec, findings: tuple[Finding, ...], verdicts: tuple[Verdict, ...] = ()
) -> Analysis:
    """An analysis of 13:30-15:00 with no traffic, carrying ``findings`` and ``verdicts``."""
    empty = compute(spec, Window(at(13, 30), at(15, 0), {}, {}))
    return Analysis("known", at(13, 30), at(15, 0), 60.0, empty, verdicts, findings)


def finding(
    step: str,
    indicator: str,
    subject: str | None,
    baseline: float,
    current: float,
    start: float,
    end: float | None,
    affected: int,
) -> Finding:
    journey = next(j.name for j in load_spec(EXAMPLE_SPEC).journeys if step in j.step_names)
    statistic = "p95" if indicator == "latency" else "rate"
    change = current / baseline - 1 if indicator == "latency" else 1 - current / baseline
    regression = Regression(
        indicator if indicator == "latency" else "rate",
        statistic,
        0,
        1,
        None if end is None else 2,
        baseline,
        current,
        change,
        0.999,
        affected,
    )
    sensitivity = Sensitivity(500, 400, 0.12)
    return Finding(
        journey, step, indicator, subject, regression, start, start + 60, end, sensitivity
    )


# ---------------------------------------------------------------------------------------------
# the summary, word for word


def test_summary_names_step_change_start_and_affected_volume(example_spec: Spec) -> None:
    findings = (
        finding("bill_detail", "latency", None, 0.95, 1.15, at(14, 5), None, 3400),
        finding(
            "bill_detail", "accuracy", "total_matches_details", 1.0, 0.95, at(14, 7), None, 1900
        ),
        finding("login", "conversion", "bill_total", 0.92, 0.80, at(14, 10), at(14, 30), 500),
    )
    verdicts = (
        Verdict(
            "contact_centre",
            "call_answered",
            "latency",
            None,
            "insufficient_data",
            Sensitivity(0, 0, None),
        ),
    )
    summary = summarize(example_spec, known_analysis(example_spec, findings, verdicts), UTC)
    assert summary.status == "red"
    assert summary.headline == "2 regressions need attention"
    assert summary.sentences == (
        "bill_detail got 21% slower at 14:05 (p95 950 ms → 1.15 s); 3,400 customers affected.",
        "bill_detail accuracy dropped at 14:07: total_matches_details passed for 95.0% of "
        "customers (was 100.0%); about 95 of 1,900 customers saw a wrong result.",
        "Fewer customers went on from login to bill_total from 14:10 to 14:30: 80.0% "
        "(was 92.0%); 500 customers affected.",
        "Too little traffic to judge call_answered.",
    )


def test_recovered_regression_is_amber_and_in_the_past_tense(example_spec: Spec) -> None:
    findings = (finding("payee", "latency", None, 0.2, 0.25, at(14, 0), at(14, 20), 1),)
    summary = summarize(example_spec, known_analysis(example_spec, findings), UTC)
    assert (summary.status, summary.headline) == ("amber", "1 regression, since recovered")
    assert summary.sentences == (
        "payee was 25% slower from 14:00 to 14:20 (p95 200 ms → 250 ms); 1 customer affected.",
    )


def test_no_regression_found_says_so_with_what_was_judged(example_spec: Spec) -> None:
    stable = Sensitivity(500, 500, 0.1)
    verdicts = tuple(
        Verdict(j.name, s.name, "latency", None, "stable", stable) for j, s in example_spec.steps()
    )
    summary = summarize(example_spec, known_analysis(example_spec, (), verdicts), UTC)
    assert (summary.status, summary.headline) == ("green", "No regression found")
    assert summary.sentences == (
        "No regression found in 12 steps of 4 journeys between 13:30 and 15:00.",
    )


def test_too_little_traffic_anywhere_is_not_good_news(example_spec: Spec) -> None:
    none = Sensitivity(0, 0, None)
    verdicts = tuple(
        Verdict(j.name, s.name, "latency", None, "insufficient_data", none)
        for j, s in example_spec.steps()
    )
    summary = summarize(example_spec, known_analysis(example_spec, (), verdicts), UTC)
    assert (summary.status, summary.headline) == ("grey", "Too little traffic to judge")
    assert summary.sentences == (
        "No step had enough traffic between 13:30 and 15:00 to look for regressions.",
    )


def test_steps_below_objective_are_amber_with_the_numbers(example_spec: Spec) -> None:
    events: list[Event] = []
    for k in range(200):  # login: 10% over its 800 ms target; receipt check fails 1%
        events.append(
            StepRecord(
                T0 + k,
                "bill_inquiry",
                "login",
                "app",
                f"{k}",
                None,
                0.9 if k % 10 == 0 else 0.3,
                "ok",
                "tolerating" if k % 10 == 0 else "satisfied",
                k % 10 != 0,
            )
        )
        events.append(
            StepRecord(
                T0 + k,
                "transfer",
                "receipt",
                "app",
                f"{k}",
                "confirm",
                0.1,
                "ok",
                "satisfied",
                True,
                (CheckResult("receipt_matches_amount", k % 100 != 0),),
            )
        )
    timeline = from_events(example_spec, events)
    analysis = Analysis(
        "t", timeline.start, timeline.end, 60.0, compute(example_spec, timeline.total()), (), ()
    )
    summary = summarize(example_spec, analysis, UTC)
    assert (summary.status, summary.headline) == (
        "amber",
        "No regression found; 2 steps below objective",
    )
    assert summary.sentences == (
        "No regression found in 12 steps of 4 journeys between 13:30 and 13:34.",
        "login answered 90.0% on time, below its 95% objective.",
        "receipt: receipt_matches_amount passed 99.0%, below its 99.9% objective.",
    )
    statuses = step_statuses(example_spec, analysis)
    assert statuses[("bill_inquiry", "login")].label == "Below objective"
    assert statuses[("bill_inquiry", "bill_total")].status == "grey"  # no traffic


@pytest.mark.parametrize(
    ("seconds", "written"),
    [
        (0.0004, "0.4 ms"),
        (0.9311, "931 ms"),
        (0.9996, "1 s"),
        (1.18, "1.18 s"),
        (150, "2.5 min"),
        (None, "–"),
    ],
)
def test_durations_read_naturally(seconds: float | None, written: str) -> None:
    assert text.duration(seconds) == written


@pytest.mark.parametrize(
    ("ratio", "written"), [(0.949, "94.9%"), (0.9995, "99.95%"), (1.0, "100.0%"), (None, "–")]
)
def test_percentages_keep_the_digits_that_matter(ratio: float | None, written: str) -> None:
    assert text.percent(ratio) == written


# ---------------------------------------------------------------------------------------------
# the page


@pytest.fixture(scope="module")
def bank(
    example_spec: Spec, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Spec, Analysis, str]:
    log = bank_log(example_spec, tmp_path_factory.mktemp("log") / "events.jsonl")
    timeline = from_jsonl(example_spec, log)
    analysis = analyze(example_spec, timeline)
    return example_spec, analysis, render_report(example_spec, timeline, analysis, tz=timezone.utc)


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[tuple[str, str]] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self._open:
            self.texts.append((self._open[-1], data))


def parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def test_write_report_writes_one_file(bank: tuple[Spec, Analysis, str], tmp_path: Path) -> None:
    spec, _, _ = bank
    out = tmp_path / "nested" / "report.html"
    log = bank_log(spec, tmp_path / "e.jsonl", 300)
    small = from_jsonl(spec, log)
    assert write_report(spec, small, analyze(spec, small), out) == out
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_page_fetches_nothing(bank: tuple[Spec, Analysis, str]) -> None:
    _, _, html = bank
    page = parse(html)
    tags = {tag for tag, _ in page.elements}
    assert not tags & {
        "script",
        "link",
        "img",
        "iframe",
        "object",
        "embed",
        "image",
        "use",
        "video",
        "audio",
    }
    for tag, attrs in page.elements:
        for name in ("src", "srcset", "xlink:href", "action", "poster", "data"):
            assert name not in attrs, (tag, attrs)
        if "href" in attrs:
            assert tag == "a" and (attrs["href"] or "").startswith("#"), (tag, attrs)
    assert not re.search(r"https?:|url\(|@import|//[a-z]", html, re.IGNORECASE)
    csp = [a["content"] for t, a in page.elements if t == "meta" and a.get("http-equiv")]
    assert csp == ["default-src 'none'; style-src 'unsafe-inline'; img-src data:"]


def test_dashboard_link_is_the_only_address_and_a_plain_link(
    bank: tuple[Spec, Analysis, str],
) -> None:
    spec, _, _ = bank
    linked = spec.model_copy(update={"dashboard_url": "https://grafana.example/d/cx"})
    timeline = from_events(
        spec,
        [StepRecord(T0, "bill_inquiry", "login", "app", "1", None, 0.2, "ok", "satisfied", True)],
    )
    html = render_report(linked, timeline, analyze(linked, timeline), tz=timezone.utc)
    assert re.findall(r"[a-z]+=\"https?:[^\"]*\"", html) == ['href="https://grafana.example/d/cx"']


def test_charts_and_tables_are_accessible(bank: tuple[Spec, Analysis, str]) -> None:
    _, _, html = bank
    page = parse(html)
    ids = [a["id"] for _, a in page.elements if a.get("id")]
    assert len(ids) == len(set(ids))
    svgs = [a for t, a in page.elements if t == "svg"]
    # funnels, journey maps, latency, on time, accuracy, conversion
    assert len(svgs) == 4 + 4 + 12 + 12 + 4 + 8
    for svg in svgs:
        assert svg["role"] == "img"
        title, desc = (svg["aria-labelledby"] or "").split()
        assert title == f"{svg['id']}-title" and desc == f"{svg['id']}-desc"
        assert {title, desc} <= set(ids)
    described = dict((a.get("id"), t) for t, a in page.elements)
    assert {described[f"{s['id']}-title"] for s in svgs} == {"title"}
    headers = [a for t, a in page.elements if t == "th"]
    assert headers and all(a.get("scope") in {"col", "row", "rowgroup"} for a in headers)
    assert ("html", {"lang": "en"}) in page.elements


def test_the_page_shows_what_the_analysis_found(bank: tuple[Spec, Analysis, str]) -> None:
    spec, analysis, html = bank
    page = parse(html)
    h2 = [data for tag, data in page.texts if tag == "h2"]
    assert h2[0] == summarize(spec, analysis, UTC).headline
    found = {(f.step, f.indicator) for f in analysis.findings}
    assert ("bill_detail", "latency") in found
    # the latency chart of bill_detail marks the regression where the analysis dates it
    latency = re.search(r'<svg id="latency-bill_inquiry-bill_detail".*?</svg>', html)
    assert latency is not None
    start = next(
        f.start_time
        for f in analysis.findings
        if (f.step, f.indicator) == ("bill_detail", "latency")
    )
    assert f"since {UTC(start)}" in latency.group(0)


def test_free_text_from_the_spec_is_escaped() -> None:
    spec = parse_spec(
        "service: shop\njourneys:\n  - name: buy\n    description: '<script>alert(1)</script> & co'\n"
        "    steps:\n      - name: pay\n        target: 1s\n"
    )
    timeline = from_events(
        spec, [StepRecord(T0, "buy", "pay", "app", "1", None, 0.5, "ok", "satisfied", True)]
    )
    html = render_report(
        spec, timeline, analyze(spec, timeline), tz=timezone.utc, title="<b>Q1</b>"
    )
    assert "<script>" not in html and "<b>Q1" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "<title>&lt;b&gt;Q1&lt;/b&gt;</title>" in html


def test_regression_band_starts_at_the_change_point() -> None:
    clock = Clock(timezone.utc)
    edges = [T0 + 60 * k for k in range(11)]  # 10 windows
    band = charts.Band(T0 + 300, T0 + 600, "+20% since 13:35")
    svg = charts.time_chart(
        "c",
        "t",
        "d",
        edges,
        [charts.Line("p95", [1.0] * 10, "#000")],
        kind="duration",
        clock=clock,
        bands=[band],
        width=1000,
        height=300,
    )
    frame_left, frame_right = 64.0, 1000 - 16.0
    middle = (frame_left + frame_right) / 2
    assert f'<line x1="{middle:.1f}" x2="{middle:.1f}"' in svg
    assert "+20% since 13:35" in svg
    assert svg.count("<title") == 2  # the chart's and the line's: no tips given


def test_windows_beyond_the_drawing_limit_are_merged_exactly(example_spec: Spec) -> None:
    from cxmetrics.report.series import coarsen

    events = [
        StepRecord(
            T0 + k, "bill_inquiry", "login", "app", f"{k}", None, 0.1, "ok", "satisfied", True
        )
        for k in range(1000)
    ]
    timeline = from_events(example_spec, events, step=1.0)
    merged = coarsen(timeline.windows, 240)
    assert len(merged) == 200 and merged[0].end - merged[0].start == 5.0
    assert sum(w.steps[("bill_inquiry", "login")].volume for w in merged) == 1000
    assert (merged[0].start, merged[-1].end) == (timeline.start, timeline.end)


def test_the_python_example_in_the_docs_runs(
    example_spec: Spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (snippet,) = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "report.md").read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cxmetrics.yaml").write_text(EXAMPLE_SPEC.read_text())
    bank_log(example_spec, tmp_path / "events.jsonl", 300)
    exec(compile(snippet, "docs/report.md", "exec"), {})
    assert (tmp_path / "out" / "report.html").read_text().startswith("<!DOCTYPE html>")


# ---------------------------------------------------------------------------------------------
# the command's errors (its happy path runs in test_report_browser.py)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give exactly one data source"),
        (("--prometheus", "localhost:9090"), "is not a Prometheus URL"),
        (("--events", "missing.jsonl"), "cannot read event log missing.jsonl"),
        (("--events", "events.jsonl", "-o", "events.jsonl/report.html"), "cannot write"),
        (("--events", "events.jsonl", "--bogus"), "No such option '--bogus'"),
    ],
)
def test_bad_input_exits_1_with_a_clear_message(
    example_spec: Spec,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    bank_log(example_spec, tmp_path / "events.jsonl", 50)
    result = subprocess.run(
        [str(CLI), "report", str(EXAMPLE_SPEC), *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]
