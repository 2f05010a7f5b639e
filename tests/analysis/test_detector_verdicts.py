"""What the detector reports: changes of the reported quantile even when confined to the tail or
to a slow mode's share (exceedance charts), kept open while that quantile stays high; only
worsenings of the reported quantile, the size with its 95%
confidence interval, a change within noise of min_change listed "at the threshold" rather than
dropped (the seed's 1.0 s -> 1.1 s), and a check whose failure rate jumps from 0% to 6% on a few
hundred events (sized in percentage points, with its interval)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from cxmetrics.analysis.analyzer import analyze
from cxmetrics.analysis.regression import detect_latency, detect_latency_windows, detect_rate
from cxmetrics.analysis.sources import from_events
from cxmetrics.instrument.events import StepRecord
from cxmetrics.spec.model import Spec

BOUNDS = 2.0 ** (np.arange(-24, 25) / 8)


def test_a_slower_median_with_a_tighter_tail_is_a_p50_regression_not_a_p95_one() -> None:
    # median +20%, sigma 0.5 -> 0.2: p95 falls from 2.28 s to 1.67 s (-27%): better, not worse;
    # the median is worse by 20%, and that is what is reported, sized on the median. (Before
    # per-quantile sizes the crossing was sized on p95, found better, and dropped: "stable".)
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.lognormal(0, 0.5, 5000), 1.2 * rng.lognormal(0, 0.2, 5000)])
    detection = detect_latency(values)
    assert detection.verdict == "regressed"
    [r] = detection.regressions
    assert (r.statistic, r.signal, r.start, r.detected_at, r.end) == (
        "p50",
        "p50 exceedances",
        4998,
        5082,
        None,
    )
    assert (round(r.baseline, 3), round(r.current, 3)) == (0.994, 1.201)
    assert (round(r.change, 3), round(r.change_low, 3), round(r.change_high, 3)) == (
        0.208,
        0.184,
        0.232,
    )


def test_histogram_windows_size_the_median_that_moved_too() -> None:
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.lognormal(0, 0.5, 5000), 1.2 * rng.lognormal(0, 0.2, 5000)])
    bucket = np.searchsorted(BOUNDS, values, side="left")
    win = np.arange(values.size) // 50
    counts = np.zeros((win[-1] + 1, BOUNDS.size + 1))
    np.add.at(counts, (win, bucket), 1.0)
    [r] = detect_latency_windows(BOUNDS, counts).regressions
    assert (r.statistic, r.signal, r.start, r.end) == ("p50", "p50 exceedances", 100, None)
    assert (round(r.change, 3), round(r.change_low, 3), round(r.change_high, 3)) == (
        0.21,
        0.186,
        0.235,
    )


@pytest.mark.parametrize("seed", range(6))
def test_a_ten_percent_shift_reports_its_size_with_an_interval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.lognormal(0, 0.5, 5000), 1.1 * rng.lognormal(0, 0.5, 5000)])
    (r,) = detect_latency(values).regressions
    assert r.change_low < 0.10 < r.change_high
    assert r.change_low < r.change < r.change_high
    assert r.at_threshold == (r.change < 0.10)


def _record(t: float, jid: str, duration: float) -> StepRecord:
    return StepRecord(
        t, "bill_inquiry", "login", "app", jid, None, duration, "ok", "satisfied", True
    )


def _seed_example(seed: int) -> list[StepRecord]:
    """The seed example: login at 10/s, median 1.0 s, then 1.1 s (+10%) for the second half."""
    rng = random.Random(seed)
    records = []
    for i in range(12_000):
        duration = rng.lognormvariate(0.0, 0.5) * (1.1 if i >= 6_000 else 1.0)
        records.append(_record(1_700_000_000.0 + i / 10, f"{i:032x}", duration))
    return records


def test_the_seed_ten_percent_slowdown_is_listed_in_every_run(example_spec: Spec) -> None:
    regressions = []
    for seed in range(12):
        records = _seed_example(seed)
        analysis = analyze(example_spec, from_events(example_spec, records, step=10.0))
        found = [f for f in analysis.findings if f.indicator == "latency"]
        regressions += [(f.journey, f.step, f.regression) for f in found]
    assert [(j, s) for j, s, _ in regressions] == [("bill_inquiry", "login")] * 12
    for _, _, r in regressions:
        assert r.change_low < r.change < r.change_high
        assert r.change_high >= 0.10
    # a point estimate below +10% is listed too, marked as at the threshold
    assert [r.at_threshold for _, _, r in regressions].count(True) == 1


def _thin_step(seed: int, factor: float) -> list[StepRecord]:
    """A thin step: 450 samples, then 150 at `factor` times the latency, one a second."""
    rng = random.Random(seed)
    return [
        _record(
            1_700_000_000.0 + i, f"{i:032x}", rng.lognormvariate(0.0, 0.4) * factor ** (i >= 450)
        )
        for i in range(600)
    ]


def test_a_change_whose_interval_includes_no_change_is_not_listed(example_spec: Spec) -> None:
    # x1.1 after 450 samples: the detector's charts fire, and the size since the change point is
    # +16.1% in [-2.0%, +37.5%]: the data do not show that anything changed. It was listed as a
    # regression (in a demo run: loan_application/upload_documents +16.2% in [-4.0%, +40.7%],
    # no fault injected); it is counted as transient.
    analysis = analyze(example_spec, from_events(example_spec, _thin_step(17, 1.1), step=10.0))
    assert [f for f in analysis.findings if f.indicator == "latency"] == []
    assert analysis.transient == 1
    # A clear change of the same thin step is listed.
    analysis = analyze(example_spec, from_events(example_spec, _thin_step(15, 1.15), step=10.0))
    [found] = [f for f in analysis.findings if f.indicator == "latency"]
    r = found.regression
    assert (round(r.change, 3), round(r.change_low, 3), round(r.change_high, 3)) == (
        0.383,
        0.178,
        0.623,
    )


def _check_windows(per_window: int, seed: int = 3) -> tuple[list[int], list[int]]:
    """A check that passed 343 of 343 times, then failed 31 of 509 times (6.1%)."""
    rng = np.random.default_rng(seed)
    good: list[int] = []
    total: list[int] = []
    for n, bad in ((343, 0), (509, 31)):
        k = max(n // per_window, 1)
        w = np.full(k, n // k)
        w[-1] += n - w.sum()
        failed = np.histogram(
            rng.choice(n, bad, replace=False), np.concatenate([[0], np.cumsum(w)])
        )[0]
        good += (w - failed).tolist()
        total += w.tolist()
    return good, total


@pytest.mark.parametrize("per_window", [5, 20, 35, 50, 85])
def test_a_check_failing_six_percent_after_none_is_a_regression(per_window: int) -> None:
    detection = detect_rate(*_check_windows(per_window))
    assert detection.verdict == "regressed"
    (r,) = detection.regressions
    points = 100.0 * (r.baseline - r.current)  # percentage points of passes lost
    assert 5.0 < points < 7.0
    assert r.change_low < r.change < r.change_high
    assert r.change_low > 0.0
    assert r.confidence > 0.99


def _cache_mix(rng: np.random.Generator, miss_share: np.ndarray) -> np.ndarray:
    """90% hits ~ LN(ln 0.8, 0.3), misses ~ LN(ln 3, 0.3) with the given share per sample."""
    n = miss_share.size
    hit, miss = rng.lognormal(np.log(0.8), 0.3, n), rng.lognormal(np.log(3.0), 0.3, n)
    return np.where(rng.random(n) < miss_share, miss, hit)


def _slow_mode(rng: np.random.Generator, factor: np.ndarray) -> np.ndarray:
    """90% ~ LN(ln 0.9, 0.25), a 10% slow mode ~ LN(ln 2.5, 0.3) times `factor`."""
    n = factor.size
    fast, slow = rng.lognormal(np.log(0.9), 0.25, n), rng.lognormal(np.log(2.5), 0.3, n) * factor
    return np.where(rng.random(n) < 0.10, slow, fast)


def test_a_persistent_cache_miss_shift_is_found_once_and_stays_open() -> None:
    # miss share 10% -> 18% at sample 5,000: p95 +19%, median +4%. It used to be "recovered"
    # a few hundred samples after detection (the mean rank score is back while p95 is not).
    rng = np.random.default_rng(11)
    for _ in range(8):
        values = _cache_mix(rng, np.where(np.arange(8_000) < 5_000, 0.10, 0.18))
        (r,) = detect_latency(values).regressions
        assert r.statistic == "p95"
        assert r.end is None
        assert 0.19 * 0.7 <= r.change <= 0.19 * 1.3
        assert 4_600 <= r.start <= 6_500


def _windows(values: np.ndarray, width: int = 50) -> np.ndarray:
    bucket = np.searchsorted(BOUNDS, values, side="left")
    win = np.arange(values.size) // width
    counts = np.zeros((win[-1] + 1, BOUNDS.size + 1))
    np.add.at(counts, (win, bucket), 1.0)
    return counts


def test_a_tail_only_shift_is_found_by_the_tail_charts_within_1000_samples() -> None:
    # the 10% slow mode x1.3 from sample 5,000: p95 +30%, median flat. The share above p95
    # moves 5% -> 8% only (the exceedance chart found 6 of 8, after a median of ~2,000 samples);
    # within the tail above the baseline's p90 it is a shift of ~0.9 sd, which the tail charts
    # see in a few dozen tail samples. Raw samples and histogram windows of 50.
    rng = np.random.default_rng(11)
    raw, windows = [], []
    for _ in range(8):
        values = _slow_mode(rng, np.where(np.arange(8_000) < 5_000, 1.0, 1.3))
        raw.append(detect_latency(values).regressions)
        windows.append(detect_latency_windows(BOUNDS, _windows(values)).regressions)
    assert [len(r) for r in raw] == [1] * 8
    assert [len(r) for r in windows] == [1] * 8
    assert [r[0].signal for r in raw] == ["tail shift"] * 8
    assert [r[0].signal for r in windows] == ["rank shift"] + ["tail shift"] * 7
    assert all(r[0].statistic == "p95" and r[0].end is None for r in raw + windows)
    delays = sorted(r[0].detected_at - 5_000 for r in raw)
    assert delays[3] <= 1_000 and delays[-1] <= 3_000
    window_delays = sorted(50 * (r[0].detected_at + 1) - 5_000 for r in windows)
    assert window_delays[3] <= 1_000 and window_delays[-1] <= 3_000
    # sized on p95 within +-30% of the true +30%
    assert all(0.3 * 0.7 <= r[0].change <= 0.3 * 1.3 for r in raw + windows)


def _daily_cycle(seed: int, n: int = 40_000) -> np.ndarray:
    """No change: the median swings +-15% over a period of 2,000 samples (load-driven latency)."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    cycle = 1.0 + 0.15 * np.sin(2.0 * np.pi * np.arange(n) / 2_000 + phase)
    return rng.lognormal(0.0, 0.5, n) * cycle


