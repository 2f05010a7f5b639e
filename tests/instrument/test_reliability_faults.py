"""Faults inside the process, with real servers: an accuracy check whose values cannot be
compared, a spec that fails to load at start-up, a Prometheus registry name collision, the disk
full under the event log.

Each test: the app keeps serving, the failure is counted in ``cx_internal_errors_total`` and
logged once (not per request), nothing already recorded is lost, and recovery is automatic when
the fault clears.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import cxmetrics
from cxmetrics.exposition.eventlog import EventLog, read_events
from cxmetrics.instrument import state as _state
from cxmetrics.instrument.events import JourneyStarted, StepRecord
from cxmetrics.integrations.asgi import CxMiddleware
from cxmetrics.local.stack import free_port
from cxmetrics.propagation.codec import JourneyContext, decode
from cxmetrics.spec.load import load_spec
from cxmetrics.testing import Recording
from examples.bank.app import SPEC_PATH, create_app
from tests.helpers.paths import EXAMPLE_SPEC
from tests.helpers.servers import serve_app

TIME_SCALE = 0.001


@pytest.fixture
def fresh_errors() -> dict[str, int]:
    """Internal-error counts by component: each test's own, since ``configure()`` starts every
    configuration with its own counts."""
    return _state.STATE.errors


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted((k, v) for k, v in s.labels.items() if k != "service")): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name
    }


def steps_by_step(text: str) -> dict[str, float]:
    out: defaultdict[str, float] = defaultdict(float)
    for labels, value in samples(text, "cx_steps_total").items():
        if value:
            out[dict(labels)["step"]] += value
    return dict(out)


def cx_families(text: str) -> set[str]:
    return {f.name for f in text_string_to_metric_families(text) if f.name.startswith("cx_")}


def logged(caplog: Any, text: str) -> int:
    return sum(text in r.getMessage() for r in caplog.records if r.name == "cxmetrics")


def small_app(registry: CollectorRegistry, handlers: dict[str, Any]) -> Any:
    """A Starlette app behind cxmetrics' ASGI middleware, with ``/metrics`` for ``registry``."""

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type="text/plain")

    routes = [Route(path, handler) for path, handler in handlers.items()]
    app = Starlette(routes=[*routes, Route("/metrics", metrics)])
    return CxMiddleware(app, routes={"GET /bill/login": ("bill_inquiry", "login")})


# -- accuracy -------------------------------------------------------------------------------


class Money:
    """An amount type whose arithmetic and comparisons raise, as a foreign money type might."""

    def __init__(self, cents: int) -> None:
        self.cents = cents

    def _refuse(self, other: object) -> Any:
        raise TypeError("Money does not mix with other amounts")

    __sub__ = __rsub__ = __eq__ = __lt__ = __abs__ = _refuse


