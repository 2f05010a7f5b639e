"""Contact-centre indicators: each defined once, here, as data, and derived into the analyzer's
numbers (``value`` over ``ContactCounts``), the recording rules (``cxmetrics.rules.contact``) and
the dashboard queries (``promql``), over the call counters of ``names.CONTACT_METRICS``.

A ratio is ``numerator / denominator`` of ``Count`` terms, as in the catalogue (same rules: a
zero denominator gives ``None`` / no series, the result is clamped to [0, 1]); a mean is a
histogram's sum over its count (exact: ASA, AHT); a quantile is read from the histogram's buckets
by the interpolation Prometheus' ``histogram_quantile`` uses, in both forms (p90 handle time).

- **offered**: every call of the journey, whatever its disposition. **Service level** = calls
  answered within the threshold / offered: abandoned and failed calls stay in the denominator
  (a call abandoned after 3 s was not answered within 20 s); with ``short_abandons: exclude``
  calls abandoned before ``short_abandon`` leave numerator and denominator alike. The same
  exclusion applies to the abandonment rate.
- **First-contact resolution** is computed, not asserted: an answered call is judged
  ``repeat`` when the same customer (keyed reference) calls the same journey again within the
  repeat window after it ended, at the time of that call; ``first_contact`` when the window
  closed without one, at its close. A call whose window is still open at the end of the data is
  not judged (neither numerator nor denominator). ``RepeatJudge`` makes those judgments, the same
  way for the importer's counters and the analyzer's event log.
- **Satisfaction**: the share of the journey's survey responses that are 4–5 (CSAT) or 9–10
  (NPS promoters), per the records mapping's ``survey``.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple

from ..instrument.events import ContactRecord, Event, FeedbackRecord
from ..spec import names
from ..spec.model import Contact, Journey, Spec
from .catalogue import Matcher, Re, clamp, selector
from .counts import StepCounts
from .indicators import quantile

#: A call offered earlier than the latest offered call by more than this is refused (input must
#: be in offered-time order within this tolerance, or repeat judgments could not be final).
REORDER_TOLERANCE: Final = 3600.0
HANDLE_QUANTILE: Final = 0.9
_SATISFIED_SCORES: Final = {"csat": Re("4|5"), "nps": Re("9|10")}


@dataclass(frozen=True)
class Count:
    """The sum of the series of one family matching ``match`` (a value or a regex of values)."""

    metric: str
    match: tuple[tuple[str, Matcher], ...] = ()


@dataclass(frozen=True)
class Ratio:
    """``numerator / denominator``, clamped to [0, 1]; None / no series when nothing to divide."""

    name: str
    title: str
    numerator: tuple[Count, ...]
    denominator: tuple[Count, ...]
    definition: str


@dataclass(frozen=True)
class Mean:
    """``histogram``'s sum over its count."""

    histogram: str


@dataclass(frozen=True)
class Quantile:
    """The ``q`` quantile of ``histogram`` from its buckets."""

    histogram: str
    q: float


Form = Ratio | Mean | Quantile
Direction = Literal["high", "low"]


@dataclass(frozen=True)
class Indicator:
    """One contact indicator: its definition, and for the three highs / three lows and FCR the
    direction its objective bounds (``high``: at least, ``low``: at most)."""

    name: str
    form: Form
    direction: Direction | None = None

    @property
    def title(self) -> str:
        return self.form.title if isinstance(self.form, Ratio) else _TITLES[self.name]


_TITLES: Final = {
    "asa": "average speed of answer",
    "aht": "average handle time",
    "p90_handle": "p90 handle time",
}


def _calls(*dispositions: str, wait: str | None = None) -> Count:
    match: list[tuple[str, Matcher]] = []
    if dispositions:
        value = dispositions[0] if len(dispositions) == 1 else Re("|".join(dispositions))
        match.append((names.DISPOSITION, value))
    if wait is not None:
        match.append((names.WAIT, wait))
    return Count(names.CONTACTS, tuple(match))


_ANSWERED, _ABANDONED, _SHORT, _FAILED = names.DISPOSITIONS
_WITHIN, _BEYOND = names.WAITS
_OFFERED = (_calls(),)
_OFFERED_NO_SHORT = (_calls(_ANSWERED, _ABANDONED, _FAILED),)


