"""The analyzer's Prometheus source: counters read over HTTP into the windows of a ``Timeline``.

One range query per metric family (``/api/v1/query_range``) reads the *raw* counters at the
window edges; each series is differenced on its own (a drop is a counter reset: the new value
counts from zero; a series first seen inside the range counts from zero too) and the increments
are then summed over channels and instances. Why not ``increase()``: it extrapolates to the window
edges, so it returns fractional counts that neither add up across windows nor match what the app
counted; differences of the raw counters are whole numbers, add up exactly, and equal the app's
own counts once Prometheus has scraped them. The duration histogram is de-cumulated per window
into each step's bucket layout, read from the ``le`` labels themselves.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

from .._exceptions import CxError
from ..spec import names
from ..spec.model import Spec
from .catalogue import COMPLAINT
from .counts import FeedbackKey, JourneyCounts, StepCounts, Window
from .sources import Timeline, grid, step_layouts

MAX_POINTS = 11_000
_MATCHED_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_NOT_ON_HISTOGRAM = {names.CHANNEL, names.SEGMENT} - set(
    names.METRICS[names.STEP_DURATION][1]
)  # Prometheus refuses range queries with more points per series


def from_prometheus(
    spec: Spec, url: str, start: float, end: float, step: float, matchers: str = ""
) -> Timeline:
    """Counts of every declared step over ``(start, end]`` in windows of ``step`` seconds.

    ``matchers`` are extra label matchers for every selector, e.g. ``job="bank"``.
    """
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        raise CxError(f"{url!r} is not a Prometheus URL; write it like http://localhost:9090")
    edges = grid(start, end, step)
    if len(edges) > MAX_POINTS:
        raise CxError(
            f"{len(edges)} windows of {step:g}s: Prometheus answers at most {MAX_POINTS} "
            "points per series; use a larger --step or a shorter --since"
        )
    base = url.rstrip("/")
    journeys = sorted(j.name for j in spec.journeys)
    selector = '{journey=~"' + "|".join(journeys) + '"' + (f",{matchers}" if matchers else "") + "}"

    def read(metric: str) -> list[tuple[dict[str, str], list[int]]]:
        series = query_range(base, metric + selector, edges[0], edges[-1], step)
        return [(s["metric"], increments(s["values"], edges)) for s in series]

    n = len(edges) - 1
    layouts = step_layouts(spec)
    acc = _Accumulator(n, layouts)
    # The duration histogram pools segments (docs/metrics.md, "Series budget"): under a segment
    # matcher its buckets would match nothing, so they are not read and the windows have no
    # quantiles (the classes, checks and transitions are per segment).
    per_step_only = set(_MATCHED_LABEL.findall(matchers)) & _NOT_ON_HISTOGRAM
    bucket_counts = (
        {} if per_step_only else _buckets(read(names.STEP_DURATION + "_bucket"), layouts, n)
    )
    for labels, incs in read(names.STEPS):
        cls = names.TIMELINESS_CLASSES.index(labels[names.TIMELINESS])
        cls += 3 if labels[names.OUTCOME] == "error" else 0
        for counts, value in acc.each(labels, incs, count_ignored=True):
            counts.classes[cls] += value
    for labels, incs in read(names.GOOD_STEPS):
        for counts, value in acc.each(labels, incs):
            counts.good += value
    for labels, incs in read(names.ACCURACY_CHECKS):
        slot = 0 if labels[names.RESULT] == "pass" else 1
        for counts, value in acc.each(labels, incs):
            counts.checks.setdefault(labels[names.CHECK], [0, 0])[slot] += value
    for labels, incs in read(names.TRANSITIONS):
        to_step = labels[names.TO_STEP]
        for counts, value in acc.each({**labels, names.STEP: labels[names.FROM_STEP]}, incs):
            counts.transitions[to_step] = counts.transitions.get(to_step, 0) + value
    started = {j: [0] * n for j in journeys}
    for labels, incs in read(names.JOURNEYS_STARTED):
        into = started[labels[names.JOURNEY]]
        for k, value in enumerate(incs):
            into[k] += value
    feedback: dict[str, list[dict[FeedbackKey, int]]] = {
        j: [{} for _ in range(n)] for j in journeys
    }
    for labels, incs in read(names.FEEDBACK):
        step_label = labels[names.STEP]
        key: FeedbackKey = (
            None if step_label == "none" else step_label,
            labels[names.SCALE],
            int(labels[names.SCORE]),
        )
        for k, value in enumerate(incs):
            if value:
                per_window = feedback[labels[names.JOURNEY]][k]
                per_window[key] = per_window.get(key, 0) + value
    complaints = {j: [0] * n for j in journeys}
    for labels, incs in read(names.FEEDBACK_TOPICS):
        if labels.get(names.CATEGORY) == COMPLAINT:
            into = complaints[labels[names.JOURNEY]]
            for k, value in enumerate(incs):
                into[k] += value

    windows = []
    for k in range(n):
        steps = {}
        for skey, layout in layouts.items():
            bounds, rows = bucket_counts.get(skey, (layout, None))
            row = tuple(rows[k]) if rows is not None else (0,) * (len(bounds) + 1)
            steps[skey] = acc.rows[skey][k].freeze(bounds, row)
        jcounts = {
            j: JourneyCounts(started[j][k], feedback[j][k], complaints[j][k]) for j in journeys
        }
        windows.append(Window(edges[k], edges[k + 1], steps, jcounts))
    return Timeline(edges, tuple(windows), base, acc.ignored)


def query_range(
    base_url: str, promql: str, start: float, end: float, step: float
) -> list[dict[str, Any]]:
    """A range query's matrix; ``CxError`` with Prometheus' own message on failure."""
    from .promapi import http_get

    params = urllib.parse.urlencode(
        {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    )
    try:
        status, body = http_get(f"{base_url}/api/v1/query_range?{params}", timeout=30.0)
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        raise CxError(f"cannot reach Prometheus at {base_url}: {reason}") from exc
    try:
        data = json.loads(body)
    except ValueError:
        raise CxError(
            f"{base_url} did not answer like Prometheus (HTTP {status}); is it the server's "
            "base URL, e.g. http://localhost:9090?"
        ) from None
    if status != 200 or data.get("status") != "success":
        raise CxError(f"Prometheus rejected {promql!r}: {data.get('error', f'HTTP {status}')}")
    result: list[dict[str, Any]] = data["data"]["result"]
    return result


def increments(values: Sequence[Sequence[Any]], edges: Sequence[float]) -> list[int]:
    """Per-window increase of one counter series given as ``[[time, "value"], ...]`` at the edges.

    A value below the previous one is a reset (the new value is the increase); a value after a
    missing point counts in full (the series began, or came back, inside the window).
    """
    step = edges[1] - edges[0]
    at: list[float | None] = [None] * len(edges)
    for time, text in values:
        index = round((float(time) - edges[0]) / step)
        if 0 <= index < len(edges):
            value = float(text)
            at[index] = value if math.isfinite(value) else None
    out = []
    for k in range(1, len(edges)):
        now, before = at[k], at[k - 1]
        if now is None:
            out.append(0)
        elif before is None or now < before:
            out.append(round(now))
        else:
            out.append(round(now) - round(before))
    return out


class _StepAccumulator:
    """One step's counts in one window while the families are read."""

    __slots__ = ("checks", "classes", "good", "transitions")

    def __init__(self) -> None:
        self.classes = [0] * 6
        self.good = 0
        self.checks: dict[str, list[int]] = {}
        self.transitions: dict[str, int] = {}

    def freeze(self, bounds: tuple[float, ...], buckets: tuple[int, ...]) -> StepCounts:
        checks = {name: (p, f) for name, (p, f) in self.checks.items()}
        return StepCounts(
            bounds, buckets, tuple(self.classes), self.good, checks, dict(self.transitions)
        )


