"""Spans through the OpenTelemetry SDK's in-memory exporter: attributes, events, span modes,
and exemplars on the duration histogram."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import cast

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, Tracer
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

import cxmetrics
from cxmetrics.instrument import steps as steps_module
from cxmetrics.instrument.journeys import JourneyInstance
from cxmetrics.instrument.runtime import SpanMode
from cxmetrics.spec.model import Spec

Otel = tuple[Tracer, InMemorySpanExporter]


@pytest.fixture
def otel() -> Iterator[Otel]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def configure(spec: Spec, tracer: Tracer, spans: SpanMode) -> CollectorRegistry:
    registry = CollectorRegistry()
    cxmetrics.configure(spec, registry=registry, spans=spans, tracer=tracer, strict=True)
    return registry


def fixed_durations(monkeypatch: pytest.MonkeyPatch, durations: list[float]) -> None:
    ticks = iter([t for d in durations for t in (0.0, d)])
    monkeypatch.setattr(steps_module, "_perf", lambda: next(ticks))


def run_journey() -> JourneyInstance:
    with cxmetrics.journey("bill_inquiry", channel="app") as j:
        with j.step("bill_total"):
            pass
        with j.step("bill_detail") as s:
            s.reconcile("total_matches_details", expected=100, actual=99)
        try:
            with j.step("login"):
                raise KeyError("boom")
        except KeyError:
            pass
    return j


def test_always_mode_spans_carry_cx_attributes_events_and_errors(
    example_spec: Spec, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracer, exporter = otel
    configure(example_spec, tracer, "always")
    fixed_durations(monkeypatch, [0.5, 2.0, 0.1])
    j = run_journey()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert sorted(spans) == [
        "cx bill_inquiry/bill_detail",
        "cx bill_inquiry/bill_total",
        "cx bill_inquiry/login",
    ]
    total = spans["cx bill_inquiry/bill_total"]
    assert total.attributes is not None
    assert total.end_time is not None and total.start_time is not None
    assert dict(total.attributes) == {
        "cx.journey.name": "bill_inquiry",
        "cx.step.name": "bill_total",
        "cx.channel": "app",
        "cx.step.target_s": 1.0,
        "cx.journey.id": j.journey_id,
        "cx.timeliness": "satisfied",
    }
    assert total.end_time - total.start_time > 0
    detail = spans["cx bill_inquiry/bill_detail"]
    assert detail.attributes is not None
    assert detail.attributes["cx.step.previous"] == "bill_total"
    assert detail.attributes["cx.timeliness"] == "tolerating"
    assert list(cast(Sequence[str], detail.attributes["cx.accuracy.failed_checks"])) == [
        "total_matches_details"
    ]
    assert [(e.name, dict(e.attributes or {})) for e in detail.events] == [
        (
            "cx.accuracy.check_failed",
            {"cx.accuracy.check": "total_matches_details", "cx.accuracy.relative_error": 0.01},
        )
    ]
    login = spans["cx bill_inquiry/login"]
    assert login.status.status_code == StatusCode.ERROR
    assert login.status.description == "KeyError"
    assert [e.name for e in login.events] == ["exception"]


def test_always_mode_children_nest_under_the_step_span(example_spec: Spec, otel: Otel) -> None:
    tracer, exporter = otel
    configure(example_spec, tracer, "always")
    with cxmetrics.journey("bill_inquiry") as j, j.step("bill_total"):
        with tracer.start_as_current_span("db query"):
            pass
    spans = {s.name: s for s in exporter.get_finished_spans()}
    parent = spans["db query"].parent
    step = spans["cx bill_inquiry/bill_total"].context
    assert parent is not None and step is not None
    assert parent.span_id == step.span_id


def test_interesting_mode_spans_only_frustrated_inaccurate_or_failed_steps(
    example_spec: Spec, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracer, exporter = otel
    configure(example_spec, tracer, "interesting")
    fixed_durations(monkeypatch, [0.5, 2.0, 0.1, 5.0])
    j = run_journey()
    with j.step("bill_total"):  # 5 s > 4 × 1 s: frustrated
        pass
    spans = exporter.get_finished_spans()
    assert [
        (s.name, (s.attributes or {})["cx.timeliness"], s.status.status_code) for s in spans
    ] == [
        ("cx bill_inquiry/bill_detail", "tolerating", StatusCode.UNSET),
        ("cx bill_inquiry/login", "satisfied", StatusCode.ERROR),
        ("cx bill_inquiry/bill_total", "frustrated", StatusCode.UNSET),
    ]
    frustrated = spans[2]
    assert frustrated.end_time is not None and frustrated.start_time is not None
    assert frustrated.end_time - frustrated.start_time == 5_000_000_000
    assert [e.name for e in spans[0].events] == ["cx.accuracy.check_failed"]


def test_interesting_spans_are_children_of_the_request_span(example_spec: Spec, otel: Otel) -> None:
    tracer, exporter = otel
    configure(example_spec, tracer, "interesting")
    with tracer.start_as_current_span("GET /bill/detail") as request:
        with cxmetrics.journey("bill_inquiry") as j, j.step("bill_detail") as s:
            s.check("total_matches_details", False)
    step_span = next(s for s in exporter.get_finished_spans() if s.name.startswith("cx "))
    assert step_span.parent is not None
    assert step_span.parent.span_id == request.get_span_context().span_id


def test_off_mode_emits_no_spans(example_spec: Spec, otel: Otel) -> None:
    tracer, exporter = otel
    configure(example_spec, tracer, "off")
    run_journey()
    assert exporter.get_finished_spans() == ()


def test_exemplars_carry_the_sampled_trace_id(example_spec: Spec, otel: Otel) -> None:
    tracer, _ = otel
    registry = configure(example_spec, tracer, "always")
    with cxmetrics.journey("bill_inquiry") as j, j.step("bill_total"):
        trace_id = format(
            __import__("opentelemetry.trace", fromlist=["x"])
            .get_current_span()
            .get_span_context()
            .trace_id,
            "032x",
        )
    text = openmetrics(registry).decode()
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("cx_step_duration_seconds_bucket") and "# {" in line
    ]
    assert len(lines) == 1
    assert 'step="bill_total"' in lines[0]
    assert f'# {{trace_id="{trace_id}"}}' in lines[0]


def test_interesting_mode_takes_exemplars_from_the_current_sampled_span(
    example_spec: Spec, otel: Otel
) -> None:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    tracer, _ = otel
    registry = configure(example_spec, tracer, "interesting")

    def exemplar_lines() -> list[str]:
        text = openmetrics(registry).decode()
        return [
            line
            for line in text.splitlines()
            if line.startswith("cx_step_duration_seconds_bucket") and "# {" in line
        ]

    unsampled = SpanContext(0xAB, 0xCD, is_remote=True, trace_flags=TraceFlags(0))
    with trace.use_span(NonRecordingSpan(unsampled)):
        with cxmetrics.journey("bill_inquiry") as j, j.step("bill_total"):
            pass
    with cxmetrics.journey("bill_inquiry") as j, j.step("bill_total"):
        pass
    assert exemplar_lines() == []  # no span, or one not sampled: no exemplar
    with tracer.start_as_current_span("GET /bill/total") as request:
        with cxmetrics.journey("bill_inquiry") as j, j.step("bill_total"):
            pass
    trace_id = format(request.get_span_context().trace_id, "032x")
    lines = exemplar_lines()
    assert len(lines) == 1 and 'step="bill_total"' in lines[0]
    assert f'# {{trace_id="{trace_id}"}}' in lines[0]
