"""Regression detectors other products ship, re-implemented for the side-by-side benchmark.

Benchmark-only code: nothing in `cxmetrics` imports it. Each detector sees one stream of latency
samples (arrival order) already cut into windows (`win[i]` = window of sample i, non-decreasing)
and answers, per window, whether its rule holds when that window closes. The rules follow the
sources:

- fixed threshold: the window's p95 > 1.1 x the baseline p95 (measured once, on the stream's
  first `baseline_samples` samples, as a static alert would be set);
- Sentry endpoint regression (sentry/statistical_detectors/algorithm.py,
  MovingAverageRelativeChangeDetector as configured for endpoints): EMAs with alpha 2/21 and
  2/41 over the per-window p95, seeded with the first value; fires when (short - long) / |long|
  crosses 0.20 upward, after more than 6 data points;
- Mozilla Perfherder (treeherder/perf/alerts.py, detect_changes): per-window values, back
  window 12..24 and fore window 12 with linear weights, Welch-style t; a point is a change when
  t > 7, t is a local maximum, and the mean moved by >= 2%. Run as a stream: a point is judged
  once its 12-window fore window is complete (the next point's t uses the 11 windows then known).
  Run twice: with its default alert threshold (2%), and with the threshold a signature can be
  given set to the policy's min_change (10%), as a team holding alerts to that change would;
- Kayenta (NetflixACAJudge -> MannWhitneyClassifier, confLevel 0.98): current window vs the
  preceding `kayenta_baseline_windows` windows (raw samples). "High" when the 98% confidence
  interval of the Hodges-Lehmann shift lies above `tolerance` x |estimate| and the mean ratio is
  >= 1. tolerance=0 is the rule as usually described ("interval excludes 0"); Kayenta ships 0.25.
  The interval uses the large-sample normal approximation (order statistics of the pairwise
  differences), as R's wilcox.test does for samples this size.

Every detector exposes `prepare(values, win, n_windows)` (threshold-independent work) and
`fires(prepared, threshold)` so the benchmark can also tune each threshold to a false-alarm rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal

from cxmetrics.analysis.policy import Policy

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]


def window_bounds(win: IntArray, n_windows: int) -> IntArray:
    """starts[w] .. starts[w + 1] are the samples of window w."""
    return np.searchsorted(win, np.arange(n_windows + 1)).astype(np.int64)


def window_quantile(values: FloatArray, bounds: IntArray, q: float) -> FloatArray:
    """Per-window quantile (numpy's linear interpolation); NaN for empty windows."""
    n_windows = bounds.size - 1
    win = np.repeat(np.arange(n_windows), np.diff(bounds))
    v = values[np.lexsort((values, win))]
    counts = np.diff(bounds)
    pos = bounds[:-1] + q * np.maximum(counts - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(bounds[1:] - 1, 0))
    lo = np.minimum(lo, v.size - 1)
    hi = np.minimum(hi, v.size - 1)
    frac = pos - np.floor(pos)
    out = v[lo] * (1 - frac) + v[hi] * frac
    return np.where(counts > 0, out, np.nan)


@dataclass(frozen=True)
class FixedThreshold:
    name: str = "fixed threshold (p95 > 1.1x baseline)"
    threshold: float = 1.10
    baseline_samples: int = 5000

    def prepare(self, values: FloatArray, win: IntArray, n_windows: int) -> FloatArray:
        bounds = window_bounds(win, n_windows)
        base = float(np.quantile(values[: self.baseline_samples], 0.95))
        ratio = window_quantile(values, bounds, 0.95) / base
        ratio[bounds[1:] <= self.baseline_samples] = np.nan  # the baseline period is not judged
        return ratio

    def fires(self, ratio: FloatArray, threshold: float) -> np.ndarray[Any, np.dtype[np.bool_]]:
        return np.nan_to_num(ratio, nan=-np.inf) > threshold


@dataclass(frozen=True)
class SentryEMA:
    name: str = "Sentry EMA 2/21 vs 2/41, gap 0.20"
    threshold: float = 0.20
    min_data_points: int = 6

    def prepare(self, values: FloatArray, win: IntArray, n_windows: int) -> FloatArray:
        p95 = window_quantile(values, window_bounds(win, n_windows), 0.95)
        have = np.flatnonzero(np.isfinite(p95))  # windows without data send no payload
        series = p95[have]
        gap = np.full(n_windows, np.nan)
        if series.size == 0:
            return np.stack([gap, gap])
        short = _ema(series, 2 / 21)
        long = _ema(series, 2 / 41)
        rel = (short - long) / np.abs(long)
        prev = np.concatenate([[0.0], rel[:-1]])  # Sentry's empty state: both averages 0 -> 0
        count = np.arange(1, series.size + 1)
        prev_full = np.full(n_windows, np.nan)
        gap[have] = np.where(count > self.min_data_points, rel, np.nan)
        prev_full[have] = prev
        return np.stack([gap, prev_full])

    def fires(self, prepared: FloatArray, threshold: float) -> np.ndarray[Any, np.dtype[np.bool_]]:
        rel, prev = prepared
        with np.errstate(invalid="ignore"):
            return np.asarray((prev < threshold) & (rel > threshold), dtype=bool)


def _ema(x: FloatArray, alpha: float) -> FloatArray:
    """EMA seeded with the first value: avg_0 = x_0, avg_t = alpha x_t + (1 - alpha) avg_{t-1}."""
    out, _ = signal.lfilter([alpha], [1.0, alpha - 1.0], x[1:], zi=[(1.0 - alpha) * x[0]])
    return np.concatenate([[x[0]], out])


@dataclass(frozen=True)
class Perfherder:
    name: str = "Perfherder t-test 12v12, t > 7"
    threshold: float = 7.0
    min_back: int = 12
    max_back: int = 24
    fore: int = 12
    min_pct: float = 2.0

    def prepare(self, values: FloatArray, win: IntArray, n_windows: int) -> dict[str, Any]:
        p95 = window_quantile(values, window_bounds(win, n_windows), 0.95)
        keep = np.flatnonzero(np.isfinite(p95))  # a window with no data is no revision
        x = p95[keep]
        n = x.size
        t_full = {b: _weighted_t(x, b, self.fore) for b in range(self.min_back, self.max_back + 1)}
        t_part = {
            b: _weighted_t(x, b, self.fore - 1) for b in range(self.min_back, self.max_back + 1)
        }
        pct = {b: _pct_change(x, b, self.fore) for b in range(self.min_back, self.max_back + 1)}
        return {
            "n": n,
            "keep": keep,
            "n_windows": n_windows,
            "full": t_full,
            "part": t_part,
            "pct": pct,
        }

    def fires(self, prep: dict[str, Any], threshold: float) -> np.ndarray[Any, np.dtype[np.bool_]]:
        n: int = prep["n"]
        out = np.zeros(prep["n_windows"], dtype=bool)
        if n <= self.min_back + self.fore:
            return out
        # back-window length per point follows treeherder's last_seen_regression bookkeeping,
        # which (like its local-maximum test) uses |t|: improvements count as changes too
        back = np.empty(n, dtype=np.int64)
        t_at = np.empty(n)
        since = 0
        for i in range(n):
            b = min(max(since, self.min_back), self.max_back, max(i, self.min_back))
            back[i] = b
            t_at[i] = prep["full"][b][i]
            since = 0 if abs(t_at[i]) > threshold else since + 1
        idx = np.arange(n)
        t_abs = np.abs(t_at)
        nxt = [abs(prep["part"][back[i + 1]][i + 1]) if i + 1 < n else -np.inf for i in idx]
        t_next = np.nan_to_num(np.array(nxt), nan=-np.inf)
        t_prev = np.concatenate([[-np.inf], np.nan_to_num(t_abs[:-1], nan=-np.inf)])
        pct = np.array([prep["pct"][back[i]][i] for i in idx])
        judged = (idx >= self.min_back) & (idx + self.fore <= n)
        with np.errstate(invalid="ignore"):
            flag = judged & (t_abs > threshold) & (t_abs >= t_prev) & (t_abs >= t_next)
            flag &= (t_at > 0) & (pct >= self.min_pct)  # a regression: later values higher
        decided = idx + self.fore - 1  # the point is decided when its fore window is complete
        out[prep["keep"][decided[flag]]] = True
        return out


def _weighted_t(x: FloatArray, back: int, fore: int) -> FloatArray:
    """treeherder calc_t with linear weights (signed: positive = later values higher)."""
    n = x.size
    t = np.full(n, np.nan)
    if n < back + 1:
        return t
    w_b = (back - np.arange(back)) / back  # jw[0] = x[i-1] weighs most
    w_f = (fore - np.arange(fore)) / fore
    i = np.arange(back, n - fore + 1)
    if i.size == 0:
        return t
    jw = np.stack([x[i - 1 - k] for k in range(back)], axis=1)
    kw = np.stack([x[i + k] for k in range(fore)], axis=1)
    m1 = jw @ w_b / w_b.sum()
    m2 = kw @ w_f / w_f.sum()
    v1 = ((jw - m1[:, None]) ** 2).sum(axis=1) / (back - 1)
    v2 = ((kw - m2[:, None]) ** 2).sum(axis=1) / (fore - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t[i] = (m2 - m1) / np.sqrt(v1 / back + v2 / fore)
    return t


def _pct_change(x: FloatArray, back: int, fore: int) -> FloatArray:
    """100 * (new - prev) / prev on unweighted means, as treeherder's alert threshold."""
    n = x.size
    out = np.full(n, -np.inf)
    i = np.arange(back, n - fore + 1)
    if i.size == 0:
        return out
    c = np.concatenate([[0.0], np.cumsum(x)])
    prev = (c[i] - c[i - back]) / back
    new = (c[i + fore] - c[i]) / fore
    out[i] = 100.0 * (new - prev) / prev
    return out


@dataclass(frozen=True)
class KayentaMannWhitney:
    tolerance: float = 0.0
    threshold: float = 2.3263  # two-sided 98% interval: its lower end is above the bound
    baseline_windows: int = 20

    @property
    def name(self) -> str:
        if self.tolerance == 0:
            return "Kayenta MW 98% CI excludes 0"
        return f"Kayenta MW 98% CI, tolerance {self.tolerance:g}"

    def prepare(self, values: FloatArray, win: IntArray, n_windows: int) -> FloatArray:
        """Per window: z such that the rule holds at a (1 - 2 Phi(-z)) two-sided level."""
        bounds = window_bounds(win, n_windows)
        z = np.full(n_windows, -np.inf)
        for w in range(self.baseline_windows, n_windows):
            cur = values[bounds[w] : bounds[w + 1]]
            base = np.sort(values[bounds[w - self.baseline_windows] : bounds[w]])
            m, n = cur.size, base.size
            if m == 0 or n == 0 or cur.mean() < base.mean():  # mean ratio (effect size) >= 1
                continue
            sd = math.sqrt(m * n * (m + n + 1) / 12.0)
            z0 = (0.5 * m * n - _count_le(cur, base, 0.0)) / sd
            if self.tolerance == 0 or z0 < 1.5:  # 1.5 is below every threshold swept
                z[w] = z0
                continue
            hl = float(np.median((cur[:, None] - base[None, :]).ravel()))
            z[w] = (0.5 * m * n - _count_le(cur, base, self.tolerance * abs(hl))) / sd
        return z

    def fires(self, z: FloatArray, threshold: float) -> np.ndarray[Any, np.dtype[np.bool_]]:
        return np.asarray(z > threshold, dtype=bool)


def _count_le(cur: FloatArray, base_sorted: FloatArray, c: float) -> float:
    """#{(i, j): cur_i - base_j <= c}, ties counted half (mid-rank convention)."""
    lo = np.searchsorted(base_sorted, cur - c, side="left")
    hi = np.searchsorted(base_sorted, cur - c, side="right")
    return float(np.sum(base_sorted.size - hi) + 0.5 * np.sum(hi - lo))


ALL = (
    FixedThreshold(),
    SentryEMA(),
    Perfherder(),
    Perfherder(
        name=f"Perfherder t-test 12v12, t > 7, moved >= {Policy().min_change:.0%}",
        min_pct=100.0 * Policy().min_change,
    ),
    KayentaMannWhitney(tolerance=0.0),
    KayentaMannWhitney(tolerance=0.25),
)
