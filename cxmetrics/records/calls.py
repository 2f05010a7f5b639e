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
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

from .._exceptions import CxError
from ..instrument.redaction import Redact, customer_ref
from ..spec import names
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


class Call(NamedTuple):
    """One call of a row, as the importer counts and writes it (a tuple: built once a row)."""

    journey: str
    channel: str
    segment: str
    call_id: str
    customer_ref: str | None
    queue: str | None
    offered: float
    answered: float | None  # None: not answered
    ended: float
    disposition: str  # answered, abandoned or failed
    wait: float  # offered to answered (answered), else offered to the end
    handle: float | None  # answered to the end (answered calls only)
    transferred: bool
    ticket: bool
    complaint: bool
    survey: int | None


@dataclass(frozen=True)
class Route:
    """A contact journey with its mapping resolved: column names, channels and segments."""

    journey: Journey
    mapping: RecordMapping
    channel: str
    zone: tzinfo
    failed: frozenset[str]
    tickets: frozenset[str]
    complaints: frozenset[str]
    channels: frozenset[str]  # the journey's declared channels (others: ``other``)
    segments: frozenset[str]  # the spec's declared segments (others: ``other``)


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
        self._queue_column = self.routes[0].mapping.columns.queue
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
        raw = row.get(self._queue_column)
        queue = raw.strip() if type(raw) is str else _text(raw)
        route = self._default if not self._by_queue else self._by_queue.get(queue or "")
        if route is None:
            raise ValueError(
                f"queue {queue!r} is not listed in any contact journey's records.queues"
            )
        return route, self._build(route, row, queue)

    def _build(self, route: Route, row: Row, queue: str | None) -> Call:
        # The hot path of an import: one call per row, so attribute look-ups are hoisted.
        columns = route.mapping.columns
        get = row.get
        raw = get(columns.call_id)
        call_id = raw.strip() if type(raw) is str else _text(raw)
        if not call_id:
            raise ValueError(f"{columns.call_id}: missing")
        if len(call_id) > MAX_ID:
            raise ValueError(f"{columns.call_id}: longer than {MAX_ID} characters")
        latest, zone = self._latest, route.zone
        offered = _stamp(get(columns.offered), columns.offered, zone, latest)
        if offered is None:
            raise ValueError(f"{columns.offered}: missing")
        ended = _stamp(get(columns.ended), columns.ended, zone, latest)
        if ended is None:
            raise ValueError(f"{columns.ended}: missing")
        answered = _stamp(get(columns.answered), columns.answered, zone, latest)
        if not offered <= ended <= offered + MAX_CALL:
            raise ValueError(
                f"{columns.ended}: {get(columns.ended)!r} is not between the offered time "
                "and 366 days after it"
            )
        if answered is not None and not offered <= answered <= ended:
            raise ValueError(
                f"{columns.answered}: {get(columns.answered)!r} is not between the offered "
                "and ended times"
            )
        raw = get(columns.outcome)
        outcome = (raw.strip() if type(raw) is str else _text(raw)) or ""
        raw = get(columns.wrap_code)
        wrap = (raw.strip() if type(raw) is str else _text(raw)) or ""
        transferred = _flag(get(columns.transfer), columns.transfer)
        if answered is not None:
            disposition = "answered"
            wait: float = answered - offered
            handle: float | None = ended - answered
            transferred_answered = transferred
            ticket = outcome in route.tickets or wrap in route.tickets
            complaint = outcome in route.complaints or wrap in route.complaints
        else:
            failed = outcome in route.failed or wrap in route.failed
            disposition = "failed" if failed else "abandoned"
            wait, handle = ended - offered, None
            transferred_answered = ticket = complaint = False
        raw = get(columns.customer)
        customer = raw.strip() if type(raw) is str else _text(raw)
        ref = self._ref(customer) if customer else None
        survey = get(columns.survey)
        score = None if survey == "" or survey is None else _survey(survey, columns.survey, route)
        return Call(
            route.journey.name,
            _name(get(columns.channel), route.channels, route.channel),
            _name(get(columns.segment), route.segments, names.NONE),
            call_id,
            ref,
            queue,
            offered,
            answered,
            ended,
            disposition,
            wait,
            handle,
            transferred_answered,
            ticket,
            complaint,
            score,
        )

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


def _stamp(raw: object, column: str, zone: tzinfo, latest: float) -> float | None:
    """Seconds since the epoch of a time field; None when it is empty."""
    if type(raw) is str and raw:  # the common case: a CSV field of epoch seconds
        try:
            seconds = float(raw)
        except ValueError:
            pass
        else:
            if EARLIEST <= seconds <= latest:
                return seconds
    text = _text(raw)
    if not text:
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
    if not math.isfinite(seconds) or not EARLIEST <= seconds <= latest:
        raise ValueError(
            f"{column}: {text!r} is not between 2000-01-01 and a day after this machine's clock"
        )
    return seconds


def _name(raw: object, declared: frozenset[str], default: str) -> str:
    """A channel or segment field: ``default`` when empty or absent, the value when the spec
    declares it, else ``other`` (as the instrumentation folds undeclared names)."""
    if raw is None or raw == "":
        return default
    text = raw.strip() if type(raw) is str else _text(raw)
    if not text:
        return default
    return text if text in declared else names.OTHER


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
        frozenset(mapping.failed) - {""},
        frozenset(mapping.tickets) - {""},
        frozenset(mapping.complaints) - {""},
        frozenset(journey.channels or spec.channels),
        frozenset(spec.segments),
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
