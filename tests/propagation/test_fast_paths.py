"""The hot path's shortcuts decide exactly what the general code decides.

Two things still have a fast form for the common case: ``decode``'s single match of the form
cxmetrics writes (against its general path, ``_entries`` + ``_context``), and fingerprints'
plain-notation text of a number (against ``Decimal.quantize``). These properties pin each to its
general code on generated and mutated inputs.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Context, Decimal, localcontext

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxmetrics.instrument.fingerprints import _canonical, fingerprint
from cxmetrics.propagation.codec import (
    _OWN_FORM,
    JourneyContext,
    Rejected,
    _context,
    _entries,
    decode,
    encode,
    members,
)

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
    entries = _entries(value)
    found = entries if isinstance(entries, Rejected) else _context(entries)
    return found.reason if isinstance(found, Rejected) else found


def _fast(value: str) -> JourneyContext | str | None:
    found = decode(value)
    return found.reason if isinstance(found, Rejected) else found


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A header cxmetrics wrote, then damaged: a character replaced, inserted or removed, a
    member added in front or behind, whitespace or properties added."""
    value = members(*_fields(draw(contexts)))
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
    value = encode(context)
    assert _OWN_FORM.fullmatch(value) is not None
    assert _fast(value) == _general(value)
    parsed = decode(value)
    assert isinstance(parsed, JourneyContext) and parsed.journey_id == context.journey_id
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