def _flag(flag: str) -> Ratio:
    return Ratio(
        f"{flag}_rate",
        f"{flag} rate",
        (Count(names.CONTACT_FLAGS, ((names.FLAG, flag),)),),
        (_calls(_ANSWERED),),
        f"answered calls with a {flag} / answered calls",
    )


ANSWER_RATE = Ratio(
    "answer_rate", "answer rate", (_calls(_ANSWERED),), _OFFERED, "answered / offered calls"
)
SERVICE_LEVEL = Ratio(
    "service_level",
    "service level",
    (_calls(_ANSWERED, wait=_WITHIN),),
    _OFFERED,
    "calls answered within N s / offered calls (abandoned and failed included)",
)
SERVICE_LEVEL_NO_SHORT = Ratio(
    "service_level",
    "service level",
    (_calls(_ANSWERED, wait=_WITHIN),),
    _OFFERED_NO_SHORT,
    "calls answered within N s / (offered − short abandons)",
)
ABANDONMENT = Ratio(
    "abandon_rate",
    "abandon rate",
    (_calls(_ABANDONED, _SHORT),),
    _OFFERED,
    "abandoned calls / offered calls",
)
ABANDONMENT_NO_SHORT = Ratio(
    "abandon_rate",
    "abandon rate",
    (_calls(_ABANDONED),),
    _OFFERED_NO_SHORT,
    "calls abandoned after the short-abandon threshold / (offered − short abandons)",
)
TRANSFER_RATE = _flag("transfer")
TICKET_RATE = _flag("ticket")
COMPLAINT_RATE = _flag("complaint")
FCR = Ratio(
    "first_contact_resolution",
    "first-contact resolution",
    (Count(names.CONTACT_RESOLUTIONS, ((names.RESOLUTION, "first_contact"),)),),
    (Count(names.CONTACT_RESOLUTIONS),),
    "answered calls not repeated within the repeat window / answered calls judged",
)


def _satisfaction(scale: str) -> Ratio:
    responses: tuple[tuple[str, Matcher], ...] = ((names.SCALE, scale),)
    return Ratio(
        "satisfaction",
        "satisfaction",
        (Count(names.FEEDBACK, (*responses, (names.SCORE, _SATISFIED_SCORES[scale]))),),
        (Count(names.FEEDBACK, responses),),
        "survey responses 4–5 (CSAT) or 9–10 (NPS) / survey responses",
    )


def indicators(contact: Contact) -> tuple[Indicator, ...]:
    """The journey's contact indicators, in the order the view shows them: the three highs, the
    three lows, then the rest."""
    exclude = contact.service_level.short_abandons == "exclude"
    return (
        Indicator("answer_rate", ANSWER_RATE, "high"),
        Indicator("service_level", SERVICE_LEVEL_NO_SHORT if exclude else SERVICE_LEVEL, "high"),
        Indicator("satisfaction", _satisfaction(contact.records.survey), "high"),
        Indicator("transfer_rate", TRANSFER_RATE, "low"),
        Indicator("ticket_rate", TICKET_RATE, "low"),
        Indicator("complaint_rate", COMPLAINT_RATE, "low"),
        Indicator("first_contact_resolution", FCR, "high"),
        Indicator("abandon_rate", ABANDONMENT_NO_SHORT if exclude else ABANDONMENT),
        Indicator("asa", Mean(names.CONTACT_WAIT)),
        Indicator("aht", Mean(names.CONTACT_HANDLE)),
        Indicator("p90_handle", Quantile(names.CONTACT_HANDLE, HANDLE_QUANTILE)),
    )


def objective(contact: Contact, indicator: Indicator) -> float | None:
    """The spec's objective of ``indicator`` (None: it has none)."""
    if indicator.name == "service_level":
        return contact.service_level.objective
    value = getattr(contact.objectives, indicator.name, None)
    return value if isinstance(value, float) else None


# ---------------------------------------------------------------------------------------------
# Classification and repeat judgments (shared by the importer and the analyzer)


