"""The hot path's shortcuts decide exactly what the general code decides.

Every resumed request parses a ``baggage`` header, formats one, and (in accuracy steps) digests a
number. Each has a fast form for the common case (``parse_header``'s single match of the form
cxmetrics writes, ``JourneyInstance.baggage()``'s prepared members, ``_number_text``'s plain
notation); these properties pin them to the general code (``parse_baggage`` + ``parse_context``,
``format_baggage``, ``Decimal.quantize``) on generated and mutated inputs.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import pickle
from collections.abc import Iterator
from datetime import timedelta
from decimal import Context, Decimal, localcontext

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import cxmetrics
from cxmetrics.instrument.fingerprints import _canonical, fingerprint
from cxmetrics.propagation.context import (
    _OWN_FORM,
    ContextRejected,
    JourneyContext,
    format_baggage,
    own_members,
    parse_baggage,
    parse_context,
    parse_header,
)
from tests.helpers.paths import EXAMPLE_SPEC

SETTINGS = settings(
    max_examples=400,
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
    st.dictionaries(names, hex16, max_size=10),
    st.none() | hex16,
)


def _general(value: str) -> JourneyContext | str | None:
    try:
        return parse_context(parse_baggage(value))
    except ContextRejected as exc:
        return exc.reason


def _fast(value: str) -> JourneyContext | str | None:
    try:
        return parse_header(value)
    except ContextRejected as exc:
        return exc.reason


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A header cxmetrics wrote, then damaged: a character replaced, inserted or removed, a
    member added in front or behind, whitespace or properties added."""
    value = own_members(*_fields(draw(contexts)))
    position = draw(st.integers(0, len(value)))
    kind = draw(st.sampled_from(["replace", "insert", "delete", "member", "space", "property"]))
    char = draw(st.sampled_from([*list("a0_:|,=;.% -Zé\n"), "cx.step=", "cx.id="]))
    if kind == "replace":
        return value[:position] + char + value[position + 1 :]
    if kind == "insert":
        return value[:position] + char + value[position:]
    if kind == "delete":
        return value[:position] + value[position + 1 :]
    if kind == "member":
        member = draw(st.sampled_from(["k=v", "cx.step=login", "cx.cust=0123456789abcdef"]))
        return f"{member},{value}" if draw(st.booleans()) else f"{value},{member}"
    if kind == "space":
        return value.replace(",", " , ", 1)
    return value + ";prop=1"


def _fields(
    c: JourneyContext,
) -> tuple[str, str, str | None, str | None, dict[str, str], str | None]:
    return c.journey, c.journey_id, c.last_step, c.channel, dict(c.fingerprints), c.customer_ref


@SETTINGS
@given(contexts)
def test_headers_cxmetrics_writes_take_the_single_match_and_parse_the_same(
    context: JourneyContext,
) -> None:
    value = format_baggage(context)
    assert _OWN_FORM.fullmatch(value) is not None
    assert _fast(value) == _general(value)
    parsed = parse_header(value)
    assert parsed is not None and parsed.journey_id == context.journey_id
    assert list(parsed.fingerprints.items()) == list(context.fingerprints.items())[-8:]


@SETTINGS
@given(mutated() | st.text(max_size=300))
def test_any_other_header_parses_the_same_as_the_general_parser(value: str) -> None:
    assert _fast(value) == _general(value)


def test_the_single_match_refuses_what_the_general_parser_refuses() -> None:
    nine = "|".join(f"k{i}:{'0' * 16}" for i in range(9))
    for value, reason in [
        (f"cx.journey=j,cx.id={'a' * 32},cx.fp={nine}", "too_many_fingerprints"),
        (f"cx.journey=j,cx.id={'a' * 33}", "bad_id"),
        (f"cx.journey=J,cx.id={'a' * 32}", "bad_journey"),
        (f"cx.journey=j,cx.id={'a' * 32},cx.step=a,cx.step=b", "duplicate_key"),
    ]:
        assert _OWN_FORM.fullmatch(value) is None
        assert _fast(value) == _general(value) == reason
    # Optional whitespace around members is allowed (W3C baggage): the general parser decides.
    spaced = f" cx.journey=j , cx.id={'a' * 32}\n"
    assert _OWN_FORM.fullmatch(spaced) is None
    assert _fast(spaced) == _general(spaced) == JourneyContext("j", "a" * 32)


