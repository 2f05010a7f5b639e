"""A slow drift is found against a long-memory reference (an anchor) and sized on its latest
samples."""

from __future__ import annotations

import numpy as np
import pytest

from cxmetrics.analysis import changepoint as cp
from cxmetrics.analysis.policy import DEFAULT_POLICY
from cxmetrics.analysis.regression import LatencyDetector, Regression, detect_latency_windows

DRIFT_START = 5_000
DRIFT = 100_000  # +30% reached linearly over this many samples (benchmarks/shapes.py's drift)
BOUNDS = 1.0 * 2.0 ** (np.arange(-24, 25) / 8)  # the benchmark's buckets
WINDOW = 50


def _drift(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(0.0, 0.5, DRIFT_START + DRIFT)
    values[DRIFT_START:] *= 1.0 + 0.3 * np.arange(DRIFT) / DRIFT
    return values


def _windows(values: np.ndarray) -> np.ndarray:
    counts = np.zeros((values.size // WINDOW, BOUNDS.size + 1))
    index = np.searchsorted(BOUNDS, values, side="left")
    np.add.at(counts, (np.arange(values.size) // WINDOW, index), 1)
    return counts


@pytest.mark.parametrize("seed", [100, 101, 102])
def test_a_slow_drift_stays_open_sized_at_the_level_it_reached(seed: int) -> None:
    """Before the anchors, the trailing baseline followed the drift: these streams ended with
    every regression recovered (seed 100: four regressions of +14% to +23%, all closed; 101:
    five, +7% to +18%; 102: three), the drift's +30% nowhere."""
    detector = LatencyDetector(improvements=False)
    found = detector.extend(_drift(seed))
    (drift,) = [r for r in found if r.signal == "drift"]
    # found within 30,000 samples of its start (while the drift is below +9%) ...
    assert 0 < drift.detected_at - DRIFT_START <= 30_000
    # ... at a size whose interval holds the change the drift had reached then
    truth = 0.3 * (drift.detected_at - DRIFT_START) / DRIFT
    assert drift.change_low <= truth <= drift.change_high
    assert drift.change_high >= DEFAULT_POLICY.min_change and drift.change_low > 0.0
    # and it stays open, sized on the latest samples: the +30% reached at the end
    final = detector.detection().regressions[-1]
    assert (final.signal, final.end, final.start) == ("drift", None, drift.start)
    assert abs(final.change - 0.3) <= 0.3 * 0.3
    assert sum(r.end is None for r in detector.detection().regressions) == 1


@pytest.mark.parametrize("seed", [100, 101, 102])
def test_histogram_windows_find_the_drift_too(seed: int) -> None:
    """Before: seed 100 ended with two closed regressions, 101 and 102 with none."""
    detection = detect_latency_windows(BOUNDS, _windows(_drift(seed)), improvements=False)
    final = detection.regressions[-1]
    assert (final.signal, final.end) == ("drift", None)
    assert (final.detected_at + 1) * WINDOW - DRIFT_START <= 30_000
    assert abs(final.change - 0.3) <= 0.3 * 0.3
    assert detection.verdict == "regressed"


def test_the_drift_check_compares_the_latest_samples_with_the_oldest_anchor() -> None:
    assert (cp.ANCHOR_EVERY, cp.ANCHOR_SPAN, cp.DRIFT_RECENT) == (5_000, 50_000, 5_000)
    detector = LatencyDetector(improvements=False)
    detector.extend(np.random.default_rng(100).lognormal(0.0, 0.5, 20_000))
    # captured at re-estimations (every 1,000 samples, at block boundaries), once a baseline
    # holds ANCHOR_MIN_SAMPLES, then at least ANCHOR_EVERY samples apart
    anchors = [(at, round(ref.n)) for at, ref, _ in detector._monitor.anchors]
    assert anchors == [(5_913, 5_413), (11_479, 10_000), (17_871, 10_000)]
    detector.extend(np.random.default_rng(101).lognormal(0.0, 0.5, 60_000))
    kept = [at for at, _, _ in detector._monitor.anchors]
    # the oldest is dropped when a new one is kept ANCHOR_SPAN samples after it
    assert kept[0] > 17_871 and 80_000 - kept[0] <= cp.ANCHOR_SPAN + cp.ANCHOR_EVERY


def test_stationary_samples_raise_no_drift() -> None:
    rng = np.random.default_rng(7)
    detector = LatencyDetector(improvements=False)
    found = detector.extend(rng.lognormal(0.0, 0.5, 200_000))
    assert [r.signal for r in found] == []


def test_a_drift_late_in_a_long_stream_reads_the_samples_since_its_anchor() -> None:
    """The samples since the oldest anchor are kept for the drift's change point: forgetting
    everything older than 4 baselines (as before the anchors) made it read an empty array
    and raise in a stream whose drift begins after 105,000 samples."""
    rng = np.random.default_rng(101)
    values = rng.lognormal(0.0, 0.5, 205_000)
    values[105_000:] *= 1.0 + 0.3 * np.arange(100_000) / DRIFT
    detector = LatencyDetector(improvements=False)
    (drift,) = detector.extend(values)
    assert (drift.signal, drift.start, drift.detected_at) == ("drift", 121_818, 131_479)
    truth = 0.3 * (drift.detected_at - 105_000) / DRIFT
    assert drift.change_low <= truth <= drift.change_high
    assert detector._series._offset <= detector._monitor.anchors[0][0]


def test_a_drift_from_windows_is_sized_on_its_latest_samples_when_first_listed() -> None:
    """An analysis of the windows up to a drift's detection lists it sized on the latest
    DRIFT_RECENT samples, as the drift check judged them. Before, it was sized from the change
    point when that fell inside them: a segment of a few hundred samples chosen for its
    excursion (seed 100: 650 samples, +9.1% for a true +5.3%). Over these 12 streams 5 sizes
    were within +-30% of the true change then (median ratio 1.20); now 9 (1.11; 1.09 before the
    trailing baseline was moved along a drift, step 2b)."""
    ratios = []
    for seed in range(100, 112):
        counts = _windows(_drift(seed))
        full = detect_latency_windows(BOUNDS, counts, improvements=False)
        first = next(r for r in full.regressions if r.signal == "drift")
        then = detect_latency_windows(BOUNDS, counts[: first.detected_at + 1], improvements=False)
        (listed,) = [r for r in then.regressions if (r.start, r.signal) == (first.start, "drift")]
        truth = 0.3 * ((first.detected_at + 1) * WINDOW - DRIFT_START) / DRIFT
        ratios.append(listed.change / truth)
        assert listed.change_low <= listed.change <= listed.change_high
    within = [abs(r - 1.0) <= 0.3 for r in ratios]
    assert sum(within) == 9
    assert abs(float(np.median(ratios)) - 1.0) <= 0.12


def _first_report(values: np.ndarray) -> Regression:
    """The first regression `extend` returns after the drift began (fed 1,000 at a time)."""
    detector = LatencyDetector(improvements=False)
    for lo in range(0, values.size, 1_000):
        after = [
            r for r in detector.extend(values[lo : lo + 1_000]) if r.detected_at >= DRIFT_START
        ]
        if after:
            return after[0]
    raise AssertionError("the drift was not found")


def test_the_first_report_of_a_drift_from_raw_samples_is_sized_near_its_true_change() -> None:
    """The trailing baseline (~5,500 samples old) trails a drift by ~1.7%; a chance excursion on
    top of that lag crossed a trailing chart, and its size over the few hundred samples the
    change point chose for it read up to +76% at a true +1..+6%. The baseline is now moved
    along a significant rise since the oldest anchor. Over these 20 streams the first report
    was a trailing chart's in 9 and read a median 1.57x the true change (7 within +-30%); now
    in 6, 1.08x (10 within +-30%)."""
    ratios, trailing = [], 0
    for seed in range(20):
        first = _first_report(_drift(seed))
        truth = 0.3 * (first.detected_at - DRIFT_START) / DRIFT
        ratios.append(first.change / truth)
        trailing += first.signal != "drift"
    assert trailing == 6
    assert sum(abs(r - 1.0) <= 0.3 for r in ratios) == 10
    assert abs(float(np.median(ratios)) - 1.0) <= 0.3
