"""Synthetic step traffic with known answers, for the generated ``promtool test rules`` suites.

A ``World`` holds, for every step of a spec, per-interval traffic (volume, a latency factor,
accuracy failure shares, conversion to the next step) and turns it into the counter series the
library exposes — duration buckets in the step's own layout, ``cx_steps_total`` by timeliness
class, good steps, checks, transitions — as integer counts, so promtool and Python see the same
numbers. It also evaluates what the rules compute on those series with Prometheus' own
arithmetic (``rate``/``increase`` extrapolation, ``histogram_quantile``'s interpolation), which is
how a suite knows the exact values an alert's annotations must show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..spec import names
from ..spec.model import Journey, Spec, Step

SIGMA = 0.3  # lognormal shape of the synthetic latencies (like the example bank's)
Z95 = 1.6448536269514722
Labels = tuple[tuple[str, str], ...]


@dataclass
class Traffic:
    """One step's traffic per interval ``1..n`` (index 0 unused: counters start at 0)."""

    volume: list[int]
    factor: list[float]
    conversion: list[float]
    failing: dict[str, list[float]] = field(default_factory=dict)


class World:
    def __init__(self, spec: Spec, interval_s: int, intervals: int, volume: int) -> None:
        self.spec, self.interval_s, self.n = spec, interval_s, intervals
        self.channel = spec.channel_default
        self.traffic: dict[tuple[str, str], Traffic] = {}
        for journey, step in spec.steps():
            self.traffic[(journey.name, step.name)] = Traffic(
                [volume] * (intervals + 1),
                [1.0] * (intervals + 1),
                [0.9] * (intervals + 1),
                {c.name: [0.0] * (intervals + 1) for c in step.checks},
            )
        self._series: dict[str, tuple[Labels, list[int]]] | None = None
        self._index: dict[tuple[str, str, str], list[tuple[dict[str, str], list[int]]]] = {}
        self._rates: dict[tuple[int, float, float, float, bool], float | None] = {}

    def set(
        self,
        journey: str,
        step: str,
        start_s: float,
        end_s: float | None = None,
        *,
        volume: int | None = None,
        factor: float | None = None,
        conversion: float | None = None,
        failing: tuple[str, float] | None = None,
    ) -> None:
        """Change a step's traffic for the intervals ending in ``(start_s, end_s]``."""
        t = self.traffic[(journey, step)]
        first = int(start_s // self.interval_s) + 1
        last = self.n if end_s is None else int(end_s // self.interval_s)
        for i in range(first, last + 1):
            if volume is not None:
                t.volume[i] = volume
            if factor is not None:
                t.factor[i] = factor
            if conversion is not None:
                t.conversion[i] = conversion
            if failing is not None:
                t.failing[failing[0]][i] = failing[1]
        self._series = None
        self._index, self._rates = {}, {}

    # -- the series --------------------------------------------------------------------------

    def series(self) -> dict[str, tuple[Labels, list[int]]]:
        """promtool series text → (labels, cumulative values at samples 0..n)."""
        if self._series is None:
            out: dict[str, tuple[Labels, list[int]]] = {}
            for journey, step in self.spec.steps():
                self._step_series(journey, step, out)
            self._series = out
            for labels, values in sorted(out.values()):
                d = dict(labels)
                key = (d["__name__"], d["journey"], d.get("step") or d["from_step"])
                self._index.setdefault(key, []).append((d, values))
        return self._series

    def _step_series(
        self, journey: Journey, step: Step, out: dict[str, tuple[Labels, list[int]]]
    ) -> None:
        t = self.traffic[(journey.name, step.name)]
        target, tolerating = step.target, self.spec.tolerating(step)
        bounds = names.duration_buckets(target, tolerating)
        service = ("service", self.spec.service)
        base = (("channel", self.channel), ("journey", journey.name), service)
        rows: dict[Labels, list[int]] = {}

        def add(metric: str, labels: Labels, value: int) -> None:
            cumulative = rows.setdefault((("__name__", metric), *sorted(labels)), [0])
            cumulative.append(cumulative[-1] + value)

        median = target * 2 / 3 / math.exp(Z95 * SIGMA)  # baseline p95 = 2/3 of the target
        for i in range(1, self.n + 1):
            n, f = t.volume[i], t.factor[i]
            below = [round(n * _cdf(b / f, median)) for b in bounds]
            for bound, count in zip(bounds, below, strict=True):
                add(
                    f"{names.STEP_DURATION}_bucket",
                    (*base, ("le", repr(float(bound))), ("step", step.name)),
                    count,
                )
            add(f"{names.STEP_DURATION}_bucket", (*base, ("le", "+Inf"), ("step", step.name)), n)
            satisfied, within = below[bounds.index(target)], below[bounds.index(tolerating)]
            classes = {
                "satisfied": satisfied,
                "tolerating": within - satisfied,
                "frustrated": n - within,
            }
            for outcome in names.OUTCOMES:
                for cls, count in classes.items():
                    add(
                        names.STEPS,
                        (*base, ("outcome", outcome), ("step", step.name), ("timeliness", cls)),
                        count if outcome == "ok" else 0,
                    )
            fails = {c: round(n * share[i]) for c, share in t.failing.items()}
            for check, failed in fails.items():
                for result, count in (("pass", n - failed), ("fail", failed)):
                    add(
                        names.ACCURACY_CHECKS,
                        (
                            ("check", check),
                            ("journey", journey.name),
                            ("result", result),
                            service,
                            ("step", step.name),
                        ),
                        count,
                    )
            add(
                names.GOOD_STEPS,
                (*base, ("step", step.name)),
                max(0, satisfied - max(fails.values(), default=0)),
            )
            following = journey.step_names.index(step.name) + 1
            if following < len(journey.steps):
                add(
                    names.TRANSITIONS,
                    (
                        ("from_step", step.name),
                        ("journey", journey.name),
                        service,
                        ("to_step", journey.steps[following].name),
                    ),
                    round(n * t.conversion[i]),
                )
        for labels, values in rows.items():
            out[_series_text(labels)] = (labels, values)

    # -- what the rules compute ----------------------------------------------------------------

    def rate(
        self,
        metric: str,
        match: dict[str, str],
        at_s: float,
        range_s: float,
        offset_s: float = 0.0,
        increase: bool = False,
    ) -> float | None:
        """``sum(rate(metric{match}[range] offset o))`` at ``at_s``, or None when absent.
        ``match`` names the journey and the step (``from_step`` for transitions)."""
        self.series()
        key = (metric, match["journey"], match.get("step") or match["from_step"])
        found = [
            r
            for labels, values in self._index.get(key, [])
            if all(labels.get(k) == v for k, v in match.items())
            and (r := self._rate(values, at_s, range_s, offset_s, increase)) is not None
        ]
        return _sum(found) if found else None

    def buckets(
        self, journey: str, step: str, at_s: float, range_s: float, offset_s: float = 0.0
    ) -> list[tuple[float, float]]:
        self.series()
        out = []
        for labels, values in self._index.get((f"{names.STEP_DURATION}_bucket", journey, step), []):
            r = self._rate(values, at_s, range_s, offset_s, False)
            if r is not None:
                out.append((float(labels["le"]), r))
        return out

    def _rate(
        self, values: list[int], at_s: float, range_s: float, offset_s: float, increase: bool
    ) -> float | None:
        key = (id(values), at_s, range_s, offset_s, increase)
        if key not in self._rates:
            self._rates[key] = self._extrapolated(values, at_s, range_s, offset_s, increase)
        return self._rates[key]

    def _extrapolated(
        self, values: list[int], at_s: float, range_s: float, offset_s: float, increase: bool
    ) -> float | None:
        """Prometheus 2.x ``extrapolatedRate`` for a counter sampled every interval from 0."""
        step_ms = self.interval_s * 1000
        end_ms = round((at_s - offset_s) * 1000)
        start_ms = end_ms - round(range_s * 1000)
        first_k, last_k = max(0, -(-start_ms // step_ms)), min(len(values) - 1, end_ms // step_ms)
        points = [(k * step_ms, float(values[k])) for k in range(first_k, last_k + 1)]
        if len(points) < 2:
            return None
        (first_t, first_v), (last_t, last_v) = points[0], points[-1]
        result = last_v - first_v
        to_start = (first_t - start_ms) / 1000
        to_end = (end_ms - last_t) / 1000
        sampled = (last_t - first_t) / 1000
        average = sampled / (len(points) - 1)
        if result > 0 and first_v >= 0:
            to_zero = sampled * (first_v / result)
            if to_zero < to_start:
                to_start = to_zero
        threshold = average * 1.1
        extrapolate = sampled
        extrapolate += to_start if to_start < threshold else average / 2
        extrapolate += to_end if to_end < threshold else average / 2
        factor = extrapolate / sampled
        if not increase:
            factor /= range_s
        return result * factor


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' ``histogram_quantile`` on (upper bound, count) pairs."""
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]) or len(ordered) < 2:
        return math.nan
    for i in range(1, len(ordered)):  # ensureMonotonic
        if ordered[i][1] < ordered[i - 1][1]:
            ordered[i] = (ordered[i][0], ordered[i - 1][1])
    observations = ordered[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(ordered) - 1) if ordered[i][1] >= rank), len(ordered) - 1)
    if b == len(ordered) - 1:
        return ordered[-2][0]
    if b == 0 and ordered[0][0] <= 0:
        return ordered[0][0]
    start, end, count = 0.0, ordered[b][0], ordered[b][1]
    if b > 0:
        start = ordered[b - 1][0]
        count -= ordered[b - 1][1]
        rank -= ordered[b - 1][1]
    return start + (end - start) * (rank / count)


def _sum(values: list[float]) -> float:
    total = 0.0
    for v in values:
        total += v
    return total


def _cdf(x: float, median: float) -> float:
    return 0.5 * (1 + math.erf(math.log(x / median) / (SIGMA * math.sqrt(2))))


def _series_text(labels: Labels) -> str:
    d = dict(labels)
    inner = ",".join(f'{k}="{v}"' for k, v in labels if k != "__name__")
    return f"{d['__name__']}{{{inner}}}"


def values_text(values: list[int]) -> str:
    """promtool's expanding notation: ``0+5x10 55+8x4`` for piecewise-constant increments."""
    parts, i, last = [], 0, len(values) - 1
    while i <= last:
        if i == last:
            parts.append(str(values[i]))
            break
        step = values[i + 1] - values[i]
        j = i + 1
        while j < last and values[j + 1] - values[j] == step:
            j += 1
        parts.append(f"{values[i]}+{step}x{j - i}")
        i = j + 1
    return " ".join(parts)