@SETTINGS
@given(contexts, st.sampled_from(["", "k=v", "a=1,cx.step=old", " , "]))
def test_format_keeps_foreign_members_and_replaces_ours(
    context: JourneyContext, existing: str
) -> None:
    value = format_baggage(context, existing)
    assert parse_header(value) == parse_header(format_baggage(context))
    foreign = [m.strip() for m in existing.split(",") if m.strip() and not m.startswith("cx.")]
    assert value.split(",")[: len(foreign)] == foreign


@pytest.fixture
def configured() -> Iterator[None]:
    cxmetrics.configure(EXAMPLE_SPEC, registry=CollectorRegistry(), spans="off")
    yield
    cxmetrics.shutdown()


@pytest.mark.usefixtures("configured")
def test_instance_baggage_equals_the_formatted_context() -> None:
    j = cxmetrics.journey("bill_inquiry", channel="web")
    assert j.baggage() == format_baggage(j.context())
    assert j.baggage() == f"cx.journey=bill_inquiry,cx.id={j.journey_id},cx.channel=web"
    with j.step("bill_total") as s:
        s.fingerprint(Decimal("412.37"))
    j.identify("customer-1")
    assert j.baggage() == format_baggage(j.context())
    resumed = parse_header(j.baggage())
    assert resumed == j.context()
    assert resumed is not None and resumed.last_step == "bill_total"
    headers = {"baggage": "k=v"}
    j.inject(headers)
    assert headers["baggage"] == f"k=v,{j.baggage()}"
    other = cxmetrics.journey("not_declared")  # declared elsewhere, maybe: travels as named
    assert other.baggage() == format_baggage(other.context())
    assert other.baggage().startswith("cx.journey=not_declared,")
    bad = cxmetrics.journey("Not a name, really")
    assert bad.baggage() == format_baggage(bad.context())
    assert bad.baggage().startswith("cx.journey=other,")


@pytest.mark.usefixtures("configured")
def test_instances_resumed_from_one_context_share_no_fingerprints() -> None:
    # Resumed instances borrow the context's fingerprints until a step adds one: the context
    # stays as it was parsed and the other instance never sees the new digest.
    key = hashlib.sha256(b"cxmetrics:bank_app").digest()
    total = fingerprint(Decimal("412.37"), key)
    incoming = parse_header(
        f"cx.journey=bill_inquiry,cx.id={'ab' * 16},cx.step=bill_total,cx.fp=bill_total:{total}"
    )
    assert incoming is not None
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


def _state(j: cxmetrics.JourneyInstance) -> tuple[object, ...]:
    return (
        j.name,
        j.journey_id,
        j.last_step,
        j.channel,
        j.customer_ref,
        dict(j._fps),
        j.context(),
        j.baggage(),
    )


@SETTINGS
@given(
    contexts,
    st.sampled_from(["bill_inquiry", "transfer", "not_declared"]),
    st.sampled_from([None, "web"]),
)
@pytest.mark.usefixtures("configured")
def test_a_header_cxmetrics_wrote_resumes_the_instance_its_context_resumes(
    context: JourneyContext, name: str, channel: str | None
) -> None:
    # journey(headers=) reads the form cxmetrics writes straight into the instance and sends
    # its digest members on as they came; journey(context=) starts from the parsed context.
    context = dataclasses.replace(context, journey=name)
    headers = [(b"host", b"x"), (b"baggage", format_baggage(context).encode())]
    if channel:
        headers.append((b"x-cx-channel", channel.encode()))
    fast = cxmetrics.journey(name, headers=headers)
    general = cxmetrics.journey(
        name, context=parse_header(format_baggage(context)), channel=channel
    )
    assert _state(fast) == _state(general)
    assert fast.baggage() == format_baggage(fast.context())


