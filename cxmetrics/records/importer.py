"""``cxmetrics import``: a call-detail export into the event log and/or a Prometheus backfill.

Rows are streamed (memory: the repeat judgments' open windows and the backfill's series × sample
times, never the rows). Each valid row becomes, in the event log's format (so ``cxmetrics
analyze --events`` reads it): a journey start at the offered time, the mapped steps (the answer
step: the wait, outcome error unless answered; the handle step: answered calls only), the call
itself (``kind: contact``) and its survey response. For Prometheus, the same calls as the
counters and histograms of ``names.CONTACT_METRICS`` plus journeys started and feedback
(``Backfill``). A row that cannot be a call is rejected — counted by reason, the first ones named
with file:line, every one written to ``rejects`` when given — and the import goes on.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from ..analysis.contact import HISTOGRAM_BOUNDS as _BOUNDS
from ..analysis.contact import Classifier, ContactCounts, Judgment, RepeatJudge, bucket
from ..instrument.redaction import Redact
from ..spec import names
from ..spec.model import Spec
from .calls import Call, Route, Router
from .openmetrics import Backfill
from .rows import BadRow, Format, read_rows

MAX_PROBLEMS: Final = 20
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_encode = json.encoder.encode_basestring_ascii


@dataclass
class ImportReport:
    """What an import did: rows read, imported and rejected (by reason; the first named as
    ``file:line: why``), each journey's call counts, answered calls left unjudged."""

    source: str
    rows: int = 0
    imported: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    counts: dict[str, ContactCounts] = field(default_factory=dict)
    events: int = 0
    samples: int = 0

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        self.reasons[_QUOTED.sub("…", reason)] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{self.source}:{line}: {reason}")


def import_calls(
    spec: Spec,
    path: str | os.PathLike[str],
    fmt: Format,
    redact: Redact,
    *,
    events: BinaryIO | None = None,
    backfill: Backfill | None = None,
    rejects: BinaryIO | None = None,
    journey: str | None = None,
) -> ImportReport:
    """Import every row of ``path``; ``events`` receives event-log lines, ``backfill`` the
    counters. Raises ``OSError`` when the file cannot be read, ``CxError`` when the spec has no
    contact journey to map to."""
    router = Router(spec, redact, journey)
    report = ImportReport(os.fspath(path))
    tallies = {r.journey.name: _Tally(spec, r) for r in router.routes}
    report.counts = {name: tally.counts for name, tally in tallies.items()}
    buffer: list[str] = []
    append = buffer.append
    written = 0  # events written
    build = router.call
    for line, row in read_rows(path, fmt):
        report.rows += 1
        if type(row) is BadRow:
            _reject(report, rejects, line, row.reason, None)
            continue
        assert not isinstance(row, BadRow)
        try:
            _, call = build(row)
        except ValueError as exc:
            _reject(report, rejects, line, str(exc), row)
            continue
        tally = tallies[call.journey]
        if tally.judge.too_early(call.offered):
            _reject(
                report,
                rejects,
                line,
                "offered more than an hour before a call already imported; sort the export by "
                "offered time",
                row,
            )
            continue
        report.imported += 1
        judgments = tally.add(call)
        if backfill is not None:
            _backfill(backfill, tally, call, judgments)
        if events is not None:
            append(tally.lines(call))
            if len(buffer) >= 1024:
                written += _flush(events, buffer)
    if events is not None and buffer:
        written += _flush(events, buffer)
    report.events = written
    for tally in tallies.values():
        for judgment in tally.finish():
            if backfill is not None:
                pairs = (*tally.scope, (names.RESOLUTION, judgment.resolution))
                backfill.count(_family(names.CONTACT_RESOLUTIONS), pairs, judgment.time)
    return report