def test_a_daily_cycle_without_change_raises_few_alarms_once_the_baseline_has_seen_it() -> None:
    # Overdispersion: the baseline's blocks of 200 samples vary ~10x more than independent
    # samples would; the charts then ask for that much more evidence. Before 2,000 samples of
    # history (10 blocks) samples are taken as independent, so the first cycle can alarm; a
    # false alarm's span is then kept out of the baseline, which biases it to the cycle's
    # fast phase (seed 0). Before: 15, 15 and 18 alarms after sample 5,000 (windows 16, 14, 18).
    late_raw, late_windows = [], []
    for seed in range(3):
        values = _daily_cycle(seed)
        raw = detect_latency(values).regressions
        late_raw.append(sum(r.detected_at >= 5_000 for r in raw))
        bucket = np.searchsorted(BOUNDS, values, side="left")
        win = np.arange(values.size) // 50
        counts = np.zeros((win[-1] + 1, BOUNDS.size + 1))
        np.add.at(counts, (win, bucket), 1.0)
        windows = detect_latency_windows(BOUNDS, counts).regressions
        late_windows.append(sum(r.detected_at >= 100 for r in windows))
    # seed 0: an alarm in its first 2,000 samples, then a cascade (4 alarms before a change had
    # to stand out of the baseline's own level wander, 1 since)
    assert late_raw == [1, 0, 0]
    assert late_windows == [1, 0, 0]  # 3 before the wander rule


