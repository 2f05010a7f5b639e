"""Behaviour of cxmetrics.regression: what it finds, where, how big, and what it refuses to say."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxmetrics.regression import (
    Detection,
    LatencyDetector,
    Policy,
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
    values = shifted(seed=8, before=200, after=200, factor=1.5)
    assert detect_latency(values).verdict == "insufficient_data"


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


def test_rate_volume_change_alone_is_not_a_regression() -> None:
    good, total = accuracy(seed=12, rate_after=0.999, total_after=5000)
    assert detect_rate(good, total).verdict == "stable"


def test_rate_with_too_few_events_gives_no_verdict() -> None:
    assert detect_rate([9, 10], [10, 10]).verdict == "insufficient_data"


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