class _Tally:
    """One contact journey's counting during an import: its ``ContactCounts`` (the counter
    families and histograms bound once), its repeat judge, and its event-log line format."""

    def __init__(self, spec: Spec, route: Route) -> None:
        contact = route.journey.contact
        assert contact is not None
        self.route = route
        # every backfilled series carries the spec's service, as the app's own do
        self.scope = ((names.SERVICE, spec.service), (names.JOURNEY, route.journey.name))
        self.counts = ContactCounts()
        self.judge = RepeatJudge(contact.repeat_window)
        self.classify = Classifier(contact)
        self.latest = float("-inf")
        series = self.counts.series
        self._calls = series.setdefault(names.CONTACTS, {})
        self._flags = series.setdefault(names.CONTACT_FLAGS, {})
        self._resolutions = series.setdefault(names.CONTACT_RESOLUTIONS, {})
        self._feedback = series.setdefault(names.FEEDBACK, {})
        self._wait = self.counts.buckets.setdefault(
            names.CONTACT_WAIT, [0] * (len(_BOUNDS[names.CONTACT_WAIT]) + 1)
        )
        self._handle = self.counts.buckets.setdefault(
            names.CONTACT_HANDLE, [0] * (len(_BOUNDS[names.CONTACT_HANDLE]) + 1)
        )
        self._wait_sum = self._handle_sum = 0.0
        self.steps = _steps(spec, route)
        self.scale = route.mapping.survey

    def add(self, call: Call) -> Sequence[Judgment]:
        """Count ``call`` (as ``contact.increments`` counts a call) and judge its repeats."""
        if call.ended > self.latest:
            self.latest = call.ended
        answered = call.answered is not None
        key = self.classify(call.disposition, call.wait)
        calls = self._calls
        calls[key] = calls.get(key, 0.0) + 1.0
        if answered:
            assert call.handle is not None
            self._wait[bucket(_WAIT_BOUNDS, call.wait)] += 1
            self._handle[bucket(_HANDLE_BOUNDS, call.handle)] += 1
            self._wait_sum += call.wait
            self._handle_sum += call.handle
            if call.transferred or call.ticket or call.complaint:
                flags = self._flags
                raised = (call.transferred, call.ticket, call.complaint)
                for flag, on in zip(_FLAG_KEYS, raised, strict=True):
                    if on:
                        flags[flag] = flags.get(flag, 0.0) + 1.0
            if call.customer_ref is None:
                self.counts.no_customer += 1
        if call.survey is not None:
            feedback = (
                _last_step(self.route, call) or "",
                call.channel,
                call.segment,
                self.scale,
                str(call.survey),
            )
            self._feedback[feedback] = self._feedback.get(feedback, 0.0) + 1.0
        judgments = self.judge.offer(call.customer_ref, call.offered, call.ended, answered)
        for judgment in judgments:
            resolved = (judgment.resolution,)
            self._resolutions[resolved] = self._resolutions.get(resolved, 0.0) + 1.0
        return judgments

    def finish(self) -> list[Judgment]:
        """The judgments of the windows the data closes; the histograms' sums; empty families
        dropped (as ``ContactCounts`` built call by call has them)."""
        rest, self.counts.unjudged = self.judge.finish(self.latest)
        for judgment in rest:
            self.counts.add(names.CONTACT_RESOLUTIONS, (judgment.resolution,))
        counts = self.counts
        if any(self._wait):
            counts.sums[names.CONTACT_WAIT] = self._wait_sum
            counts.sums[names.CONTACT_HANDLE] = self._handle_sum
        else:
            del counts.buckets[names.CONTACT_WAIT], counts.buckets[names.CONTACT_HANDLE]
        for family in list(counts.series):
            if not counts.series[family]:
                del counts.series[family]
        return rest

    def lines(self, call: Call) -> str:
        return _lines(self.steps, self.route, call)


_FLAGS: Final = names.CONTACT_FLAG_NAMES
_FLAG_KEYS: Final = tuple((flag,) for flag in _FLAGS)
_WAIT_BOUNDS: Final = _BOUNDS[names.CONTACT_WAIT]
_HANDLE_BOUNDS: Final = _BOUNDS[names.CONTACT_HANDLE]


def _flush(events: BinaryIO, buffer: list[str]) -> int:
    """Write the buffered lines; returns how many events they hold."""
    text = "".join(buffer)
    buffer.clear()
    events.write(text.encode())
    return text.count("\n")


def _family(metric: str) -> str:
    return metric.removesuffix("_total")


def _reject(
    report: ImportReport, rejects: BinaryIO | None, line: int, reason: str, row: object
) -> None:
    report.reject(line, reason)
    if rejects is not None:
        entry = {"line": line, "reason": reason, "row": row}
        rejects.write((json.dumps(entry, default=str) + "\n").encode())


def _backfill(backfill: Backfill, tally: _Tally, call: Call, judgments: Sequence[Judgment]) -> None:
    journey = tally.scope
    disposition, wait = tally.classify(call.disposition, call.wait)
    calls = ((names.DISPOSITION, disposition), (names.WAIT, wait))
    backfill.count(_family(names.CONTACTS), journey + calls, call.ended)
    if call.answered is not None:
        assert call.handle is not None
        observed = ((names.CONTACT_WAIT, call.wait), (names.CONTACT_HANDLE, call.handle))
        for metric, seconds in observed:
            backfill.observe(metric, _BOUNDS[metric], journey, call.ended, seconds)
        for flag, on in zip(_FLAGS, (call.transferred, call.ticket, call.complaint), strict=True):
            if on:
                backfill.count(
                    _family(names.CONTACT_FLAGS), (*journey, (names.FLAG, flag)), call.ended
                )
    where = ((names.CHANNEL, call.channel), (names.SEGMENT, call.segment))
    started = (*journey, *where)
    backfill.count(_family(names.JOURNEYS_STARTED), started, call.offered)
    if call.survey is not None:
        feedback = (
            *journey,
            (names.STEP, _last_step(tally.route, call) or ""),
            *where,
            (names.SCALE, tally.scale),
            (names.SCORE, str(call.survey)),
        )
        backfill.count(_family(names.FEEDBACK), feedback, call.ended)
    for judgment in judgments:
        pairs = (*journey, (names.RESOLUTION, judgment.resolution))
        backfill.count(_family(names.CONTACT_RESOLUTIONS), pairs, judgment.time)


