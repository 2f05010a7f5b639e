"""Behaviour of cxmetrics.analysis.regression: what it finds, where, how big, and what it refuses to say."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxmetrics.analysis.policy import Policy
from cxmetrics.analysis.regression import (
    Detection,
    LatencyDetector,
    Sensitivity,
    detect_latency,
    detect_latency_windows,
    detect_rate,
)

SIGMA = 0.5
TRUE_P95 = math.exp(1.6448536 * SIGMA)  # lognormal(0, 0.5): p95 = 2.276 s
BOUNDS = 1.0 * 2.0 ** (np.arange(-8, 17) / 8)  # T * 2^(k/8), k = -8..16, T = 1.0 s
WINDOW = 50
STREAM_SEED = 2026


def shifted(seed: int, before: int = 2000, after: int = 3000, factor: float = 1.2) -> np.ndarray:
    values = np.random.default_rng(seed).lognormal(0.0, SIGMA, before + after)
    values[before:] *= factor
    return values


def heavy_tailed(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(0.0, SIGMA, n)
    slow = rng.random(n) < 0.02
    values[slow] *= rng.uniform(5.0, 20.0, int(slow.sum()))
    return values


def windows(values: np.ndarray, size: int = WINDOW) -> np.ndarray:
    """Non-cumulative per-window bucket counts, `le` semantics, +Inf last."""
    win = np.arange(values.size) // size
    bucket = np.searchsorted(BOUNDS, values, side="left")
    n_windows = int(win[-1]) + 1
    flat = np.bincount(win * (BOUNDS.size + 1) + bucket, minlength=n_windows * (BOUNDS.size + 1))
    return flat.reshape(n_windows, BOUNDS.size + 1)


@pytest.fixture(scope="module")
def shift_detection() -> Detection:
    return detect_latency(shifted(seed=STREAM_SEED))


def test_shift_is_found_with_its_change_point_size_and_baseline(shift_detection: Detection) -> None:
    assert shift_detection.verdict == "regressed"
    (reg,) = shift_detection.regressions
    assert (reg.metric, reg.statistic) == ("latency", "p95")
    assert abs(reg.start - 2000) <= 150
    assert reg.start <= reg.detected_at <= 2000 + 600
    assert reg.end is None
    assert reg.baseline == pytest.approx(TRUE_P95, rel=0.05)
    assert 0.12 <= reg.change <= 0.30
    assert reg.current == pytest.approx(reg.baseline * (1 + reg.change))
    assert reg.confidence >= 0.99
    assert reg.affected == 5000 - reg.start


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_shift_change_point_holds_across_seeds(seed: int) -> None:
    (reg,) = detect_latency(shifted(seed)).regressions
    assert abs(reg.start - 2000) <= 150
    assert 0.12 <= reg.change <= 0.30


def test_streaming_reports_the_regression_once_at_detection(shift_detection: Detection) -> None:
    detector = LatencyDetector()
    hits = [
        (i, r) for i, v in enumerate(shifted(seed=STREAM_SEED)) if (r := detector.update(float(v)))
    ]
    assert len(hits) == 1
    index, reg = hits[0]
    expected = shift_detection.regressions[0]
    assert reg.detected_at == index == expected.detected_at
    assert reg.start == expected.start
    assert reg.end is None
    assert reg.affected == index - reg.start + 1


def test_stationary_heavy_tailed_stream_is_stable() -> None:
    detection = detect_latency(heavy_tailed(seed=5, n=50_000))
    assert detection.verdict == "stable"
    assert detection.regressions == ()
    sens = detection.sensitivity
    assert sens.n_baseline == 10_000
    assert sens.min_detectable_change is not None
    assert 0.0 < sens.min_detectable_change < 0.10


def test_too_few_samples_give_no_verdict() -> None:
    detection = detect_latency(np.random.default_rng(7).lognormal(0.0, SIGMA, 50))
    assert detection.verdict == "insufficient_data"
    assert detection.regressions == ()
    assert detection.sensitivity.min_detectable_change is None


def test_low_traffic_with_a_jump_gives_no_verdict_rather_than_a_guess() -> None:
    # 90 samples cannot make a baseline of min_samples = 100 before the jump comes
    values = shifted(seed=8, before=90, after=90, factor=1.5)
    assert detect_latency(values).verdict == "insufficient_data"


def test_a_jump_after_a_short_baseline_is_found_where_it_happened() -> None:
    # 200 baseline samples are enough to watch from: monitoring starts at min_samples
    (reg,) = detect_latency(shifted(seed=8, before=200, after=200, factor=1.5)).regressions
    assert abs(reg.start - 200) <= 50
    assert reg.detected_at <= 200 + 100
    assert 0.3 <= reg.change <= 0.7


def demo_latency(seed: int, before: int) -> np.ndarray:
    """The demo's bill_detail: 30 ms lognormal (sigma 0.3), 20% slower after `before` samples."""
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.lognormal(math.log(0.030), 0.3, before), rng.lognormal(math.log(0.036), 0.3, 1000)]
    )