def classify(contact: Contact, record: ContactRecord) -> tuple[str, str]:
    """(disposition label, wait label) of a call under ``contact``'s thresholds: a call abandoned
    before ``short_abandon`` is ``short_abandoned``; the wait is ``within`` when at most the
    service-level threshold (``le``, like a histogram bucket)."""
    return Classifier(contact)(record.disposition, record.wait)


class Classifier:
    """``classify`` with the thresholds of one contact block read once (the importer calls it
    for every row)."""

    __slots__ = ("_short", "_threshold")

    def __init__(self, contact: Contact) -> None:
        self._threshold = contact.service_level.threshold
        self._short = contact.short_abandon

    def __call__(self, disposition: str, wait: float) -> tuple[str, str]:
        label = _WITHIN if wait <= self._threshold else _BEYOND
        if disposition == _ABANDONED and wait < self._short:
            return _SHORT, label
        return disposition, label


class Judgment(NamedTuple):
    time: float
    resolution: str  # "first_contact" | "repeat"
    customer: str | None = None  # the judged call's customer and end (which call it was)
    end: float = 0.0


_NO_JUDGMENTS: Final[tuple[Judgment, ...]] = ()


class RepeatJudge:
    """Judges answered calls ``repeat`` or ``first_contact`` (see the module docstring), fed
    calls in offered-time order (``REORDER_TOLERANCE`` allowed). Memory: the answered calls of
    the last repeat window, not the whole input."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._pending: dict[str, list[float]] = {}  # customer → end times awaiting judgment
        self._expiry: list[tuple[float, str, float]] = []  # (end + window, customer, end)
        self._horizon = float("-inf")

    def too_early(self, offered: float) -> bool:
        """True when a call offered at ``offered`` comes too late in the input to be judged."""
        return offered < self._horizon - REORDER_TOLERANCE

    def offer(
        self, customer: str | None, offered: float, end: float, answered: bool
    ) -> Sequence[Judgment]:
        """Take one call (already checked with ``too_early``); the judgments it makes final."""
        out: list[Judgment] | None = None
        if customer is not None:
            ends = self._pending.get(customer)
            if ends:
                window = self.window
                repeated = [e for e in ends if e < offered <= e + window]
                if repeated:
                    out = []
                    for e in repeated:
                        ends.remove(e)
                        out.append(Judgment(offered, "repeat", customer, e))
                    if not ends:
                        del self._pending[customer]
        if offered > self._horizon:
            self._horizon = offered
        settled = self._horizon - REORDER_TOLERANCE
        expiry = self._expiry
        while expiry and expiry[0][0] < settled:
            expired = self._expire(*heapq.heappop(expiry))
            if expired is not None:
                out = [expired] if out is None else [*out, expired]
        if answered and customer is not None:
            self._pending.setdefault(customer, []).append(end)
            heapq.heappush(expiry, (end + self.window, customer, end))
        return _NO_JUDGMENTS if out is None else out

    def finish(self, as_of: float) -> tuple[list[Judgment], int]:
        """The judgments of windows closed by ``as_of``, and how many calls stay unjudged."""
        out: list[Judgment] = []
        while self._expiry and self._expiry[0][0] <= as_of:
            expired = self._expire(*heapq.heappop(self._expiry))
            if expired is not None:
                out.append(expired)
        return out, sum(len(ends) for ends in self._pending.values())

    def _expire(self, closes: float, customer: str, end: float) -> Judgment | None:
        ends = self._pending.get(customer)
        if ends is None or end not in ends:
            return None  # judged a repeat already
        ends.remove(end)
        if not ends:
            del self._pending[customer]
        return Judgment(closes, "first_contact", customer, end)


# ---------------------------------------------------------------------------------------------
# (a) The analyzer: exact counts from the event log


@dataclass
class ContactCounts:
    """One contact journey's calls over ``(start, end]``: every counter family as label tuples
    (its labels after ``journey``) → count, and each histogram's sum, count and buckets."""

    series: dict[str, dict[tuple[str, ...], float]] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, list[int]] = field(default_factory=dict)
    unjudged: int = 0  # answered calls whose repeat window is still open at the end of the data
    no_customer: int = 0  # answered calls without a customer reference (never judged)

    def add(self, metric: str, labels: tuple[str, ...], n: float = 1.0) -> None:
        family = self.series.setdefault(metric, {})
        family[labels] = family.get(labels, 0.0) + n

    def observe(self, metric: str, seconds: float) -> None:
        bounds = HISTOGRAM_BOUNDS[metric]
        counts = self.buckets.setdefault(metric, [0] * (len(bounds) + 1))
        counts[bucket(bounds, seconds)] += 1
        self.sums[metric] = self.sums.get(metric, 0.0) + seconds

    def count(self, metric: str) -> int:
        return sum(self.buckets.get(metric, ()))


