"""The size a rate regression is reported with, at its first report, against the truth.

Seeded streams of per-window good/total counts (Poisson volumes, binomial failures): a stable
stretch at a bad rate p0, then p1 to the end. Each stream is read as the analyzer and the watch
read it at the moment the regression is first listed: the stream cut at the first window where
`detect_rate` lists it open (detected, and spanning the policy's `min_samples` events since its
change point). Per shape and volume: the median of the reported change over the true change
(p1 - p0, the drop of the good rate), the share of 95% intervals that hold the true change, and
the median detection delay in events after the change (the sizing must not change detection).

The change point and the alarm are selected on the same events the size is read on: the alarm's
window holds the failure that crossed the threshold, and the change point is placed where the
failures start. Read on them, the size at first report was inflated and its interval too often
missed: near the detection limit (odds ×2–3 of a rare bad rate) the 95% interval held the truth
in 177 of 200 streams for 1% → 2% and 176 for 0.5% → 1.5%, and the clean check failing 10% in
windows of 8 was reported a median 10% high. The size now leaves those two windows out while they
hold at most a quarter of the span's events: medians 0.95–1.01 of the truth, intervals holding it
in 182–193 of 200, delays unchanged (detection does not read the size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from cxmetrics.analysis.regression import Regression, detect_rate

SEEDS = range(200)
MIN_SAMPLES = 100  # the default policy's


@dataclass(frozen=True)
class Shape:
    p0: float  # bad rate before the change
    p1: float  # ... and after it
    per_window: int  # mean events per window (Poisson)
    baseline: int  # events before the change (a young stream's first stretch, or a long one)


def _stream(seed: int, shape: Shape) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng([seed, round(shape.p1 * 1e4), shape.per_window])
    change = max(shape.baseline // shape.per_window, 5)
    after = 30_000 // shape.per_window
    total = rng.poisson(shape.per_window, change + after).astype(np.float64)
    p = np.where(np.arange(total.size) < change, shape.p0, shape.p1)
    bad = rng.binomial(total.astype(np.int64), p).astype(np.float64)
    return total - bad, total, change


def _first_report(good: np.ndarray, total: np.ndarray, change: int) -> Regression | None:
    """The regression as first listed: the detector is causal, so it is found at the same window
    in the whole stream as in the stream cut there; it is listed from the window where it spans
    min_samples events."""
    found = detect_rate(good, total).regressions
    assert all(r.detected_at >= change for r in found)  # no false alarm before the change
    if not found:
        return None
    r = found[0]
    spanned = np.cumsum(total[r.start :]) >= MIN_SAMPLES
    cut = max(r.detected_at + 1, r.start + int(np.argmax(spanned)) + 1)
    [first] = detect_rate(good[:cut], total[:cut]).regressions
    assert (first.start, first.detected_at, first.end) == (r.start, r.detected_at, None)
    return first


@dataclass(frozen=True)
class Measured:
    found: int
    median_ratio: float  # reported change / true change
    coverage: float  # share of 95% intervals holding the true change
    median_delay: float  # events from the change to the alarm


def measure(shape: Shape, seeds: range = SEEDS) -> Measured:
    ratios, held, delays = [], [], []
    truth = (shape.p1 - shape.p0) / (1.0 - shape.p0)
    for seed in seeds:
        good, total, change = _stream(seed, shape)
        r = _first_report(good, total, change)
        if r is None:
            continue
        ratios.append(r.change / truth)
        held.append(r.change_low <= truth <= r.change_high)
        delays.append(float(total[change : r.detected_at + 1].sum()))
    return Measured(
        len(ratios), float(np.median(ratios)), float(np.mean(held)), float(np.median(delays))
    )


#: shape → the median delay measured before the sizing change (detection must not get slower)
SHAPES = {
    # near the detection limit: the selection shows
    Shape(0.01, 0.02, 100, 20_000): 6353.0,
    Shape(0.005, 0.015, 100, 20_000): 3293.0,
    Shape(0.02, 0.06, 50, 2_000): 1288.0,
    # a clean check that starts failing 10% (the watch stack's accuracy fault: a young stream,
    # a few events a window) and at larger volumes
    Shape(0.0, 0.10, 8, 360): 141.5,
    Shape(0.0, 0.10, 50, 20_000): 55.0,
    Shape(0.005, 0.10, 200, 20_000): 199.0,
}


@pytest.mark.parametrize("shape", list(SHAPES), ids=lambda s: f"{s.p0:g}-{s.p1:g}x{s.per_window}")
def test_a_rate_regression_is_sized_near_the_truth_at_its_first_report(shape: Shape) -> None:
    m = measure(shape)
    assert m.found == len(SEEDS)
    assert 0.9 <= m.median_ratio <= 1.1, m
    assert m.coverage >= 0.9, m
    assert m.median_delay <= SHAPES[shape], m
