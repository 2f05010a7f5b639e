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
from ..spec.model import Spec
from ..spec.names import (
    FEEDBACK_CATEGORIES,
    JOURNEY_DURATION_BUCKETS,
    NONE,
    OTHER,
    OUTCOMES,
    RELATIVE_ERROR_BUCKETS,
    RESULTS,
    TIMELINESS_CLASSES,
)

Families = dict[str, Metric]
Exemplars = tuple[str, float, float] | None
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


def spec_rows(spec: Spec) -> list[tuple[str, list[str], float]]:
    """The spec's per-step thresholds and rule policy as gauge samples (family, label values,
    value), resolved once: the generic rules join them instead of a rule copy per step
    (docs/rules.md, *Generic rules*)."""
    service = spec.service
    rows: list[tuple[str, list[str], float]] = []
    for journey, step in spec.steps():
        key = [service, journey.name, step.name]
        policy = spec.regression(journey, step)
        rows += [
            (names.STEP_OBJECTIVE, key, spec.objectives(journey, step).good_ratio),
            (names.STEP_MIN_CHANGE, key, policy.min_change),
            (names.STEP_MIN_VOLUME, key, float(policy.min_volume)),
            (names.STEP_POLICY, [*key, spec.policy(journey, step)], 1.0),
        ]
        rows += [
            (names.CHECK_OBJECTIVE, [*key, check.name], spec.check_objective(journey, step, check))
            for check in step.checks
        ]
        following = journey.step_names.index(step.name) + 1
        if following < len(journey.steps):
            rows.append((names.STEP_NEXT, [*key, journey.steps[following].name], 1.0))
    return rows


