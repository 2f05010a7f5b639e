"""The Prometheus exposition of every slot, as one prometheus-client collector.

Each step series carries its own bucket layout derived from the step's target
(docs/architecture.md), so the duration histogram is exposed by a collector over pre-allocated slots
rather than by a ``Histogram`` with one global layout. Counts are read under each slot's lock, so a
scrape sees a consistent histogram (``_count`` equals the ``+Inf`` bucket and the class counters'
sum).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar

from ..instrument.runtime import Runtime
from ..instrument.slots import JourneySlot
from ..instrument.state import STATE, internal_error
from ..spec import names
from ..spec.names import OTHER, OUTCOMES, RELATIVE_ERROR_BUCKETS, RESULTS, TIMELINESS_CLASSES

Families = dict[str, Metric]
_KINDS = {
    "counter": CounterMetricFamily,
    "histogram": HistogramMetricFamily,
    "gauge": GaugeMetricFamily,
}


def _families() -> Families:
    """One empty family per entry of ``names.METRICS`` (counters lose ``_total``: the client
    library appends it)."""
    out: Families = {}
    for name, (kind, labels, doc) in names.METRICS.items():
        family = name.removesuffix("_total") if kind == "counter" else name
        out[name] = _KINDS[kind](family, doc, labels=labels)
    return out


def _cumulative(
    counts: Sequence[int],
    bounds: Sequence[float],
    exemplars: Sequence[tuple[str, float, float] | None] | None = None,
) -> list[tuple[str, float, Exemplar | None]]:
    rows: list[tuple[str, float, Exemplar | None]] = []
    total = 0
    for i, count in enumerate(counts):
        total += count
        le = repr(float(bounds[i])) if i < len(bounds) else "+Inf"
        ex = exemplars[i] if exemplars is not None else None
        rows.append((le, total, Exemplar({"trace_id": ex[0]}, ex[1], ex[2]) if ex else None))
    return rows


class CxCollector(Collector):
    """Exposes a ``Runtime``'s slots. Registered by ``configure()``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def describe(self) -> list[Metric]:
        # Named families, so the registry detects collisions with other collectors at register().
        return list(_families().values())

    def collect(self) -> Iterator[Metric]:
        try:
            families = _families()
            for jslot in self.runtime.journeys.values():
                self._steps(jslot, families)
                self._journey(jslot, families)
            self._health(families)
        except Exception as exc:  # a scrape must never take the app down
            internal_error("exposition", exc)
            return
        yield from families.values()

    def _steps(self, jslot: JourneySlot, f: Families) -> None:
        service = self.runtime.spec.service
        checks: dict[tuple[str, str], tuple[list[int], list[int], float]] = {}
        arrivals: dict[str, list[int]] = {}
        for slot in (s for channel_slots in jslot.steps for s in channel_slots):
            with slot.lock:
                buckets, total = list(slot.buckets), slot.sum
                counts, good = list(slot.counts), slot.good
                from_counts, exemplars = list(slot.from_counts), list(slot.exemplars)
            labels = [service, slot.journey, slot.step, slot.channel]
            f[names.STEP_DURATION].add_metric(  # type: ignore[attr-defined]
                labels, _cumulative(buckets, slot.bounds, exemplars), total
            )
            for o, outcome in enumerate(OUTCOMES):
                for c, cls in enumerate(TIMELINESS_CLASSES):
                    f[names.STEPS].add_metric(  # type: ignore[attr-defined]
                        [*labels, outcome, cls], counts[o * 3 + c]
                    )
            f[names.GOOD_STEPS].add_metric(labels, good)  # type: ignore[attr-defined]
            into = arrivals.setdefault(slot.step, [0] * len(from_counts))
            for i, count in enumerate(from_counts):
                into[i] += count
            for cslot in (*slot.checks.values(), slot.other_check):
                with cslot.lock:
                    passed_failed, cbuckets, csum = (
                        list(cslot.counts),
                        list(cslot.buckets),
                        cslot.sum,
                    )
                key = (slot.step, cslot.name)
                if cslot is slot.other_check and key not in checks and not any(passed_failed):
                    continue  # the 'other' check appears once something used it
                old = checks.get(key, ([0, 0], [0] * len(cbuckets), 0.0))
                checks[key] = (
                    [a + b for a, b in zip(old[0], passed_failed, strict=True)],
                    [a + b for a, b in zip(old[1], cbuckets, strict=True)],
                    old[2] + csum,
                )
        for (step, check), (passed_failed, cbuckets, csum) in checks.items():
            for result, count in zip(RESULTS, passed_failed, strict=True):
                f[names.ACCURACY_CHECKS].add_metric(  # type: ignore[attr-defined]
                    [service, jslot.name, step, check, result], count
                )
            f[names.ACCURACY_RELATIVE_ERROR].add_metric(  # type: ignore[attr-defined]
                [service, jslot.name, step, check],
                _cumulative(cbuckets, RELATIVE_ERROR_BUCKETS),
                csum,
            )
        # Transitions: every consecutive pair always (conversion never lacks a series), any other
        # observed pair once it happened. The last arrival slot is "no previous step": a start.
        order = jslot.step_names
        for to_index, to_step in enumerate(order):
            for from_index, count in enumerate(arrivals.get(to_step, [])[:-1]):
                if count or (to_index == from_index + 1 and to_index < jslot.n_steps):
                    f[names.TRANSITIONS].add_metric(  # type: ignore[attr-defined]
                        [service, jslot.name, order[from_index], to_step], count
                    )

    def _journey(self, jslot: JourneySlot, f: Families) -> None:
        service = self.runtime.spec.service
        with jslot.lock:
            started = list(jslot.started)
            switches = [list(row) for row in jslot.switches]
            feedback = {k: list(v) for k, v in jslot.feedback.items()}
        for c, channel in enumerate(jslot.channels):
            f[names.JOURNEYS_STARTED].add_metric([service, jslot.name, channel], started[c])  # type: ignore[attr-defined]
            for t, to_channel in enumerate(jslot.channels):
                if switches[c][t]:
                    f[names.CHANNEL_SWITCHES].add_metric(  # type: ignore[attr-defined]
                        [service, jslot.name, channel, to_channel], switches[c][t]
                    )
        for (scale, score), per_step in feedback.items():
            for index, count in enumerate(per_step):
                if count:
                    step = jslot.previous_name(index) or "none"
                    f[names.FEEDBACK].add_metric(  # type: ignore[attr-defined]
                        [service, jslot.name, step, scale, str(score)], count
                    )
        for slot in jslot.steps[0]:
            if slot.step != OTHER:
                f[names.STEP_TARGET].add_metric([service, slot.journey, slot.step], slot.target)  # type: ignore[attr-defined]
                f[names.STEP_TOLERATING].add_metric(  # type: ignore[attr-defined]
                    [service, slot.journey, slot.step], slot.tolerating
                )

    def _health(self, f: Families) -> None:
        rt = self.runtime
        with rt.lock:
            undeclared, rejected = dict(rt.undeclared), dict(rt.rejected)
        with STATE.lock:
            errors = dict(STATE.errors)
        for kind, count in undeclared.items():
            f[names.UNDECLARED].add_metric([kind], count)  # type: ignore[attr-defined]
        for reason, count in sorted(rejected.items()):
            f[names.CONTEXT_REJECTED].add_metric([reason], count)  # type: ignore[attr-defined]
        for component, count in sorted(errors.items()):
            f[names.INTERNAL_ERRORS].add_metric([component], count)  # type: ignore[attr-defined]
        f[names.SPEC_INFO].add_metric([rt.spec.service, rt.spec.fingerprint], 1)  # type: ignore[attr-defined]