def _last_step(route: Route, call: Call) -> str | None:
    mapping = route.mapping
    if call.answered is not None and mapping.handle_step is not None:
        return mapping.handle_step
    return mapping.answer_step


# -- event-log lines (the format of cxmetrics.instrument.events.to_dict, written directly) ------


_BOOL: Final = ("false", "true")


@dataclass(frozen=True)
class _Steps:
    """A route's mapped steps with their thresholds, and its journey/channel as JSON."""

    answer: tuple[str, float, float] | None  # (name as JSON, target, tolerating)
    handle: tuple[str, float, float] | None
    previous: str  # the answer step as JSON, or null
    journey: str
    channel: str


def _steps(spec: Spec, route: Route) -> _Steps:
    def one(name: str | None) -> tuple[str, float, float] | None:
        if name is None:
            return None
        step = route.journey.step(name)
        return _encode(name), step.target, spec.tolerating(step)

    mapping = route.mapping
    previous = _encode(mapping.answer_step) if mapping.answer_step is not None else "null"
    return _Steps(
        one(mapping.answer_step),
        one(mapping.handle_step),
        previous,
        _encode(route.journey.name),
        _encode(route.channel),
    )


def _lines(steps: _Steps, route: Route, call: Call) -> str:
    journey, call_id = steps.journey, _encode(call.call_id)
    channel = steps.channel if call.channel == route.channel else _encode(call.channel)
    ref = _encode(call.customer_ref) if call.customer_ref is not None else "null"
    segment = "" if call.segment == names.NONE else f',"segment":{_encode(call.segment)}'
    ids = f'"journey":{journey},"channel":{channel},"journey_id":{call_id}{segment}'
    handle, answered = call.handle, call.answered
    offered, ended, wait = repr(call.offered), repr(call.ended), repr(call.wait)
    text = f'{{"time":{offered},{ids},"kind":"journey"}}\n'
    tail = f'"checks":[],"customer_ref":{ref},"kind":"step"}}\n'
    if steps.answer is not None:
        name, target, tolerating = steps.answer
        timeliness = _timeliness(call.wait, target, tolerating)
        if answered is not None:
            good = "true" if timeliness == "satisfied" else "false"
            end, outcome = repr(answered), "ok"
        else:
            good, end, outcome = "false", ended, "error"
        text += (
            f'{{"time":{end},"step":{name},{ids},"previous_step":null,"duration":{wait},'
            f'"outcome":"{outcome}","timeliness":"{timeliness}","good":{good},{tail}'
        )
    handled = repr(handle) if handle is not None else "null"
    if steps.handle is not None and handle is not None:
        name, target, tolerating = steps.handle
        timeliness = _timeliness(handle, target, tolerating)
        good = "true" if timeliness == "satisfied" else "false"
        text += (
            f'{{"time":{ended},"step":{name},{ids},"previous_step":{steps.previous},'
            f'"duration":{handled},"outcome":"ok","timeliness":"{timeliness}","good":{good},'
            f"{tail}"
        )
    queue = _encode(call.queue) if call.queue is not None else "null"
    text += (
        f'{{"time":{ended},{ids},"offered":{offered},'
        f'"disposition":"{call.disposition}","wait":{wait},"handle":{handled},'
        f'"transferred":{_BOOL[call.transferred]},"ticket":{_BOOL[call.ticket]},'
        f'"complaint":{_BOOL[call.complaint]},"queue":{queue},"customer_ref":{ref},'
        '"kind":"contact"}\n'
    )
    if call.survey is not None:
        last = _last_step(route, call)
        step_json = _encode(last) if last is not None else "null"
        text += (
            f'{{"time":{ended},"step":{step_json},{ids},"scale":"{route.mapping.survey}",'
            f'"score":{call.survey},"kind":"feedback"}}\n'
        )
    return text


def _timeliness(duration: float, target: float, tolerating: float) -> str:
    if duration <= target:
        return "satisfied"
    if duration <= tolerating:
        return "tolerating"
    return "frustrated"
