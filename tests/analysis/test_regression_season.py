"""Same-phase baselines (``Policy(season=...)``): the detector compares each sample with the same
phase of earlier periods, so a cycle is not taken for a change and a change on a cycle is found
sooner than against a trailing baseline that mixes every phase."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cxmetrics.analysis.policy import Policy
from cxmetrics.analysis.regression import LatencyDetector
from cxmetrics.analysis.stats import SeasonalProfile

PERIOD = 2000


def _cycle(n: int, phase: float = 0.3) -> np.ndarray:
    return np.exp(0.15 * np.sin(2 * math.pi * np.arange(n) / PERIOD + phase))


def test_the_profile_is_flat_until_one_whole_period_was_seen() -> None:
    profile = SeasonalProfile(PERIOD)
    values = _cycle(PERIOD)
    out = profile.adjust(values, np.arange(PERIOD, dtype=float))
    assert np.array_equal(out, values)
    assert profile.coef is None


def test_a_cycle_is_flattened_from_the_second_period_on() -> None:
    profile = SeasonalProfile(PERIOD)
    n = 5 * PERIOD
    out = profile.adjust(_cycle(n), np.arange(n, dtype=float))
    assert np.allclose(out[PERIOD:], 1.0, rtol=1e-9)


def test_a_level_shift_is_never_learnt_as_part_of_the_cycle() -> None:
    profile = SeasonalProfile(PERIOD)
    n = 8 * PERIOD
    values = _cycle(n)
    values[3 * PERIOD :] *= 1.2  # at a period boundary: every phase moves alike
    out = profile.adjust(values, np.arange(n, dtype=float))
    assert np.allclose(out[PERIOD : 3 * PERIOD], 1.0, rtol=1e-9)
    assert np.allclose(out[3 * PERIOD :], 1.2, rtol=1e-9)


def test_the_season_and_the_times_are_checked() -> None:
    with pytest.raises(ValueError, match="season must be a positive period"):
        Policy(season=0.0)
    detector = LatencyDetector(Policy(season=10.0))
    with pytest.raises(ValueError, match="times must be finite, non-decreasing"):
        detector.extend([1.0, 1.0], times=[2.0, 1.0])


def _shift_on_cycle(seed: int) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(seed)
    n, change = 15_000, 12_000
    values = rng.lognormal(0.0, 0.5, n) * (
        1 + 0.15 * np.sin(2 * math.pi * np.arange(n) / PERIOD + rng.uniform(0, 2 * math.pi))
    )
    values[change:] *= 1.2
    return values, change


def _judge(season: float | None) -> tuple[int, int]:
    """(streams where +20% was found within 1,000 samples, alarms before it after warm-up)."""
    found_in_time = early = 0
    for seed in range(10):
        values, change = _shift_on_cycle(seed)
        found = LatencyDetector(Policy(season=season)).extend(values)
        after = [r.detected_at - change for r in found if r.detected_at >= change]
        found_in_time += bool(after) and after[0] < 1000
        early += sum(1 for r in found if PERIOD <= r.detected_at < change)
    return found_in_time, early


def test_a_shift_on_a_cycle_is_found_sooner_with_fewer_false_alarms_against_the_same_phase() -> (
    None
):
    # Without the season (a trailing baseline mixing all phases) the cycle is the baseline's own
    # level wander (sd ~10%), so a change must exceed 5 sds of it to count: none of the +20%
    # shifts is found within 1,000 samples, and 8 larger excursions of the cycle are reported
    # (before the wander rule: 6 found, 13 false alarms; before the tail charts: 0 found, 6 —
    # the tail charts add a +95% p95 over 33 samples of seed 8, and one rank-shift alarm moves
    # with the baseline they hold back). Against the same phase: 6 found, 3.
    assert _judge(None) == (0, 8)
    assert _judge(float(PERIOD)) == (6, 3)
