"""The instrumentation API: journey instances and their steps.

``journey()`` starts (or resumes, from a propagated ``JourneyContext``) one customer's pass
through a journey; ``JourneyInstance.step()`` measures one step of it. Both are context managers
(sync and async); ``step()`` at module level is also a decorator. Nothing here raises into the
host app: the app's own exceptions propagate unchanged and mark the step ``error``; failures
inside cxmetrics are counted in ``cx_internal_errors_total`` and logged once. Steps themselves
live in ``cxmetrics.instrument.steps``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ..propagation.carriers import BAGGAGE_HEADER, header
from ..propagation.codec import (
    JourneyContext,
    digest_members,
    encode,
    head,
    new_journey_id,
    segment_member,
    started_member,
)
from ..spec.names import FEEDBACK_CATEGORIES, NONE, OTHER, is_name
from .carry import receive
from .events import FeedbackRecord, JourneyStarted
from .messages import shown
from .redaction import customer_ref
from .slots import CATEGORY_INDEX, FEEDBACK_SCALES, JourneySlot, StepSlot
from .state import STATE, internal_error
from .steps import NOOP_STEP, StepInstance, emit

if TYPE_CHECKING:
    from .runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])

# The instance made current by ``with journey(...)``, and the journey side of the request a
# framework middleware (``cxmetrics.integrations``) is serving; each reset with its token.
current: ContextVar[JourneyInstance | None] = ContextVar("cxmetrics_journey", default=None)


class RequestScope:
    """The journey side of one request: the context it brought (read once, by the middleware),
    its channel, and the latest instance it touched (whose context the response carries)."""

    __slots__ = ("channel", "incoming", "latest")

    def __init__(self, incoming: JourneyContext | None, channel: str | None = None) -> None:
        self.incoming = incoming
        self.channel = channel
        self.latest: JourneyInstance | None = None


request: ContextVar[RequestScope | None] = ContextVar("cxmetrics_request", default=None)


def current_journey() -> JourneyInstance | None:
    """The journey instance made current by ``with journey(...)`` (or a middleware), if any."""
    return current.get()


__all__ = ["JourneyInstance", "RequestScope", "bind", "current_journey", "inject", "journey"]

_NO_FINGERPRINTS: Mapping[str, str] = MappingProxyType({})  # never written: see ``fingerprints``


class JourneyInstance:
    """One customer going through one journey. Create with ``cxmetrics.journey()``."""

    __slots__ = (
        "_ch",
        "_cust",
        "_fps",
        "_fps_owned",
        "_last",
        "_rt",
        "_seg",
        "_slot",
        "_steps",
        "_t0",
        "_tokens",
        "journey_id",
        "name",
    )

    def __init__(
        self,
        rt: Runtime | None,
        slot: JourneySlot | None,
        name: str,
        channel: int,
        journey_id: str,
        last: int,
        fingerprints: Mapping[str, str] = _NO_FINGERPRINTS,
        customer_ref: str | None = None,
        segment: int = 0,
        started: float | None = None,
    ) -> None:
        self._rt = rt
        self._slot = slot
        self._ch = channel
        self._seg = segment
        # This instance's row of step slots (channel, segment); a None entry is made on first use.
        self._steps: list[StepSlot | None] = (
            slot.steps[channel][segment] if slot is not None else []
        )
        self._last = last
        self._tokens: list[Token[JourneyInstance | None]] | None = None  # made on __enter__
        self.name = name
        self.journey_id = journey_id
        # Borrowed from the context it resumes (read-only to us) until a step adds a digest.
        self._fps = fingerprints
        self._fps_owned = False
        self._cust = customer_ref
        # When the journey's first step started (wall clock, s): set by that step, or carried in
        # an authenticated context; None when unknown (then no journey time is recorded).
        self._t0 = started

    @property
    def fingerprints(self) -> dict[str, str]:
        """The fingerprints this instance carries (step or key name → keyed digest)."""
        if not self._fps_owned:
            self._fps, self._fps_owned = dict(self._fps), True
        return cast("dict[str, str]", self._fps)

    @property
    def customer_ref(self) -> str | None:
        """The customer's keyed reference (``identify``), or ``None``."""
        return self._cust

    @customer_ref.setter
    def customer_ref(self, value: str | None) -> None:
        self._cust = value

    # -- identity ---------------------------------------------------------------------------
    @property
    def channel(self) -> str:
        return self._slot.channels[self._ch] if self._slot is not None else ""

    @property
    def segment(self) -> str:
        """The customer segment this instance counts under: one the spec declares, ``other``
        (undeclared, counted in ``cx_undeclared_names_total``) or ``none`` (not set)."""
        return self._slot.segments[self._seg] if self._slot is not None else NONE

    @segment.setter
    def segment(self, value: str | None) -> None:
        """Set the segment for the steps, checks, transitions and feedback recorded from now on;
        it travels with the instance's context (``cx.seg``)."""
        slot, rt = self._slot, self._rt
        if slot is None or rt is None:
            return
        try:
            self._seg = segment_of(rt, slot, value)
            self._steps = slot.steps[self._ch][self._seg]
        except Exception as exc:
            internal_error("journey", exc)

    @property
    def last_step(self) -> str | None:
        """The step this instance finished most recently (here or in an earlier request)."""
        return self._slot.previous_name(self._last) if self._slot is not None else None

    def previous_name(self, index: int) -> str | None:
        """The name of step ``index`` of this journey (``None`` for "no previous step")."""
        try:
            return self._slot.previous_name(index) if self._slot is not None else None
        except Exception:  # not a step index of this journey
            return None

    def _advance(self, index: int) -> int:
        """Make step ``index`` the last one done; returns the index of the one before it (what
        a finished step counts its arrival from)."""
        previous, self._last = self._last, index
        return previous

    def remembered(self, key: str) -> str | None:
        """The fingerprint remembered under ``key`` (here or in an earlier request), if any."""
        return self._fps.get(key) if type(key) is str else None

    def context(self) -> JourneyContext:
        """What must travel with this instance to the next request or process."""
        return JourneyContext(
            self._travelling_name(),
            self.journey_id,
            self.last_step,
            self.channel or None,
            dict(self._fps),
            self.customer_ref,
            segment=self._travelling_segment(),
            started=self._started_ms(),
        )

    def _started_ms(self) -> int | None:
        # round, not int: a start read back from a context (ms / 1000) re-encodes to itself
        return None if self._t0 is None else round(self._t0 * 1000.0)

    def _journey_time(self, edge: int, duration: float) -> None:
        """The journey's clock: started by its first step (the earliest run of it), stopped by
        its last step, which records the end-to-end time (``cx_journey_duration_seconds``) once
        and forgets the start, so a repeated last step is not timed twice."""
        slot = self._slot
        if slot is None:
            return
        now = time.time()
        if edge & 1 and self._t0 is None:
            self._t0 = now - duration
        if edge & 2 and self._t0 is not None:
            elapsed, self._t0 = now - self._t0, None
            if elapsed >= 0.0:  # a clock that went back (another host's) tells nothing
                slot.observe_journey(self._ch, elapsed)

    def _travelling_segment(self) -> str | None:
        return None if self._seg == 0 or self._slot is None else self._slot.segments[self._seg]

    def _travelling_name(self) -> str:
        """The journey name as it travels: as called when it is a valid name (a journey another
        service declares), else ``other``: never text a header could not carry."""
        return self.name if is_name(self.name) else OTHER

    def identify(self, customer_id: object) -> None:
        """Attach the customer to this instance as a keyed digest (``instrument.redaction``).

        The raw identifier is never stored, exposed, exported or propagated; spans and event
        records carry only the reference (``cx.customer.ref``), metrics never carry it.
        """
        if self._rt is None:
            return
        try:
            self.customer_ref = customer_ref(self._rt.redact, customer_id)
        except Exception as exc:
            internal_error("redaction", exc)

    def baggage(self) -> str:
        """This instance's context as a W3C ``baggage`` header value (``""`` before
        ``configure()``): for a response or an outgoing request, e.g.
        ``JSONResponse(body, headers={"baggage": j.baggage()})``."""
        slot, rt = self._slot, self._rt
        if slot is None or rt is None:
            return ""
        try:
            prepared, tails = rt.members[slot.name]
            if self.name != slot.name:
                prepared = head(self._travelling_name())
            digests = digest_members(self._fps, self._cust) if self._fps or self._cust else ""
            segment = segment_member(self._travelling_segment()) if self._seg else ""
            if self._t0 is not None:
                segment += started_member(round(self._t0 * 1000.0))
            ours = f"{prepared}{self.journey_id}{tails[self._ch][self._last]}{segment}{digests}"
            keys = rt.context_keys
            return ours if keys is None else ours + keys.mac(ours)
        except Exception as exc:
            internal_error("context", exc)
            return ""

    def inject(self, headers: MutableMapping[str, str]) -> None:
        """Write this instance's context into outgoing (or response) ``headers`` as W3C baggage,
        keeping any other baggage members already there. Does nothing before ``configure()``."""
        if self._slot is None:
            return
        try:
            existing = header(headers, BAGGAGE_HEADER)
            keys = self._rt.context_keys if self._rt is not None else None
            headers[BAGGAGE_HEADER] = (
                encode(self.context(), existing, keys.mac if keys is not None else None)
                if existing
                else self.baggage()
            )
        except Exception as exc:
            internal_error("context", exc)

    # -- steps ------------------------------------------------------------------------------
    def step(self, name: str) -> StepInstance:
        """A step of this instance, to use as ``with j.step("bill_total") as s:``."""
        slot = self._slot
        if slot is None:  # before configure(): no runtime, no slot
            return NOOP_STEP
        index = slot.step_index.get(name) if type(name) is str else None
        if index is None:
            if slot.n_steps and self._rt is not None:  # the 'other' journey has no steps
                self._rt.count_undeclared("step", name)
            index = slot.n_steps
        step_slot = self._steps[index]
        if step_slot is None:  # first use of this (step, channel, segment)
            step_slot = slot.make(self._ch, self._seg, index)
        return StepInstance(self, step_slot)

    def bind(self, fn: F) -> F:
        """``fn`` running as part of this instance wherever it is called (``cxmetrics.bind``)."""
        return bind(fn, self)

    def start_step(self, name: str) -> StepInstance:
        """Start a step now, for callback-style code; call ``finish()`` on it later."""
        step = self.step(name)
        step.start()
        return step

    def feedback(
        self,
        *,
        csat: int | None = None,
        nps: int | None = None,
        category: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Record customer feedback on this instance, against its last step: scores (``csat``
        1-5, ``nps`` 0-10) and/or a ``category`` (praise, problem, suggestion) with a ``reason``
        code the spec declares (an undeclared one counts as ``other``)."""
        rt, slot = self._rt, self._slot
        if rt is None or slot is None:
            return
        if category is not None or reason is not None:
            self._topic(rt, slot, category, reason)
        for scale, score in (("csat", csat), ("nps", nps)):
            if score is None:
                continue
            low, high = FEEDBACK_SCALES[scale]
            if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
                internal_error(
                    "feedback",
                    None,
                    f"cxmetrics: {scale} feedback must be an int in {low}..{high}, "
                    f"got {shown(score)}; ignored (further ones counted only)",
                )
                continue
            slot.count_feedback(self._ch, self._seg, scale, score, self._last)
            if rt.sinks:
                emit(
                    rt,
                    FeedbackRecord(
                        time.time(),
                        self.name,
                        self.last_step,
                        self.journey_id,
                        cast(Any, scale),
                        score,
                        self.channel,
                        self.segment,
                    ),
                )

    def _topic(
        self, rt: Runtime, slot: JourneySlot, category: str | None, reason: str | None
    ) -> None:
        index = CATEGORY_INDEX.get(category) if type(category) is str else None
        if index is None:
            internal_error(
                "feedback",
                None,
                f"cxmetrics: feedback category must be one of {', '.join(FEEDBACK_CATEGORIES)}, "
                f"got {shown(category)}; ignored (further ones counted only)",
            )
            return
        code = slot.reason(reason)
        if code == len(slot.reasons):
            rt.count_undeclared("reason", cast(str, reason))
        slot.count_topic(self._ch, self._seg, index, code, self._last)
        if rt.sinks:
            emit(
                rt,
                FeedbackRecord(
                    time.time(),
                    self.name,
                    self.last_step,
                    self.journey_id,
                    None,
                    None,
                    self.channel,
                    self.segment,
                    cast(Any, category),
                    NONE if code == -1 else (*slot.reasons, OTHER)[code],
                ),
            )

    # -- context manager ----------------------------------------------------------------------
    def __enter__(self) -> JourneyInstance:
        if self._tokens is None:
            self._tokens = []
        self._tokens.append(current.set(self))
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._tokens:
            current.reset(self._tokens.pop())

    async def __aenter__(self) -> JourneyInstance:
        return self.__enter__()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(et, ev, tb)

    def __repr__(self) -> str:
        return f"<JourneyInstance {self.name} id={self.journey_id} last={self.last_step}>"


def journey(
    name: str,
    *,
    channel: str | None = None,
    context: JourneyContext | None = None,
    headers: Any = None,
    segment: str | None = None,
) -> JourneyInstance:
    """Start a journey instance, or resume the one ``context`` describes.

    ``context`` (from ``cxmetrics.extract(headers)``, or the request's incoming context when a
    ``cxmetrics.integrations`` middleware serves the request) resumes the same instance when it
    names this journey, so the next step counts the transition from the step done in another
    request. ``channel`` defaults to the request's channel header, then the context's channel,
    then the spec's default channel. Resuming on another channel than the context's counts a
    channel switch (``cx_channel_switches_total``); the instance stays one instance.

    ``headers`` (e.g. Starlette's ``request.headers``, an ASGI header list, any mapping) reads
    the context from ``baggage`` and the channel from ``x-cx-channel`` in one pass, for a
    handler without the middleware; an explicit ``context`` or ``channel`` wins. Behind a
    middleware the request's carriers were read already, once: ``headers`` is not read again
    (a rejected context is counted once per request).

    ``segment`` (one of the spec's ``segments``, e.g. ``vip``) labels the instance's steps,
    checks, transitions and feedback, and travels in its context; a resumed instance keeps the
    context's segment unless ``segment`` is given. Set it later with ``j.segment = "vip"``.
    """
    if type(name) is not str:
        name = OTHER  # counted as undeclared below; never hashed, compared or printed
    rt = STATE.runtime
    if rt is None:
        return JourneyInstance(None, None, name, 0, "", 0)
    try:
        served = request.get()
        if served is not None:
            context = context or served.incoming
            channel = channel or served.channel
        elif headers is not None:
            sent, sent_channel = receive(headers)
            context = context or sent
            channel = channel or sent_channel
        instance = (
            _resume(rt, name, channel, context, segment)
            if (context is not None and context.journey == name)
            else _start(rt, name, channel, segment)
        )
        if served is not None:
            served.latest = instance
        return instance
    except Exception as exc:
        internal_error("journey", exc)
        return JourneyInstance(None, None, name, 0, "", 0)


def segment_of(rt: Runtime, slot: JourneySlot, name: str | None) -> int:
    """The index of segment ``name`` in ``slot.segments``: 0 (``none``) for ``None``, ``other``
    (counted as undeclared) for a name the spec does not declare."""
    if name is None:
        return 0
    index = slot.segment_index.get(name) if type(name) is str else None
    if index is None or name in (OTHER, NONE):
        rt.count_undeclared("segment", name)
        return len(slot.segments) - 1
    return index


def _start(rt: Runtime, name: str, channel: str | None, segment: str | None) -> JourneyInstance:
    # An undeclared name is folded to 'other' (the slot's name) before it reaches any record or
    # header: names may carry data (``journey_4111111111111111``).
    slot = rt.journey_slot(name)
    ch = rt.channel(channel)
    seg = segment_of(rt, slot, segment)
    instance = JourneyInstance(
        rt, slot, slot.name, ch, new_journey_id(), slot.n_steps + 1, segment=seg
    )
    with slot.lock:
        slot.started[ch][seg] += 1
    if rt.sinks:
        emit(
            rt,
            JourneyStarted(
                time.time(), slot.name, slot.channels[ch], instance.journey_id, slot.segments[seg]
            ),
        )
    return instance


def _resume(
    rt: Runtime,
    name: str,
    channel: str | None,
    context: JourneyContext,
    segment: str | None,
) -> JourneyInstance:
    last_step, sent_channel = context.last_step, context.channel
    slot = rt.journey_slot(name)
    last = slot.n_steps + 1 if last_step is None else slot.step_index.get(last_step, slot.n_steps)
    ch = rt.channel(channel or sent_channel)
    seg = segment_of(rt, slot, segment if segment is not None else context.segment)
    if sent_channel is not None and channel is not None and channel != sent_channel:
        before = rt.channel(sent_channel)
        with slot.lock:
            slot.switches[before][ch] += 1
    return JourneyInstance(
        rt,
        slot,
        slot.name,
        ch,
        context.journey_id,
        last,
        context.fingerprints,
        context.customer_ref,
        seg,
        None if context.started is None else context.started / 1000.0,
    )


def bind(fn: F, instance: JourneyInstance | None = None) -> F:
    """``fn`` running as part of ``instance`` (default: the current one) wherever it is called:
    a thread pool, a callback, a later task. Steps it marks belong to that journey instance.
    (asyncio tasks inherit the current instance by themselves.)"""
    target = instance if instance is not None else current_journey()
    if target is None:
        return fn

    @functools.wraps(fn)
    def bound(*args: Any, **kwargs: Any) -> Any:
        with target:
            return fn(*args, **kwargs)

    return cast(F, bound)


def inject(headers: MutableMapping[str, str], context: JourneyContext | None = None) -> None:
    """Write ``context`` (default: the current journey's) into ``headers`` as W3C baggage,
    keeping the other baggage members already there. Never raises."""
    try:
        if context is None:
            instance = current_journey()
            if instance is None:
                return
            context = instance.context()
        existing = header(headers, BAGGAGE_HEADER) or ""
        for name in [k for k in headers if k.lower() == BAGGAGE_HEADER]:
            del headers[name]
        rt = STATE.runtime
        keys = rt.context_keys if rt is not None else None
        headers[BAGGAGE_HEADER] = encode(context, existing, keys.mac if keys is not None else None)
    except Exception as exc:
        internal_error("propagation", exc)
