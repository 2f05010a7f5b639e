"""Imported calls as an OpenMetrics file for ``promtool tsdb create-blocks-from openmetrics``
(docs/import.md): the counters and histograms an exporter would have exposed, sampled every
``resolution`` seconds.

Every series is written at every sample time from one resolution step before the first event
(value 0) to the first sample time at or after the last, cumulative, so ``increase``/``rate``
over a range that starts before the data reads no extrapolated start, and ratios of series that
share sample times are exact. Memory grows with series × sample times, not with rows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

Labels = tuple[tuple[str, str], ...]


@dataclass
class _Histogram:
    bounds: tuple[float, ...]
    # sample index → (bucket counts (non-cumulative, +Inf last), sum)
    windows: dict[int, tuple[list[int], list[float]]] = field(default_factory=dict)


class Backfill:
    """Counter increments and histogram observations at event times, written as OpenMetrics."""

    def __init__(self, resolution: float = 60.0) -> None:
        if not resolution > 0:
            raise ValueError("the resolution must be a positive number of seconds")
        self.resolution = resolution
        self._counters: dict[str, dict[Labels, dict[int, float]]] = {}
        self._histograms: dict[str, dict[Labels, _Histogram]] = {}
        self._first: int | None = None
        self._last: int | None = None

    def _index(self, time: float) -> int:
        k = math.ceil(time / self.resolution)
        self._first = k if self._first is None else min(self._first, k)
        self._last = k if self._last is None else max(self._last, k)
        return k

    def count(self, family: str, labels: Labels, time: float, n: float = 1.0) -> None:
        """``family`` (a counter, exposed name without ``_total``) + ``n`` at ``time``."""
        series = self._counters.setdefault(family, {}).setdefault(labels, {})
        k = self._index(time)
        series[k] = series.get(k, 0.0) + n

    def observe(
        self, family: str, bounds: Sequence[float], labels: Labels, time: float, value: float
    ) -> None:
        """An observation of histogram ``family`` at ``time``."""
        hist = self._histograms.setdefault(family, {}).get(labels)
        if hist is None:
            hist = self._histograms[family][labels] = _Histogram(tuple(bounds))
        k = self._index(time)
        window = hist.windows.get(k)
        if window is None:
            window = hist.windows[k] = ([0] * (len(hist.bounds) + 1), [0.0])
        b = 0
        while b < len(hist.bounds) and value > hist.bounds[b]:
            b += 1
        window[0][b] += 1
        window[1][0] += value

    @property
    def empty(self) -> bool:
        return self._first is None

    def write(self, path: str | os.PathLike[str]) -> int:
        """Write the OpenMetrics file; returns how many samples it holds."""
        if self._first is None or self._last is None:
            raise ValueError("nothing to write: no call was imported")
        ks = range(self._first - 1, self._last + 1)
        times = [f"{k * self.resolution:.3f}".rstrip("0").rstrip(".") for k in ks]
        samples = 0
        with open(path, "w", encoding="utf-8") as out:
            for family, series in self._counters.items():
                out.write(f"# TYPE {family} counter\n")
                for labels, increments in series.items():
                    name = f"{family}_total{_labels(labels)}"
                    samples += _cumulative(out, name, ks, times, increments)
            for family, hists in self._histograms.items():
                out.write(f"# TYPE {family} histogram\n")
                for labels, hist in hists.items():
                    samples += _histogram(out, family, labels, hist, ks, times)
            out.write("# EOF\n")
        return samples


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _cumulative(
    out: TextIO, name: str, ks: range, times: list[str], increments: dict[int, float]
) -> int:
    write = out.write
    running = 0.0
    for k, t in zip(ks, times, strict=True):
        running += increments.get(k, 0.0)
        write(f"{name} {running!r} {t}\n")
    return len(times)


def _histogram(
    out: TextIO, family: str, labels: Labels, hist: _Histogram, ks: range, times: list[str]
) -> int:
    bounds = (*(repr(b) for b in hist.bounds), "+Inf")
    n = len(bounds)
    series: list[list[float]] = [[] for _ in range(n + 2)]  # buckets…, count, sum
    running = [0] * n
    total = 0.0
    for k in ks:
        window = hist.windows.get(k)
        if window is not None:
            for b, c in enumerate(window[0]):
                running[b] += c
            total += window[1][0]
        cumulative = 0
        for b in range(n):
            cumulative += running[b]
            series[b].append(cumulative)
        series[n].append(cumulative)
        series[n + 1].append(total)
    write = out.write
    les = ['le="' + le + '"' for le in bounds]
    names = [f"{family}_bucket{_labels(labels, le)}" for le in les]
    names += [f"{family}_count{_labels(labels)}", f"{family}_sum{_labels(labels)}"]
    for name, values in zip(names, series, strict=True):
        for v, t in zip(values, times, strict=True):
            write(f"{name} {float(v)!r} {t}\n")
    return len(names) * len(times)