@pytest.mark.parametrize("before", [560, 300])
def test_short_baseline_change_is_found_early_and_placed_right(before: int) -> None:
    policy = Policy(min_change=0.1, min_samples=100)
    p95 = 0.030 * math.exp(1.6448536 * 0.3)
    starts, delays, leaked = [], [], 0
    for seed in range(10):
        detection = detect_latency(demo_latency(seed, before), policy)
        (reg,) = detection.regressions
        starts.append(reg.start - before)
        delays.append(reg.detected_at - before)
        # the baseline stops growing at the change: post-change samples do not leak into it
        leaked += detection.sensitivity.n_baseline > before + 60
        assert reg.baseline == pytest.approx(p95, rel=0.12)
    assert leaked <= 1
    assert sum(abs(s) <= 150 for s in starts) >= 9, starts
    assert 0 <= float(np.median(delays)) <= 120, delays
    assert max(delays) <= 300, delays


def test_a_regression_seen_in_fewer_than_min_samples_is_not_listed_yet() -> None:
    rng = np.random.default_rng(21)
    values = rng.lognormal(0.0, SIGMA, 3000)
    values[-30:] *= 3.0  # the last 30 samples: too few to be a verdict by the policy
    detector = LatencyDetector()
    (found,) = detector.extend(values)  # streaming reports it the moment it is detected
    assert found.start >= 2950
    detection = detector.detection()
    assert (detection.verdict, detection.regressions) == ("stable", ())
    detector.extend(rng.lognormal(0.0, SIGMA, 100) * 3.0)
    (reg,) = detector.detection().regressions  # now it has touched min_samples samples
    assert (reg.start, reg.detected_at) == (found.start, found.detected_at)
    assert reg.affected == 3100 - reg.start


def test_recovery_ends_the_regression() -> None:
    values = np.random.default_rng(9).lognormal(0.0, SIGMA, 7000)
    values[3000:4500] *= 1.5
    detection = detect_latency(values)
    assert detection.verdict == "regressed"
    (reg,) = detection.regressions
    assert abs(reg.start - 3000) <= 100
    assert reg.end is not None
    assert abs(reg.end - 4500) <= 150
    assert reg.affected == reg.end - reg.start
    assert 0.35 <= reg.change <= 0.65


def test_histogram_windows_find_the_same_regression(shift_detection: Detection) -> None:
    raw = shift_detection.regressions[0]
    detection = detect_latency_windows(BOUNDS, windows(shifted(seed=STREAM_SEED)))
    assert detection.verdict == "regressed"
    (reg,) = detection.regressions
    assert abs(reg.start * WINDOW - raw.start) <= 150  # window indices
    assert reg.end is None
    assert reg.baseline == pytest.approx(raw.baseline, rel=0.05)
    assert 0.12 <= reg.change <= 0.30
    assert reg.affected == 5000 - reg.start * WINDOW


