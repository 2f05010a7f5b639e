"""The configured runtime: the spec bound to slots, the span mode and the sinks.

``configure()`` builds one ``Runtime`` and publishes it in ``STATE.runtime``; journeys and steps
look their slots up here once per journey instance.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

from ..propagation.codec import head, step_members
from ..spec.names import OTHER
from .messages import shown
from .sinks import StepHook
from .slots import JourneySlot, build_journeys

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from ..propagation.integrity import ContextKeys
    from ..spec.model import Spec
    from .sinks import Sink

log = logging.getLogger("cxmetrics")

SpanMode = Literal["always", "interesting", "off"]
SPAN_MODES: tuple[SpanMode, ...] = ("always", "interesting", "off")


class Runtime:
    __slots__ = (
        "all_sinks",
        "channel_index",
        "channels",
        "context_keys",
        "default_channel",
        "exemplars",
        "fingerprint_key",
        "journeys",
        "lock",
        "logged",
        "members",
        "redact",
        "rejected",
        "sinks",
        "span_mode",
        "spec",
        "step_hooks",
        "tracer",
        "undeclared",
    )

    def __init__(
        self,
        spec: Spec,
        span_mode: SpanMode,
        tracer: Tracer | None,
        exemplars: bool,
        sinks: Sequence[Sink],
        fingerprint_key: bytes,
        redact: Callable[[str], str],
        context_keys: ContextKeys | None = None,
    ) -> None:
        self.spec = spec
        self.span_mode = span_mode
        self.tracer = tracer
        self.exemplars = exemplars
        # Step hooks (``sinks.StepHook``) are told of each finished step without a record being
        # built for them; the other sinks get every record. ``all_sinks``: both, to flush/close.
        self.all_sinks: tuple[Sink, ...] = tuple(sinks)
        self.step_hooks: tuple[StepHook, ...] = tuple(s for s in sinks if isinstance(s, StepHook))
        self.sinks: tuple[Sink, ...] = tuple(s for s in sinks if not isinstance(s, StepHook))
        self.fingerprint_key = fingerprint_key
        self.redact = redact
        self.context_keys = context_keys  # None: contexts from outside are never trusted
        self.journeys: dict[str, JourneySlot] = build_journeys(spec)
        # Each journey's context members around the instance id, prepared once (the outgoing
        # context of every response): head, and tails[channel][last step index].
        self.members: dict[str, tuple[str, list[list[str]]]] = {
            name: (
                head(name),
                [
                    [
                        step_members(slot.previous_name(last), channel)
                        for last in range(slot.n_steps + 2)
                    ]
                    for channel in slot.channels
                ],
            )
            for name, slot in self.journeys.items()
        }
        self.channels = (*spec.channels, OTHER)
        self.channel_index = {c: i for i, c in enumerate(self.channels)}
        self.default_channel = self.channel_index[spec.channel_default]
        self.lock = threading.Lock()
        self.undeclared: dict[str, int] = {
            "journey": 0,
            "step": 0,
            "check": 0,
            "channel": 0,
            "segment": 0,
            "reason": 0,
        }
        self.rejected: dict[str, int] = {}
        self.logged: set[str] = set()  # what this runtime has warned about once

    def journey_slot(self, name: str) -> JourneySlot:
        slot = self.journeys.get(name) if type(name) is str else None
        if slot is None or name == OTHER:
            self.count_undeclared("journey", name)
            return self.journeys[OTHER]
        return slot

    def channel(self, name: str | None) -> int:
        if name is None:
            return self.default_channel
        index = self.channel_index.get(name) if type(name) is str else None
        if index is None or name == OTHER:
            self.count_undeclared("channel", name)
            return self.channel_index[OTHER]
        return index

    def count_undeclared(self, kind: str, name: str) -> None:
        with self.lock:
            self.undeclared[kind] += 1
        # Once per kind: names may come from user input, so neither logs nor memory grow with them.
        self._log_once(
            f"undeclared:{kind}",
            "cxmetrics: %s %s is not declared in the spec %s; counted as 'other' in "
            "cx_undeclared_names_total (further undeclared %s names are counted only)",
            kind,
            shown(name),
            self.spec.source,
            kind,
        )

    def count_rejected(self, reason: str) -> None:
        with self.lock:
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self._log_once(
            f"rejected:{reason}",
            "cxmetrics: ignored an incoming journey context (%s); a new instance starts",
            reason,
        )

    def _log_once(self, key: str, message: str, *args: object) -> None:
        with self.lock:
            if key in self.logged:
                return
            self.logged.add(key)
        log.warning(message, *args)
