"""The event log keeps what the app recorded: at exit, at SIGTERM, across reconfiguration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

import cxmetrics
from cxmetrics.exposition.eventlog import EventLog, read_events
from cxmetrics.instrument.events import JourneyStarted, StepRecord
from cxmetrics.local.stack import free_port
from cxmetrics.testing import Recorder
from tests.helpers.paths import EXAMPLE_SPEC, ROOT

PYTHON = str(ROOT / ".venv" / "bin" / "python")


def _kinds(path: Path) -> list[str]:
    return [json.loads(line)["kind"] for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_a_ten_step_script_leaves_the_whole_log(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    script = textwrap.dedent(
        f"""
        import cxmetrics
        from prometheus_client import CollectorRegistry
        cxmetrics.configure({str(EXAMPLE_SPEC)!r}, registry=CollectorRegistry(),
                            spans="off", event_log={str(log)!r})
        with cxmetrics.journey("bill_inquiry") as j:
            for _ in range(10):
                with j.step("login"):
                    pass
        """
    )
    done = subprocess.run([PYTHON, "-c", script], cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert _kinds(log) == ["journey"] + ["step"] * 10


@pytest.mark.slow
def test_uvicorn_stopped_by_sigterm_under_load_keeps_every_completed_step(tmp_path: Path) -> None:
    log, completed = tmp_path / "events.jsonl", tmp_path / "completed.txt"
    port = free_port()
    env = {**os.environ, "CX_TEST_LOG": str(log), "CX_TEST_COMPLETED": str(completed)}
    with (tmp_path / "stderr.txt").open("wb") as errors:
        server = subprocess.Popen(
            [PYTHON, "-m", "uvicorn", "tests.helpers.durable_app:app", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    try:
        url = f"http://127.0.0.1:{port}/step"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the app did not start") from None
                time.sleep(0.1)
        stop = threading.Event()
        answered = [0] * 4

        def load(k: int) -> None:
            with httpx.Client(timeout=5) as client:
                while not stop.is_set():
                    try:
                        client.get(url)
                        answered[k] += 1
                    except httpx.HTTPError:
                        time.sleep(0.01)

        threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(2.0)
        server.send_signal(signal.SIGTERM)  # while the load goes on
        server.wait(20)
        stop.set()
        for thread in threads:
            thread.join(10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    ids = completed.read_text().split()
    assert sum(answered) > 50 and len(ids) >= sum(answered)
    assert log.exists(), (tmp_path / "stderr.txt").read_text()
    logged = [e.journey_id for e in read_events(log) if isinstance(e, StepRecord)]
    assert sorted(logged) == sorted(ids)


def _open_logs(directory: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    out = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(directory)):
            out.append(target)
    return out


def test_reconfiguring_from_two_threads_under_traffic_leaks_and_drops_nothing(
    tmp_path: Path,
) -> None:
    log = tmp_path / "events.jsonl"
    recorder = Recorder()
    registry = CollectorRegistry()

    def configure() -> None:
        cxmetrics.configure(
            EXAMPLE_SPEC, registry=registry, spans="off", sinks=[recorder], event_log=log
        )

    configure()
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            with cxmetrics.journey("bill_inquiry") as j, j.step("login"):
                pass

    def reconfigure() -> None:
        for _ in range(40):
            configure()

    workers = [threading.Thread(target=traffic) for _ in range(2)]
    configurers = [threading.Thread(target=reconfigure) for _ in range(2)]
    for thread in workers + configurers:
        thread.start()
    for thread in configurers:
        thread.join(60)
    stop.set()
    for thread in workers:
        thread.join(10)
    cxmetrics.shutdown()
    assert _open_logs(tmp_path) == []
    written = list(read_events(log))
    assert len(recorder.events) > 1000
    assert sorted(map(repr, written)) == sorted(map(repr, recorder.events))
    assert sum(isinstance(e, JourneyStarted) for e in written) == len(recorder.journeys)
    assert threading.active_count() == 1 + sum(t.is_alive() for t in threading.enumerate()[1:])


def test_events_are_flushed_on_an_interval_without_more_traffic(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl", flush_interval=0.2)
    try:
        log.emit(JourneyStarted(1.0, "bill_inquiry", "app", "0" * 32))
        deadline = time.monotonic() + 5
        while not (tmp_path / "events.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _kinds(tmp_path / "events.jsonl") == ["journey"]
    finally:
        log.close()


def test_the_log_rotates_by_size_and_keeps_every_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, flush_every=1, max_bytes=1000, backups=3)
    t0 = 1_700_000_000.0
    for k in range(40):
        log.emit(JourneyStarted(t0 + k, "bill_inquiry", "app", f"{k:032x}"))
    log.close()
    files = [path.with_name(f"events.jsonl.{n}") for n in (3, 2, 1)] + [path]
    sizes = [f.stat().st_size for f in files]
    assert all(size <= 1000 for size in sizes)
    times = [e.time for f in files for e in read_events(f)]
    assert times == [t0 + k for k in range(40 - len(times), 40)]
    # 128-byte lines: 7 to a file; 40 = 5 full files + 5 lines, the 2 oldest files rotated out
    assert [len(f.read_bytes().splitlines()) for f in files] == [7, 7, 7, 5]
    assert len(times) == 26
    assert not path.with_name("events.jsonl.4").exists()


def test_a_full_buffer_drops_and_counts(tmp_path: Path) -> None:
    from cxmetrics.instrument.state import STATE

    before = STATE.errors.get("eventlog_dropped", 0)
    log = EventLog("/dev/full", max_buffer_bytes=300, flush_interval=60)
    for k in range(10):
        log.emit(JourneyStarted(float(k), "bill_inquiry", "app", f"{k:032x}"))
    dropped = STATE.errors.get("eventlog_dropped", 0) - before
    log.close()
    lost = STATE.errors.get("eventlog_dropped", 0) - before
    assert log.dropped == lost == 10 and dropped >= 6
