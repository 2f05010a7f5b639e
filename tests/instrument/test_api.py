"""The instrumentation API: forms of use, outcomes, propagation helpers, and never-raise."""

from __future__ import annotations

import asyncio
import logging
import types
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import cxmetrics
from cxmetrics.instrument import state as _state
from cxmetrics.propagation.codec import decode, encode
from cxmetrics.spec.model import Spec
from cxmetrics.testing import Recording
from tests.helpers.keys import signed

OK = {"outcome": "ok", "timeliness": "satisfied"}


def steps(
    rec: Recording, step: str, journey: str = "bill_inquiry", channel: str = "app", **labels: str
) -> float:
    return rec.value(
        "cx_steps_total", journey=journey, step=step, channel=channel, **{**OK, **labels}
    )


def test_public_api_is_exactly_all() -> None:
    public = {
        n
        for n in dir(cxmetrics)
        if n.isidentifier()
        and not n.startswith("_")
        and not isinstance(getattr(cxmetrics, n), types.ModuleType)  # submodules
    }
    assert public | {"__version__"} == set(cxmetrics.__all__)
    assert list(cxmetrics.__all__) == sorted(cxmetrics.__all__)


def test_calls_before_configure_are_noops_and_nothing_is_buffered(example_spec: Spec) -> None:
    assert not cxmetrics.is_configured()
    with cxmetrics.journey("bill_inquiry") as j, j.step("bill_total") as s:
        assert s.reconcile("total_matches_details", 1, 2) is True

    @cxmetrics.step("bill_inquiry", "bill_total")
    def early() -> int:
        return 7

    assert early() == 7
    registry = CollectorRegistry()
    cxmetrics.configure(example_spec, registry=registry, spans="off", strict=True)
    assert (
        registry.get_sample_value(
            "cx_steps_total",
            {
                "service": "bank_app",
                "journey": "bill_inquiry",
                "step": "bill_total",
                "channel": "app",
                "segment": "none",
                **OK,
            },
        )
        == 0
    )
    assert early() == 7  # the same decorated function records once configured
    assert (
        registry.get_sample_value(
            "cx_steps_total",
            {
                "service": "bank_app",
                "journey": "bill_inquiry",
                "step": "bill_total",
                "channel": "app",
                "segment": "none",
                **OK,
            },
        )
        == 1
    )


def test_decorators_sync_and_async_join_the_current_journey(rec: Recording) -> None:
    @cxmetrics.step("bill_inquiry", "bill_total")
    def total() -> int:
        return 100

    @cxmetrics.step("bill_inquiry", "bill_detail")
    async def detail() -> list[int]:
        await asyncio.sleep(0)
        return [60, 40]

    async def flow() -> None:
        async with cxmetrics.journey("bill_inquiry"):
            assert total() == 100
            assert await detail() == [60, 40]

    asyncio.run(flow())
    assert total.__name__ == "total"
    assert (
        rec.value(
            "cx_step_transitions_total",
            journey="bill_inquiry",
            from_step="bill_total",
            to_step="bill_detail",
        )
        == 1
    )
    assert rec.value("cx_journeys_started_total", journey="bill_inquiry", channel="app") == 1
    # outside a journey, each call is an instance of its own
    total()
    assert rec.value("cx_journeys_started_total", journey="bill_inquiry", channel="app") == 2


def test_module_level_step_as_context_manager(rec: Recording) -> None:
    with cxmetrics.journey("transfer", channel="web"):
        with cxmetrics.step("transfer", "payee"):
            pass
        with cxmetrics.step("transfer", "amount") as s:
            s.check("limits_applied", True)
    assert steps(rec, "amount", journey="transfer", channel="web") == 1
    assert (
        rec.value(
            "cx_step_transitions_total", journey="transfer", from_step="payee", to_step="amount"
        )
        == 1
    )


def test_app_exceptions_propagate_unchanged_and_mark_error(rec: Recording) -> None:
    error = ValueError("customer not found")
    with pytest.raises(ValueError) as info, cxmetrics.journey("bill_inquiry") as j:
        with j.step("bill_total"):
            raise error
    assert info.value is error
    assert steps(rec, "bill_total", outcome="error") == 1
    assert (
        rec.value("cx_good_steps_total", journey="bill_inquiry", step="bill_total", channel="app")
        == 0
    )


def test_explicit_start_finish_and_mark_failed(rec: Recording) -> None:
    j = cxmetrics.journey("bill_inquiry")
    handle = j.start_step("bill_total")
    handle.finish()
    handle.finish()  # idempotent
    failed = j.start_step("bill_detail")
    failed.fail("upstream said no")
    failed.finish()
    assert steps(rec, "bill_total") == 1
    assert steps(rec, "bill_detail", outcome="error") == 1
    assert failed.timeliness == "satisfied"
    assert j.last_step == "bill_detail"


