"""One export row as a call of a contact journey, by the journey's ``contact.records`` mapping.

A row goes to the contact journey whose ``records.queues`` lists its queue (a spec with a single
contact journey that lists no queues takes every row). Its disposition comes from its timestamps
and outcome: ``answered`` when it has an answer time, else ``failed`` when its outcome or wrap-up
code is one of ``records.failed``, else ``abandoned``. A row that cannot be a call raises
``ValueError`` with the reason (field and value), which the importer reports with file:line.
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

from .._exceptions import CxError
from ..instrument.events import ContactRecord
from ..instrument.redaction import Redact, customer_ref
from ..spec.model import Journey, RecordMapping, Spec
from .rows import Row

EARLIEST: Final = 946_684_800.0  # 2000-01-01: the event log refuses older records
AHEAD: Final = 86_400.0  # nor more than a day ahead of this machine's clock
MAX_CALL: Final = 366 * 86_400.0
MAX_ID: Final = 128
MAX_REFS: Final = 1 << 17  # customer references remembered (about 20 MB at most)
SCALES: Final = {"csat": (1, 5), "nps": (0, 10)}
_TRUE: Final = frozenset({"1", "true", "yes", "y", "t"})
_FALSE: Final = frozenset({"", "0", "false", "no", "n", "f"})


@dataclass(frozen=True, slots=True)
class Call:
    """A call and what else its row carries: the survey score (or None)."""

    record: ContactRecord
    answered_at: float | None
    survey: int | None


@dataclass(frozen=True)
class Route:
    """A contact journey with its mapping resolved."""

    journey: Journey
    mapping: RecordMapping
    channel: str
    zone: tzinfo
    failed: frozenset[str]
    tickets: frozenset[str]
    complaints: frozenset[str]


class Router:
    """Finds each row's journey and builds its call."""

    def __init__(self, spec: Spec, redact: Redact, journey: str | None = None) -> None:
        journeys = spec.contact_journeys
        if journey is not None:
            journeys = tuple(j for j in journeys if j.name == journey)
            if not journeys:
                declared = ", ".join(j.name for j in spec.contact_journeys) or "none"
                raise CxError(
                    f"journey '{journey}' has no contact block in {spec.source} "
                    f"(contact journeys: {declared})"
                )
        if not journeys:
            raise CxError(
                f"{spec.source} declares no contact journey; add a 'contact:' block to the "
                "journey the calls belong to (docs/contact-centre.md)"
            )
        self._redact = redact
        self._refs: dict[str, str | None] = {}  # customer → reference, bounded (MAX_REFS)
        self._by_queue: dict[str, Route] = {}
        self._default: Route | None = None
        self._latest = _time.time() + AHEAD
        self.routes = tuple(_route(spec, j) for j in journeys)
        for route in self.routes:
            j = route.journey
            for queue in route.mapping.queues:
                self._by_queue[queue] = route
            if not route.mapping.queues:
                if len(journeys) > 1:
                    raise CxError(
                        f"journey '{j.name}': with {len(journeys)} contact journeys each must "
                        "list its queues in contact.records.queues (or pass --journey)"
                    )
                self._default = route

    def call(self, row: Row) -> tuple[Route, Call]:
        """The row's journey and call; ``ValueError`` naming the field when it is not one.
        The queue is read with the first contact journey's column names."""
        columns = self.routes[0].mapping.columns
        queue = _text(row.get(columns.queue))
        route = self._default if not self._by_queue else self._by_queue.get(queue or "")
        if route is None:
            raise ValueError(
                f"queue {queue!r} is not listed in any contact journey's records.queues"
            )
        return route, self._build(route, row, queue)

    def _build(self, route: Route, row: Row, queue: str | None) -> Call:
        columns = route.mapping.columns
        call_id = _text(row.get(columns.call_id))
        if not call_id:
            raise ValueError(f"{columns.call_id}: missing")
        if len(call_id) > MAX_ID:
            raise ValueError(f"{columns.call_id}: longer than {MAX_ID} characters")
        offered = self._stamp(row, columns.offered, route.zone, required=True)
        ended = self._stamp(row, columns.ended, route.zone, required=True)
        answered = self._stamp(row, columns.answered, route.zone, required=False)
        assert offered is not None and ended is not None
        if not offered <= ended <= offered + MAX_CALL:
            raise ValueError(
                f"{columns.ended}: {row.get(columns.ended)!r} is not between the offered time "
                "and 366 days after it"
            )
        if answered is not None and not offered <= answered <= ended:
            raise ValueError(
                f"{columns.answered}: {row.get(columns.answered)!r} is not between the offered "
                "and ended times"
            )
        outcome = _text(row.get(columns.outcome)) or ""
        wrap = _text(row.get(columns.wrap_code)) or ""
        codes = {outcome, wrap} - {""}
        if answered is not None:
            disposition = "answered"
            wait, handle = answered - offered, ended - answered
        else:
            disposition = "failed" if codes & route.failed else "abandoned"
            wait, handle = ended - offered, None
        transferred = _flag(row.get(columns.transfer), columns.transfer)
        customer = _text(row.get(columns.customer))
        ref = self._ref(customer) if customer else None
        record = ContactRecord(
            time=ended,
            journey=route.journey.name,
            channel=route.channel,
            journey_id=call_id,
            offered=offered,
            disposition=disposition,  # type: ignore[arg-type]
            wait=wait,
            handle=handle,
            transferred=transferred and answered is not None,
            ticket=bool(codes & route.tickets) and answered is not None,
            complaint=bool(codes & route.complaints) and answered is not None,
            queue=queue,
            customer_ref=ref,
        )
        return Call(record, answered, _survey(row.get(columns.survey), columns.survey, route))

    def _ref(self, customer: str) -> str | None:
        """The keyed reference of ``customer``, remembered: an HMAC per row is most of a row's
        cost, and callers call again."""
        try:
            return self._refs[customer]
        except KeyError:
            pass
        if len(self._refs) >= MAX_REFS:
            self._refs.clear()
        ref = self._refs[customer] = customer_ref(self._redact, customer)
        return ref

    def _stamp(self, row: Row, column: str, zone: tzinfo, *, required: bool) -> float | None:
        raw = row.get(column)
        if type(raw) is str and raw:  # the common case: a CSV field of epoch seconds
            try:
                seconds = float(raw)
            except ValueError:
                pass
            else:
                if EARLIEST <= seconds <= self._latest:
                    return seconds
        text = _text(raw)
        if not text:
            if required:
                raise ValueError(f"{column}: missing")
            return None
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            seconds = float(raw)
        else:
            try:
                seconds = float(text)
            except ValueError:
                try:
                    stamp = datetime.fromisoformat(text)
                except ValueError:
                    raise ValueError(
                        f"{column}: {text!r} is not a time (ISO 8601 such as "
                        "2026-01-05T10:00:00Z, or seconds since the epoch)"
                    ) from None
                if stamp.tzinfo is None:
                    stamp = stamp.replace(tzinfo=zone)
                seconds = stamp.timestamp()
        if not math.isfinite(seconds) or not EARLIEST <= seconds <= self._latest:
            raise ValueError(
                f"{column}: {text!r} is not between 2000-01-01 and a day after this machine's clock"
            )
        return seconds


