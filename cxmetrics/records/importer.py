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
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from ..analysis.contact import HISTOGRAM_BOUNDS as _BOUNDS
from ..analysis.contact import ContactCounts, RepeatJudge, increments
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
    judges = {r.journey.name: RepeatJudge(_window(r)) for r in router.routes}
    report.counts = {r.journey.name: ContactCounts() for r in router.routes}
    latest = dict.fromkeys(judges, float("-inf"))
    buffer: list[str] = []
    formats = {r.journey.name: _steps(spec, r) for r in router.routes}
    written = 0  # rows in the buffer
    for line, row in read_rows(path, fmt):
        report.rows += 1
        if isinstance(row, BadRow):
            _reject(report, rejects, line, row.reason, None)
            continue
        try:
            route, call = router.call(row)
        except ValueError as exc:
            _reject(report, rejects, line, str(exc), row)
            continue
        record = call.record
        name = route.journey.name
        judge = judges[name]
        if judge.too_early(record.offered):
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
        latest[name] = max(latest[name], record.time, record.offered)
        answered = record.disposition == "answered"
        judgments = judge.offer(record.customer_ref, record.offered, record.time, answered)
        contact = route.journey.contact
        assert contact is not None
        counts = report.counts[name]
        adds = increments(contact, record)
        for metric, labels, seconds in adds:
            if seconds is None:
                counts.add(metric, labels)
            else:
                counts.observe(metric, seconds)
        if answered and record.customer_ref is None:
            counts.no_customer += 1
        if call.survey is not None:
            step = _last_step(route, call) or ""
            counts.add(
                names.FEEDBACK,
                (step, record.channel, names.NONE, route.mapping.survey, str(call.survey)),
            )
        if backfill is not None:
            _backfill(backfill, route, call, adds)
            for judgment in judgments:
                pairs = ((names.JOURNEY, name), (names.RESOLUTION, judgment.resolution))
                backfill.count(_family(names.CONTACT_RESOLUTIONS), pairs, judgment.time)
        for judgment in judgments:
            counts.add(names.CONTACT_RESOLUTIONS, (judgment.resolution,))
        if events is not None:
            buffer.append(_lines(formats[name], route, call))
            if len(buffer) >= 1024:
                written += _flush(events, buffer)
    if events is not None and buffer:
        written += _flush(events, buffer)
    report.events = written
    for name, judge in judges.items():
        rest, unjudged = judge.finish(latest[name])
        report.counts[name].unjudged = unjudged
        for judgment in rest:
            report.counts[name].add(names.CONTACT_RESOLUTIONS, (judgment.resolution,))
            if backfill is not None:
                pairs = ((names.JOURNEY, name), (names.RESOLUTION, judgment.resolution))
                backfill.count(_family(names.CONTACT_RESOLUTIONS), pairs, judgment.time)
    return report


def _flush(events: BinaryIO, buffer: list[str]) -> int:
    """Write the buffered lines; returns how many events they hold."""
    text = "".join(buffer)
    buffer.clear()
    events.write(text.encode())
    return text.count("\n")


def _window(route: Route) -> float:
    assert route.journey.contact is not None
    return route.journey.contact.repeat_window


def _family(metric: str) -> str:
    return metric.removesuffix("_total")


def _reject(
    report: ImportReport, rejects: BinaryIO | None, line: int, reason: str, row: object
) -> None:
    report.reject(line, reason)
    if rejects is not None:
        entry = {"line": line, "reason": reason, "row": row}
        rejects.write((json.dumps(entry, default=str) + "\n").encode())


def _backfill(
    backfill: Backfill,
    route: Route,
    call: Call,
    adds: list[tuple[str, tuple[str, ...], float | None]],
) -> None:
    record = call.record
    journey = ((names.JOURNEY, record.journey),)
    for metric, labels, seconds in adds:
        family = names.CONTACT_METRICS[metric]
        pairs = journey + tuple(zip(family[1][1:], labels, strict=True))
        if seconds is None:
            backfill.count(_family(metric), pairs, record.time)
        else:
            backfill.observe(metric, _BOUNDS[metric], pairs, record.time, seconds)
    where = ((names.CHANNEL, record.channel), (names.SEGMENT, names.NONE))
    started = (*journey, *where)
    backfill.count(_family(names.JOURNEYS_STARTED), started, record.offered)
    if call.survey is not None:
        feedback = (
            *journey,
            (names.STEP, _last_step(route, call) or ""),
            *where,
            (names.SCALE, route.mapping.survey),
            (names.SCORE, str(call.survey)),
        )
        backfill.count(_family(names.FEEDBACK), feedback, record.time)


def _last_step(route: Route, call: Call) -> str | None:
    mapping = route.mapping
    if call.answered_at is not None and mapping.handle_step is not None:
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
    r = call.record
    journey, channel, call_id = steps.journey, steps.channel, _encode(r.journey_id)
    ref = _encode(r.customer_ref) if r.customer_ref is not None else "null"
    ids = f'"channel":{channel},"journey_id":{call_id}'
    out = [f'{{"time":{r.offered!r},"journey":{journey},{ids},"kind":"journey"}}\n']
    answered = call.answered_at is not None
    if steps.answer is not None:
        end = call.answered_at if call.answered_at is not None else r.time
        outcome = "ok" if answered else "error"
        out.append(_step(steps.answer, journey, ids, ref, end, "null", r.wait, outcome, answered))
    if steps.handle is not None and r.handle is not None:
        out.append(
            _step(steps.handle, journey, ids, ref, r.time, steps.previous, r.handle, "ok", True)
        )
    queue = _encode(r.queue) if r.queue is not None else "null"
    handle = repr(r.handle) if r.handle is not None else "null"
    out.append(
        f'{{"time":{r.time!r},"journey":{journey},{ids},"offered":{r.offered!r},'
        f'"disposition":"{r.disposition}","wait":{r.wait!r},"handle":{handle},'
        f'"transferred":{_BOOL[r.transferred]},"ticket":{_BOOL[r.ticket]},'
        f'"complaint":{_BOOL[r.complaint]},"queue":{queue},"customer_ref":{ref},'
        '"kind":"contact"}\n'
    )
    if call.survey is not None:
        last = _last_step(route, call)
        step_json = _encode(last) if last is not None else "null"
        out.append(
            f'{{"time":{r.time!r},"journey":{journey},"step":{step_json},'
            f'"journey_id":{call_id},"scale":"{route.mapping.survey}","score":{call.survey},'
            '"kind":"feedback"}\n'
        )
    return "".join(out)


def _step(
    step: tuple[str, float, float],
    journey: str,
    ids: str,
    ref: str,
    end: float,
    previous: str,
    duration: float,
    outcome: str,
    ok: bool,
) -> str:
    name, target, tolerating = step
    if duration <= target:
        timeliness = "satisfied"
    elif duration <= tolerating:
        timeliness = "tolerating"
    else:
        timeliness = "frustrated"
    good = _BOOL[ok and timeliness == "satisfied"]
    return (
        f'{{"time":{end!r},"journey":{journey},"step":{name},{ids},"previous_step":{previous},'
        f'"duration":{duration!r},"outcome":"{outcome}","timeliness":"{timeliness}",'
        f'"good":{good},"checks":[],"customer_ref":{ref},"kind":"step"}}\n'
    )
