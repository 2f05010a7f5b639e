"""Inside the host app cxmetrics never raises: every public call, on real and no-op objects, with
any argument, before, during and after configuration, and while another thread reconfigures.

The measured defects first (each failed before its fix), then a Hypothesis test over the whole
instrumentation surface, then 4 traffic threads against a thread calling configure/shutdown.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import cxmetrics
from cxmetrics.cli import cli as cli_main
from cxmetrics.instrument.state import STATE
from tests.helpers.paths import EXAMPLE_SPEC


class Unprintable:
    """An object whose ``str`` and ``repr`` raise (as some ORM proxies do)."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    __repr__ = __str__

    def __hash__(self) -> int:
        raise RuntimeError("no hash")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")


def _configure_failing(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("service: [\n")
    assert cxmetrics.configure(broken, registry=CollectorRegistry()) is False


def _configure_then_shutdown(tmp_path: Path) -> None:
    assert cxmetrics.configure(EXAMPLE_SPEC, registry=CollectorRegistry()) is True
    cxmetrics.shutdown()


UNCONFIGURED: dict[str, Callable[[Path], None]] = {
    "before_configure": lambda tmp_path: None,
    "after_failed_configure": _configure_failing,
    "after_shutdown": _configure_then_shutdown,
}


@pytest.mark.parametrize("phase", sorted(UNCONFIGURED))
def test_noop_step_fingerprint_and_consistent_do_not_raise(phase: str, tmp_path: Path) -> None:
    UNCONFIGURED[phase](tmp_path)
    assert not cxmetrics.is_configured()
    with cxmetrics.journey("bill_inquiry") as j, j.step("bill_detail") as s:
        s.fingerprint(10)  # returns nothing, raises nothing
        assert s.consistent("detail_consistent_with_total", 10) is True


def _latin1(tmp_path: Path) -> Path:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(EXAMPLE_SPEC.read_bytes() + "# café\n".encode("latin-1"))
    return path


def _utf16(tmp_path: Path) -> Path:
    path = tmp_path / "utf16.yaml"
    path.write_bytes(EXAMPLE_SPEC.read_text(encoding="utf-8").encode("utf-16"))
    return path


def _binary(tmp_path: Path) -> Path:
    path = tmp_path / "binary.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    return path


NOT_UTF8 = {"latin1": _latin1, "utf16_bom": _utf16, "binary": _binary}


@pytest.mark.parametrize("kind", sorted(NOT_UTF8))
def test_configure_on_a_spec_that_is_not_utf8_returns_false(kind: str, tmp_path: Path) -> None:
    path = NOT_UTF8[kind](tmp_path)
    assert cxmetrics.configure(path, registry=CollectorRegistry()) is False
    assert STATE.errors == {"spec": 1}


@pytest.mark.parametrize("kind", sorted(NOT_UTF8))
def test_validate_names_the_file_that_is_not_utf8(kind: str, tmp_path: Path) -> None:
    path = NOT_UTF8[kind](tmp_path)
    result = CliRunner().invoke(cli_main, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f"{path}: the spec is not UTF-8 text" in result.output


HOSTILE_NAMES = {
    "list": [1],
    "dict": {"a": 1},
    "ndarray": np.arange(3),
    "unprintable": Unprintable(),
    "bytes": b"bill_total",
    "none": None,
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_NAMES))
def test_step_with_a_name_that_is_not_a_string(kind: str) -> None:
    assert cxmetrics.configure(EXAMPLE_SPEC, registry=CollectorRegistry()) is True
    j = cxmetrics.journey("bill_inquiry")
    hostile = cast(str, HOSTILE_NAMES[kind])  # not a str on purpose
    with j.step(hostile) as s:
        s.check("x", True)
    assert s.timeliness in ("satisfied", "tolerating", "frustrated")
    cxmetrics.journey(hostile)  # a journey name likewise


@pytest.mark.parametrize("carrier", [5, [1, 2], "baggage", None, object()])
def test_inject_into_a_non_mapping(carrier: Any) -> None:
    assert cxmetrics.configure(EXAMPLE_SPEC, registry=CollectorRegistry()) is True
    with cxmetrics.journey("bill_inquiry") as j:
        cxmetrics.inject(carrier)
        j.inject(carrier)
    cxmetrics.inject(carrier, j.context())


def test_feedback_with_an_int_too_large_to_print() -> None:
    assert cxmetrics.configure(EXAMPLE_SPEC, registry=CollectorRegistry()) is True
    j = cxmetrics.journey("bill_inquiry")
    j.feedback(csat=10**5000)
    j.feedback(nps=-(10**5000))
    assert STATE.errors == {"feedback": 2}


# -- the whole surface ------------------------------------------------------------------------

# Public names that are not instrumentation calls made inside the host app, and why.
NOT_IN_THE_APP_PATH = {
    "CxError": "an exception class",
    "SpecError": "an exception class",
    "SpecIssue": "a record of one spec problem",
    "JourneyContext": "a frozen record (its constructor checks its argument count)",
    "JourneyInstance": "made by journey(), not by the app: its methods are called below",
    "StepInstance": "made by j.step(), not by the app: its methods are called below",
    "Spec": "the pydantic model: raises ValidationError by contract",
    "load_spec": "the validation API: raises SpecError by contract",
    "start_http_server": "binds a port; raises on misconfiguration by contract, at start-up",
    "__version__": "a string",
}


def _huge_int() -> int:
    return 10**5000  # too large for str(): built, not shown in the strategy's repr


hostile = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.builds(_huge_int),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=40),
        st.sampled_from(["bill_inquiry", "bill_total", "bill_detail", "app", "web", "other"]),
        st.binary(max_size=20),
        st.builds(Unprintable),
        st.just(np.arange(3)),
        st.just(object()),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