class CxCollector(Collector):
    """Exposes a ``Runtime``'s slots. Registered by ``configure()``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._spec_rows = spec_rows(runtime.spec)

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
            for family, values, value in self._spec_rows:
                families[family].add_metric(values, value)  # type: ignore[attr-defined]
        except Exception as exc:  # a scrape must never take the app down
            internal_error("exposition", exc)
            return
        yield from families.values()

    def _steps(self, jslot: JourneySlot, f: Families) -> None:
        service = self.runtime.spec.service
        # The duration histogram per (journey, step, channel): every segment's buckets added
        # (docs/metrics.md, "Series budget"); latency regressions are judged per channel, so a
        # shift of traffic toward a slower channel is none. A row appears once one of its slots
        # exists.
        durations: dict[
            tuple[str, str], tuple[tuple[float, ...], list[int], float, list[Exemplars]]
        ] = {}
        # The relative-error histogram per (journey, step, check), all channels and segments.
        errors: dict[tuple[str, str], tuple[list[int], float]] = {}
        rows: dict[tuple[str, str], list[tuple[int, list[int]]]] = {}  # arrivals per row
        for slot in jslot.slots():
            with slot.lock:
                buckets, total = list(slot.buckets), slot.sum
                counts, good = list(slot.counts), slot.good
                from_counts, exemplars = list(slot.from_counts), list(slot.exemplars)
                failures = list(slot.failures)
            row = (slot.step, slot.channel)
            seen = durations.get(row)
            if seen is None:
                durations[row] = (slot.bounds, buckets, total, exemplars)
            else:
                durations[row] = (
                    seen[0],
                    [a + b for a, b in zip(seen[1], buckets, strict=True)],
                    seen[2] + total,
                    [b or a for a, b in zip(seen[3], exemplars, strict=True)],
                )
            labels = [service, slot.journey, slot.step, slot.channel, slot.segment]
            for o, outcome in enumerate(OUTCOMES):
                for c, cls in enumerate(TIMELINESS_CLASSES):
                    f[names.STEPS].add_metric(  # type: ignore[attr-defined]
                        [*labels, outcome, cls], counts[o * 3 + c]
                    )
            f[names.GOOD_STEPS].add_metric(labels, good)  # type: ignore[attr-defined]
            # A reason's series appears with its first failure; errors without a reason are not
            # repeated here (they are cx_steps_total{outcome="error"} minus these): the budget.
            for reason, count in zip(slot.reason_names()[:-1], failures, strict=False):
                if count:
                    f[names.STEP_FAILURES].add_metric([*labels, reason], count)  # type: ignore[attr-defined]
            rows.setdefault((slot.channel, slot.segment), []).append((slot.index, from_counts))
            for cslot in (*slot.checks.values(), slot.other_check):
                with cslot.lock:
                    passed_failed, cbuckets, csum = (
                        list(cslot.counts),
                        list(cslot.buckets),
                        cslot.sum,
                    )
                if cslot is slot.other_check and not any(passed_failed):
                    continue  # the 'other' check appears once something used it
                for result, count in zip(RESULTS, passed_failed, strict=True):
                    f[names.ACCURACY_CHECKS].add_metric(  # type: ignore[attr-defined]
                        [*labels, cslot.name, result], count
                    )
                if cslot.kind != "reconcile" and not any(cbuckets):
                    continue  # relative errors come from reconcile; others' appear on first use
                key = (slot.step, cslot.name)
                old = errors.get(key, ([0] * len(cbuckets), 0.0))
                errors[key] = (
                    [a + b for a, b in zip(old[0], cbuckets, strict=True)],
                    old[1] + csum,
                )
        for (step, channel), (bounds, buckets, total, exemplars) in durations.items():
            f[names.STEP_DURATION].add_metric(  # type: ignore[attr-defined]
                [service, jslot.name, step, channel], _cumulative(buckets, bounds, exemplars), total
            )
        for (step, check), (cbuckets, csum) in errors.items():
            f[names.ACCURACY_RELATIVE_ERROR].add_metric(  # type: ignore[attr-defined]
                [service, jslot.name, step, check],
                _cumulative(cbuckets, RELATIVE_ERROR_BUCKETS),
                csum,
            )
        self._transitions(jslot, rows, f)

    def _transitions(
        self,
        jslot: JourneySlot,
        rows: dict[tuple[str, str], list[tuple[int, list[int]]]],
        f: Families,
    ) -> None:
        """Transitions per (channel, segment) of the arrival: from each step that has a slot on
        that row to the next declared step always (conversion never lacks a series where the step
        had traffic), any other observed pair once it happened. The last arrival slot is "no
        previous step": a start, not a transition."""
        order, service = jslot.step_names, self.runtime.spec.service
        for (channel, segment), arrivals in rows.items():
            present = {index for index, _ in arrivals}
            by_to = dict(arrivals)
            for from_index in sorted(present):
                to_index = from_index + 1
                if to_index < jslot.n_steps and to_index not in present:
                    f[names.TRANSITIONS].add_metric(  # type: ignore[attr-defined]
                        [service, jslot.name, order[from_index], order[to_index], channel, segment],
                        0,
                    )
            for to_index, from_counts in sorted(by_to.items()):
                for from_index, count in enumerate(from_counts[:-1]):
                    consecutive = to_index == from_index + 1 and from_index in present
                    if count or (consecutive and to_index < jslot.n_steps):
                        f[names.TRANSITIONS].add_metric(  # type: ignore[attr-defined]
                            [
                                service,
                                jslot.name,
                                order[from_index],
                                order[to_index],
                                channel,
                                segment,
                            ],
                            count,
                        )

    def _journey(self, jslot: JourneySlot, f: Families) -> None:
        service = self.runtime.spec.service
        with jslot.lock:
            started = [list(row) for row in jslot.started]
            switches = [list(row) for row in jslot.switches]
            feedback = {k: list(v) for k, v in jslot.feedback.items()}
            topics = {k: list(v) for k, v in jslot.topics.items()}
            durations = [(list(b), total[0]) for b, total in jslot.durations]
        declared = set(jslot.declared_channels)
        if jslot.n_steps:  # the 'other' journey has no last step to time
            for c, (buckets, total) in enumerate(durations):
                if c in declared or any(buckets):
                    f[names.JOURNEY_DURATION].add_metric(  # type: ignore[attr-defined]
                        [service, jslot.name, jslot.channels[c]],
                        _cumulative(buckets, JOURNEY_DURATION_BUCKETS),
                        total,
                    )
        for c, channel in enumerate(jslot.channels):
            for s, segment in enumerate(jslot.segments):
                if started[c][s] or (s == 0 and c in declared):
                    f[names.JOURNEYS_STARTED].add_metric(  # type: ignore[attr-defined]
                        [service, jslot.name, channel, segment], started[c][s]
                    )
            for t, to_channel in enumerate(jslot.channels):
                if switches[c][t]:
                    f[names.CHANNEL_SWITCHES].add_metric(  # type: ignore[attr-defined]
                        [service, jslot.name, channel, to_channel], switches[c][t]
                    )
        where = (jslot.channels, jslot.segments)
        for (c, s, scale, score), per_step in feedback.items():
            for index, count in enumerate(per_step):
                if count:
                    step = jslot.previous_name(index) or NONE
                    f[names.FEEDBACK].add_metric(  # type: ignore[attr-defined]
                        [service, jslot.name, step, where[0][c], where[1][s], scale, str(score)],
                        count,
                    )
        reasons = (*jslot.reasons, OTHER, NONE)
        for (c, s, category, reason), per_step in topics.items():
            for index, count in enumerate(per_step):
                if count:
                    step = jslot.previous_name(index) or NONE
                    f[names.FEEDBACK_TOPICS].add_metric(  # type: ignore[attr-defined]
                        [
                            service,
                            jslot.name,
                            step,
                            where[0][c],
                            where[1][s],
                            FEEDBACK_CATEGORIES[category],
                            reasons[reason],
                        ],
                        count,
                    )
        for step, (target, tolerating) in zip(jslot.step_names, jslot.targets, strict=False):
            f[names.STEP_TARGET].add_metric([service, jslot.name, step], target)  # type: ignore[attr-defined]
            f[names.STEP_TOLERATING].add_metric([service, jslot.name, step], tolerating)  # type: ignore[attr-defined]

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
