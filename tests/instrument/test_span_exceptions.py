"""Spans carry an exception's type and a redacted message, never the app's raw message or stack
(card numbers, IBANs, amounts, customer ids), unless the app opts in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry

import cxmetrics
from cxmetrics.instrument.runtime import SpanMode
from cxmetrics.spec.model import Spec

MESSAGE = (
    "payment refused for customer C-0042137 card 4111 1111 1111 1111 "
    "iban DE89370400440532013000 amount 12,345.67 EUR mail ann@example.com"
)
SECRETS = ("0042137", "4111", "DE89", "370400440532013000", "12,345.67", "345", "ann@example.com")


class PaymentError(Exception):
    pass


@pytest.fixture
def otel() -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def _failing_step() -> None:
    with cxmetrics.journey("bill_inquiry") as j:
        try:
            with j.step("login"):
                raise PaymentError(MESSAGE)
        except PaymentError:
            pass


@pytest.mark.parametrize("mode", ["always", "interesting"])
def test_span_exception_has_type_and_redacted_message_by_default(
    example_spec: Spec, otel: tuple[Tracer, InMemorySpanExporter], mode: SpanMode
) -> None:
    tracer, exporter = otel
    cxmetrics.configure(example_spec, registry=CollectorRegistry(), spans=mode, tracer=tracer)
    _failing_step()
    (span,) = exporter.get_finished_spans()
    (event,) = span.events
    assert event.name == "exception"
    attributes = dict(event.attributes or {})
    assert attributes["exception.type"] == "PaymentError"
    assert attributes["exception.message"] == (
        "payment refused for customer C-# card # iban DE# amount # EUR mail <email>"
    )
    assert "exception.stacktrace" not in attributes
    everything = repr(span.to_json())
    for secret in SECRETS:
        assert secret not in everything


def test_the_app_can_opt_in_to_raw_messages_and_stacks(
    example_spec: Spec, otel: tuple[Tracer, InMemorySpanExporter]
) -> None:
    tracer, exporter = otel
    cxmetrics.configure(
        example_spec,
        registry=CollectorRegistry(),
        spans="always",
        tracer=tracer,
        span_exception_messages=True,
    )
    _failing_step()
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.events[0].attributes or {})
    assert attributes["exception.message"] == MESSAGE
    assert MESSAGE in str(attributes["exception.stacktrace"])
    cxmetrics.configure(example_spec, registry=CollectorRegistry(), spans="always", tracer=tracer)
    exporter.clear()
    _failing_step()
    (span,) = exporter.get_finished_spans()
    assert "exception.stacktrace" not in dict(span.events[0].attributes or {})


def test_an_exception_whose_str_raises_still_gives_its_type(
    example_spec: Spec, otel: tuple[Tracer, InMemorySpanExporter]
) -> None:
    class Nasty(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    tracer, exporter = otel
    cxmetrics.configure(example_spec, registry=CollectorRegistry(), spans="always", tracer=tracer)
    with cxmetrics.journey("bill_inquiry") as j:
        try:
            with j.step("login"):
                raise Nasty()
        except Nasty:
            pass
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.events[0].attributes or {})
    assert isinstance(attributes["exception.type"], str)
    assert attributes["exception.type"].endswith("Nasty")
    assert attributes["exception.message"] == "<message unavailable>"