def _surface(j: Any, s: Any) -> list[tuple[str, Callable[..., Any]]]:
    calls = [
        (name, getattr(cxmetrics, name))
        for name in cxmetrics.__all__
        if name not in NOT_IN_THE_APP_PATH
    ]
    for label, obj in (("JourneyInstance", j), ("StepInstance", s)):
        for name in dir(type(obj)):
            if name.startswith("_") and name not in ("__enter__", "__exit__"):
                continue
            member = getattr(obj, name, None)
            if callable(member):
                calls.append((f"{label}.{name}", member))
    return calls


def _call(fn: Callable[..., Any], data: st.DataObject, registry: CollectorRegistry) -> None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for p in signature.parameters.values() if signature is not None else ():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name == "strict":  # strict=True asks configure() to raise
            continue
        if p.name == "event_log":  # a path it would create: no file in the working directory
            continue
        if p.name == "registry":
            kwargs["registry"] = registry
            continue
        if p.default is not p.empty and not data.draw(st.booleans()):
            continue
        value = data.draw(hostile)
        if p.kind is p.KEYWORD_ONLY:
            kwargs[p.name] = value
        else:
            args.append(value)
    result = fn(*args, **kwargs)
    if inspect.iscoroutine(result):
        result.close()


def test_every_public_name_is_classified() -> None:
    assert set(NOT_IN_THE_APP_PATH) <= set(cxmetrics.__all__)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), phase=st.sampled_from(["before", "during", "after"]))
def test_no_public_call_raises(data: st.DataObject, phase: str) -> None:
    registry = CollectorRegistry()
    cxmetrics.shutdown()
    if phase != "before":
        assert cxmetrics.configure(EXAMPLE_SPEC, registry=registry) is True
    j = cxmetrics.journey("bill_inquiry")
    s = j.step("bill_total")
    if phase == "after":
        cxmetrics.shutdown()
    calls = _surface(j, s)
    for _ in range(data.draw(st.integers(1, 6))):
        name, fn = data.draw(st.sampled_from(calls), label="call")
        if name == "configure" and data.draw(st.booleans()):
            fn(EXAMPLE_SPEC, registry=registry)
            continue
        _call(fn, data, registry)
    cxmetrics.shutdown()


# -- reconfiguration under traffic ------------------------------------------------------------


@pytest.fixture
def reconfiguring() -> Iterator[threading.Event]:
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            cxmetrics.configure(EXAMPLE_SPEC, registry=CollectorRegistry())
            cxmetrics.shutdown()

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=30)


def test_concurrent_reconfiguration_raises_nothing_into_the_app(
    reconfiguring: threading.Event,
) -> None:
    escaped: list[BaseException] = []
    done = [0]

    def traffic() -> None:
        for _ in range(1500):
            try:
                with cxmetrics.journey("bill_inquiry", channel="app") as j:
                    with j.step("bill_total") as s:
                        s.fingerprint(12345.67)
                        s.check("x", True)
                    with j.step("bill_detail") as s:
                        s.consistent("detail_consistent_with_total", 12345.67)
                        s.reconcile("total_matches_details", 1, 1)
                    headers: dict[str, str] = {}
                    cxmetrics.inject(headers)
                    cxmetrics.extract(headers)
                    j.feedback(csat=4)
                    j.baggage()
                done[0] += 1
            except BaseException as exc:  # what reaches the app is the result
                escaped.append(exc)

    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert escaped == []
    assert done[0] == 6000