HISTOGRAM_BOUNDS: Final = {
    names.CONTACT_WAIT: names.CONTACT_WAIT_BUCKETS,
    names.CONTACT_HANDLE: names.CONTACT_HANDLE_BUCKETS,
}


def bucket(bounds: tuple[float, ...], seconds: float) -> int:
    """The index of the bucket of ``bounds`` holding ``seconds`` (the last: +Inf)."""
    return bisect_left(bounds, seconds)  # le: a value on a bound is in that bound's bucket


Increment = tuple[str, tuple[str, ...], float | None]  # (family, labels, observed seconds)


def increments(contact: Contact, record: ContactRecord) -> list[Increment]:
    """What one call adds to the call counters and histograms at its end: ``(family, labels
    after journey, None)`` for a counter (+1), ``(histogram, (), seconds)`` for an observation."""
    out: list[Increment] = [(names.CONTACTS, classify(contact, record), None)]
    if record.disposition == _ANSWERED and record.handle is not None:
        out.append((names.CONTACT_WAIT, (), record.wait))
        out.append((names.CONTACT_HANDLE, (), record.handle))
        raised = (record.transferred, record.ticket, record.complaint)
        for flag, on in zip(names.CONTACT_FLAG_NAMES, raised, strict=True):
            if on:
                out.append((names.CONTACT_FLAGS, (flag,), None))
    return out


def record_call(counts: ContactCounts, contact: Contact, record: ContactRecord) -> None:
    """Count one call, as the importer's counters count it at the call's end."""
    for metric, labels, seconds in increments(contact, record):
        if seconds is None:
            counts.add(metric, labels)
        else:
            counts.observe(metric, seconds)


def from_events(
    spec: Spec, events: Iterable[Event], start: float | None = None, end: float | None = None
) -> dict[str, ContactCounts]:
    """Each contact journey's counts over ``(start, end]`` (default: everything). Calls are taken
    in the order given (a log's file order, the order they were imported in) for the repeat
    judgments, which are made over all the calls and counted when their time is in range."""
    return {
        name: parts.get("", ContactCounts())
        for name, parts in _tally(spec, events, start, end, None).items()
    }


Dimension = Literal["channel", "segment"]


def breakdown(
    spec: Spec,
    events: Iterable[Event],
    dimension: Dimension,
    start: float | None = None,
    end: float | None = None,
) -> dict[str, dict[str, ContactCounts]]:
    """``from_events`` broken down by the calls' ``channel`` or ``segment``: journey → value →
    counts. Repeat judgments are made over all the journey's calls (a call back on another
    channel is a repeat too) and counted under the judged call's value; survey responses under
    their own."""
    return _tally(spec, events, start, end, dimension)