def test_accuracy_values_that_cannot_be_compared(
    fresh_errors: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    cxmetrics.configure(EXAMPLE_SPEC, registry=registry, spans="off", strict=True)

    async def detail(request: Request) -> Response:
        foreign = request.query_params.get("foreign") == "1"
        with cxmetrics.journey("bill_inquiry") as j, j.step("bill_detail") as s:
            if foreign:
                ok = s.reconcile("total_matches_details", expected=Money(100), actual=Money(100))
            else:
                ok = s.reconcile(
                    "total_matches_details", expected=Decimal("1.00"), actual=Decimal("1.00")
                )
        return JSONResponse({"reconciled": ok})

    def ledger_total() -> bool:
        raise LookupError("ledger unavailable")

    async def total(request: Request) -> Response:
        try:
            with cxmetrics.journey("bill_inquiry") as j, j.step("bill_total") as s:
                s.check("total_matches_details", ledger_total())  # the app's own failure
        except LookupError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse({})

    app = small_app(registry, {"/bill/detail": detail, "/bill/total": total})
    with (
        serve_app(app, free_port()) as url,
        httpx.Client(base_url=url) as client,
        caplog.at_level(logging.ERROR, logger="cxmetrics"),
    ):
        for _ in range(25):
            response = client.get("/bill/detail", params={"foreign": "1"})
            assert (response.status_code, response.json()) == (200, {"reconciled": False})
        for _ in range(10):
            response = client.get("/bill/total")
            assert (response.status_code, response.json()) == (503, {"error": "ledger unavailable"})
        for _ in range(5):  # nothing sticky: the next comparable values are checked as usual
            assert client.get("/bill/detail").json() == {"reconciled": True}
        text = client.get("/metrics").text
    steps = samples(text, "cx_steps_total")
    base = {
        "journey": "bill_inquiry",
        "channel": "app",
        "segment": "none",
        "timeliness": "satisfied",
    }
    assert steps[tuple(sorted({**base, "step": "bill_detail", "outcome": "ok"}.items()))] == 30
    assert steps[tuple(sorted({**base, "step": "bill_total", "outcome": "error"}.items()))] == 10
    checks = {
        dict(k)["result"]: v
        for k, v in samples(text, "cx_accuracy_checks_total").items()
        if dict(k)["check"] == "total_matches_details"
        and dict(k)["step"] == "bill_detail"
        and dict(k)["channel"] == "app"
    }
    assert checks == {"pass": 5.0, "fail": 0.0}  # the uncomparable ones are not guessed
    assert samples(text, "cx_internal_errors_total") == {(("component", "accuracy"),): 25.0}
    assert logged(caplog, "could not compare its values") == 1
    assert len(caplog.records) == 1


def test_reconcile_nan_does_not_poison_the_relative_error_sum(rec: Recording) -> None:
    with cxmetrics.journey("bill_inquiry") as j, j.step("bill_detail") as s:
        assert (
            s.reconcile("total_matches_details", expected=float("inf"), actual=float("inf"))
            is False
        )
    with cxmetrics.journey("bill_inquiry") as j, j.step("bill_detail") as s:
        s.reconcile("total_matches_details", expected=100, actual=99)
    labels = {"journey": "bill_inquiry", "step": "bill_detail", "check": "total_matches_details"}
    assert rec.value("cx_accuracy_relative_error_ratio_sum", **labels) == pytest.approx(1.01)


def test_check_with_a_value_whose_truth_raises_never_raises(rec: Recording) -> None:
    class Ambiguous:
        def __bool__(self) -> bool:
            raise ValueError("truth value is ambiguous")

    with cxmetrics.journey("bill_inquiry") as j, j.step("bill_detail") as s:
        assert s.check("total_matches_details", Ambiguous()) is False  # type: ignore[arg-type]
    assert rec.value("cx_internal_errors_total", component="accuracy") == 1


# -- the spec at start-up -------------------------------------------------------------------


def test_spec_that_fails_to_load_at_start_up_then_appears(
    fresh_errors: dict[str, int], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec_path = tmp_path / "cxmetrics.yaml"
    spec_path.write_text("service: bank_app\njourneys:\n  - name: bill_inquiry\n    steps: [\n")
    registry = CollectorRegistry()

    async def login(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = small_app(registry, {"/bill/login": login})
    with caplog.at_level(logging.WARNING, logger="cxmetrics"):
        assert cxmetrics.configure(spec_path, registry=registry, spans="off") is False
        assert cxmetrics.configure(spec_path, registry=registry, spans="off") is False  # a retry
        with serve_app(app, free_port()) as url, httpx.Client(base_url=url) as client:
            for _ in range(12):
                assert client.get("/bill/login").status_code == 200
            broken = client.get("/metrics").text
            assert not cxmetrics.is_configured()
            shutil.copy(EXAMPLE_SPEC, spec_path)  # the fault clears: a good spec is deployed
            client.get("/metrics")  # the next scrape loads it
            assert cxmetrics.is_configured()
            for _ in range(9):
                assert client.get("/bill/login").status_code == 200
            fixed = client.get("/metrics").text
    # while broken: the app served, the failure was exposed (and nothing else was)
    assert cx_families(broken) == {"cx_internal_errors"}
    assert samples(broken, "cx_internal_errors_total") == {(("component", "spec"),): 2.0}
    assert logged(caplog, "the spec cannot be used") == 1
    # fixed: recording, the failure count still visible, the steps counted exactly
    assert steps_by_step(fixed) == {"login": 9.0}
    assert samples(fixed, "cx_internal_errors_total") == {(("component", "spec"),): 2.0}
    assert "cx_spec_info" in cx_families(fixed)
    assert logged(caplog, "loads now; recording") == 1


def test_spec_that_loads_but_cannot_be_bound_never_raises(
    fresh_errors: dict[str, int], tmp_path: Path
) -> None:
    spec_path = tmp_path / "cxmetrics.yaml"
    spec_path.write_text(
        "version: 1\nservice: bank_app\nchannels: [app]\n"
        "journeys: [{name: bill_inquiry, steps: [{name: login, target: .inf}]}]\n"
    )
    registry = CollectorRegistry()
    assert cxmetrics.configure(spec_path, registry=registry, spans="off") is False
    assert not cxmetrics.is_configured()
    text = generate_latest(registry).decode()
    assert samples(text, "cx_internal_errors_total") == {(("component", "spec"),): 1.0}
    with pytest.raises(cxmetrics.CxError):
        cxmetrics.configure(spec_path, registry=CollectorRegistry(), strict=True)
    spec_path.write_text(spec_path.read_text().replace(".inf", "800ms"))
    generate_latest(registry)  # the scrape after the file changed loads it
    assert cxmetrics.is_configured()
    with cxmetrics.journey("bill_inquiry") as j, j.step("login"):
        pass
    assert steps_by_step(generate_latest(registry).decode()) == {"login": 1.0}


# -- registry collision ---------------------------------------------------------------------


@pytest.mark.slow
def test_registry_name_collision_then_cleared(
    fresh_errors: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(time_scale=TIME_SCALE, seed=6, spans="off")
    exposed = CollectorRegistry()  # the app's main registry, where someone else owns cx_steps
    squatter = PromCounter("cx_steps", "an older metric of the same name", registry=exposed)
    httpd, thread = cxmetrics.start_http_server(0, registry=exposed)
    metrics = f"http://127.0.0.1:{httpd.server_port}/metrics"
    try:
        with caplog.at_level(logging.WARNING, logger="cxmetrics"):
            assert (
                cxmetrics.configure(
                    load_spec(SPEC_PATH).scaled(TIME_SCALE), registry=exposed, spans="off"
                )
                is True
            )
            with serve_app(app, free_port()) as url, httpx.Client(base_url=url) as client:
                for _ in range(30):
                    assert client.get("/bill/login").status_code == 200
                during = httpx.get(metrics).text
                exposed.unregister(squatter)  # the fault clears
                httpx.get(metrics)  # the next scrape puts cxmetrics' collector in whole
                for _ in range(20):
                    assert client.get("/bill/login").status_code == 200
                after = httpx.get(metrics).text
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    # during the collision: the app served, everything but the colliding family was exposed,
    # the failure was counted and logged once
    assert samples(during, "cx_steps_total") == {(): 0.0}  # the squatter's, untouched
    counts = samples(during, "cx_step_duration_seconds_count")
    assert sum(counts.values()) == 30
    assert samples(during, "cx_internal_errors_total") == {(("component", "registry"),): 1.0}
    assert logged(caplog, "registry collision on cx_steps, cx_steps_created, cx_steps_total") == 1
    # cleared: the steps recorded during the collision were not lost
    assert steps_by_step(after) == {"login": 50.0}
    assert sum(samples(after, "cx_step_duration_seconds_count").values()) == 50
    assert logged(caplog, "collision cleared") == 1


# -- disk full under the event log ----------------------------------------------------------


def point(link: Path, target: str) -> None:
    """Atomically re-point the symlink ``link`` at ``target``."""
    tmp = link.with_suffix(".tmp")
    os.symlink(target, tmp)
    os.replace(tmp, link)


def open_fds_to(path: Path) -> list[int]:
    fds = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == str(path):
                fds.append(int(name))
        except OSError:
            pass
    return fds


def test_event_log_disk_full_then_cleared(
    fresh_errors: dict[str, int], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real, link = tmp_path / "events.jsonl", tmp_path / "log.jsonl"
    os.symlink(real, link)
    app = create_app(time_scale=TIME_SCALE, seed=8, spans="off", event_log=str(link))
    ids: list[str] = []
    with (
        serve_app(app, free_port()) as url,
        httpx.Client(base_url=url) as client,
        caplog.at_level(logging.WARNING, logger="cxmetrics"),
    ):

        def requests(n: int, pause: float = 0.0) -> None:
            for _ in range(n):
                response = client.get("/bill/login")
                assert response.status_code == 200
                context = decode(response.headers["baggage"])
                assert isinstance(context, JourneyContext)
                ids.append(context.journey_id)
                time.sleep(pause)

        requests(150)  # 300 events: 256 written, 44 buffered
        assert real.stat().st_size > 0
        [fd] = open_fds_to(real)
        # The disk fills: writes to the open file and to anything opened at the path get ENOSPC.
        point(link, "/dev/full")
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, fd)
        os.close(full)
        written_before = real.read_bytes()
        started = time.monotonic()
        requests(110)  # the buffer reaches 256 events: the first write fails
        requests(60, pause=0.03)  # about 2 s more: one failed retry a second
        failing_for = time.monotonic() - started
        assert fresh_errors["eventlog"] >= 2
        point(link, str(real))  # space again
        time.sleep(1.1)
        requests(50)  # the first event after the retry delay writes everything kept meanwhile
        assert logged(caplog, "writable again") == 1
    counted = dict(fresh_errors)  # shutdown() forgets the configuration's counts
    cxmetrics.shutdown()  # flushes the rest
    events = list(read_events(real))
    assert real.read_bytes().startswith(written_before)  # what was written before is intact
    assert len(events) == 2 * 370
    assert [type(e) for e in events] == [JourneyStarted, StepRecord] * 370
    assert [e.journey_id for e in events if isinstance(e, StepRecord)] == ids
    assert counted["eventlog"] <= failing_for / 1.0 + 2  # per retry, not per request
    assert "eventlog_dropped" not in counted
    assert logged(caplog, "cannot write event log") == 1


def test_event_log_buffer_is_bounded_and_every_event_accounted_for(
    fresh_errors: dict[str, int], tmp_path: Path
) -> None:
    real, link = tmp_path / "events.jsonl", tmp_path / "log.jsonl"
    os.symlink("/dev/full", link)
    log = EventLog(link, flush_every=1, retry_after=3600, max_buffer_bytes=4096)
    cxmetrics.configure(
        EXAMPLE_SPEC, registry=CollectorRegistry(), spans="off", sinks=[log], strict=True
    )
    for _ in range(40):
        with cxmetrics.journey("bill_inquiry") as j, j.step("bill_total"):
            pass
    assert fresh_errors["eventlog"] == 1  # one failed write; no retry before retry_after
    dropped = fresh_errors["eventlog_dropped"]
    assert 0 < dropped < 80
    point(link, str(real))
    log.flush()  # an explicit flush retries at once
    kept = list(read_events(real))
    assert len(kept) + dropped == 80
    assert [type(e) for e in kept[:2]] == [JourneyStarted, StepRecord]  # oldest kept, in order
    log.close()
