"""Customer identifiers: only keyed digests leave a journey instance, never the raw id."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest

import cxmetrics
from cxmetrics.exposition.eventlog import read_events
from cxmetrics.spec.model import Spec
from cxmetrics.testing import Recorder, Recording

CUSTOMER = "CH-9301-7734-ALICE"


def test_raw_identifiers_never_reach_metrics_spans_events_or_headers(
    example_spec: Spec, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry, recorder = CollectorRegistry(), Recorder()
    log = tmp_path / "events.jsonl"
    cxmetrics.configure(
        example_spec,
        registry=registry,
        spans="always",
        tracer=provider.get_tracer("t"),
        sinks=[recorder],
        event_log=log,
        customer_key=b"bank-secret",
        strict=True,
    )
    expected = hmac.new(b"bank-secret", CUSTOMER.encode(), hashlib.sha256).hexdigest()[:16]
    with cxmetrics.journey("bill_inquiry") as j:
        j.identify(CUSTOMER)
        with j.step("bill_total"):
            pass
        headers: dict[str, str] = {}
        j.inject(headers)
    resumed = cxmetrics.journey("bill_inquiry", context=cxmetrics.extract(headers))
    with resumed.step("bill_detail") as s:
        s.check("total_matches_details", False)
    cxmetrics.shutdown()
    provider.shutdown()

    assert j.customer_ref == expected and resumed.customer_ref == expected
    spans = exporter.get_finished_spans()
    assert [(s.attributes or {})["cx.customer.ref"] for s in spans] == [expected, expected]
    assert [s.customer_ref for s in recorder.steps] == [expected, expected]
    everything = "\n".join(
        [
            generate_latest(registry).decode(),
            str([dict(s.attributes or {}) for s in spans]),
            log.read_text(),
            str(headers),
        ]
    )
    assert CUSTOMER not in everything and "ALICE" not in everything
    assert expected not in generate_latest(registry).decode()  # never a label either
    assert [e.customer_ref for e in read_events(log) if e.kind == "step"] == [expected, expected]


def test_custom_redact_hook_and_bad_hook_output(example_spec: Spec) -> None:
    cxmetrics.configure(
        example_spec,
        registry=CollectorRegistry(),
        spans="off",
        redact=lambda cid: hashlib.sha256(cid.encode()).hexdigest()[:16],
        strict=True,
    )
    j = cxmetrics.journey("transfer")
    j.identify(CUSTOMER)
    assert j.customer_ref == hashlib.sha256(CUSTOMER.encode()).hexdigest()[:16]
    cxmetrics.configure(
        example_spec, registry=CollectorRegistry(), spans="off", redact=lambda cid: cid, strict=True
    )  # a hook that leaks: refused
    j = cxmetrics.journey("transfer")
    j.identify(CUSTOMER)
    assert j.customer_ref is None


def test_incoming_customer_ref_is_validated(rec: Recording) -> None:
    ctx = cxmetrics.extract(
        {"baggage": "cx.journey=transfer,cx.id=" + "a" * 32 + ",cx.cust=" + CUSTOMER}
    )
    assert ctx is None
    assert rec.value("cx_journey_context_rejected_total", reason="bad_customer_ref") == 1


@pytest.mark.parametrize(
    "raw",
    ["4111111111111111", "5500005555555559", "1234567890123456", "0000000000000042"],
    ids=["visa", "mastercard", "16-digit id", "zero-padded id"],
)
def test_a_hook_returning_a_numeric_id_is_refused(example_spec: Spec, raw: str) -> None:
    # 16 decimal digits pass a "16 lower-case hex" check but are a card number or account id
    cxmetrics.configure(
        example_spec, registry=CollectorRegistry(), spans="off", redact=lambda cid: cid, strict=True
    )
    j = cxmetrics.journey("transfer")
    j.identify(raw)
    assert j.customer_ref is None


def test_a_hook_returning_the_identifier_itself_is_refused(example_spec: Spec) -> None:
    cxmetrics.configure(
        example_spec, registry=CollectorRegistry(), spans="off", redact=lambda cid: cid, strict=True
    )
    j = cxmetrics.journey("transfer")
    j.identify("abcdef0123456789")  # hex-shaped, but the raw identifier
    assert j.customer_ref is None


def test_default_references_are_never_all_digits() -> None:
    from cxmetrics.instrument.redaction import customer_ref, hmac_redactor

    redact = hmac_redactor(b"k")
    # ids whose first 16 hex digits of HMAC-SHA256 are all decimal digits (found by search)
    refs = [customer_ref(redact, str(k)) for k in range(20000)]
    assert all(r is not None and not r.isdigit() for r in refs)
