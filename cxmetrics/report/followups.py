"""The report's follow-up section: per key step, the customers handed over and how late.

Its figures are the follow-up workers' own metrics (``cx_followups_*``, what
``cxmetrics followup run --metrics-port`` serves): ``figures(exposition)`` reads them from a
Prometheus text exposition, aggregating over workers as the dashboards do (gauges read from the
store are the same on every worker: ``max``; counters and the lag histogram: summed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from ..spec import names
from ..spec.model import Spec
from . import text
from .tables import table


@dataclass
class FollowUpFigures:
    """One key step's follow-ups over the period the metrics cover."""

    journey: str
    step: str
    tracked: float = 0.0  # waiting at the step now (due or not)
    due: float = 0.0  # due now, not yet delivered
    oldest_due: float = 0.0  # seconds the oldest due one has waited
    sent: float = 0.0
    retried: float = 0.0
    dead_lettered: float = 0.0
    dead_letters: float = 0.0  # parked now
    lag_count: float = 0.0
    lag_sum: float = 0.0
    lag_buckets: dict[float, float] = field(default_factory=dict)  # le → cumulative count

    @property
    def lag_mean(self) -> float | None:
        return self.lag_sum / self.lag_count if self.lag_count else None

    def lag_within(self, bound: float) -> float | None:
        """Share of deliveries whose lag was at most the largest bucket bound ≤ ``bound``."""
        if not self.lag_count:
            return None
        inside = [n for le, n in self.lag_buckets.items() if le <= bound]
        return (max(inside) if inside else 0.0) / self.lag_count


_GAUGES = {
    names.FOLLOWUPS_TRACKED: "tracked",
    names.FOLLOWUPS_DUE: "due",
    names.FOLLOWUPS_OLDEST_DUE: "oldest_due",
    names.FOLLOWUPS_DEAD_LETTERS: "dead_letters",
}
_COUNTERS = {
    names.FOLLOWUPS_SENT: "sent",
    names.FOLLOWUPS_RETRIED: "retried",
    names.FOLLOWUPS_DEAD_LETTERED: "dead_lettered",
    f"{names.FOLLOWUPS_LAG}_count": "lag_count",
    f"{names.FOLLOWUPS_LAG}_sum": "lag_sum",
}


def figures(spec: Spec, expositions: Sequence[str]) -> list[FollowUpFigures]:
    """The figures of every key step of ``spec`` from the workers' expositions (one text per
    worker), in spec order."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {
        (j.name, s.name): FollowUpFigures(j.name, s.name)
        for j in spec.journeys
        for s in j.key_steps
    }
    for exposition in expositions:
        seen: dict[tuple[str, str, str], float] = {}
        for family in text_string_to_metric_families(exposition):
            for sample in family.samples:
                key = (sample.labels.get(names.JOURNEY, ""), sample.labels.get(names.STEP, ""))
                row = out.get(key)
                if row is None:
                    continue
                if sample.name in _GAUGES:
                    attr = _GAUGES[sample.name]
                    setattr(row, attr, max(getattr(row, attr), sample.value))
                elif sample.name in _COUNTERS:
                    attr = _COUNTERS[sample.name]
                    where = (key[0], key[1], attr)
                    seen[where] = seen.get(where, 0.0) + sample.value
                elif sample.name == f"{names.FOLLOWUPS_LAG}_bucket":
                    le = float(sample.labels["le"])
                    row.lag_buckets[le] = row.lag_buckets.get(le, 0.0) + sample.value
        for (journey, step, attr), value in seen.items():
            row = out[(journey, step)]
            setattr(row, attr, getattr(row, attr) + value)
    return list(out.values())


def followups_section(spec: Spec, rows: Sequence[FollowUpFigures]) -> str:
    """``<section id="followups">``: one row per key step."""
    columns = (
        "Key step",
        "Followed up after",
        "Sent",
        "Retried",
        "Dead-lettered",
        "Waiting now",
        "Due now",
        "Oldest due",
        "Mean lag",
        "Within max lag",
    )
    body = []
    for r in rows:
        policy = spec.journey(r.journey).step(r.step).followup
        assert policy is not None
        within = r.lag_within(policy.max_lag)
        cells = (
            text.duration(policy.after),
            text.count(round(r.sent)),
            text.count(round(r.retried)),
            text.count(round(r.dead_lettered)),
            text.count(round(r.tracked)),
            text.count(round(r.due)),
            text.duration(r.oldest_due) if r.due else "–",
            text.duration(r.lag_mean),
            f"{text.percent(within)} (≤ {text.duration(policy.max_lag)})"
            if within is not None and math.isfinite(within)
            else "–",
        )
        body.append(
            f'<tr><th scope="row" class="left">{escape(r.journey)}/{escape(r.step)}</th>'
            + "".join(f"<td>{escape(c)}</td>" for c in cells)
            + "</tr>"
        )
    caption = (
        "Customers who stalled at a key step, handed over by the follow-up workers "
        "(lag: from due to delivered)"
    )
    return (
        '<section id="followups"><h2>Follow-ups</h2>' + table(caption, columns, body) + "</section>"
    )
