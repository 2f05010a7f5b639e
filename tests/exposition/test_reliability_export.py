"""Faults on the way out of the process, with the real bank app under uvicorn: the OTLP endpoint
down, then hanging, then back; a /metrics scraper that disconnects mid-response.

Each test: the app keeps serving, the failure is counted and logged a bounded number of times,
nothing already recorded is lost, and recovery needs nobody.
"""

from __future__ import annotations

import base64
import logging
import socket
import struct
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

import cxmetrics
from cxmetrics.instrument import state as _state
from cxmetrics.local.stack import free_port
from cxmetrics.propagation.codec import JourneyContext, decode
from cxmetrics.spec.load import load_spec
from examples.bank.app import SPEC_PATH, create_app
from tests.helpers.servers import serve_app

pytestmark = pytest.mark.slow  # every test here starts a server or a subprocess

TIME_SCALE = 0.001  # the bank's simulated latencies: 0.1-0.6 ms


@pytest.fixture
def fresh_errors() -> dict[str, int]:
    """Internal-error counts by component: each test's own, since ``configure()`` starts every
    configuration with its own counts."""
    return _state.STATE.errors


def steps_by(text: str, label: str) -> dict[str, float]:
    out: defaultdict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cx_steps_total" and sample.value:
                out[sample.labels[label]] += sample.value
    return dict(out)


def internal_errors(text: str) -> dict[str, float]:
    return {
        s.labels["component"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "cx_internal_errors_total"
    }


def wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# -- OTLP -----------------------------------------------------------------------------------


class OtlpReceiver:
    """A real OTLP/HTTP trace receiver: decodes each export request, answers 200."""

    def __init__(self, port: int) -> None:
        self.spans: list[dict[str, str]] = []
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            spans.append({a.key: a.value.string_value for a in span.attributes})
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def sdk_counts(reader: InMemoryMetricReader) -> dict[tuple[str, str], int]:
    """The SDK's own counts of spans: (metric, error.type or 'ok') → count."""
    out: Counter[tuple[str, str]] = Counter()
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name in (
                    "otel.sdk.exporter.span.exported",
                    "otel.sdk.processor.span.processed",
                ):
                    for point in metric.data.data_points:
                        assert point.attributes is not None and isinstance(point, NumberDataPoint)
                        error = str(point.attributes.get("error.type", "ok"))
                        if error != "ok":
                            error = "queue_full" if "queue_full" in error else "failed"
                        out[(metric.name.split(".")[2], error)] += int(point.value)
    return dict(out)


def test_otlp_endpoint_down_then_hanging_then_back(
    fresh_errors: dict[str, int], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    port = free_port()  # nothing listens here yet: the endpoint is down
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{port}/v1/traces",
        timeout=3.0,
        compression=Compression.NoCompression,
        meter_provider=meters,
    )
    processor = BatchSpanProcessor(
        exporter,
        max_queue_size=64,
        max_export_batch_size=16,
        schedule_delay_millis=50,
        meter_provider=meters,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "bank"}))
    provider.add_span_processor(processor)
    app = create_app(time_scale=TIME_SCALE, seed=3)
    cxmetrics.configure(
        load_spec(SPEC_PATH).scaled(TIME_SCALE),
        registry=app.state.registry,
        spans="always",
        tracer=provider.get_tracer("bank"),
        strict=True,
    )
    sent: Counter[str] = Counter()
    slowest = 0.0
    hanging: socket.socket | None = None
    receiver: OtlpReceiver | None = None
    try:
        with serve_app(app, free_port()) as url, httpx.Client(base_url=url) as client:

            def requests(n: int, channel: str) -> None:
                nonlocal slowest
                for _ in range(n):
                    started = time.monotonic()
                    response = client.get("/bill/login", headers={"x-cx-channel": channel})
                    slowest = max(slowest, time.monotonic() - started)
                    assert response.status_code == 200
                    sent[channel] += 1

            with caplog.at_level(logging.WARNING):
                requests(100, "app")  # endpoint down: connection refused
                wait_for(lambda: sdk_counts(reader).get(("exporter", "failed"), 0) > 0)
                hanging = socket.socket()  # accepts (in the backlog) and never answers
                hanging.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                hanging.bind(("127.0.0.1", port))
                hanging.listen(16)
                time.sleep(0.2)
                requests(150, "phone")  # the exporter is stuck for its 3 s timeout meanwhile
                hanging.close()  # the stuck export is reset; the endpoint comes back
                hanging = None
                receiver = OtlpReceiver(port)
                assert provider.force_flush(10_000)
                before = len(receiver.spans)
                requests(30, "web")
                assert provider.force_flush(10_000)
            metrics = client.get("/metrics").text
    finally:
        if hanging is not None:
            hanging.close()
        provider.shutdown()
        if receiver is not None:
            receiver.close()
    assert slowest < 1.5  # never waited for the exporter's 3 s timeout
    # metrics: every request counted exactly, whatever happened to the spans
    assert steps_by(metrics, "channel") == {"app": 100.0, "phone": 150.0, "web": 30.0}
    # recovery: every span after the endpoint came back arrived
    assert receiver is not None
    recovered = Counter(s["cx.channel"] for s in receiver.spans[before:])
    assert recovered == {"web": 30}
    # accounting: each of the 280 spans was exported, failed with its batch, or dropped from the
    # full queue — and the SDK counted each (set OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true)
    counts = sdk_counts(reader)
    assert counts[("exporter", "ok")] == len(receiver.spans)
    assert (
        counts[("exporter", "ok")] + counts[("exporter", "failed")] == counts[("processor", "ok")]
    )
    assert counts[("processor", "ok")] + counts.get(("processor", "queue_full"), 0) == 280
    assert counts[("exporter", "failed")] > 0
    assert counts[("processor", "queue_full")] > 0  # bounded queue: dropped, never blocked
    # cxmetrics itself never failed; the SDK logged per export attempt, never per span
    assert fresh_errors == {}
    assert not [r for r in caplog.records if r.name == "cxmetrics"]
    sdk_logs = [r for r in caplog.records if r.name.startswith("opentelemetry")]
    assert 0 < len(sdk_logs) < 280 / 4
    meters.shutdown()