def _tally(
    spec: Spec,
    events: Iterable[Event],
    start: float | None,
    end: float | None,
    dimension: Dimension | None,
) -> dict[str, dict[str, ContactCounts]]:
    contacts = {j.name: j.contact for j in spec.contact_journeys if j.contact is not None}
    out: dict[str, dict[str, ContactCounts]] = {name: {} for name in contacts}
    judges = {name: RepeatJudge(c.repeat_window) for name, c in contacts.items()}
    latest = float("-inf")
    judged: dict[str, list[Judgment]] = {name: [] for name in contacts}
    # The value of each answered call awaiting judgment, by (customer, end): judgments are
    # counted under the call they judge.
    origin: dict[tuple[str, float], str] = {}

    def inside(time: float) -> bool:
        return (start is None or time > start) and (end is None or time <= end)

    def part(journey: str, value: str) -> ContactCounts:
        parts = out[journey]
        counts = parts.get(value)
        if counts is None:
            counts = parts[value] = ContactCounts()
        return counts

    for event in events:
        if event.journey not in contacts:
            continue
        contact = contacts[event.journey]
        value = "" if dimension is None else getattr(event, dimension)
        if isinstance(event, ContactRecord):
            judge = judges[event.journey]
            if judge.too_early(event.offered):
                continue  # the importer refuses such rows; a log written otherwise: unjudged
            latest = max(latest, event.time, event.offered)
            answered = event.disposition == _ANSWERED
            counts = part(event.journey, value)
            if answered and event.customer_ref is None and inside(event.time):
                counts.no_customer += 1
            judged[event.journey] += judge.offer(
                event.customer_ref, event.offered, event.time, answered
            )
            if answered and event.customer_ref is not None and dimension is not None:
                origin[(event.customer_ref, event.time)] = value
            if inside(event.time):
                record_call(counts, contact, event)
        elif isinstance(event, FeedbackRecord) and event.scale is not None and inside(event.time):
            part(event.journey, value).add(
                names.FEEDBACK,
                (event.step or "", event.channel, event.segment, event.scale, str(event.score)),
            )
    for name, judge in judges.items():
        rest, unjudged = judge.finish(latest)
        if dimension is None:
            part(name, "").unjudged = unjudged
        for judgment in (*judged[name], *rest):
            value = ""
            if dimension is not None and judgment.customer is not None:
                value = origin.pop((judgment.customer, judgment.end), "")
            if inside(judgment.time):
                part(name, value).add(names.CONTACT_RESOLUTIONS, (judgment.resolution,))
    return out


def _labels(metric: str) -> tuple[str, ...]:
    family = names.CONTACT_METRICS.get(metric) or names.METRICS[metric]
    return tuple(label for label in family[1] if label not in (names.SERVICE, names.JOURNEY))


def _matches(value: str, matcher: Matcher) -> bool:
    if isinstance(matcher, Re):
        return value in matcher.pattern.split("|")
    return value == matcher


def _count(term: Count, counts: ContactCounts) -> float:
    labels = _labels(term.metric)
    match = dict(term.match)
    total = 0.0
    for key, n in counts.series.get(term.metric, {}).items():
        values = dict(zip(labels, key, strict=True))
        if all(_matches(values.get(label, ""), m) for label, m in match.items()):
            total += n
    return total


def value(form: Form, counts: ContactCounts) -> float | None:
    """``form`` over ``counts``; None when there is nothing to divide by."""
    if isinstance(form, Ratio):
        numerator = sum(_count(t, counts) for t in form.numerator)
        denominator = sum(_count(t, counts) for t in form.denominator)
        if denominator <= 0:
            return None
        return clamp(numerator / denominator)
    n = counts.count(form.histogram)
    if n == 0:
        return None
    if isinstance(form, Mean):
        return counts.sums.get(form.histogram, 0.0) / n
    bounds = HISTOGRAM_BOUNDS[form.histogram]
    return quantile(StepCounts(bounds, tuple(counts.buckets[form.histogram])), form.q)


def offered(counts: ContactCounts) -> int:
    return int(_count(_OFFERED[0], counts))


@dataclass(frozen=True)
class Row:
    """One line of the contact view."""

    name: str
    title: str
    value: float | None
    objective: float | None
    direction: Direction | None

    @property
    def met(self) -> bool | None:
        if self.value is None or self.objective is None or self.direction is None:
            return None
        if self.direction == "high":
            return self.value >= self.objective
        return self.value <= self.objective

    def as_json(self) -> dict[str, Any]:
        """The row as ``analyze --json`` and ``demo --json`` write it."""
        return {
            "value": self.value,
            "objective": self.objective,
            "direction": self.direction,
            "met": self.met,
        }


