"""Steps: the measured unit of a journey instance, as context managers, decorators, or explicit
``start()`` / ``finish()`` for callback-style code.

The hot path is ``StepInstance.start`` → ``finish``: two clock reads and one ``StepSlot.record``
(one bisect, one lock, a few increments); spans and whole records only when configured. Nothing
here raises into the host app.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from ..spec.names import OUTCOMES, TIMELINESS_CLASSES
from . import spans as otel
from .events import CheckResult, StepRecord
from .fingerprints import fingerprint
from .messages import shown
from .slots import CheckSlot, StepSlot
from .state import internal_error, log_once

if TYPE_CHECKING:
    from .runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])
_perf = time.perf_counter

__all__ = ["NOOP_STEP", "Owner", "StepInstance"]


class Owner(Protocol):
    """What a step needs of its journey instance (``JourneyInstance`` is one). A step reads
    these and changes its instance only through ``_advance``, ``_journey_time`` and
    ``fingerprints``."""

    _rt: Runtime | None
    name: str
    journey_id: str

    @property
    def last_step(self) -> str | None: ...

    @property
    def customer_ref(self) -> str | None: ...

    @property
    def fingerprints(self) -> dict[str, str]: ...

    def _advance(self, index: int) -> int: ...

    def _journey_time(self, edge: int, duration: float) -> None: ...

    def previous_name(self, index: int) -> str | None: ...

    def remembered(self, key: str) -> str | None: ...


class StepInstance:
    """One measured step. Use as a context manager, or ``start()`` / ``finish()``."""

    __slots__ = (
        "_checks",
        "_done",
        "_failed",
        "_inaccurate",
        "_j",
        "_reason",
        "_slot",
        "_span",
        "_t0",
        "_token",
        "duration",
        "timeliness",
    )

    def __init__(self, journey: Owner, slot: StepSlot) -> None:
        self._j = journey
        self._slot = slot
        self._failed = False
        self._reason = -1  # index in the slot's failures: -1 is "none" (no reason given)
        self._inaccurate = False
        self._done = False
        self._span: Any = None
        self._token: object = None
        # (name, passed, relative error) of each check, kept only when spans or sinks want them
        self._checks: list[tuple[str, bool, float | None]] | None = None
        self._t0 = 0.0
        self.duration: float | None = None
        self.timeliness: str | None = None

    @property
    def name(self) -> str:
        return self._slot.step

    def start(self) -> StepInstance:
        rt = self._j._rt
        if rt is not None and rt.span_mode == "always" and rt.tracer is not None:
            try:
                self._span, self._token = otel.start(
                    rt.tracer,
                    self._slot,
                    self._j.journey_id,
                    self._j.last_step,
                    self._j.customer_ref,
                )
            except Exception as exc:
                internal_error("otel", exc)
        self._t0 = _perf()
        return self

    def finish(self, error: bool = False, exc: BaseException | None = None) -> None:
        """End the step (idempotent). ``error=True`` or an ``exc`` marks its outcome ``error``."""
        duration = _perf() - self._t0
        if self._done:
            return
        self._done = True
        try:
            self._record(duration, error or exc is not None or self._failed, exc)
        except Exception as internal:
            internal_error("step", internal)

    def _record(self, duration: float, error: bool, exc: BaseException | None) -> None:
        j, slot = self._j, self._slot
        rt: Runtime = j._rt  # type: ignore[assignment]  # a step with a slot has a runtime
        span = self._span
        exemplar = otel.exemplar(span, duration) if (span is not None or rt.exemplars) else None
        accurate = not self._inaccurate
        previous = j._advance(slot.index)
        cls = slot.record(duration, error, accurate, previous, exemplar, self._reason)
        if slot.edge:
            j._journey_time(slot.edge, duration)
        self.duration = duration
        self.timeliness = TIMELINESS_CLASSES[cls]
        checks = self._checks or ()
        if span is not None:
            otel.finish(span, self._token, cls, error, [c[0] for c in checks if not c[1]], exc)
        elif (
            (cls == 2 or error or not accurate)
            and rt.span_mode == "interesting"
            and rt.tracer is not None
        ):
            otel.after_the_fact(
                rt.tracer,
                slot,
                j.journey_id,
                j.previous_name(previous),
                j.customer_ref,
                duration,
                cls,
                error,
                [CheckResult(*c) for c in checks],
                exc,
            )
        if rt.step_hooks:
            for hook in rt.step_hooks:
                try:
                    hook.note_step(
                        j.name, slot.step, j.journey_id, slot.channel, slot.segment, j.customer_ref
                    )
                except Exception as exc:
                    internal_error("sink", exc)
        if rt.sinks:
            emit(
                rt,
                StepRecord(
                    time.time(),
                    j.name,
                    slot.step,
                    slot.channel,
                    j.journey_id,
                    j.previous_name(previous),
                    duration,
                    cast(Any, OUTCOMES[1 if error else 0]),
                    cast(Any, self.timeliness),
                    cls == 0 and accurate and not error,
                    tuple(CheckResult(*c) for c in checks),
                    j.customer_ref,
                    slot.segment,
                    slot.reason_names()[self._reason] if error else None,
                ),
            )

    def fail(self, reason: str | None = None) -> None:
        """Mark this step's outcome ``error`` without raising (e.g. a handled failure).

        ``reason``: a code the spec declares (``reasons``, globally or in the journey), counted
        in ``cx_step_failures_total``; an undeclared one counts as ``other``."""
        self._failed = True
        if reason is None:
            return
        try:
            index = self._slot.reasons.get(reason) if type(reason) is str else None
            if index is None:
                index = len(self._slot.reasons)
                if self._j._rt is not None:
                    self._j._rt.count_undeclared("reason", reason)
            self._reason = index
        except Exception as exc:
            internal_error("step", exc)

    # -- accuracy -----------------------------------------------------------------------------
    def check(self, name: str, passed: bool, relative_error: float | None = None) -> bool:
        """Record accuracy check ``name`` as passed or failed; returns ``passed``.

        A ``passed`` whose truth cannot be decided (e.g. a numpy array) counts as failed.
        """
        try:
            result = bool(passed)
        except Exception as exc:
            internal_error(
                "accuracy",
                exc,
                f"cxmetrics: check {shown(name)}: cannot tell whether "
                f"{type(passed).__name__} passed; counted as failed (further ones "
                "counted only)",
            )
            result = False
        try:
            error = None if relative_error is None else _clean_error(relative_error)
            slot = self._check_slot(name)
            slot.record(result, error)
            self._note(slot.name, result, error)
        except Exception as exc:
            internal_error("accuracy", exc)
        return result

    def reconcile(
        self, name: str, expected: Any, actual: Any, tolerance: float | None = None
    ) -> bool:
        """Check that ``actual`` equals ``expected`` within a relative ``tolerance``.

        Records pass/fail and the relative error, never the amounts. ``tolerance`` defaults to
        the check's ``tolerance`` in the spec (0: exact). Returns whether it passed.
        """
        try:
            slot = self._check_slot(name)
            tol = slot.tolerance if tolerance is None else tolerance
            error = _relative_error(expected, actual)
            passed = error <= tol
            slot.record(passed, error)
            self._note(slot.name, passed, error)
            return passed
        except Exception as exc:
            internal_error(
                "accuracy",
                exc,
                f"cxmetrics: reconcile {shown(name)} could not compare its "
                f"values ({type(exc).__name__}); not recorded (further ones counted only)",
            )
            return False

    def fingerprint(self, value: Any, key: str | None = None) -> None:
        """Remember a keyed digest of ``value`` under ``key`` (default: this step's name) so a
        later step of the same instance, in any process, can check it with ``consistent``."""
        rt = self._j._rt
        if rt is None:
            return
        try:
            fingerprints = self._j.fingerprints
            fingerprints.pop(key or self._slot.step, None)
            fingerprints[key or self._slot.step] = fingerprint(value, rt.fingerprint_key)
        except Exception as exc:
            internal_error("accuracy", exc)

    def consistent(self, name: str, value: Any) -> bool:
        """Check ``value`` against the fingerprint the spec's ``against`` key names."""
        rt = self._j._rt
        if rt is None:
            return True
        try:
            slot = self._check_slot(name)
            key = slot.against or name
            remembered = self._j.remembered(key)
            if remembered is None:
                log_once(
                    f"nofp:{self._j.name}:{key}",
                    "cxmetrics: no fingerprint %r in journey %r for consistency check %r; "
                    "call s.fingerprint(value) in that step",
                    key,
                    self._j.name,
                    name,
                )
                return True
            passed = remembered == fingerprint(value, rt.fingerprint_key)
            slot.record(passed, None)
            self._note(slot.name, passed, None)
            return passed
        except Exception as exc:
            internal_error("accuracy", exc)
            return False

    def _check_slot(self, name: str) -> CheckSlot:
        slot = self._slot.checks.get(name) if type(name) is str else None
        if slot is None:
            if self._j._rt is not None:
                self._j._rt.count_undeclared("check", name)
            return self._slot.other_check
        return slot

    def _note(self, name: str, passed: bool, relative_error: float | None) -> None:
        if not passed:
            self._inaccurate = True
        rt = self._j._rt
        if rt is not None and (rt.span_mode != "off" or rt.sinks):
            if self._checks is None:
                self._checks = []
            self._checks.append((name, passed, relative_error))
            if not passed and self._span is not None:
                otel.check_failed(self._span, name, relative_error)

    # -- context manager ----------------------------------------------------------------------
    __enter__ = start  # one call less on every step (``_NoopStep`` aliases its own ``start``)

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish(et is not None, ev)

    async def __aenter__(self) -> StepInstance:
        return self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish(et is not None, ev)


class _NoopStep(StepInstance):
    """What steps are before ``configure()``: every call returns at once."""

    __slots__ = ()

    def __init__(self) -> None:
        self.duration = None
        self.timeliness = None

    @property
    def name(self) -> str:
        return ""

    def start(self) -> StepInstance:
        return self

    __enter__ = start

    def finish(self, error: bool = False, exc: BaseException | None = None) -> None:
        return None

    def fail(self, reason: str | None = None) -> None:
        return None

    def check(self, name: str, passed: bool, relative_error: float | None = None) -> bool:
        try:
            return bool(passed)
        except Exception:
            return False

    def reconcile(
        self, name: str, expected: Any, actual: Any, tolerance: float | None = None
    ) -> bool:
        return True

    def fingerprint(self, value: Any, key: str | None = None) -> None:
        return None

    def consistent(self, name: str, value: Any) -> bool:
        return True

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


NOOP_STEP = _NoopStep()


def _relative_error(expected: Any, actual: Any) -> float:
    """|actual − expected| / |expected|, capped at 1; values that cannot be compared (NaN,
    infinities) are a 100% error, so they fail the check and never poison the histogram's sum."""
    if isinstance(expected, Decimal) is not isinstance(actual, Decimal):
        expected, actual = _decimal(expected), _decimal(actual)
    difference = abs(actual - expected)
    if difference == 0:
        return 0.0
    scale = abs(expected)
    if scale == 0:
        return 1.0
    return _clean_error(float(difference / scale))


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _clean_error(value: Any) -> float:
    error = float(value)
    if not math.isfinite(error):
        return 1.0
    return min(max(error, 0.0), 1.0)


def emit(rt: Runtime, event: Any) -> None:
    for sink in rt.sinks:
        try:
            sink.emit(event)
        except Exception as exc:
            internal_error("sink", exc)
