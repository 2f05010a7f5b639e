"""Hostile input, fuzzed with Hypothesis: the spec loader, the journey-context header parsers, and
whole HTTP requests through the ASGI middleware to a real server.

Properties: the spec loader raises nothing but ``SpecError``; the header parsers never raise
(``decode`` returns a context, ``None`` or ``Rejected``), in bounded time, and whatever they
accept holds only valid names and ids; after fuzzed requests, every label value in the exposition
and every ``cx.*`` span attribute is a declared name, ``other``, a fixed enumeration value or a
validated hex id — never header text, never a raw customer identifier.

Inputs fuzzing once found escaping (PyYAML's own errors, aliases, deep nesting, odd keys,
non-durations, a trailing newline that ``re.match(...$)`` let through) are pinned by explicit
tests at the end.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import cxmetrics
from cxmetrics import SpecError
from cxmetrics.integrations.asgi import CxMiddleware
from cxmetrics.local.stack import free_port
from cxmetrics.propagation.carriers import Reader
from cxmetrics.propagation.codec import (
    KEY_CHANNEL,
    KEY_FINGERPRINTS,
    KEY_ID,
    KEY_JOURNEY,
    KEY_MAC,
    KEY_STEP,
    JourneyContext,
    Rejected,
    _context,
    decode,
)
from cxmetrics.spec import names
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.model import Spec
from cxmetrics.spec.names import OTHER
from tests.helpers.keys import KEYS as KEY_SIGNS
from tests.helpers.paths import EXAMPLE_SPEC, ROOT
from tests.helpers.servers import serve_app

NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
HEX_ID = re.compile(r"[0-9a-f]{16,32}")
HEX16 = re.compile(r"[0-9a-f]{16}")
FAST = settings(
    max_examples=300,
    deadline=timedelta(milliseconds=500),
    suppress_health_check=[HealthCheck.too_slow],
)
KEYS = [KEY_JOURNEY, KEY_ID, KEY_STEP, KEY_CHANNEL, KEY_FINGERPRINTS, "cx.customer"]


# -- the spec loader --------------------------------------------------------------------------


def _load(text: str) -> Spec | None:
    try:
        return parse_spec(text)
    except SpecError as exc:
        assert exc.issues and all(i.file == "<spec>" for i in exc.issues)
        assert all(i.line is None or i.line >= 1 for i in exc.issues)
        assert str(exc)
        return None


@FAST
@given(st.text(max_size=400))
def test_spec_loader_on_arbitrary_text_raises_only_spec_error(text: str) -> None:
    _load(text)


SPEC_WORDS = [
    "version",
    "service",
    "channels",
    "default_channel",
    "defaults",
    "journeys",
    "name",
    "steps",
    "target",
    "tolerating",
    "checks",
    "kind",
    "tolerance",
    "against",
    "objective",
    "objectives",
    "regression",
    "score",
    "tags",
    "description",
    "apdex",
    "timeliness",
    "accuracy",
    "good_ratio",
    "period",
    "min_change",
    "baseline",
    "window",
    "min_volume",
    "for",
    "quantiles",
    "severity",
    "targte",
    "other",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True),
    st.sampled_from(
        [
            "800ms",
            "1.5s",
            "-1s",
            "0s",
            "1e400s",
            "10m",
            "1w",
            "1.5 sec",
            "bill_total",
            "Bill",
            "other",
            "reconcile",
            "consistency",
            "check",
            "page",
            "ticket",
            "1d",
            "offset 7d",
            "trailing 6h",
            "",
            "a" * 64,
            "é",
        ]
    ),
    st.text(max_size=12),
)
yamlish = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(SPEC_WORDS) | st.text(max_size=6), inner, max_size=6),
    ),
    max_leaves=40,
)
spec_like = st.fixed_dictionaries(
    {
        "version": st.sampled_from([1, 2, "1"]),
        "service": scalars,
        "journeys": st.lists(
            st.fixed_dictionaries(
                {
                    "name": scalars,
                    "steps": st.lists(
                        st.dictionaries(st.sampled_from(SPEC_WORDS), yamlish, max_size=5),
                        max_size=3,
                    ),
                },
                optional={"channels": yamlish, "objectives": yamlish, "regression": yamlish},
            ),
            max_size=3,
        ),
    },
    optional={"channels": yamlish, "defaults": yamlish, "default_channel": scalars},
)


@settings(FAST, max_examples=150)
@given(st.one_of(yamlish, spec_like))
def test_spec_loader_on_structured_yaml_raises_only_spec_error(data: object) -> None:
    spec = _load(yaml.safe_dump(data, allow_unicode=True))
    if spec is not None:  # anything accepted is made of valid names, and can be used
        assert NAME.fullmatch(spec.service)
        for journey, step in spec.steps():
            assert NAME.fullmatch(journey.name) and NAME.fullmatch(step.name)
            assert math.isfinite(step.target) and step.target > 0
        assert cxmetrics.configure(spec, registry=CollectorRegistry(), spans="off", strict=True)
        cxmetrics.shutdown()


# -- the journey-context header parsers --------------------------------------------------------

header_text = st.text(
    alphabet=st.sampled_from(list('abcdef0123456789_,;=|: %.cxjourneyidstepchanlfpABZ\t\n\\"é')),
    max_size=200,
)


def _baggage_like(draw: Any) -> str:
    members = []
    for _ in range(draw(st.integers(0, 7))):
        key = draw(st.sampled_from([*KEYS, "other", " cx.id ", "cx.ID"]))
        value = draw(
            st.one_of(
                header_text,
                st.sampled_from(
                    [
                        "bill_inquiry",
                        "login",
                        "app",
                        "0123456789abcdef",
                        "a" * 32,
                        "a" * 33,
                        "bill_total:" + "0" * 16,
                        "|".join(["k:" + "0" * 16] * 9),
                        "%0A",
                        "bill_inquiry%0A",
                        "0123456789abcdef%0a",
                        "%ZZ",
                        "x;prop=1",
                    ]
                ),
            )
        )
        members.append(f"{key}={value}")
    return ",".join(members)


def _nearly_valid(draw: Any) -> str:
    """A real context (resumes an instance) with, sometimes, one field made hostile."""
    entries = {
        KEY_JOURNEY: "bill_inquiry",
        KEY_ID: draw(st.sampled_from(["ab" * 16, "0" * 16])),
        KEY_STEP: draw(st.sampled_from(["login", "bill_total", "zzz"])),
        KEY_CHANNEL: draw(st.sampled_from(["app", "web", "kiosk"])),
        KEY_FINGERPRINTS: "bill_total:" + "1" * 16,
        "cx.customer": "2" * 16,
    }
    # Signed as cxmetrics signs it (a hostile change of any field then fails its MAC).
    ours = ",".join(f"{k}={v}" for k, v in entries.items() if k != "cx.customer")
    entries[KEY_MAC] = KEY_SIGNS.mac(ours)[len(KEY_MAC) + 2 :]
    if draw(st.booleans()):
        field = draw(st.sampled_from(KEYS))
        entries[field] = draw(
            st.one_of(
                header_text,
                st.sampled_from(
                    [
                        entries[field] + "%0A",
                        entries[field] + "%0d",
                        "%20" + entries[field],
                        entries[field].upper(),
                        entries[field] * 3,
                        entries[field] + ";p=1",
                    ]
                ),
            )
        )
    return ",".join(f"{k}={v}" for k, v in entries.items())


baggage_values = st.one_of(
    header_text, st.composite(_baggage_like)(), st.composite(_nearly_valid)()
)


def _valid(context: JourneyContext) -> None:
    assert NAME.fullmatch(context.journey)
    assert HEX_ID.fullmatch(context.journey_id)
    assert context.last_step is None or NAME.fullmatch(context.last_step)
    assert context.channel is None or NAME.fullmatch(context.channel)
    for key, digest in context.fingerprints.items():
        assert NAME.fullmatch(key) and HEX16.fullmatch(digest)
    assert len(context.fingerprints) <= 8
    ref = getattr(context, "customer_ref", None)
    assert ref is None or HEX16.fullmatch(ref)


@FAST
@given(baggage_values)
def test_decode_accepts_only_valid_contexts(value: str) -> None:
    context = decode(value)
    if isinstance(context, Rejected):
        assert NAME.fullmatch(context.reason)
    elif context is not None:
        _valid(context)


@FAST
@given(st.dictionaries(st.sampled_from(KEYS), header_text, max_size=6))
def test_member_validation_on_arbitrary_entries(entries: dict[str, str]) -> None:
    context = _context(entries)
    if isinstance(context, Rejected):
        assert NAME.fullmatch(context.reason)
    elif context is not None:
        _valid(context)


header_names = st.sampled_from(
    ["baggage", "Baggage", "cx-journey", "cookie", "x-cx-channel", "traceparent", "other"]
)


@FAST
@given(
    st.dictionaries(header_names, baggage_values, max_size=5),
    st.sampled_from([None, "cx_journey", "session"]),
)
def test_extract_and_the_middlewares_reader_never_raise(
    headers: dict[str, str], cookie: str | None
) -> None:
    carried = Reader(cookie).read(headers).context
    for found in (
        cxmetrics.extract(headers),
        cxmetrics.extract(Headers(headers=headers)),
        None if isinstance(carried, Rejected) else carried,
    ):
        if found is not None:
            _valid(found)


def test_header_parsing_time_is_bounded_on_worst_cases() -> None:
    worst = [
        ",".join(["cx.journey=x"] * 1000),
        "," * 8191,
        "=" * 8192,
        "%" * 8192,
        "cx.fp=" + "|".join(["k:" + "0" * 16] * 600),
        "cx.id=" + "%41" * 2700,
        "é" * 4096,
        "x" * 65536,
        "cx.journey=" + "a" * 65536,
    ]  # beyond any server's limit
    for value in worst:
        started = time.perf_counter()
        for _ in range(10):
            assert cxmetrics.extract({"baggage": value}) is None
            carried = Reader("cx_journey").read(
                {"baggage": value, "cx-journey": value, "cookie": f"cx_journey={value}"}
            )
            assert carried.context is None or isinstance(carried.context, Rejected)
        assert time.perf_counter() - started < 0.5, value[:40]


# -- core bugs fuzzing found, pinned -------------------------------------------------------------


@pytest.mark.parametrize("field", [KEY_JOURNEY, KEY_ID, KEY_STEP, KEY_CHANNEL])
def test_a_trailing_newline_is_not_a_valid_name_or_id(field: str) -> None:
    entries = {KEY_JOURNEY: "bill_inquiry", KEY_ID: "0123456789abcdef"}
    entries[field] = entries.get(field, "login") + "\n"
    assert isinstance(_context(entries), Rejected)


@pytest.mark.parametrize(
    "text",
    [
        "service: \x07bank",
        "service: 2001-13-01",
        "a: !!binary x",
        "a: !!python/object:os.system x",
        "&a [*a]",
        "[" * 3000 + "]" * 3000,
    ],
)
def test_spec_loader_yaml_layer_escapes(text: str) -> None:
    with pytest.raises(SpecError):
        parse_spec(text)


@pytest.mark.parametrize("target", ["null", "[1s]", "{a: 1}", ".inf", "1.0e+400"])
def test_spec_loader_rejects_durations_that_are_not_durations(target: str) -> None:
    text = (
        f"version: 1\nservice: s\njourneys: [{{name: a, steps: [{{name: b, target: {target}}}]}}]"
    )
    with pytest.raises(SpecError, match="target"):
        parse_spec(text)


@pytest.mark.parametrize("key", ["'['", "function-x", "'a[b]'"])
def test_spec_loader_reports_odd_keys_as_unknown_fields(key: str) -> None:
    name = key.strip("'")
    with pytest.raises(SpecError, match=re.escape(f"unknown field '{name}'")):
        parse_spec(f"version: 1\nservice: s\njourneys: []\n{key}: 1\n")


@pytest.mark.slow
def test_spec_loader_time_is_bounded_on_alias_expansion() -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 8):
        levels.append(
            f"l{n}: &l{n} [" + ", ".join([f"*{'a' if n == 1 else f'l{n - 1}'}"] * 9) + "]"
        )
    code = "import sys; from cxmetrics.spec.load import parse_spec\ntry:\n parse_spec(sys.stdin.read())\nexcept Exception:\n pass"
    subprocess.run(
        [sys.executable, "-c", code],
        input="\n".join(levels),
        text=True,
        cwd=ROOT,
        timeout=5,
        check=True,
    )


def test_undeclared_check_names_never_reach_spans(example_spec: Spec) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    cxmetrics.configure(
        example_spec,
        registry=CollectorRegistry(),
        spans="always",
        tracer=provider.get_tracer("t"),
        strict=True,
    )
    with cxmetrics.journey("bill_inquiry") as j, j.step("bill_total") as s:
        s.check("promo_for_customer_4711", False)
    [span] = exporter.get_finished_spans()
    provider.shutdown()
    assert span.attributes is not None
    assert list(cast(Sequence[str], span.attributes[names.ATTR_FAILED_CHECKS])) == [OTHER]
    assert [(e.attributes or {})[names.ATTR_CHECK] for e in span.events] == [OTHER]


# -- fuzzed HTTP requests: nothing unvalidated reaches labels or span attributes -------------

request_headers = st.fixed_dictionaries(
    {},
    optional={
        "baggage": baggage_values,
        "cx-journey": baggage_values,
        "x-cx-channel": header_text,
        "cookie": st.builds(lambda v: f"cx_journey={v}", baggage_values),
        "x-customer": header_text,
    },
)


def _sendable(headers: dict[str, str]) -> dict[str, str]:
    # What an HTTP/1.1 client can put on the wire: no CR/LF/NUL, no surrounding whitespace.
    return {k: v.replace("\n", " ").strip() for k, v in headers.items()}


def _wire(headers: dict[str, str]) -> dict[bytes, bytes]:
    return {k.encode("latin-1"): v.encode("latin-1") for k, v in headers.items()}


def test_fuzzed_requests_leave_only_validated_values_in_labels_and_spans(
    example_spec: Spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = CollectorRegistry()
    cxmetrics.configure(
        example_spec,
        registry=registry,
        spans="always",
        tracer=provider.get_tracer("fuzz"),
        customer_key=b"k",
        strict=True,
    )

    async def step(request: Request) -> Response:
        name = request.path_params["step"]
        with cxmetrics.journey("bill_inquiry", context=cxmetrics.extract(request.headers)) as j:
            if "x-customer" in request.headers:
                j.identify(request.headers["x-customer"])
            with j.step(name) as s:
                s.check(request.query_params.get("check", "total_matches_details"), False)
        return JSONResponse({"id": j.journey_id})

    app = CxMiddleware(
        Starlette(routes=[Route("/s/{step}", step)]),
        cookie="cx_journey",
        routes={"GET /bill/login": ("bill_inquiry", "login")},
    )
    raw: set[str] = set()
    resumed: list[str] = []
    with serve_app(app, free_port()) as url, httpx.Client(base_url=url) as client:

        @settings(
            max_examples=250, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(
            request_headers,
            st.sampled_from(
                ["/bill/login", "/s/bill_total", "/s/login", "/s/Not_A_Step", "/s/%0A"]
            ),
            st.sampled_from(["total_matches_details", "limits_applied"]),
        )
        def send(headers: dict[str, str], path: str, check: str) -> None:
            headers = _sendable(headers)
            response = client.get(path, headers=_wire(headers), params={"check": check})
            assert response.status_code in (200, 404)
            raw.update(v for v in headers.values() if len(v) > 3)
            if response.status_code == 200 and response.json()["id"] in ("ab" * 16, "0" * 16):
                resumed.append(path)
            if "baggage" in response.headers:
                context = decode(response.headers["baggage"])
                assert isinstance(context, JourneyContext)
                _valid(context)

        send()
    exposition = generate_latest(registry).decode()
    spans = exporter.get_finished_spans()
    provider.shutdown()
    allowed = _allowed_label_values(example_spec)
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label == "le":
                    continue
                if label == "spec_digest":
                    assert re.fullmatch(r"[0-9a-f]{12}", value)
                    continue
                assert value in allowed, (sample.name, label, value)
    assert len(spans) >= 250
    assert len(resumed) >= 20  # the fuzzing did reach instances resumed from incoming headers
    for span in spans:
        attributes: dict[str, Any] = dict(span.attributes or {})
        assert HEX_ID.fullmatch(attributes.pop(names.ATTR_JOURNEY_ID))
        customer = attributes.pop(names.ATTR_CUSTOMER, None)
        assert customer is None or HEX16.fullmatch(customer)
        for key in (
            names.ATTR_JOURNEY,
            names.ATTR_STEP,
            names.ATTR_CHANNEL,
            names.ATTR_PREVIOUS_STEP,
        ):
            if key in attributes:
                assert attributes.pop(key) in allowed, (key, span.attributes)
        assert attributes.pop(names.ATTR_TIMELINESS) in names.TIMELINESS_CLASSES
        assert set(attributes.pop(names.ATTR_FAILED_CHECKS, ())) <= allowed
        attributes.pop(names.ATTR_TARGET)
        assert attributes == {}, attributes
        for event in span.events:
            assert (event.attributes or {})[names.ATTR_CHECK] in allowed
    values = {
        v
        for f in text_string_to_metric_families(exposition)
        for x in f.samples
        for v in x.labels.values()
    }
    for span in spans:
        for attribute in dict(span.attributes or {}).values():
            values.update(map(str, attribute) if isinstance(attribute, tuple) else [str(attribute)])
    # Journey ids and digests (the spec's, customers') are validated hex, random or resumed: a
    # short hex header value can occur inside one by chance (4 hex digits: 1 in ~2,000 per id).
    searched = [value for value in values if not re.fullmatch(r"[0-9a-f]{12,32}", value)]
    leaked = [
        v
        for v in raw
        if not NAME.fullmatch(v)
        and not HEX_ID.fullmatch(v)
        and any(v in value for value in searched)
    ]
    assert leaked == []


def _allowed_label_values(spec: Spec) -> set[str]:
    allowed = {
        OTHER,
        "none",
        "csat",
        "nps",
        *names.OUTCOMES,
        *names.TIMELINESS_CLASSES,
        *names.RESULTS,
        *map(str, range(11)),
        spec.service,
    }
    allowed |= set(spec.channels)
    allowed |= set(spec.segments) | {r for j in spec.journeys for r in spec.journey_reasons(j)}
    allowed |= {spec.policy(j, s) for j, s in spec.steps()}  # cx_step_policy_info, from the spec
    allowed |= {"journey", "step", "check", "channel", "segment", "reason"}  # undeclared{kind}
    allowed |= {
        "bad_journey",
        "bad_id",
        "bad_step",
        "bad_channel",
        "bad_segment",
        "bad_fingerprint",
        "too_many_fingerprints",
        "oversized",
        "duplicate_key",
        "bad_customer_ref",
        "bad_mac",
        "unsigned",
        "unknown_key",
    }
    allowed |= {"accuracy", "context", "middleware", "journey", "step", "otel", "redaction"}
    for journey in spec.journeys:
        allowed.add(journey.name)
        for step in journey.steps:
            allowed.add(step.name)
            allowed |= {c.name for c in step.checks}
    return allowed


assert EXAMPLE_SPEC.exists()
