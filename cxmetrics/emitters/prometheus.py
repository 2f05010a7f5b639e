"""The Prometheus exposition of every slot, as one prometheus-client collector.

Each step series carries its own bucket layout derived from the step's target (DESIGN.md §4), so
the duration histogram is exposed by a collector over pre-allocated slots rather than by a
``Histogram`` with one global layout. Counts are read under each slot's lock, so a scrape sees a
consistent histogram (``_count`` equals the ``+Inf`` bucket and the class counters' sum).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar

from .. import names
from .._runtime import Runtime
from .._state import STATE
from ..names import OUTCOMES, RELATIVE_ERROR_BUCKETS, RESULTS, TIMELINESS_CLASSES


def _family(name: str) -> tuple[str, str, tuple[str, ...]]:
    kind, labels, doc = names.METRICS[name]
    # prometheus-client appends ``_total`` to counters itself.
    return name.removesuffix("_total") if kind == "counter" else name, doc, labels


def _le(bound: float) -> str:
    return repr(float(bound))


class CxCollector(Collector):
    """Exposes a ``Runtime``'s slots. Registered by ``configure()``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def describe(self) -> list[Metric]:
        # Named families, so the registry detects collisions with other collectors at register().
        out: list[Metric] = []
        for name, (kind, labels, doc) in names.METRICS.items():
            fam, doc, labels = _family(name)
            if kind == "counter":
                out.append(CounterMetricFamily(fam, doc, labels=labels))
            elif kind == "histogram":
                out.append(HistogramMetricFamily(fam, doc, labels=labels))
            else:
                out.append(GaugeMetricFamily(fam, doc, labels=labels))
        return out

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except Exception as exc:  # a scrape must never take the app down
            from .._state import internal_error

            internal_error("exposition", exc)

    def _collect(self) -> Iterator[Metric]:
        rt = self.runtime
        duration = HistogramMetricFamily(
            *_family(names.STEP_DURATION)[:2], labels=_family(names.STEP_DURATION)[2]
        )
        steps = CounterMetricFamily(*_family(names.STEPS)[:2], labels=_family(names.STEPS)[2])
        good = CounterMetricFamily(
            *_family(names.GOOD_STEPS)[:2], labels=_family(names.GOOD_STEPS)[2]
        )
        checks = CounterMetricFamily(
            *_family(names.ACCURACY_CHECKS)[:2], labels=_family(names.ACCURACY_CHECKS)[2]
        )
        relerr = HistogramMetricFamily(
            *_family(names.ACCURACY_RELATIVE_ERROR)[:2],
            labels=_family(names.ACCURACY_RELATIVE_ERROR)[2],
        )
        transitions = CounterMetricFamily(
            *_family(names.TRANSITIONS)[:2], labels=_family(names.TRANSITIONS)[2]
        )
        started = CounterMetricFamily(
            *_family(names.JOURNEYS_STARTED)[:2], labels=_family(names.JOURNEYS_STARTED)[2]
        )
        feedback = CounterMetricFamily(
            *_family(names.FEEDBACK)[:2], labels=_family(names.FEEDBACK)[2]
        )
        target = GaugeMetricFamily(
            *_family(names.STEP_TARGET)[:2], labels=_family(names.STEP_TARGET)[2]
        )
        tolerating = GaugeMetricFamily(
            *_family(names.STEP_TOLERATING)[:2], labels=_family(names.STEP_TOLERATING)[2]
        )

        for jslot in rt.journeys.values():
            check_totals: dict[tuple[str, str], list[int]] = {}
            relerr_totals: dict[tuple[str, str], tuple[list[int], float]] = {}
            arrivals: dict[str, list[int]] = {}
            for channel_slots in jslot.steps:
                for slot in channel_slots:
                    with slot.lock:
                        buckets = list(slot.buckets)
                        total_sum = slot.sum
                        counts = list(slot.counts)
                        good_count = slot.good
                        from_counts = list(slot.from_counts)
                        exemplars = list(slot.exemplars)
                    labels = [slot.journey, slot.step, slot.channel]
                    cumulative = 0
                    rows: list[tuple[str, float, Exemplar | None]] = []
                    for i, count in enumerate(buckets):
                        cumulative += count
                        le = _le(slot.bounds[i]) if i < len(slot.bounds) else "+Inf"
                        ex = exemplars[i]
                        rows.append(
                            (
                                le,
                                cumulative,
                                Exemplar({"trace_id": ex[0]}, ex[1], ex[2])
                                if ex is not None
                                else None,
                            )
                        )
                    duration.add_metric(labels, rows, total_sum)  # type: ignore[arg-type]
                    for o, outcome in enumerate(OUTCOMES):
                        for c, cls in enumerate(TIMELINESS_CLASSES):
                            steps.add_metric([*labels, outcome, cls], counts[o * 3 + c])
                    good.add_metric(labels, good_count)
                    into = arrivals.setdefault(slot.step, [0] * len(from_counts))
                    for i, count in enumerate(from_counts):
                        into[i] += count
                    for cslot in (*slot.checks.values(), slot.other_check):
                        with cslot.lock:
                            passed, failed = cslot.counts
                            cbuckets = list(cslot.buckets)
                            csum = cslot.sum
                        key = (slot.step, cslot.name)
                        if (
                            cslot is slot.other_check
                            and key not in check_totals
                            and passed + failed == 0
                        ):
                            continue
                        tot = check_totals.setdefault(key, [0, 0])
                        tot[0] += passed
                        tot[1] += failed
                        old_buckets, old_sum = relerr_totals.get(key, ([0] * len(cbuckets), 0.0))
                        relerr_totals[key] = (
                            [a + b for a, b in zip(old_buckets, cbuckets, strict=True)],
                            old_sum + csum,
                        )
            for (step_name, check_name), (passed, failed) in check_totals.items():
                checks.add_metric([jslot.name, step_name, check_name, RESULTS[0]], passed)
                checks.add_metric([jslot.name, step_name, check_name, RESULTS[1]], failed)
                rb, rsum = relerr_totals[(step_name, check_name)]
                rows_e, acc = [], 0
                for i, count in enumerate(rb):
                    acc += count
                    le = (
                        _le(RELATIVE_ERROR_BUCKETS[i])
                        if i < len(RELATIVE_ERROR_BUCKETS)
                        else "+Inf"
                    )
                    rows_e.append((le, acc))
                relerr.add_metric([jslot.name, step_name, check_name], rows_e, rsum)
            # Transitions: every consecutive pair always (so conversion never lacks a series),
            # every other observed pair once it happened.
            order = jslot.step_names
            for to_index, to_step in enumerate(order):
                counts_in = arrivals.get(to_step)
                if counts_in is None:
                    continue
                for from_index, count in enumerate(counts_in[:-1]):
                    consecutive = to_index == from_index + 1 and to_index < jslot.n_steps
                    if count or consecutive:
                        transitions.add_metric([jslot.name, order[from_index], to_step], count)
            with jslot.lock:
                started_counts = list(jslot.started)
                feedback_counts = {k: list(v) for k, v in jslot.feedback.items()}
            for c, channel in enumerate(jslot.channels):
                started.add_metric([jslot.name, channel], started_counts[c])
            for (scale, score), per_step in feedback_counts.items():
                for index, count in enumerate(per_step):
                    if count:
                        step_label = jslot.previous_name(index) or "none"
                        feedback.add_metric([jslot.name, step_label, scale, str(score)], count)
            for slot in jslot.steps[0]:
                if slot.step != "other":
                    target.add_metric([slot.journey, slot.step], slot.target)
                    tolerating.add_metric([slot.journey, slot.step], slot.tolerating)

        yield from (
            duration,
            steps,
            good,
            checks,
            relerr,
            transitions,
            started,
            feedback,
            target,
            tolerating,
        )
        yield from self._health(rt)

    def _health(self, rt: Runtime) -> Iterator[Metric]:
        undeclared = CounterMetricFamily(
            *_family(names.UNDECLARED)[:2], labels=_family(names.UNDECLARED)[2]
        )
        with rt.lock:
            for kind, count in rt.undeclared.items():
                undeclared.add_metric([kind], count)
            rejected_counts = dict(rt.rejected)
        rejected = CounterMetricFamily(
            *_family(names.CONTEXT_REJECTED)[:2], labels=_family(names.CONTEXT_REJECTED)[2]
        )
        for reason, count in sorted(rejected_counts.items()):
            rejected.add_metric([reason], count)
        errors = CounterMetricFamily(
            *_family(names.INTERNAL_ERRORS)[:2], labels=_family(names.INTERNAL_ERRORS)[2]
        )
        with STATE.lock:
            error_counts = dict(STATE.errors)
        for component, count in sorted(error_counts.items()):
            errors.add_metric([component], count)
        info = GaugeMetricFamily(*_family(names.SPEC_INFO)[:2], labels=_family(names.SPEC_INFO)[2])
        info.add_metric([rt.spec.service, rt.spec.fingerprint], 1)
        yield from (undeclared, rejected, errors, info)