@pytest.mark.usefixtures("configured")
def test_the_digests_sent_on_follow_every_change_to_fingerprints_and_customer() -> None:
    key = hashlib.sha256(b"cxmetrics:bank_app").digest()
    total = fingerprint(Decimal("412.37"), key)
    sent = f"cx.journey=bill_inquiry,cx.id={'ab' * 16},cx.step=bill_total,cx.fp=bill_total:{total}"
    j = cxmetrics.journey("bill_inquiry", headers={"baggage": sent})
    assert j.baggage() == (
        f"cx.journey=bill_inquiry,cx.id={'ab' * 16},cx.step=bill_total,cx.channel=app,"
        f"cx.fp=bill_total:{total}"
    )
    with j.step("bill_detail") as s:
        assert s.consistent("detail_consistent_with_total", Decimal("412.370"))
        s.fingerprint(Decimal("1.5"), key="detail")
    assert j.baggage() == format_baggage(j.context())
    assert j.baggage().endswith(f"cx.fp=bill_total:{total}|detail:{fingerprint(1.5, key)}")
    j.identify("customer-1")
    assert j.baggage() == format_baggage(j.context()) and ",cx.cust=" in j.baggage()
    j.customer_ref = None
    assert j.baggage() == format_baggage(j.context()) and "cx.cust" not in j.baggage()
    # A repeated key (not what cxmetrics writes) is sent on as the general parser reads it.
    repeated = f"cx.journey=bill_inquiry,cx.id={'ab' * 16},cx.fp=a:{'0' * 16}|a:{'1' * 16}"
    again = cxmetrics.journey("bill_inquiry", headers=[(b"baggage", repeated.encode())])
    assert again.fingerprints == {"a": "1" * 16}
    assert again.baggage().endswith(f",cx.fp=a:{'1' * 16}")


def test_contexts_are_immutable_single_objects_that_pickle_and_copy() -> None:
    for header in (
        f"cx.journey=bill_inquiry,cx.id={'ab' * 16}",
        f"cx.journey=bill_inquiry,cx.id={'ab' * 16},cx.fp=bill_total:{'0' * 16}",
    ):
        context = parse_header(header)
        assert context is not None and not hasattr(context, "__dict__")
        with pytest.raises(AttributeError):
            context.journey = "transfer"  # type: ignore[misc]
        assert pickle.loads(pickle.dumps(context)) == context
        assert copy.deepcopy(context) == context
        assert dataclasses.asdict(context)["fingerprints"] == dict(context.fingerprints)
    assert context is not None
    assert context.fingerprints == {"bill_total": "0" * 16}


def test_baggage_is_empty_and_inject_writes_nothing_before_configure() -> None:
    j = cxmetrics.journey("bill_inquiry")
    assert j.baggage() == ""
    headers: dict[str, str] = {}
    j.inject(headers)
    assert headers == {}


# -- fingerprints: numbers to 6 decimal places, whatever the caller's decimal context --------

REFERENCE = Context(prec=80)


def _reference(number: Decimal) -> str:
    return "n:" + format(
        number.quantize(Decimal("0.000001"), context=REFERENCE).normalize(REFERENCE), "f"
    )


decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None) | st.decimals(
    min_value=-(10**12), max_value=10**12, places=2
)


@SETTINGS
@given(decimals)
def test_decimal_canonical_form_equals_quantize_to_six_places(number: Decimal) -> None:
    assert _canonical(number) == _reference(number)


@SETTINGS
@given(st.integers(min_value=-(10**45), max_value=10**45))
def test_int_canonical_form_equals_its_decimal(number: int) -> None:
    assert _canonical(number) == _reference(Decimal(number))
    key = hashlib.sha256(b"k").digest()
    assert fingerprint(number, key) == fingerprint(Decimal(number), key)


def test_fingerprints_do_not_depend_on_the_decimal_context_or_on_trailing_zeros() -> None:
    key = hashlib.sha256(b"k").digest()
    expected = fingerprint(Decimal("412.37"), key)
    with localcontext() as ctx:
        ctx.prec = 4
        assert fingerprint(Decimal("412.370000"), key) == expected
        assert fingerprint(Decimal("412.3700004"), key) == expected
    assert fingerprint(Decimal("412.3700006"), key) != expected
    assert fingerprint(412.37, key) == expected
    assert _canonical(Decimal("1E+2")) == _canonical(100) == "n:100"
    assert _canonical(Decimal("-0.00")) == "n:-0"
    assert fingerprint(Decimal("412.37"), hashlib.sha256(b"other").digest()) != expected
    # The digest is BLAKE2b-64 keyed with the fingerprint key over the canonical text.
    assert expected == hashlib.blake2b(b"n:412.37", key=key, digest_size=8).hexdigest()