def test_reconcile_and_consistency(rec: Recording) -> None:
    with cxmetrics.journey("bill_inquiry") as j:
        with j.step("bill_total") as s:
            s.fingerprint(100.10)
        with j.step("bill_detail") as s:
            assert s.reconcile("total_matches_details", expected=100.10, actual=100.10 + 1e-9)
            assert not s.reconcile(
                "total_matches_details", expected=100, actual=101, tolerance=0.005
            )
            assert s.consistent("detail_consistent_with_total", 60.05 + 40.05)  # float noise ok
            assert not s.consistent("detail_consistent_with_total", 100.11)
    acc = {"journey": "bill_inquiry", "step": "bill_detail"}
    assert (
        rec.value("cx_accuracy_checks_total", **acc, check="total_matches_details", result="pass")
        == 1
    )
    assert (
        rec.value("cx_accuracy_checks_total", **acc, check="total_matches_details", result="fail")
        == 1
    )
    assert (
        rec.value(
            "cx_accuracy_checks_total", **acc, check="detail_consistent_with_total", result="fail"
        )
        == 1
    )
    assert (
        rec.value(
            "cx_accuracy_checks_total", **acc, check="detail_consistent_with_total", result="pass"
        )
        == 1
    )


def test_context_round_trips_through_headers_and_keeps_other_baggage(rec: Recording) -> None:
    with cxmetrics.journey("bill_inquiry", channel="web") as j:
        with j.step("bill_total") as s:
            s.fingerprint(42)
        headers = {"baggage": "tenant=acme"}
        cxmetrics.inject(headers)
    assert headers["baggage"].startswith("tenant=acme,cx.journey=bill_inquiry,cx.id=")
    ctx = cxmetrics.extract({"Baggage": headers["baggage"]})
    assert ctx is not None
    assert (ctx.journey, ctx.journey_id, ctx.last_step, ctx.channel) == (
        "bill_inquiry",
        j.journey_id,
        "bill_total",
        "web",
    )
    resumed = cxmetrics.journey("bill_inquiry", context=ctx)
    assert resumed.journey_id == j.journey_id
    with resumed.step("bill_detail") as s:
        assert s.consistent("detail_consistent_with_total", 42.0)
    assert (
        rec.value(
            "cx_step_transitions_total",
            journey="bill_inquiry",
            from_step="bill_total",
            to_step="bill_detail",
        )
        == 1
    )
    assert rec.value("cx_journeys_started_total", journey="bill_inquiry", channel="web") == 1


@pytest.mark.parametrize(
    ("baggage", "reason"),
    [
        ("cx.journey=bill_inquiry,cx.id=nothex", "bad_id"),
        ("cx.journey=Bill%20Inquiry,cx.id=" + "a" * 32, "bad_journey"),
        ("cx.journey=bill_inquiry,cx.id=" + "a" * 32 + ",cx.step=%7Bjndi%7D", "bad_step"),
        ("cx.journey=bill_inquiry,cx.id=" + "a" * 32 + ",cx.fp=x:zz", "bad_fingerprint"),
        ("cx.journey=bill_inquiry,cx.journey=transfer,cx.id=" + "a" * 32, "duplicate_key"),
        ("cx.journey=bill_inquiry,cx.id=" + "a" * 32 + ",x=" + "y" * 9000, "oversized"),
    ],
)
def test_malformed_contexts_are_ignored_and_counted(
    rec: Recording, baggage: str, reason: str
) -> None:
    assert cxmetrics.extract({"baggage": baggage}) is None
    assert rec.value("cx_journey_context_rejected_total", reason=reason) == 1


def test_context_for_another_journey_starts_a_new_instance(rec: Recording) -> None:
    ctx = cxmetrics.extract(
        {"baggage": encode(cxmetrics.JourneyContext("transfer", "b" * 32, "payee"))}
    )
    j = cxmetrics.journey("bill_inquiry", context=ctx)
    assert j.journey_id != "b" * 32
    # Other members and member properties are left alone.
    assert decode(f"a=1, cx.journey=transfer, cx.id={'b' * 32}, cx.step=x;prop") == (
        cxmetrics.JourneyContext("transfer", "b" * 32, "x")
    )


def _sent(journey_id: str, last: str, channel: str = "app") -> str:
    return signed(cxmetrics.JourneyContext("bill_inquiry", journey_id, last, channel))