class _Accumulator:
    def __init__(self, n: int, layouts: dict[tuple[str, str], tuple[float, ...]]) -> None:
        self.rows = {key: [_StepAccumulator() for _ in range(n)] for key in layouts}
        self.ignored = 0

    def each(
        self, labels: dict[str, str], incs: list[int], count_ignored: bool = False
    ) -> Iterator[tuple[_StepAccumulator, int]]:
        """The (step counts, increment) of every window in which the series increased."""
        rows = self.rows.get((labels[names.JOURNEY], labels[names.STEP]))
        if rows is None:
            self.ignored += sum(incs) if count_ignored else 0
            return
        for k, value in enumerate(incs):
            if value:
                yield rows[k], value


def _buckets(
    series: list[tuple[dict[str, str], list[int]]],
    layouts: dict[tuple[str, str], tuple[float, ...]],
    n: int,
) -> dict[tuple[str, str], tuple[tuple[float, ...], list[list[int]]]]:
    """Non-cumulative bucket counts per step and window, on the layout the ``le`` labels give."""
    # (journey, step, the series' other labels) → le → per-window cumulative increments
    by_series: dict[tuple[str, str, str], dict[float, list[int]]] = {}
    for labels, incs in series:
        key = (labels[names.JOURNEY], labels[names.STEP])
        if key not in layouts:
            continue
        rest = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "le")
        by_series.setdefault((*key, rest), {})[float(labels["le"])] = incs  # "+Inf" → inf
    out: dict[tuple[str, str], tuple[tuple[float, ...], list[list[int]]]] = {}
    for (journey, step, _), per_le in by_series.items():
        key = (journey, step)
        bounds = tuple(sorted(le for le in per_le if math.isfinite(le)))
        if math.inf not in per_le:
            raise CxError(f"{names.STEP_DURATION} for {key[0]}/{key[1]} has no +Inf bucket")
        layout, rows = out.setdefault(key, (bounds, [[0] * (len(bounds) + 1) for _ in range(n)]))
        if layout != bounds:
            raise CxError(
                f"{key[0]}/{key[1]}: series with different bucket layouts in the range (was its "
                "target changed?); analyse a range on one side of the change with --since"
            )
        ordered = [*bounds, math.inf]
        for k in range(n):
            previous = 0
            for i, le in enumerate(ordered):
                cumulative = per_le[le][k]
                rows[k][i] += max(cumulative - previous, 0)
                previous = cumulative
    return {key: (bounds, rows) for key, (bounds, rows) in out.items()}