# -- /metrics scraper disconnecting mid-response --------------------------------------------


class Filler:
    """16 MB of exposition, so a scraper that leaves after 1 KB leaves mid-response."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("filler_bytes", "padding", labels=["blob"])
        for i in range(16):
            family.add_metric([f"{i}:" + "x" * (1 << 20)], 1.0)
        yield family


@contextmanager
def metrics_server(registry: Any, **kwargs: Any) -> Iterator[int]:
    httpd, thread = cxmetrics.start_http_server(0, registry=registry, **kwargs)
    try:
        yield httpd.server_port
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def leave_mid_response(port: int, credentials: bytes) -> int:
    """GET /metrics, read 1 KB, then reset the connection; returns the bytes read."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(
            b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic "
            + base64.b64encode(credentials)
            + b"\r\n\r\n"
        )
        data = b""
        while len(data) < 1024:
            chunk = sock.recv(1024 - len(data))
            assert chunk
            data += chunk
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return len(data)


def test_scraper_disconnecting_mid_response(
    fresh_errors: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(time_scale=TIME_SCALE, seed=4, spans="off")
    registry = app.state.registry
    registry.register(Filler())
    ids = []
    with (
        serve_app(app, free_port()) as url,
        httpx.Client(base_url=url) as client,
        metrics_server(registry, basic_auth=("prom", "pw")) as port,
        caplog.at_level(logging.ERROR, logger="cxmetrics"),
    ):

        def requests(n: int) -> None:
            for _ in range(n):
                response = client.get("/bill/login")
                assert response.status_code == 200
                context = decode(response.headers["baggage"])
                assert isinstance(context, JourneyContext)
                ids.append(context.journey_id)

        requests(40)
        for _ in range(5):
            assert leave_mid_response(port, b"prom:pw") == 1024
            requests(8)
        wait_for(lambda: fresh_errors.get("server") == 5)
        scrape = httpx.get(
            f"http://127.0.0.1:{port}/metrics",
            params=[("name[]", "cx_steps_total"), ("name[]", "cx_internal_errors_total")],
            auth=("prom", "pw"),
        )
    assert scrape.status_code == 200
    assert steps_by(scrape.text, "step") == {"login": 80.0}
    assert len(set(ids)) == 80
    assert internal_errors(scrape.text) == {"server": 5.0}
    logged = [r for r in caplog.records if "mid-response" in r.getMessage()]
    assert len(logged) == 1