def view(journey: Journey, counts: ContactCounts) -> list[Row]:
    """The journey's contact indicators with their objectives: the three highs, the three lows,
    first-contact resolution, abandonment, ASA, AHT, p90 handle time."""
    contact = journey.contact
    if contact is None:
        raise ValueError(f"journey '{journey.name}' has no contact block")
    return [
        Row(i.name, i.title, value(i.form, counts), objective(contact, i), i.direction)
        for i in indicators(contact)
    ]


# ---------------------------------------------------------------------------------------------
# (b), (c) PromQL: recording rules and dashboard queries


def _sum(by: tuple[str, ...]) -> str:
    return f"sum by ({', '.join(by)})" if by else "sum"


def _terms(
    terms: tuple[Count, ...], scope: dict[str, str], window: str, fn: str, by: tuple[str, ...]
) -> str:
    parts = []
    for term in terms:
        sel = selector(term.metric, **{**scope, **dict(term.match)})
        parts.append(f"{_sum(by)} ({fn}({sel}[{window}]))")
    if len(parts) != 1:
        raise ValueError("a contact ratio's side is one family's series (a regex matches more)")
    return parts[0]


def promql(
    form: Form,
    journey: str,
    window: str,
    *,
    service: str,
    fn: str = "increase",
    by: tuple[str, ...] = (names.SERVICE, names.JOURNEY),
) -> str:
    """``form`` of ``service``'s ``journey`` as PromQL over ``window``: the same rules as the
    catalogue's ratios (``> 0`` denominator, a missing numerator is 0, clamped); a histogram that
    saw nothing gives no series. ``service`` is a name, or ``$service`` on a dashboard."""
    sel = {names.SERVICE: service, names.JOURNEY: journey}
    if isinstance(form, Ratio):
        numerator = _terms(form.numerator, sel, window, fn, by)
        denominator = _terms(form.denominator, sel, window, fn, by)
        return f"clamp(({numerator} or 0 * {denominator}) / ({denominator} > 0), 0, 1)"
    count = f"{_sum(by)} ({fn}({selector(form.histogram + '_count', **sel)}[{window}]))"
    if isinstance(form, Mean):
        total = f"{_sum(by)} ({fn}({selector(form.histogram + '_sum', **sel)}[{window}]))"
        return f"{total} / ({count} > 0)"
    buckets = f"{_sum((*by, 'le'))} ({fn}({selector(form.histogram + '_bucket', **sel)}[{window}]))"
    on = f"on ({', '.join(by)}) " if by else ""
    return f"histogram_quantile({form.q:g}, {buckets}) and {on}({count} > 0)"


def queries(
    journey: Journey, window: str = "$__range", service: str = "$service"
) -> dict[str, str]:
    """The dashboard query of each contact indicator of ``journey`` (name → PromQL), over the
    dashboard's range and for its ``$service`` variable by default."""
    if journey.contact is None:
        raise ValueError(f"journey '{journey.name}' has no contact block")
    return {
        i.name: promql(i.form, journey.name, window, service=service)
        for i in indicators(journey.contact)
    }


def markdown_table(contact: Contact | None = None) -> str:
    """The contact indicators as docs/contact-centre.md's table."""
    rows = ["| indicator | kind | definition |", "|---|---|---|"]
    for i in indicators(contact or Contact()):
        if isinstance(i.form, Ratio):
            text = i.form.definition
        elif isinstance(i.form, Mean):
            text = f"`{i.form.histogram}` sum / count (exact)"
        else:
            text = f"q{i.form.q:g} of `{i.form.histogram}` buckets (interpolated)"
        rows.append(f"| {i.title} (`{i.name}`) | {i.direction or ''} | {text} |")
    return "\n".join(rows) + "\n"


def volume_promql(
    indicator: Indicator, journey: str, window: str, *, service: str, fn: str = "increase"
) -> str:
    """How many events ``indicator``'s value rests on over ``window`` (its denominator; calls
    answered for the means and the quantile), summed by service and journey."""
    form = indicator.form
    scope = {names.SERVICE: service, names.JOURNEY: journey}
    by = (names.SERVICE, names.JOURNEY)
    if isinstance(form, Ratio):
        return _terms(form.denominator, scope, window, fn, by)
    sel = selector(form.histogram + "_count", **scope)
    return f"{_sum(by)} ({fn}({sel}[{window}]))"
