"""Journeys across requests, processes and channels through the framework integrations, with
real servers (uvicorn for ASGI, a real WSGI server for Flask) and real clients over loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from opentelemetry import propagate
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context
from prometheus_client.parser import text_string_to_metric_families

from cxmetrics.local.stack import free_port
from cxmetrics.testing import Recording
from tests.helpers.paths import EXAMPLE_SPEC, ROOT

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse


@contextmanager
def service(module: str, log: Path, *args: str) -> Iterator[str]:
    port = free_port()
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", f"tests.helpers.{module}", str(EXAMPLE_SPEC), str(port), *args],
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/metrics", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{module} did not start: {log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def samples(url: str, family: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = httpx.get(url + "/metrics").text
    out = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if sample.name == family and sample.value:
                kept = {k: v for k, v in sample.labels.items() if k != "service"}
                out[tuple(sorted(kept.items()))] = sample.value
    return out


def labels(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


@pytest.mark.slow
def test_three_step_journey_across_two_services_in_two_processes(tmp_path: Path) -> None:
    spans_a, spans_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    root = SpanContext(
        trace_id=0x1234 << 64 | 0x5678,
        span_id=0x42,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    headers: dict[str, str] = {}
    propagate.inject(headers, context=set_span_in_context(NonRecordingSpan(root)))
    with (
        service("service_b", tmp_path / "b.log", str(spans_b)) as b_url,
        service("service_a", tmp_path / "a.log", str(spans_a), b_url) as a_url,
    ):
        r1 = httpx.post(a_url + "/bill/login", headers=headers)
        assert r1.status_code == 200
        headers["baggage"] = r1.headers["baggage"]
        r2 = httpx.get(a_url + "/bill/total", headers=headers)
        body = r2.json()
        headers["baggage"] = r2.headers["baggage"]
        r3 = httpx.get(b_url + "/bill/detail", headers=headers)
        assert r3.status_code == 200
        # downstream call from A carried the journey instance and the trace
        assert body["audit"] == {
            "journey_id": body["journey_id"],
            "last_step": "bill_total",
            "trace_id": format(root.trace_id, "032x"),
        }
        a_steps, b_steps = samples(a_url, "cx_steps_total"), samples(b_url, "cx_steps_total")
        a_trans = samples(a_url, "cx_step_transitions_total")
        b_trans = samples(b_url, "cx_step_transitions_total")
        a_started = samples(a_url, "cx_journeys_started_total")
        b_started = samples(b_url, "cx_journeys_started_total")
    app = {"channel": "app", "segment": "none"}
    ok = {**app, "journey": "bill_inquiry", "outcome": "ok", "timeliness": "satisfied"}
    assert a_steps == {labels(**ok, step="login"): 1.0, labels(**ok, step="bill_total"): 1.0}
    assert b_steps == {labels(**ok, step="bill_detail"): 1.0}
    assert a_trans == {
        labels(**app, journey="bill_inquiry", from_step="login", to_step="bill_total"): 1.0
    }
    assert b_trans == {
        labels(**app, journey="bill_inquiry", from_step="bill_total", to_step="bill_detail"): 1.0
    }
    assert a_started == {labels(**app, journey="bill_inquiry"): 1.0}
    assert b_started == {}
    spans = [
        json.loads(line) for path in (spans_a, spans_b) for line in path.read_text().splitlines()
    ]
    step_spans = {s["name"]: s for s in spans}
    assert sorted(step_spans) == [
        "cx bill_inquiry/bill_detail",
        "cx bill_inquiry/bill_total",
        "cx bill_inquiry/login",
    ]
    trace_id = format(root.trace_id, "032x")
    assert {s["trace_id"] for s in spans} == {trace_id}
    assert {s["parent_id"] for s in spans} == {format(root.span_id, "016x")}
    assert {s["attributes"]["cx.journey.id"] for s in spans} == {body["journey_id"]}
    assert (
        step_spans["cx bill_inquiry/bill_detail"]["attributes"]["cx.step.previous"] == "bill_total"
    )


# -- in-process servers for the remaining behaviours --------------------------------------------


@pytest.fixture
def asgi_app(rec: Recording) -> Starlette:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from cxmetrics.integrations.asgi import CxMiddleware

    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = {
        "POST /bill/login": ("bill_inquiry", "login"),
        "GET /bill/total": ("bill_inquiry", "bill_total"),
        "GET /bill/detail": ("bill_inquiry", "bill_detail"),
    }
    app = Starlette(routes=[Route(p.split()[1], ok, methods=[p.split()[0]]) for p in routes])
    app.add_middleware(CxMiddleware, routes=routes, cookie="cx_journey")
    return app


def test_journey_moved_from_app_to_phone_is_one_instance(
    rec: Recording, asgi_app: Starlette
) -> None:
    from tests.helpers.servers import serve_app

    with serve_app(asgi_app, free_port()) as url, httpx.Client(base_url=url) as client:
        r = client.post("/bill/login", headers={"x-cx-channel": "app"})
        r = client.get(
            "/bill/total", headers={"baggage": r.headers["baggage"], "x-cx-channel": "phone"}
        )
        client.get("/bill/detail", headers={"baggage": r.headers["baggage"]})
    assert rec.value("cx_journeys_started_total", journey="bill_inquiry", channel="app") == 1
    assert rec.value("cx_journeys_started_total", journey="bill_inquiry", channel="phone") == 0
    assert (
        rec.value(
            "cx_channel_switches_total",
            journey="bill_inquiry",
            from_channel="app",
            to_channel="phone",
        )
        == 1
    )
    steps = rec.recorder.steps
    assert [(s.step, s.channel) for s in steps] == [
        ("login", "app"),
        ("bill_total", "phone"),
        ("bill_detail", "phone"),
    ]
    assert len({s.journey_id for s in steps}) == 1
    assert (
        rec.value(
            "cx_step_transitions_total",
            journey="bill_inquiry",
            from_step="bill_total",
            to_step="bill_detail",
        )
        == 1
    )


def test_cookie_carries_the_journey_and_no_context_starts_new_instances(
    rec: Recording, asgi_app: Starlette
) -> None:
    from tests.helpers.servers import serve_app

    with serve_app(asgi_app, free_port()) as url:
        with httpx.Client(base_url=url) as browser:  # keeps cookies like a browser
            browser.post("/bill/login")
            browser.get("/bill/total")
        for _ in range(2):
            httpx.get(url + "/bill/detail")  # no context at all: new instances
    steps = rec.recorder.steps
    assert [s.step for s in steps] == ["login", "bill_total", "bill_detail", "bill_detail"]
    assert steps[0].journey_id == steps[1].journey_id
    assert len({steps[1].journey_id, steps[2].journey_id, steps[3].journey_id}) == 3
    assert rec.value("cx_journeys_started_total", journey="bill_inquiry", channel="app") == 3


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"baggage": "cx.journey=evil_journey,cx.id=zz"}, "bad_id"),
        (
            {"baggage": "cx.journey=bill_inquiry,cx.id=" + "a" * 32 + ",pad=" + "x" * 10_000},
            "oversized",
        ),
        ({"cx-journey": "cx.journey=%27%3B%20DROP,cx.id=" + "b" * 32}, "bad_journey"),
        (
            {"baggage": "cx.journey=bill_inquiry,cx.id=" + "c" * 32 + ",cx.step=${jndi:x}"},
            "bad_step",
        ),
    ],
)
def test_malformed_or_oversized_contexts_start_a_new_instance(
    rec: Recording, asgi_app: Starlette, headers: dict[str, str], reason: str
) -> None:
    from tests.helpers.servers import serve_app

    with serve_app(asgi_app, free_port()) as url:
        r = httpx.get(url + "/bill/detail", headers=headers)
        exposition = httpx.get(url + "/bill/detail").text  # still serving
    assert r.status_code == 200 and exposition
    assert rec.value("cx_journey_context_rejected_total", reason=reason) == 1
    assert rec.value("cx_journeys_started_total", journey="bill_inquiry", channel="app") == 2
    from prometheus_client import generate_latest

    text = generate_latest(rec.registry).decode()
    assert "evil" not in text and "DROP" not in text and "jndi" not in text and "cccc" not in text


@pytest.mark.slow
def test_wsgi_middleware_under_a_real_server(rec: Recording) -> None:
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from flask import Flask

    from cxmetrics.integrations.wsgi import CxMiddleware

    app = Flask("t")

    @app.post("/transfer/payee")
    def payee() -> str:
        return "ok"

    @app.post("/transfer/amount")
    def amount() -> str:
        import cxmetrics

        with cxmetrics.journey("transfer") as j, j.step("amount"):
            return "ok"

    app.wsgi_app = CxMiddleware(  # type: ignore[method-assign]  # Flask's documented middleware pattern
        app.wsgi_app, routes={"POST /transfer/payee": ("transfer", "payee")}
    )

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

    server = make_server("127.0.0.1", free_port(), app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        r = httpx.post(url + "/transfer/payee", headers={"x-cx-channel": "web"})
        httpx.post(url + "/transfer/amount", headers={"baggage": r.headers["baggage"]})
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert (
        rec.value(
            "cx_step_transitions_total", journey="transfer", from_step="payee", to_step="amount"
        )
        == 1
    )
    assert [(s.step, s.channel) for s in rec.recorder.steps] == [
        ("payee", "web"),
        ("amount", "web"),
    ]


def test_background_work_is_attributed_to_the_right_instance(rec: Recording) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import cxmetrics

    def detail_in_a_thread() -> str | None:
        with cxmetrics.step("bill_inquiry", "bill_detail"):
            current = cxmetrics.current_journey()
            assert current is not None
            return current.journey_id

    with cxmetrics.journey("bill_inquiry") as j:
        with j.step("bill_total"):
            pass
        with ThreadPoolExecutor(2) as pool:
            seen = pool.submit(cxmetrics.bind(detail_in_a_thread)).result()
    assert seen == j.journey_id

    async def later() -> None:
        async with cxmetrics.journey("transfer") as t:
            handle = t.start_step("payee")
            loop = asyncio.get_running_loop()
            done = loop.create_future()

            def finish() -> None:
                handle.finish()
                done.set_result(t.journey_id)

            loop.call_later(0.01, finish)
            await asyncio.create_task(asyncio.sleep(0))

            async def task() -> None:
                current = cxmetrics.current_journey()
                assert current is not None
                with current.step("amount"):
                    pass

            await done
            await asyncio.create_task(task())

    asyncio.run(later())
    steps = rec.recorder.steps
    assert [(s.step, s.previous_step) for s in steps] == [
        ("bill_total", None),
        ("bill_detail", "bill_total"),
        ("payee", None),
        ("amount", "payee"),
    ]
    assert steps[0].journey_id == steps[1].journey_id != steps[2].journey_id == steps[3].journey_id