def _route(spec: Spec, journey: Journey) -> Route:
    assert journey.contact is not None
    mapping = journey.contact.records
    channel = mapping.channel or (journey.channels or (spec.channel_default,))[0]
    try:
        zone: tzinfo = ZoneInfo(mapping.timezone)
    except (KeyError, ValueError) as exc:
        raise CxError(
            f"journey '{journey.name}': contact.records.timezone {mapping.timezone!r} is not a "
            f"time zone ({exc}); write e.g. UTC or Europe/Paris"
        ) from None
    return Route(
        journey,
        mapping,
        channel,
        zone,
        frozenset(mapping.failed),
        frozenset(mapping.tickets),
        frozenset(mapping.complaints),
    )


def _text(value: object) -> str | None:
    if type(value) is str:
        return value.strip()
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    raise ValueError(f"a {type(value).__name__} where a text or number belongs")


def _flag(value: object, column: str) -> bool:
    if value == "0" or value == "" or value is None:
        return False
    if value == "1":
        return True
    if isinstance(value, bool):
        return value
    text = (_text(value) or "").lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{column}: {text!r} is not a yes/no value (1/0, true/false, yes/no)")


def _survey(value: object, column: str, route: Route) -> int | None:
    if value == "" or value is None:
        return None
    text = _text(value)
    if not text:
        return None
    scale = route.mapping.survey
    low, high = SCALES[scale]
    try:
        score = int(float(text))
    except (ValueError, OverflowError):
        score = None
    if score is None or float(text) != score or not low <= score <= high:
        raise ValueError(f"{column}: {text!r} is not a {scale} score {low}..{high}")
    return score
