"""Traffic shapes for the detector benchmark: step latency as real services produce it.

Benchmark-only code (nothing in `cxmetrics` imports it). Every generator returns a `Stream`:
latency samples in arrival order (seconds), the window of each sample (what a window-based rule
or a Prometheus histogram sees), and the first changed sample (-1 when nothing changes). Change
shapes also know the true relative change of p95 and p50 at any distance after the change, so a
detector's reported size can be compared with the truth.

Change shapes (a stationary stretch of PRE samples, then the change):
- location: every sample x1.2 (p95 and p50 +20%), lognormal sigma 0.5;
- cache-miss mix: 90% hits ~ LN(ln 0.8, 0.3), 10% misses ~ LN(ln 3, 0.3); the miss share goes to
  18% (p95 +19%, p50 +4%);
- tail-only: a 10% slow mode gets x1.3 (p95 +30%, p50 flat);
- gradual ramp: +20% reached linearly over 2,000 samples, then held;
- slow drift: +30% reached linearly over 100,000 samples;
- rare step: +20% after only 500 samples of history (a step that sees little traffic);
- location on the daily cycle: +20% after 6 periods of the daily cycle below.
Stationary shapes (no change; every alarm is false):
- daily cycle: the median swings +-15% over a period of 2,000 samples (the stream states its
  period: cxmetrics' raw-sample detector is given it as `Policy(season=2000)`, same-phase
  baselines; the baselines and the histogram detector are not);
- AR(1) wander: the log-median follows an AR(1) across windows (phi 0.95, stationary sd 0.05);
- fast bursts: bursts of 300 requests 2x faster (a cache warm-up, a health-check flood), one per
  10,000 samples on average;
- volume bursts: windows hold Poisson(50) samples, and 10-window bursts at 5x volume, one per 200
  windows on average; latency does not change.
Real series: NAB's `ec2_request_latency_system_failure` (AWS CloudWatch, 5-minute average request
latency, three labelled anomaly windows; `benchmarks/data/`). Each 5-minute point becomes a
window of 50 requests, lognormal sigma 0.5 with that point's mean.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

WINDOW = 50
PRE = 5_000
POST = 3_000
STATIONARY = 100_000
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
NAB_SERIES = "nab_ec2_request_latency_system_failure"

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Stream:
    values: Array
    win: Array  # window index of each sample (non-decreasing)
    n_windows: int
    change: int  # first changed sample; -1 for stationary streams
    #: labelled (start, end) sample ranges of a real series; empty for generated streams
    labels: tuple[tuple[int, int], ...] = ()
    #: the cycle's period in samples, for a detector that compares like phases; None: no cycle
    season: float | None = None


def _fixed_windows(values: Array, change: int) -> Stream:
    win = np.arange(values.size) // WINDOW
    return Stream(values, win, int(win[-1]) + 1, change)


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> Array:
    return rng.lognormal(math.log(median), sigma, n)


def _mix(rng: np.random.Generator, n: int, miss_share: Array | float) -> Array:
    hit = _lognormal(rng, 0.8, 0.3, n)
    miss = _lognormal(rng, 3.0, 0.3, n)
    return np.where(rng.random(n) < miss_share, miss, hit)


def _tail(rng: np.random.Generator, n: int, slow_factor: Array | float) -> Array:
    fast = _lognormal(rng, 0.9, 0.25, n)
    slow = _lognormal(rng, 2.5, 0.3, n) * slow_factor
    return np.where(rng.random(n) < 0.10, slow, fast)


# ------------------------------------------------------------------------------------------------
# change shapes: (generator, true relative change of (p95, p50) `t` samples after the change)


def location(rng: np.random.Generator, pre: int = PRE) -> Stream:
    change = pre + int(rng.integers(0, WINDOW))
    values = _lognormal(rng, 1.0, 0.5, change + POST)
    values[change:] *= 1.2
    return _fixed_windows(values, change)


def mix_shift(rng: np.random.Generator) -> Stream:
    change = PRE + int(rng.integers(0, WINDOW))
    share = np.where(np.arange(change + POST) < change, 0.10, 0.18)
    return _fixed_windows(_mix(rng, change + POST, share), change)


def tail_shift(rng: np.random.Generator) -> Stream:
    change = PRE + int(rng.integers(0, WINDOW))
    factor = np.where(np.arange(change + POST) < change, 1.0, 1.3)
    return _fixed_windows(_tail(rng, change + POST, factor), change)


RAMP = 2_000
DRIFT = 100_000


def ramp(rng: np.random.Generator) -> Stream:
    change = PRE + int(rng.integers(0, WINDOW))
    values = _lognormal(rng, 1.0, 0.5, change + POST)
    after = np.arange(values.size) - change
    values *= 1.0 + 0.2 * np.clip(after / RAMP, 0.0, 1.0)
    return _fixed_windows(values, change)


def drift(rng: np.random.Generator) -> Stream:
    change = PRE + int(rng.integers(0, WINDOW))
    values = _lognormal(rng, 1.0, 0.5, change + DRIFT)
    after = np.arange(values.size) - change
    values *= 1.0 + 0.3 * np.clip(after / DRIFT, 0.0, 1.0)
    return _fixed_windows(values, change)


RARE_PRE = 500


def rare(rng: np.random.Generator) -> Stream:
    return location(rng, RARE_PRE)


CYCLE = 2_000  # samples per period of the daily cycle


def _cycle(rng: np.random.Generator, n: int) -> Array:
    phase = rng.uniform(0, 2 * math.pi)
    return 1 + 0.15 * np.sin(2 * math.pi * np.arange(n) / CYCLE + phase)


def cycle_location(rng: np.random.Generator) -> Stream:
    """+20% on a stream with the daily cycle, after 6 periods of it."""
    change = 6 * CYCLE + int(rng.integers(0, WINDOW))
    values = _lognormal(rng, 1.0, 0.5, change + POST) * _cycle(rng, change + POST)
    values[change:] *= 1.2
    return dataclasses.replace(_fixed_windows(values, change), season=float(CYCLE))


def _true_mix(q: float, share: float) -> float:
    """Quantile q of the cache mix, by bisection on its CDF."""
    from scipy import stats

    def cdf(x: float) -> float:
        z_hit = (math.log(x) - math.log(0.8)) / 0.3
        z_miss = (math.log(x) - math.log(3.0)) / 0.3
        return float((1 - share) * stats.norm.cdf(z_hit) + share * stats.norm.cdf(z_miss))

    lo, hi = 0.01, 100.0
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return lo


def _true_tail(q: float, factor: float) -> float:
    from scipy import stats

    def cdf(x: float) -> float:
        z_fast = (math.log(x) - math.log(0.9)) / 0.25
        z_slow = (math.log(x) - math.log(2.5 * factor)) / 0.3
        return float(0.9 * stats.norm.cdf(z_fast) + 0.1 * stats.norm.cdf(z_slow))

    lo, hi = 0.01, 100.0
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return lo


@dataclass(frozen=True)
class ChangeShape:
    name: str
    make: Callable[[np.random.Generator], Stream]
    #: true relative change of (p95, p50) t samples after the change
    truth: Callable[[int], tuple[float, float]]
    horizon: int  # detection counts within this many samples after the change


MIX_TRUTH = (
    _true_mix(0.95, 0.18) / _true_mix(0.95, 0.10) - 1.0,
    _true_mix(0.50, 0.18) / _true_mix(0.50, 0.10) - 1.0,
)
TAIL_TRUTH = (
    _true_tail(0.95, 1.3) / _true_tail(0.95, 1.0) - 1.0,
    _true_tail(0.50, 1.3) / _true_tail(0.50, 1.0) - 1.0,
)

CHANGE_SHAPES = (
    ChangeShape("location +20% (sigma 0.5)", location, lambda t: (0.2, 0.2), POST),
    ChangeShape("cache-miss mix 10% -> 18%", mix_shift, lambda t: MIX_TRUTH, POST),
    ChangeShape("tail-only: slow 10% x1.3", tail_shift, lambda t: TAIL_TRUTH, POST),
    ChangeShape(
        "gradual ramp +20% over 2k",
        ramp,
        lambda t: (0.2 * min(t / RAMP, 1.0),) * 2,
        POST,
    ),
    ChangeShape(
        "slow drift +30% over 100k",
        drift,
        lambda t: (0.3 * min(t / DRIFT, 1.0),) * 2,
        DRIFT,
    ),
    ChangeShape("rare step: +20% after 500", rare, lambda t: (0.2, 0.2), POST),
    ChangeShape("location +20% on the daily cycle", cycle_location, lambda t: (0.2, 0.2), POST),
)


# ------------------------------------------------------------------------------------------------
# stationary shapes


def daily_cycle(rng: np.random.Generator) -> Stream:
    values = _lognormal(rng, 1.0, 0.5, STATIONARY) * _cycle(rng, STATIONARY)
    return dataclasses.replace(_fixed_windows(values, -1), season=float(CYCLE))


def ar1_wander(rng: np.random.Generator) -> Stream:
    n_windows = STATIONARY // WINDOW
    phi, sd = 0.95, 0.05
    eps = rng.normal(0.0, sd * math.sqrt(1 - phi * phi), n_windows)
    level = np.empty(n_windows)
    level[0] = rng.normal(0.0, sd)
    for w in range(1, n_windows):
        level[w] = phi * level[w - 1] + eps[w]
    values = _lognormal(rng, 1.0, 0.5, STATIONARY) * np.exp(np.repeat(level, WINDOW))
    return _fixed_windows(values, -1)


def fast_bursts(rng: np.random.Generator) -> Stream:
    values = _lognormal(rng, 1.0, 0.5, STATIONARY)
    starts = np.flatnonzero(rng.random(STATIONARY) < 1e-4)
    for s in starts:
        values[s : s + 300] *= 0.5
    return _fixed_windows(values, -1)


def volume_bursts(rng: np.random.Generator) -> Stream:
    n_windows = STATIONARY // WINDOW
    rate = np.full(n_windows, float(WINDOW))
    for s in np.flatnonzero(rng.random(n_windows) < 1 / 200):
        rate[s : s + 10] = 5.0 * WINDOW
    counts = rng.poisson(rate)
    values = _lognormal(rng, 1.0, 0.5, int(counts.sum()))
    return Stream(values, np.repeat(np.arange(n_windows), counts), n_windows, -1)


STATIONARY_SHAPES: tuple[tuple[str, Callable[[np.random.Generator], Stream]], ...] = (
    ("daily cycle +-15% (period 2k)", daily_cycle),
    ("AR(1) wander 5%", ar1_wander),
    ("bursts of 2x-faster requests", fast_bursts),
    ("volume bursts x5, latency stable", volume_bursts),
)


# ------------------------------------------------------------------------------------------------
# the real series


def nab_series() -> tuple[Array, tuple[tuple[int, int], ...]]:
    """NAB's 5-minute average latencies (seconds) and its labelled windows (point indices)."""
    with open(os.path.join(DATA, NAB_SERIES + ".csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    stamps = [datetime.fromisoformat(r["timestamp"]) for r in rows]
    means = np.array([float(r["value"]) for r in rows]) / 1000.0
    with open(os.path.join(DATA, NAB_SERIES + ".windows.json")) as f:
        raw = next(iter(json.load(f).values()))
    labels = []
    for a, b in raw:
        lo, hi = datetime.fromisoformat(a), datetime.fromisoformat(b)
        idx = [i for i, s in enumerate(stamps) if lo <= s <= hi]
        labels.append((idx[0], idx[-1] + 1))
    return means, tuple(labels)


def nab_stream(rng: np.random.Generator) -> Stream:
    means, labels = nab_series()
    sigma = 0.5
    medians = means * math.exp(-0.5 * sigma * sigma)
    values = rng.lognormal(np.log(np.repeat(medians, WINDOW)), sigma)
    win = np.arange(values.size) // WINDOW
    sample_labels = tuple((a * WINDOW, b * WINDOW) for a, b in labels)
    return Stream(values, win, means.size, -1, sample_labels)
