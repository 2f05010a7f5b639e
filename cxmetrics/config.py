"""``configure()``: load the spec, bind every slot, register the collector, pick the span mode.

Before ``configure()`` every instrumentation call is a no-op. Calling it again replaces the
runtime (the old collector is unregistered); ``shutdown()`` returns to the no-op state.

When the collector cannot be registered whole — the spec did not load at start-up, or a metric
name collides with another collector in the registry — a stand-in collector exposes what it can
(at least ``cx_internal_errors_total``, so the failure is visible and alertable) and, at scrape
time, retries what failed (the spec once its file changed, the registration every time), stepping
aside once that succeeds: a spec that appears or is fixed later, or a colliding collector that goes
away, needs no restart, and nothing recorded meanwhile is lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from ._exceptions import CxError, SpecError
from .instrument.messages import shown
from .instrument.redaction import make_redactor
from .instrument.runtime import SPAN_MODES, Runtime, SpanMode
from .instrument.sinks import Sink
from .instrument.state import STATE, internal_error, log_once
from .propagation.integrity import NO_KEY_MESSAGE, ContextKeys, resolve
from .spec import names

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from .exposition.collector import CxCollector
    from .spec.model import Spec

log = logging.getLogger("cxmetrics")
FINGERPRINT_KEY_ENV = "CXMETRICS_FINGERPRINT_KEY"
FOLLOWUP_ENV = "CXMETRICS_FOLLOWUP_REDIS"


class _Installed:
    collector: CxCollector | None = None
    registry: CollectorRegistry | None = None
    standby: _Standby | None = None
    owned_sinks: tuple[Sink, ...] = ()
    resuming = False  # configure() called by the stand-in once the spec loads: not a new start


_installed = _Installed()
# configure() and shutdown() swap the runtime, the collector and the sinks cxmetrics owns as one
# step: two threads reconfiguring at once must not leave a sink installed by neither (an event
# log never closed) or a collector registered twice.
_swap = threading.RLock()


def configure(
    spec: str | os.PathLike[str] | Spec = "cxmetrics.yaml",
    *,
    registry: CollectorRegistry | None = None,
    spans: SpanMode = "interesting",
    tracer: Tracer | None = None,
    exemplars: bool | None = None,
    sinks: Sequence[Sink] = (),
    event_log: str | os.PathLike[str] | None = None,
    fingerprint_key: bytes | str | None = None,
    customer_key: bytes | str | None = None,
    redact: Callable[[str], str] | None = None,
    span_exception_messages: bool = False,
    followup: str | None = None,
    context_key: bytes | str | None = None,
    context_keys: Mapping[str, bytes | str] | None = None,
    strict: bool = False,
) -> bool:
    """Start recording journeys and steps declared in ``spec``.

    - ``registry``: where metrics are exposed (default: prometheus-client's global registry);
      ``None`` keeps the default, pass a fresh ``CollectorRegistry()`` in tests.
    - ``spans``: ``"always"``, ``"interesting"`` (default: only frustrated, inaccurate or failed
      steps) or ``"off"``. ``tracer`` defaults to the global OpenTelemetry tracer provider's.
    - ``exemplars``: attach the current sampled trace id to duration buckets (default: on unless
      ``spans="off"``).
    - ``sinks`` / ``event_log``: also emit whole records (``cxmetrics.testing.Recorder``, or a
      JSONL file for ``cxmetrics analyze``: flushed every second and at exit, rotated at 64 MiB;
      see ``cxmetrics.exposition.eventlog``).
    - ``context_key`` / ``context_keys``: the secret that signs the journey context (``cx.mac``)
      and authenticates it when it comes back (default ``$CXMETRICS_CONTEXT_KEY``); rotate with
      ``context_keys={"k2": new, "k1": old}`` (the first signs, all verify). Without one, contexts
      from outside are ignored (counted ``no_key``): journeys are measured within a request only.
    - ``fingerprint_key``: key of the digests used by cross-step consistency checks (default:
      ``$CXMETRICS_FINGERPRINT_KEY``, else derived from the context key, else a random key of
      this process: never derivable from anything public).
    - ``customer_key`` / ``redact``: how ``j.identify(customer_id)`` turns an identifier into a
      reference (default HMAC-SHA256 with ``customer_key`` or ``$CXMETRICS_CUSTOMER_KEY``); raw
      identifiers are never stored, exposed or exported.
    - ``span_exception_messages``: spans of failed steps carry the exception's type and its
      message with digit runs and e-mail addresses masked (default); ``True`` records the raw
      message and stack instead — only for apps whose exception messages hold no customer data.
    - ``followup``: a Redis URL; instances reaching a key step (spec ``followup``) are tracked
      there for ``cxmetrics followup`` (default: ``$CXMETRICS_FOLLOWUP_REDIS``, else none).
    - ``strict``: raise ``SpecError``/``CxError`` instead of logging and staying a no-op.

    While a test recording (``cxmetrics.testing``) is active, ``configure()`` leaves it in place
    and returns ``True`` (see ``hold_for_test``).

    Returns ``True`` when recording; ``False`` when the spec could not be used (logged once,
    counted in ``cx_internal_errors_total{component="spec"}``, which ``registry`` then exposes;
    the spec file is loaded again at the first scrape after it changes, and recording starts
    once it loads).
    """
    if _test_hold.active:
        if not _test_hold.warned:
            _test_hold.warned = True
            log.warning(
                "cxmetrics: configure() called while a test recording (cxmetrics.testing) is "
                "active; the test's configuration and recorder stay in place"
            )
        return True
    options = _Options(
        registry=registry,
        spans=spans,
        tracer=tracer,
        exemplars=exemplars,
        sinks=sinks,
        event_log=event_log,
        fingerprint_key=fingerprint_key,
        customer_key=customer_key,
        redact=redact,
        span_exception_messages=span_exception_messages,
        followup=followup,
        context_key=context_key,
        context_keys=context_keys,
        strict=strict,
    )
    with _swap:
        return _configure(spec, options)


@dataclasses.dataclass(frozen=True)
class _Options:
    """``configure()``'s keyword arguments, kept whole so a retry reuses exactly the same."""

    registry: CollectorRegistry | None
    spans: SpanMode
    tracer: Tracer | None
    exemplars: bool | None
    sinks: Sequence[Sink]
    event_log: str | os.PathLike[str] | None
    fingerprint_key: bytes | str | None
    customer_key: bytes | str | None
    redact: Callable[[str], str] | None
    span_exception_messages: bool
    followup: str | None
    context_key: bytes | str | None
    context_keys: Mapping[str, bytes | str] | None
    strict: bool


def _configure(spec: str | os.PathLike[str] | Spec, options: _Options) -> bool:
    spans, strict, registry = options.spans, options.strict, options.registry
    if not (isinstance(spans, str) and spans in SPAN_MODES):
        message = f"spans must be one of {', '.join(SPAN_MODES)}, got {shown(spans)}"
        if strict:
            raise CxError(message)
        log.error("cxmetrics: %s; using 'interesting'", message)
        spans = "interesting"
    target = registry if registry is not None else REGISTRY

    def not_recording(exc: BaseException | None, message: str) -> bool:
        internal_error("spec", exc, f"cxmetrics: not recording, the spec cannot be used: {message}")
        if STATE.runtime is not None:
            return False  # the runtime configured earlier goes on recording and exposing
        if not isinstance(spec, (str, os.PathLike)):
            _stand_by(target, None, frozenset(), None)
        else:

            def again(fixed: Spec) -> bool:
                _installed.resuming = True
                try:
                    if _test_hold.active:
                        return True
                    with _swap:  # not strict: a spec that fails again keeps the stand-in
                        return _configure(fixed, dataclasses.replace(options, strict=False))
                finally:
                    _installed.resuming = False

            _stand_by(target, None, frozenset(), _retry_spec(spec, again))
        return False

    from .spec.load import load_spec  # pydantic and PyYAML: only once a spec is loaded
    from .spec.model import Spec as SpecModel

    try:
        loaded = load_spec(spec) if isinstance(spec, (str, os.PathLike)) else spec
    except SpecError as exc:
        if strict:
            raise
        return not_recording(None, str(exc))
    if not isinstance(loaded, SpecModel):
        message = f"spec must be a path or a cxmetrics Spec, got {type(loaded).__name__}"
        if strict:
            raise CxError(message)
        return not_recording(None, message)

    from .exposition.collector import CxCollector
    from .exposition.eventlog import EventLog
    from .followup import tracker
    from .instrument import spans as otel

    owned: tuple[Sink, ...] = ()
    try:
        if options.event_log is not None:
            owned += (EventLog(options.event_log),)
        redis_url = options.followup or os.environ.get(FOLLOWUP_ENV)
        owned += tracker.tracker_sinks(loaded, redis_url, strict)
        keys = resolve(options.context_key, options.context_keys, os.environ)
        runtime = Runtime(
            loaded,
            spans,
            (options.tracer or otel.tracer()) if spans != "off" else None,
            options.exemplars if options.exemplars is not None else spans != "off",
            (*options.sinks, *owned),
            _key(options.fingerprint_key, keys),
            make_redactor(options.customer_key, options.redact),
            keys,
        )
        collector = CxCollector(runtime)
    except Exception as exc:  # a spec that validates but cannot be bound (e.g. an infinite target)
        for sink in owned:  # opened for a runtime that will not run
            with contextlib.suppress(Exception):
                sink.close()
        if strict:
            raise CxError(f"cannot use the spec {loaded.source}: {exc!r}") from exc
        return not_recording(exc, repr(exc))
    _stop()
    if not _installed.resuming:
        # Internal-error counts and log-once memory are this configuration's; a spec that
        # loads after failing at start-up continues the same one (its failures stay counted).
        STATE.reset()
    try:
        target.register(collector)
    except ValueError as exc:
        if strict:
            raise CxError(f"cannot register cxmetrics metrics: {exc}") from exc
        colliding = frozenset(getattr(exc, "duplicates", ())) or _names(collector.describe())
        internal_error(
            "registry",
            exc,
            f"cxmetrics: registry collision on {', '.join(sorted(colliding))}; those metrics are "
            "not exposed (still recorded) until the other collector goes away",
        )
        _stand_by(target, collector, colliding, _retry_register)
    else:
        _installed.collector, _installed.registry = collector, target
    _installed.owned_sinks = owned
    otel.record_raw_exceptions(options.span_exception_messages)
    tracker.expose(owned, target)
    if keys is None:
        log_once("nokey", NO_KEY_MESSAGE)
    STATE.runtime = runtime
    return True


class _TestHold:
    active = False
    warned = False


_test_hold = _TestHold()


def hold_for_test(active: bool) -> None:
    """While a test recording (``cxmetrics.testing``) holds the configuration, ``configure()``
    keeps it and returns ``True`` (logged once): an app configuring itself at import must not
    take the test's recorder away. ``shutdown()`` releases the hold."""
    _test_hold.active, _test_hold.warned = active, False


def shutdown() -> None:
    """Stop recording: unregister the collector, flush and close sinks cxmetrics opened. The
    internal-error counts and log-once memory are forgotten with the configuration."""
    _test_hold.active = False
    with _swap:
        _stop()
        STATE.reset()


def _stop() -> None:
    runtime, STATE.runtime = STATE.runtime, None
    if _installed.collector is not None and _installed.registry is not None:
        with contextlib.suppress(KeyError):
            _installed.registry.unregister(_installed.collector)
    _installed.collector = _installed.registry = None
    standby, _installed.standby = _installed.standby, None
    if standby is not None:
        with contextlib.suppress(KeyError):
            standby.registry.unregister(standby)
    if runtime is not None:
        for sink in runtime.all_sinks:
            try:
                if sink in _installed.owned_sinks:
                    sink.close()
                else:
                    sink.flush()
            except Exception as exc:
                internal_error("sink", exc)
    _installed.owned_sinks = ()


def is_configured() -> bool:
    return STATE.runtime is not None


def current_spec() -> Spec | None:
    runtime = STATE.runtime
    return runtime.spec if runtime is not None else None


def _key(explicit: bytes | str | None, keys: ContextKeys | None) -> bytes:
    raw = explicit if explicit is not None else os.environ.get(FINGERPRINT_KEY_ENV)
    if raw is None:  # never from anything public (a service name): digests could be inverted
        return keys.derived(b"fingerprints") if keys is not None else os.urandom(32)
    data = raw.encode() if isinstance(raw, str) else raw
    return hashlib.sha256(data).digest()


# ---------------------------------------------------------------------------------------------
# Stand-in collector: the spec did not load, or a name collided.

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


def _names(families: Sequence[Metric]) -> frozenset[str]:
    """The time-series names a registry reserves for ``families`` (as prometheus-client does)."""
    out: set[str] = set()
    for family in families:
        out.update([family.name, *(family.name + s for s in _SUFFIXES.get(family.type, ()))])
    return frozenset(out)


def _internal_errors() -> Metric:
    family = CounterMetricFamily(
        names.INTERNAL_ERRORS.removesuffix("_total"),
        names.METRICS[names.INTERNAL_ERRORS][2],
        labels=[names.COMPONENT],
    )
    with STATE.lock:
        errors = dict(STATE.errors)
    for component, count in sorted(errors.items()):
        family.add_metric([component], count)
    return family


class _Standby(Collector):
    """Exposes what can be exposed while cxmetrics' collector cannot be registered whole, and
    retries at every scrape (a scrape, not a timer thread: nothing runs unless someone looks)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        inner: CxCollector | None,
        excluded: frozenset[str],
        retry: Callable[[_Standby], None],
    ) -> None:
        self.registry = registry
        self.inner = inner
        self.excluded = excluded
        self._retry = retry
        self._busy = threading.Lock()

    def _keep(self, family: Metric) -> bool:
        return not (_names([family]) & self.excluded)

    def describe(self) -> list[Metric]:
        families = self.inner.describe() if self.inner is not None else [_internal_errors()]
        return [f for f in families if self._keep(f)]

    def collect(self) -> Iterator[Metric]:
        if self._busy.acquire(blocking=False):  # one retry at a time; concurrent scrapes skip it
            try:
                self._retry(self)
            except Exception as exc:
                internal_error("registry", exc)
            finally:
                self._busy.release()
        families = self.inner.collect() if self.inner is not None else [_internal_errors()]
        yield from (f for f in families if self._keep(f))


def _stand_by(
    registry: CollectorRegistry,
    inner: CxCollector | None,
    excluded: frozenset[str],
    retry: Callable[[_Standby], None] | None,
) -> None:
    """Register a stand-in (``retry=None``: nothing to retry, or keep the current retry)."""
    old = _installed.standby
    if old is not None and old.registry is registry and old.inner is None and inner is None:
        if retry is not None:  # already standing by for an earlier configure() that failed
            old._retry = retry
        return
    if old is not None:
        with contextlib.suppress(KeyError):
            old.registry.unregister(old)
        _installed.standby = None
    standby = _Standby(registry, inner, excluded, retry or (lambda standby: None))
    try:
        registry.register(standby)
    except ValueError as exc:  # even cx_internal_errors_total collides: logging is all we have
        internal_error("registry", exc)
        return
    _installed.standby = standby


def _retry_spec(path: str | os.PathLike[str], again: Callable[[Spec], bool]) -> Callable[..., None]:
    tried = [_signature(path)]  # the file as it was when it failed: retried once it changes

    def retry(standby: _Standby) -> None:
        now = _signature(path)
        if now == tried[0] or STATE.runtime is not None:
            return
        tried[0] = now
        from .spec.load import load_spec

        try:
            fixed = load_spec(path)
        except SpecError as exc:
            internal_error("spec", None, f"cxmetrics: the spec still cannot be used: {exc}")
            return
        if again(fixed):  # replaces this stand-in with the collector
            log.warning("cxmetrics: the spec %s loads now; recording", os.fspath(path))

    return retry


def _signature(path: str | os.PathLike[str]) -> tuple[float, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime, st.st_size, st.st_ino


def _retry_register(standby: _Standby) -> None:
    inner, registry = standby.inner, standby.registry
    if inner is None or STATE.runtime is not inner.runtime:
        return
    probe = _Describes([f for f in inner.describe() if not standby._keep(f)])
    try:
        registry.register(probe)  # are the colliding names free now?
    except ValueError:
        return
    registry.unregister(probe)
    registry.unregister(standby)
    try:
        registry.register(inner)
    except ValueError:  # taken again in between: keep standing by
        registry.register(standby)
        return
    _installed.collector, _installed.registry, _installed.standby = inner, registry, None
    log.warning("cxmetrics: the registry collision cleared; every metric is exposed again")


class _Describes(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def describe(self) -> list[Metric]:
        return self.families

    def collect(self) -> list[Metric]:
        return []
