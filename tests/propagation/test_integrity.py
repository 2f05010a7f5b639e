"""The journey context is authenticated: contexts a client forged or changed are treated as
absent (a new instance), counted by reason, and never used for transitions, channel switches,
customer references or consistency checks; fingerprints cannot be recomputed without the secret.

Each test replays a forgery measured against the unsigned context (issue 18, items 3 and 4)
through the ASGI middleware, with a context key configured unless it says otherwise.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from decimal import Decimal

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import cxmetrics
from cxmetrics.instrument.fingerprints import fingerprint
from cxmetrics.integrations.asgi import CxMiddleware
from cxmetrics.propagation.codec import JourneyContext, decode
from cxmetrics.propagation.integrity import ContextKeys
from tests.helpers.keys import CONTEXT_KEY
from tests.helpers.paths import EXAMPLE_SPEC

AMOUNT = Decimal("12345.67")
NEW_KEY = b"the-rotated-in-key-0123456789abcdef"


def app() -> Starlette:
    async def total(request: Request) -> JSONResponse:
        j = cxmetrics.journey("bill_inquiry")
        with j.step("bill_total") as s:
            s.fingerprint(AMOUNT)
        j.identify("customer-42")
        return JSONResponse({"id": j.journey_id})

    async def detail(request: Request) -> JSONResponse:
        j = cxmetrics.journey("bill_inquiry")
        resumed_from = j.last_step
        with j.step("bill_detail") as s:
            s.consistent("detail_consistent_with_total", AMOUNT)
        return JSONResponse(
            {"id": j.journey_id, "last": resumed_from, "cust": j.customer_ref, "ch": j.channel}
        )

    return Starlette(
        routes=[Route("/bill/total", total), Route("/bill/detail", detail)],
        middleware=[],
    )


def serve(*requests: tuple[str, dict[str, str]]) -> list[httpx.Response]:
    application = CxMiddleware(app())
    transport = httpx.ASGITransport(app=application)

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [await client.get(path, headers=headers) for path, headers in requests]

    return asyncio.run(run())


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return sum(
        s.value
        for f in registry.collect()
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    assert cxmetrics.configure(EXAMPLE_SPEC, registry=registry, spans="off")
    return registry


def transitions(registry: CollectorRegistry) -> float:
    return value(
        registry,
        "cx_step_transitions_total",
        journey="bill_inquiry",
        from_step="bill_total",
        to_step="bill_detail",
    )


def rejected(registry: CollectorRegistry, reason: str) -> float:
    return value(registry, "cx_journey_context_rejected_total", reason=reason)


def checks(registry: CollectorRegistry, result: str) -> float:
    return value(
        registry, "cx_accuracy_checks_total", check="detail_consistent_with_total", result=result
    )


def genuine() -> str:
    (first,) = serve(("/bill/total", {}))
    return first.headers["baggage"]


def test_a_genuine_context_resumes_across_requests(registry: CollectorRegistry) -> None:
    baggage = genuine()
    assert re.search(r",cx\.mac=k1:[0-9a-f]{32}$", baggage)
    (second,) = serve(("/bill/detail", {"baggage": baggage}))
    assert second.json()["last"] == "bill_total"
    assert transitions(registry) == 1
    assert checks(registry, "pass") == 1 and checks(registry, "fail") == 0


def test_100_forged_contexts_count_no_transition(registry: CollectorRegistry) -> None:
    forged = [
        (
            "/bill/detail",
            {"baggage": f"cx.journey=bill_inquiry,cx.id={os.urandom(16).hex()},cx.step=bill_total"},
        )
        for _ in range(100)
    ]
    responses = serve(*forged)
    assert [r.json()["last"] for r in responses] == [None] * 100
    assert transitions(registry) == 0
    assert rejected(registry, "unsigned") == 100


def test_a_random_fingerprint_cannot_fail_the_consistency_check(
    registry: CollectorRegistry,
) -> None:
    baggage = genuine()
    forged = [
        (
            "/bill/detail",
            {
                "baggage": re.sub(
                    r"bill_total:[0-9a-f]{16}", f"bill_total:{os.urandom(8).hex()}", baggage
                )
            },
        )
        for _ in range(50)
    ]
    serve(*forged)
    assert checks(registry, "fail") == 0
    assert rejected(registry, "bad_mac") == 50
    assert transitions(registry) == 0


def test_stripping_the_fingerprint_does_not_skip_the_check_of_a_resumed_instance(
    registry: CollectorRegistry,
) -> None:
    baggage = genuine()
    stripped = re.sub(r",cx\.fp=[^,]*", "", baggage)
    assert stripped != baggage
    (response,) = serve(("/bill/detail", {"baggage": stripped}))
    assert response.json()["last"] is None  # not resumed: nothing to pass a check against
    assert checks(registry, "pass") == 0
    assert rejected(registry, "bad_mac") == 1
    assert transitions(registry) == 0


def test_client_set_customer_and_channel_are_not_taken(registry: CollectorRegistry) -> None:
    baggage = genuine()
    assert ",cx.channel=app," in baggage
    with_channel = baggage.replace(",cx.channel=app,", ",cx.channel=web,")
    with_customer = re.sub(r"cx\.cust=[0-9a-f]{16}", "cx.cust=" + "0" * 16, baggage)
    responses = serve(
        *[("/bill/detail", {"baggage": with_channel, "x-cx-channel": "app"})] * 30,
        *[("/bill/detail", {"baggage": with_customer})] * 30,
    )
    assert value(registry, "cx_channel_switches_total") == 0
    assert {r.json()["cust"] for r in responses} == {None}
    assert rejected(registry, "bad_mac") == 60


def test_rotation_accepts_the_previous_key_and_signs_with_the_new_one() -> None:
    old = genuine_with({"k1": CONTEXT_KEY})
    registry = CollectorRegistry()
    assert cxmetrics.configure(
        EXAMPLE_SPEC,
        registry=registry,
        spans="off",
        context_keys={"k2": NEW_KEY, "k1": CONTEXT_KEY},
    )
    unknown = ContextKeys({"k9": b"some-other-services-key-0123456789"})
    context = decode(old)
    assert isinstance(context, JourneyContext)
    foreign = old.rsplit(",cx.mac=", 1)[0]
    foreign += unknown.mac(foreign)
    first, second = serve(
        ("/bill/detail", {"baggage": old}), ("/bill/detail", {"baggage": foreign})
    )
    assert first.json()["last"] == "bill_total"
    assert re.search(r",cx\.mac=k2:[0-9a-f]{32}$", first.headers["baggage"])
    assert second.json()["last"] is None
    assert rejected(registry, "unknown_key") == 1
    assert transitions(registry) == 1


def genuine_with(keys: dict[str, bytes]) -> str:
    assert cxmetrics.configure(
        EXAMPLE_SPEC, registry=CollectorRegistry(), spans="off", context_keys=keys
    )
    baggage = genuine()
    cxmetrics.shutdown()
    return baggage


def test_without_a_key_nothing_from_outside_is_trusted_and_it_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    baggage = genuine_with({"k1": CONTEXT_KEY})
    monkeypatch.delenv("CXMETRICS_CONTEXT_KEY")
    registry = CollectorRegistry()
    with caplog.at_level(logging.WARNING, logger="cxmetrics"):
        assert cxmetrics.configure(EXAMPLE_SPEC, registry=registry, spans="off")
        responses = serve(*[("/bill/detail", {"baggage": baggage})] * 3)
    assert [r.json()["last"] for r in responses] == [None] * 3
    assert rejected(registry, "no_key") == 3
    assert transitions(registry) == 0
    told = [r.getMessage() for r in caplog.records if "no context key" in r.getMessage()]
    assert len(told) == 1
    assert "There is no default key" in told[0]


def test_fingerprints_cannot_be_recomputed_from_the_service_name(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The key once derived from the service name (public: it is in every spec and dashboard).
    public = hashlib.sha256(b"cxmetrics:bank_app").digest()
    baggage = genuine()
    (digest,) = re.findall(r"cx\.fp=bill_total:([0-9a-f]{16})", baggage)
    assert digest != fingerprint(AMOUNT, public)
    cxmetrics.shutdown()
    monkeypatch.delenv("CXMETRICS_CONTEXT_KEY")
    assert cxmetrics.configure(EXAMPLE_SPEC, registry=CollectorRegistry(), spans="off")
    j = cxmetrics.journey("bill_inquiry")
    with j.step("bill_total") as s:
        s.fingerprint(AMOUNT)
    assert j.fingerprints["bill_total"] != fingerprint(AMOUNT, public)
