"""The records cxmetrics emits besides metrics: one per finished step, journey start, feedback
(and one per imported call, ``ContactRecord``).

They feed the in-memory recorder (``cxmetrics.testing``), the JSONL event log and the analyzer.
They only exist when a sink is configured; the Prometheus path never builds them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Outcome = Literal["ok", "error"]
Timeliness = Literal["satisfied", "tolerating", "frustrated"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    passed: bool
    relative_error: float | None = None


@dataclass(frozen=True, slots=True)
class StepRecord:
    time: float  # wall clock at the end of the step, seconds since the epoch
    journey: str
    step: str
    channel: str
    journey_id: str
    previous_step: str | None
    duration: float
    outcome: Outcome
    timeliness: Timeliness
    good: bool
    checks: tuple[CheckResult, ...] = ()
    customer_ref: str | None = None  # keyed digest, see cxmetrics.instrument.redaction
    segment: str = "none"
    reason: str | None = None  # of an error: a declared reason code, "other" or "none"
    kind: Literal["step"] = "step"

    @property
    def accurate(self) -> bool:
        return all(c.passed for c in self.checks)


@dataclass(frozen=True, slots=True)
class JourneyStarted:
    time: float
    journey: str
    channel: str
    journey_id: str
    segment: str = "none"
    kind: Literal["journey"] = "journey"


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    time: float
    journey: str
    step: str | None  # the last step of the instance when feedback was given
    journey_id: str
    scale: Literal["csat", "nps"] | None  # None: a category without a score
    score: int | None
    channel: str = ""  # "" in logs written before feedback carried its channel
    segment: str = "none"
    category: Literal["praise", "problem", "suggestion"] | None = None
    reason: str | None = None  # with a category: a declared reason code, "other" or "none"
    kind: Literal["feedback"] = "feedback"


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """One call of a contact-centre journey (``cxmetrics import``, docs/contact-centre.md)."""

    time: float  # when the call ended (hung up, abandoned or failed), seconds since the epoch
    journey: str
    channel: str
    journey_id: str  # the call id
    offered: float  # when the call reached the queue
    disposition: Literal["answered", "abandoned", "failed"]
    wait: float  # offered to answered (answered), else offered to the end
    handle: float | None = None  # answered to the end (answered calls only)
    transferred: bool = False
    ticket: bool = False
    complaint: bool = False
    queue: str | None = None
    customer_ref: str | None = None  # keyed digest, see cxmetrics.instrument.redaction
    segment: str = "none"  # the customer's segment, from the export's segment column
    kind: Literal["contact"] = "contact"


Event = StepRecord | JourneyStarted | FeedbackRecord | ContactRecord


# Fields added after the first log format, left out while they hold their default: logs stay as
# compact as before for apps that use no segments, reasons or feedback categories.
_LEFT_OUT_WHEN = {"segment": "none", "reason": None, "category": None, "channel": ""}


def to_dict(event: Event) -> dict[str, Any]:
    data = asdict(event)
    if isinstance(event, StepRecord):
        data["checks"] = [asdict(c) for c in event.checks]
    for key, default in _LEFT_OUT_WHEN.items():
        if key in data and data[key] == default:
            del data[key]
    return data


def from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event written by ``to_dict``; raises ``ValueError`` on unknown kinds."""
    kind = data.get("kind")
    fields = {k: v for k, v in data.items() if k != "kind"}
    if kind == "step":
        fields["checks"] = tuple(CheckResult(**c) for c in fields.get("checks", ()))
        return StepRecord(**fields)
    if kind == "journey":
        return JourneyStarted(**fields)
    if kind == "feedback":
        return FeedbackRecord(**fields)
    if kind == "contact":
        return ContactRecord(**fields)
    raise ValueError(f"unknown event kind {kind!r}")
