"""The report's follow-up section: figures read from the workers' own expositions (counters summed
over workers, store gauges the same on every worker: max), one row per key step."""

from __future__ import annotations

from datetime import timezone
from pathlib import Path

from prometheus_client import generate_latest

from cxmetrics.analysis.analyzer import analyze
from cxmetrics.analysis.sources import from_jsonl
from cxmetrics.followup.worker import Worker
from cxmetrics.report import render_report
from cxmetrics.report.followups import figures, followups_section
from cxmetrics.spec.model import Spec
from tests.report.test_report import bank_log

KEY = ("loan_application", "upload_documents")
GAUGES = (
    'cx_followups_tracked{service="bank_app",journey="loan_application",'
    'step="upload_documents"} 12\n'
    'cx_followups_due{service="bank_app",journey="loan_application",step="upload_documents"} 3\n'
    'cx_followups_oldest_due_seconds{service="bank_app",journey="loan_application",'
    'step="upload_documents"} 42\n'
    'cx_followups_dead_letters{service="bank_app",journey="loan_application",'
    'step="upload_documents"} 1\n'
)


def _exposition(spec: Spec, sent: int, lags: list[float], gauges: str = "") -> str:
    """A real worker's metrics (its store unreachable: only its own counters), plus the store
    gauges a worker with a store would add."""
    worker = Worker(spec, "redis://127.0.0.1:9/0", b"secret", concurrency=1, timeout=0.2)
    try:
        labels = (spec.service, *KEY)
        worker.sent.labels(*labels).inc(sent)
        worker.retried.labels(*labels).inc(2)
        worker.dead_lettered.labels(*labels, "attempts").inc(1)
        for lag in lags:
            worker.lag.labels(*labels).observe(lag)
        text = generate_latest(worker.registry).decode()
    finally:
        worker.close()
    return text.replace("# EOF\n", "") + gauges


def test_figures_add_counters_over_workers_and_take_the_max_of_store_gauges(
    example_spec: Spec,
) -> None:
    one = _exposition(example_spec, 5, [0.3, 0.4, 20.0], GAUGES)
    two = _exposition(example_spec, 7, [0.2, 2000.0], GAUGES.replace(" 3\n", " 2\n"))
    [row] = figures(example_spec, [one, two])
    assert (row.journey, row.step) == KEY
    assert (row.sent, row.retried, row.dead_lettered) == (12, 4, 2)
    assert (row.tracked, row.due, row.oldest_due, row.dead_letters) == (12, 3, 42, 1)
    assert row.lag_count == 5
    assert row.lag_mean == (0.3 + 0.4 + 20.0 + 0.2 + 2000.0) / 5
    assert row.lag_within(900.0) == 4 / 5  # the 2,000 s one was past max_lag (15m)
    html = followups_section(example_spec, [row])
    cells = [
        "loan_application/upload_documents</th>",
        "<td>2.0 h</td>",
        "<td>12</td>",
        "<td>4</td>",
        "<td>2</td>",
        "<td>12</td>",
        "<td>3</td>",
        "<td>42 s</td>",
        "<td>6.7 min</td>",
        "<td>80.0% (≤ 15.0 min)</td>",
    ]
    position = 0
    for cell in cells:
        position = html.index(cell, position) + len(cell)
    assert html.startswith('<section id="followups"><h2>Follow-ups</h2>')


def test_the_report_has_the_section_only_when_given_figures(
    example_spec: Spec, tmp_path: Path
) -> None:
    log = bank_log(example_spec, tmp_path / "events.jsonl")
    timeline = from_jsonl(example_spec, log)
    analysis = analyze(example_spec, timeline)
    plain = render_report(example_spec, timeline, analysis, tz=timezone.utc)
    assert 'id="followups"' not in plain
    rows = figures(example_spec, [_exposition(example_spec, 5, [0.3], GAUGES)])
    html = render_report(example_spec, timeline, analysis, tz=timezone.utc, followups=rows)
    assert html.count('<section id="followups">') == 1