def test_journey_reads_context_and_channel_from_request_headers_in_any_form(rec: Recording) -> None:
    from starlette.datastructures import Headers

    first = "a" * 32
    sent = _sent(first, "login").encode()
    forms = [
        Headers(raw=[(b"host", b"x"), (b"baggage", sent), (b"x-cx-channel", b"web")]),
        [(b"baggage", sent), (b"x-cx-channel", b"web")],  # an ASGI header list
        {"Baggage": sent.decode(), "X-CX-Channel": "web"},  # any mapping, names in any case
    ]
    for headers in forms:
        j = cxmetrics.journey("bill_inquiry", headers=headers)
        assert (j.journey_id, j.last_step, j.channel) == (first, "login", "web")
        with j.step("bill_total"):
            pass
    # Three resumed steps, each a login -> bill_total transition on web, switched from app.
    assert (
        rec.value(
            "cx_step_transitions_total",
            journey="bill_inquiry",
            from_step="login",
            to_step="bill_total",
        )
        == 3
    )
    switches = dict(journey="bill_inquiry", from_channel="app", to_channel="web")
    assert rec.value("cx_channel_switches_total", **switches) == 3
    assert rec.value("cx_journeys_started_total", journey="bill_inquiry", channel="web") == 0


def test_journey_headers_several_baggage_headers_are_one_list_and_explicit_arguments_win(
    rec: Recording,
) -> None:
    first = "b" * 32
    raw = [(b"baggage", b"tenant=acme"), (b"baggage", _sent(first, "bill_total").encode())]
    assert cxmetrics.journey("bill_inquiry", headers=raw).journey_id == first
    other = cxmetrics.JourneyContext("bill_inquiry", "c" * 32, "login")
    j = cxmetrics.journey("bill_inquiry", headers=raw, context=other, channel="phone")
    assert (j.journey_id, j.last_step, j.channel) == ("c" * 32, "login", "phone")
    fresh = cxmetrics.journey("bill_inquiry", headers={"accept": "*/*"})
    assert fresh.journey_id not in (first, "c" * 32) and fresh.last_step is None
    assert fresh.channel == "app"  # the spec's default channel


def test_journey_headers_with_a_malformed_context_start_a_new_instance_and_count_it(
    rec: Recording,
) -> None:
    j = cxmetrics.journey(
        "bill_inquiry", headers=[(b"baggage", b"cx.journey=bill_inquiry,cx.id=nothex")]
    )
    assert j.last_step is None and len(j.journey_id) == 32
    assert rec.value("cx_journey_context_rejected_total", reason="bad_id") == 1
    assert rec.value("cx_journeys_started_total", journey="bill_inquiry", channel="app") == 1


def test_internal_failure_never_reaches_the_app_and_is_counted(
    rec: Recording, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("slot exploded")

    monkeypatch.setattr(type(rec.recorder), "emit", broken)
    with caplog.at_level(logging.ERROR, logger="cxmetrics"):
        with cxmetrics.journey("bill_inquiry") as j:
            for _ in range(3):
                with j.step("bill_total"):
                    pass
    assert rec.value("cx_internal_errors_total", component="sink") == 4  # journey start + 3 steps
    assert len([r for r in caplog.records if "sink" in r.getMessage()]) == 1  # logged once
    assert steps(rec, "bill_total") == 3  # metrics still counted


def test_broken_emission_inside_the_step_is_swallowed(
    rec: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxmetrics.instrument import slots as _slots

    monkeypatch.setattr(_slots.StepSlot, "record", lambda *a, **k: 1 / 0)
    with cxmetrics.journey("bill_inquiry") as j, j.step("bill_total"):
        result = "served"
    assert result == "served"
    assert rec.value("cx_internal_errors_total", component="step") == 1


def test_spec_that_fails_to_load_leaves_the_app_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "cxmetrics.yaml"
    bad.write_text("service: bank\njourneys: []\n")
    before = _state.STATE.errors.get("spec", 0)
    with caplog.at_level(logging.ERROR, logger="cxmetrics"):
        assert cxmetrics.configure(bad) is False
    assert not cxmetrics.is_configured()
    assert _state.STATE.errors["spec"] == before + 1
    with pytest.raises(cxmetrics.SpecError):
        cxmetrics.configure(bad, strict=True)


def test_registry_collision_is_counted_not_raised(example_spec: Spec) -> None:
    registry = CollectorRegistry()
    cxmetrics.configure(example_spec, registry=registry, spans="off", strict=True)
    from cxmetrics.config import _installed

    first = _installed.collector
    assert first is not None
    _installed.collector = None  # forget it, as a second library copy would
    try:
        assert cxmetrics.configure(example_spec, registry=registry, spans="off") is True
        assert (
            registry.get_sample_value("cx_internal_errors_total", {"component": "registry"}) or 0
        ) >= 1
        with pytest.raises(cxmetrics.CxError, match="cannot register"):
            cxmetrics.configure(example_spec, registry=registry, spans="off", strict=True)
    finally:
        registry.unregister(first)
