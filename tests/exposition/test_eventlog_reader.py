"""``read_log``: plausible but far-off times are left out by the bulk of the log, not allocated."""

from __future__ import annotations

from pathlib import Path

from cxmetrics.exposition.eventlog import EventLog, read_log
from cxmetrics.instrument.events import JourneyStarted

T0 = 1_700_000_000.0


def _log(path: Path, times: list[float]) -> Path:
    log = EventLog(path, flush_interval=0)
    for k, t in enumerate(times):
        log.emit(JourneyStarted(t, "bill_inquiry", "app", f"{k:032x}"))
    log.close()
    return path


def test_a_record_far_outside_the_bulk_is_skipped_and_named(tmp_path: Path) -> None:
    times = [T0 + k for k in range(500)]
    times.insert(200, T0 - 300 * 86400.0)  # plausible on its own, 300 days before the rest
    read = read_log(_log(tmp_path / "e.jsonl", times))
    assert [e.time for e in read.events] == [T0 + k for k in range(500)]
    assert (read.records, read.skipped) == (501, 1)
    assert read.problems == [
        f"{tmp_path / 'e.jsonl'}:201: time {T0 - 300 * 86400.0:.0f} is far outside the bulk of "
        "the log"
    ]


def test_a_log_spread_evenly_over_months_is_kept_whole(tmp_path: Path) -> None:
    times = [T0 + k * 3600.0 for k in range(24 * 90)]  # an event an hour for 90 days
    read = read_log(_log(tmp_path / "e.jsonl", times))
    assert (len(read.events), read.skipped, read.problems) == (24 * 90, 0, [])