def test_a_faster_step_is_an_improvement_never_a_regression() -> None:
    # -20% from sample 5,000 (raw samples and windows of 50): no regression, the verdict stays
    # "stable", and the improvement is listed apart, sized on p95, with a negative change.
    # Before: nothing at all was said about it.
    rng = np.random.default_rng(3)
    values = rng.lognormal(0.0, 0.5, 8_000)
    values[5_000:] *= 0.8
    for detection in (
        detect_latency(values),
        detect_latency_windows(BOUNDS, _windows(values)),
    ):
        assert (detection.verdict, detection.regressions) == ("stable", ())
        [better] = detection.improvements
        assert (better.direction, better.statistic, better.end) == ("better", "p95", None)
        assert -0.2 * 1.3 <= better.change <= -0.2 * 0.7
        assert better.change_low <= better.change <= better.change_high < 0.0
        assert better.current < better.baseline


def test_a_slower_step_is_a_regression_and_no_improvement() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(0.0, 0.5, 8_000)
    values[5_000:] *= 1.2
    for detection in (
        detect_latency(values),
        detect_latency_windows(BOUNDS, _windows(values)),
    ):
        [worse] = detection.regressions
        assert (detection.verdict, worse.direction, detection.improvements) == (
            "regressed",
            "worse",
            (),
        )


def test_the_analyzer_lists_a_faster_step_as_an_improvement(example_spec: Spec) -> None:
    # login 1.0 s, then 0.8 s for the second half: no regression, one improvement in the JSON
    rng = random.Random(5)
    records = [
        _record(
            1_700_000_000.0 + i / 10,
            f"{i:032x}",
            rng.lognormvariate(0.0, 0.5) * (0.8 if i >= 6_000 else 1.0),
        )
        for i in range(12_000)
    ]
    analysis = analyze(example_spec, from_events(example_spec, records, step=10.0))
    assert analysis.findings == ()
    [better] = analysis.to_json()["improvements"]
    assert (better["journey"], better["step"], better["statistic"], better["direction"]) == (
        "bill_inquiry",
        "login",
        "p95",
        "better",
    )
    assert -0.26 <= better["change"] <= -0.14
    assert better["end"] is None
    assert analysis.to_json()["regressions"] == []
