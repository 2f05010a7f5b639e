"""The journey-context codec: ``encode`` and ``decode`` are inverse, other baggage members are
kept, an instance's own rendering is the encoded context, and contexts are immutable values."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import pickle
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import cxmetrics
from cxmetrics.instrument.fingerprints import fingerprint
from cxmetrics.propagation.codec import JourneyContext, decode, encode
from tests.helpers.paths import EXAMPLE_SPEC

SETTINGS = settings(
    max_examples=200,
    deadline=timedelta(milliseconds=500),
    suppress_health_check=[HealthCheck.too_slow],
)
names = st.from_regex(r"[a-z][a-z0-9_]{0,62}", fullmatch=True)
hex_ids = st.from_regex(r"[0-9a-f]{16,32}", fullmatch=True)
hex16 = st.from_regex(r"[0-9a-f]{16}", fullmatch=True)
contexts = st.builds(
    JourneyContext,
    names,
    hex_ids,
    st.none() | names,
    st.none() | names,
    st.dictionaries(names, hex16, max_size=8),
    st.none() | hex16,
)


@SETTINGS
@given(contexts)
def test_decode_inverts_encode(context: JourneyContext) -> None:
    assert decode(encode(context)) == context


@SETTINGS
@given(contexts, st.sampled_from(["", "k=v", "a=1,cx.step=old", " , "]))
def test_format_keeps_foreign_members_and_replaces_ours(
    context: JourneyContext, existing: str
) -> None:
    value = encode(context, existing)
    assert decode(value) == decode(encode(context))
    foreign = [m.strip() for m in existing.split(",") if m.strip() and not m.startswith("cx.")]
    assert value.split(",")[: len(foreign)] == foreign


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The codec's format, unsigned: no context key (signing: tests/propagation/test_integrity.py).
    monkeypatch.delenv("CXMETRICS_CONTEXT_KEY")
    cxmetrics.configure(
        EXAMPLE_SPEC,
        registry=CollectorRegistry(),
        spans="off",
        fingerprint_key="cxmetrics:bank_app",
    )
    yield
    cxmetrics.shutdown()


@pytest.mark.usefixtures("configured")
def test_instance_baggage_equals_the_formatted_context() -> None:
    j = cxmetrics.journey("bill_inquiry", channel="web")
    assert j.baggage() == encode(j.context())
    assert j.baggage() == f"cx.journey=bill_inquiry,cx.id={j.journey_id},cx.channel=web"
    with j.step("bill_total") as s:
        s.fingerprint(Decimal("412.37"))
    j.identify("customer-1")
    assert j.baggage() == encode(j.context())
    resumed = decode(j.baggage())
    assert resumed == j.context()
    assert resumed is not None and resumed.last_step == "bill_total"
    headers = {"baggage": "k=v"}
    j.inject(headers)
    assert headers["baggage"] == f"k=v,{j.baggage()}"
    other = cxmetrics.journey("not_declared")  # undeclared here: travels folded, as 'other'
    assert other.baggage() == encode(other.context())
    assert other.baggage().startswith("cx.journey=other,")
    bad = cxmetrics.journey("Not a name, really")
    assert bad.baggage() == encode(bad.context())
    assert bad.baggage().startswith("cx.journey=other,")


@pytest.mark.usefixtures("configured")
def test_instances_resumed_from_one_context_share_no_fingerprints() -> None:
    # Resumed instances borrow the context's fingerprints until a step adds one: the context
    # stays as it was parsed and the other instance never sees the new digest.
    key = hashlib.sha256(b"cxmetrics:bank_app").digest()
    total = fingerprint(Decimal("412.37"), key)
    incoming = decode(
        f"cx.journey=bill_inquiry,cx.id={'ab' * 16},cx.step=bill_total,cx.fp=bill_total:{total}"
    )
    assert isinstance(incoming, JourneyContext)
    first = cxmetrics.journey("bill_inquiry", context=incoming)
    second = cxmetrics.journey("bill_inquiry", context=incoming)
    with first.step("bill_detail") as s:
        s.fingerprint(Decimal("1.00"), key="detail")
        assert s.consistent("detail_consistent_with_total", Decimal("412.37"))
    assert dict(incoming.fingerprints) == {"bill_total": total}
    assert second.fingerprints == {"bill_total": total}
    assert list(first.fingerprints) == ["bill_total", "detail"]
    assert first.baggage().endswith(
        f"cx.fp=bill_total:{total}|detail:{first.fingerprints['detail']}"
    )
    assert second.baggage() == (
        f"cx.journey=bill_inquiry,cx.id={'ab' * 16},cx.step=bill_total,cx.channel=app,"
        f"cx.fp=bill_total:{total}"
    )
    fresh = cxmetrics.journey("bill_inquiry")
    assert fresh.fingerprints == {} and "cx.fp" not in fresh.baggage()


def test_contexts_are_immutable_single_objects_that_pickle_and_copy() -> None:
    for header in (
        f"cx.journey=bill_inquiry,cx.id={'ab' * 16}",
        f"cx.journey=bill_inquiry,cx.id={'ab' * 16},cx.fp=bill_total:{'0' * 16}",
    ):
        context = decode(header)
        assert isinstance(context, JourneyContext) and not hasattr(context, "__dict__")
        with pytest.raises(AttributeError):
            context.journey = "transfer"  # type: ignore[misc]
        assert pickle.loads(pickle.dumps(context)) == context
        assert copy.deepcopy(context) == context
        assert dataclasses.asdict(context)["fingerprints"] == dict(context.fingerprints)
    assert isinstance(context, JourneyContext)
    assert context.fingerprints == {"bill_total": "0" * 16}


def test_baggage_is_empty_and_inject_writes_nothing_before_configure() -> None:
    j = cxmetrics.journey("bill_inquiry")
    assert j.baggage() == ""
    headers: dict[str, str] = {}
    j.inject(headers)
    assert headers == {}