def test_histogram_windows_ignore_diurnal_volume() -> None:
    rng = np.random.default_rng(10)
    counts = rng.poisson(WINDOW * (1 + 0.8 * np.sin(2 * np.pi * np.arange(2000) / 288)))
    values = rng.lognormal(0.0, SIGMA, int(counts.sum()))
    win = np.repeat(np.arange(counts.size), counts)
    bucket = np.searchsorted(BOUNDS, values, side="left")
    hist = np.zeros((counts.size, BOUNDS.size + 1))
    np.add.at(hist, (win, bucket), 1)
    assert detect_latency_windows(BOUNDS, hist).verdict == "stable"


def test_coarse_latencies_in_windows_give_a_verdict() -> None:
    # whole seconds: almost everything ties in one bucket, sigma is tiny and a chart's threshold
    # can be 0; crossing it still needs a positive statistic (this used to raise in argmax)
    values = np.round(np.random.default_rng(0).lognormal(0.0, SIGMA, 1600))
    detection = detect_latency_windows(BOUNDS, windows(values, size=40), Policy(min_change=0.4))
    assert detection.verdict == "stable"


def accuracy(seed: int, rate_after: float, total_after: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    total = np.array([500] * 120 + [total_after] * 80)
    rate = np.array([0.999] * 120 + [rate_after] * 80)
    return rng.binomial(total, rate), total


def test_rate_drop_is_found() -> None:
    good, total = accuracy(seed=11, rate_after=0.98, total_after=500)
    detection = detect_rate(good, total)
    assert detection.verdict == "regressed"
    (reg,) = detection.regressions
    assert (reg.metric, reg.statistic) == ("rate", "rate")
    assert abs(reg.start - 120) <= 2
    assert reg.detected_at <= 121
    assert reg.baseline == pytest.approx(0.999, abs=0.0005)
    assert reg.current == pytest.approx(0.98, abs=0.003)
    assert 0.015 <= reg.change <= 0.023  # relative drop in good rate, positive = worse
    assert reg.affected == 500 * (200 - reg.start)


def test_rate_recovery_ends_the_regression() -> None:
    rng = np.random.default_rng(13)
    total = np.full(260, 500)
    rate = np.where((np.arange(260) >= 120) & (np.arange(260) < 150), 0.98, 0.999)
    (reg,) = detect_rate(rng.binomial(total, rate), total).regressions
    assert (reg.start, reg.end) == (120, 150)
    assert reg.affected == 30 * 500
    assert reg.current == pytest.approx(0.98, abs=0.004)


def clean_then_failing(seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The demo's accuracy check: 943 passing checks and no failure, then 900 checks of which 42
    fail (4.6%), in windows of about 45 checks (one second of the demo)."""
    rng = np.random.default_rng(seed)
    before = rng.multinomial(943, np.full(21, 1 / 21))
    after = rng.multinomial(900, np.full(20, 1 / 20))
    failed_at = rng.choice(900, 42, replace=False)
    failed = np.bincount(np.repeat(np.arange(20), after)[failed_at], minlength=20)
    total = np.concatenate([before, after])
    return total - np.concatenate([np.zeros(21, np.int64), failed]), total, 21


@pytest.mark.parametrize("seed", range(6))
def test_rate_jump_from_a_clean_baseline_is_found_within_a_few_hundred_events(seed: int) -> None:
    good, total, change = clean_then_failing(seed)
    detection = detect_rate(good, total, Policy(min_change=0.1, min_samples=100))
    assert detection.verdict == "regressed"
    (reg,) = detection.regressions
    assert change <= reg.start <= change + 2
    assert total[change : reg.detected_at + 1].sum() <= 600  # events after the change
    assert reg.baseline == 1.0
    assert 0.03 <= reg.change <= 0.07


def test_rate_stays_stable_from_a_clean_or_noisy_start() -> None:
    rng = np.random.default_rng(14)
    policy = Policy(min_change=0.1, min_samples=100)
    for bad_rate in (0.0, 0.002, 0.02, 0.3):
        for _ in range(10):
            total = rng.poisson(45, 400)
            good = total - rng.binomial(total, bad_rate)
            assert detect_rate(good, total, policy).verdict == "stable"


def test_rate_volume_change_alone_is_not_a_regression() -> None:
    good, total = accuracy(seed=12, rate_after=0.999, total_after=5000)
    assert detect_rate(good, total).verdict == "stable"


def test_rate_with_too_few_events_gives_no_verdict() -> None:
    assert detect_rate([9, 10], [10, 10]).verdict == "insufficient_data"


def test_rate_that_is_always_bad_gives_a_verdict() -> None:
    detection = detect_rate([0] * 200, [100] * 200)  # nothing good to drop: stable, no crash
    assert detection.verdict == "stable"
    assert detection.sensitivity.min_detectable_change is None


def test_sensitivity_describes_itself() -> None:
    text = Sensitivity(1200, 300, 0.14).describe()
    assert text == "with 1,200 baseline and 300 current samples a +14% shift is detectable"
    assert "no shift" in Sensitivity(40, 10, None).describe()
    assert Sensitivity(10**5, 5 * 10**4, 0.0013).describe().endswith("a +0.13% shift is detectable")


@pytest.mark.parametrize(
    ("values", "message"),
    [([], "empty"), ([1.0, math.nan], "NaN"), ([1.0, -0.1], "negative"), ([[1.0]], "1-D")],
)
def test_bad_latencies_are_rejected(values: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detect_latency(values)


def test_bad_windows_and_rates_are_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        detect_latency_windows([0.5, 1.0], np.ones((3, 2)))
    with pytest.raises(ValueError, match="ascending"):
        detect_latency_windows([1.0, 0.5], np.ones((3, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        detect_latency_windows([0.5, 1.0], -np.ones((3, 3)))
    with pytest.raises(ValueError, match="same length"):
        detect_rate([1, 2], [3])
    with pytest.raises(ValueError, match="exceeds"):
        detect_rate([5], [4])
    with pytest.raises(ValueError, match="min_change"):
        Policy(min_change=0)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(1e-3, 1e3),
    factor=st.sampled_from([1.0, 1.5]),
)
def test_scaling_all_samples_changes_nothing_but_units(
    seed: int, scale: float, factor: float
) -> None:
    values = shifted(seed, before=1500, after=1500, factor=factor)
    a, b = detect_latency(values), detect_latency(values * scale)
    assert a.verdict == b.verdict
    assert [(r.start, r.detected_at, r.end) for r in a.regressions] == [
        (r.start, r.detected_at, r.end) for r in b.regressions
    ]
    for ra, rb in zip(a.regressions, b.regressions, strict=True):
        assert rb.baseline == pytest.approx(ra.baseline * scale, rel=1e-9)
        assert rb.change == pytest.approx(ra.change, rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.0, 1e6, allow_nan=False), min_size=1, max_size=400))
def test_any_valid_input_gives_a_verdict(values: list[float]) -> None:
    detection = detect_latency(values)
    assert detection.verdict in {"regressed", "stable", "insufficient_data"}
    for reg in detection.regressions:
        assert 0 <= reg.start <= reg.detected_at < len(values)
        assert 0.0 <= reg.confidence <= 1.0


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 80), st.integers(0, 400))
def test_any_histogram_windows_give_a_verdict(seed: int, n_windows: int, per_window: int) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(
        per_window * rng.dirichlet(np.ones(BOUNDS.size + 1)), (n_windows, BOUNDS.size + 1)
    )
    detection = detect_latency_windows(BOUNDS, counts)
    assert detection.verdict in {"regressed", "stable", "insufficient_data"}
    for reg in detection.regressions:
        assert 0 <= reg.start <= reg.detected_at < n_windows


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(0, 1000), min_size=1, max_size=60),
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60),
)
def test_rates_never_crash(totals: list[int], fractions: list[float]) -> None:
    n = min(len(totals), len(fractions))
    good = [int(t * f) for t, f in zip(totals[:n], fractions[:n], strict=True)]
    detection = detect_rate(good, totals[:n])
    assert detection.verdict in {"regressed", "stable", "insufficient_data"}
