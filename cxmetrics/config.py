"""``configure()``: load the spec, bind every slot, register the collector, pick the span mode.

Before ``configure()`` every instrumentation call is a no-op. Calling it again replaces the
runtime (the old collector is unregistered); ``shutdown()`` returns to the no-op state.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry

from ._exceptions import CxError, SpecError
from ._runtime import SPAN_MODES, Runtime, SpanMode
from ._state import STATE, internal_error
from .emitters.base import Sink
from .redaction import make_redactor
from .spec import Spec, load_spec

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from .emitters.prometheus import CxCollector

log = logging.getLogger("cxmetrics")
FINGERPRINT_KEY_ENV = "CXMETRICS_FINGERPRINT_KEY"


class _Installed:
    collector: CxCollector | None = None
    registry: CollectorRegistry | None = None
    owned_sinks: tuple[Sink, ...] = ()


_installed = _Installed()


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
      JSONL file for ``cxmetrics analyze``).
    - ``fingerprint_key``: key of the digests used by cross-step consistency checks (default:
      ``$CXMETRICS_FINGERPRINT_KEY``, else derived from the service name — set one when journey
      contexts cross untrusted boundaries).
    - ``customer_key`` / ``redact``: how ``j.identify(customer_id)`` turns an identifier into a
      reference (default HMAC-SHA256 with ``customer_key`` or ``$CXMETRICS_CUSTOMER_KEY``); raw
      identifiers are never stored, exposed or exported.
    - ``strict``: raise ``SpecError``/``CxError`` instead of logging and staying a no-op.

    Returns ``True`` when recording; ``False`` when the spec could not be used (logged once).
    """
    if spans not in SPAN_MODES:
        message = f"spans must be one of {', '.join(SPAN_MODES)}, got {spans!r}"
        if strict:
            raise CxError(message)
        log.error("cxmetrics: %s; using 'interesting'", message)
        spans = "interesting"
    try:
        loaded = spec if isinstance(spec, Spec) else load_spec(spec)
    except SpecError as exc:
        if strict:
            raise
        internal_error("spec", None, f"cxmetrics: not recording, the spec cannot be used: {exc}")
        return False

    from .emitters import otel
    from .emitters.eventlog import EventLog
    from .emitters.prometheus import CxCollector

    shutdown()
    owned: tuple[Sink, ...] = (EventLog(event_log),) if event_log is not None else ()
    runtime = Runtime(
        loaded,
        spans,
        (tracer or otel.tracer()) if spans != "off" else None,
        exemplars if exemplars is not None else spans != "off",
        (*sinks, *owned),
        _key(fingerprint_key, loaded.service),
        make_redactor(customer_key, redact),
    )
    target = registry if registry is not None else REGISTRY
    collector = CxCollector(runtime)
    try:
        target.register(collector)
    except ValueError as exc:
        if strict:
            raise CxError(f"cannot register cxmetrics metrics: {exc}") from exc
        internal_error(
            "registry", exc, f"cxmetrics: metrics not exposed, registry collision: {exc}"
        )
    else:
        _installed.collector, _installed.registry = collector, target
    _installed.owned_sinks = owned
    STATE.runtime = runtime
    return True


def shutdown() -> None:
    """Stop recording: unregister the collector, flush and close sinks cxmetrics opened."""
    runtime, STATE.runtime = STATE.runtime, None
    if _installed.collector is not None and _installed.registry is not None:
        with contextlib.suppress(KeyError):
            _installed.registry.unregister(_installed.collector)
    _installed.collector = _installed.registry = None
    if runtime is not None:
        for sink in runtime.sinks:
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


def _key(explicit: bytes | str | None, service: str) -> bytes:
    raw = explicit if explicit is not None else os.environ.get(FINGERPRINT_KEY_ENV)
    if raw is None:
        raw = f"cxmetrics:{service}"
    data = raw.encode() if isinstance(raw, str) else raw
    return hashlib.sha256(data).digest()
