"""Side-by-side benchmark: cxmetrics' latency regression detector against shipped detectors.

    python benchmarks/bench_regression.py            # full run (1-2.5 minutes on 2 cores)
    python benchmarks/bench_regression.py --quick    # smaller, for a smoke test
    python benchmarks/bench_regression.py --shapes   # traffic shapes (benchmarks/shapes.py)
    python benchmarks/bench_regression.py --shapes --only drift,AR --streams 8  # a subset

Streams are lognormal latencies (median 1 s) with a known change point: every sample after it is
multiplied by 1 + shift. Detection delay = samples after the change seen when the alarm is raised
(window rules alarm when their window closes). False alarms are counted on long stationary
streams with diurnal arrival rates (time windows whose sample counts swing 10..90) and with heavy
tails (2% of samples x5..x20), after a 5,000-sample warm-up.

Each baseline is run twice: with its shipped threshold, and with the threshold tuned (on separate
calibration streams) to at most 1 false alarm per 100,000 samples, so delays can be compared at
an equal false-alarm rate.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import baselines
import shapes
from shapes import Stream

from cxmetrics.analysis.policy import Policy
from cxmetrics.analysis.regression import LatencyDetector, detect_latency_windows

SEED = 20_260_522
WINDOW = 50  # samples per window (mean, for time windows) for every window-based detector
PRE, POST = 5_000, 2_000  # change point drawn uniformly in [PRE, PRE + WINDOW)
WARMUP = 5_000  # stationary streams: false alarms counted after this many samples
STREAM = 100_000  # samples per stationary stream
SIGMAS = (0.3, 0.5, 1.0)
SHIFTS = (0.10, 0.20, 0.50)
BUCKETS = 1.0 * 2.0 ** (np.arange(-24, 25) / 8)  # T * 2^(k/8), T = 1 s: 0.125 s .. 8 s
FA_TARGET = 1.0  # false alarms per 100,000 samples the tuned baselines are held to
#: young streams: (sigma, change after this many samples (+ 0..WINDOW-1)), all +20%
YOUNG = ((0.3, 300), (0.3, 560), (0.5, 300), (0.5, 560), (0.5, 1_000))
YOUNG_SHIFT = 0.20
OURS_RAW = "cxmetrics CUSUM, raw samples"
OURS_HIST = "cxmetrics CUSUM, histogram windows"
TUNED = " [tuned]"
OURS_TRAILING = "cxmetrics CUSUM, raw, no season"  # on cyclic shapes: the same without the period
OURS_HIST_TRAILING = "cxmetrics CUSUM, windows, no season"


def lognormal(rng: np.random.Generator, sigma: float, n: int) -> np.ndarray[Any, Any]:
    return rng.lognormal(0.0, sigma, n)


def change_stream(rng: np.random.Generator, sigma: float, shift: float, pre: int = PRE) -> Stream:
    change = pre + int(rng.integers(0, WINDOW))
    values = lognormal(rng, sigma, change + POST)
    values[change:] *= 1.0 + shift
    win = np.arange(values.size) // WINDOW
    return Stream(values, win, int(win[-1]) + 1, change)


def stationary_stream(rng: np.random.Generator, kind: str) -> Stream:
    if kind == "diurnal":  # Poisson arrivals, rate 50 +- 40 per window over a 288-window day
        n_windows = STREAM // WINDOW
        phase = rng.uniform(0, 2 * math.pi)
        rate = WINDOW * (1.0 + 0.8 * np.sin(2 * math.pi * np.arange(n_windows) / 288 + phase))
        counts = rng.poisson(rate)
        values = lognormal(rng, 0.5, int(counts.sum()))
        return Stream(values, np.repeat(np.arange(n_windows), counts), n_windows, -1)
    values = lognormal(rng, 0.5, STREAM)  # heavy tail: 2% of samples 5..20x slower
    slow = rng.random(STREAM) < 0.02
    values[slow] *= rng.uniform(5.0, 20.0, int(slow.sum()))
    win = np.arange(STREAM) // WINDOW
    return Stream(values, win, int(win[-1]) + 1, -1)


def bucketed(stream: Stream) -> np.ndarray[Any, Any]:
    bucket = np.searchsorted(BUCKETS, stream.values, side="left")  # le semantics
    cells = stream.win * (BUCKETS.size + 1) + bucket
    flat = np.bincount(cells, minlength=stream.n_windows * (BUCKETS.size + 1))
    return flat.reshape(stream.n_windows, BUCKETS.size + 1).astype(np.float64)


def window_end(stream: Stream) -> np.ndarray[Any, Any]:
    """Index of the last sample of each window (when a window rule can fire)."""
    return baselines.window_bounds(stream.win, stream.n_windows)[1:] - 1


# ------------------------------------------------------------------------------------------------
# alarms per detector: sample indices at which each alarm is raised


def reported_at(regressions: Any, counts: np.ndarray[Any, Any]) -> list[int]:
    """The window at which an analysis of the histogram windows up to it lists each regression
    (`detection()`: when the detector became sure, or later, once the regression spans
    `min_samples` samples, step 10 of docs/regression.md; one that recovered first, then).
    `counts`: samples per window. (Raw samples: `LatencyDetector.extend` returns a regression
    the moment it is detected, at `detected_at`.)"""
    need = Policy().min_samples
    cum = np.concatenate([[0.0], np.cumsum(counts)])
    out = []
    for r in regressions:
        due = int(np.searchsorted(cum, cum[r.start] + need - 0.5, side="left")) - 1
        if r.end is not None:
            due = min(due, max(r.end, r.detected_at))
        out.append(max(r.detected_at, due))
    return out


def ours_raw_alarms(stream: Stream) -> np.ndarray[Any, Any]:
    found = LatencyDetector(improvements=False).extend(stream.values)
    return np.array([r.detected_at for r in found], dtype=np.int64)


def ours_hist_alarms(stream: Stream) -> np.ndarray[Any, Any]:
    counts = bucketed(stream)
    detection = detect_latency_windows(BUCKETS, counts, improvements=False)
    ends = window_end(stream)
    at = reported_at(detection.regressions, counts.sum(axis=1))
    return np.array([ends[w] for w in at], dtype=np.int64)


def baseline_alarms(
    det: Any, prepared: Any, threshold: float, stream: Stream
) -> np.ndarray[Any, Any]:
    fires = det.fires(prepared, threshold)
    rising = fires & ~np.concatenate([[False], fires[:-1]])  # an alarm is a rule starting to hold
    return np.asarray(window_end(stream)[rising])


def first_delay(alarms: np.ndarray[Any, Any], change: int) -> float:
    after = alarms[alarms >= change]
    return float(after.min() - change + 1) if after.size else math.inf


def baseline_first_delay(det: Any, prepared: Any, threshold: float, stream: Stream) -> float:
    fires = det.fires(prepared, threshold)
    ends = window_end(stream)
    hits = ends[fires & (ends >= stream.change)]
    return float(hits.min() - stream.change + 1) if hits.size else math.inf


# ------------------------------------------------------------------------------------------------
# tasks (run in worker processes)


def stationary_task(kind: str, n_streams: int, seed: int) -> dict[str, Any]:
    """False alarms of our detectors; the baselines' threshold-free work, for any threshold."""
    rng = np.random.default_rng(seed)
    streams = [stationary_stream(rng, kind) for _ in range(n_streams)]
    samples = sum(s.values.size - WARMUP for s in streams)
    counts: dict[str, int] = {OURS_RAW: 0, OURS_HIST: 0}
    for s in streams:
        counts[OURS_RAW] += int(np.sum(ours_raw_alarms(s) >= WARMUP))
        counts[OURS_HIST] += int(np.sum(ours_hist_alarms(s) >= WARMUP))
    prepared = {
        det.name: [det.prepare(s.values, s.win, s.n_windows) for s in streams]
        for det in baselines.ALL
    }
    return {
        "kind": kind,
        "samples": samples,
        "counts": counts,
        "streams": streams,
        "prepared": prepared,
    }


def baseline_fa_count(det: Any, result: dict[str, Any], threshold: float) -> int:
    total = 0
    for s, prep in zip(result["streams"], result["prepared"][det.name], strict=True):
        total += int(np.sum(baseline_alarms(det, prep, threshold, s) >= WARMUP))
    return total


def tune(det: Any, calibration: list[dict[str, Any]]) -> float:
    """Smallest threshold (to 0.1%) with at most FA_TARGET alarms per 100k calibration samples."""
    samples = sum(r["samples"] for r in calibration)
    allowed = FA_TARGET * samples / 1e5

    def too_many(thr: float) -> bool:
        return bool(sum(baseline_fa_count(det, r, thr) for r in calibration) > allowed)

    lo, hi = det.threshold * 0.5, det.threshold
    while too_many(hi):
        lo, hi = hi, hi * 1.5 if hi > 0 else 1.0
    while hi - lo > 1e-3 * abs(hi):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if too_many(mid) else (lo, mid)
    return float(hi)


def change_task(
    sigma: float, shift: float, n_streams: int, seed: int, tuned: dict[str, float]
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    delays: dict[str, list[float]] = {}
    pre_alarms = 0
    for _ in range(n_streams):
        s = change_stream(rng, sigma, shift)
        raw = ours_raw_alarms(s)
        pre_alarms += int(np.sum(raw < s.change))
        delays.setdefault(OURS_RAW, []).append(first_delay(raw, s.change))
        delays.setdefault(OURS_HIST, []).append(first_delay(ours_hist_alarms(s), s.change))
        for det in baselines.ALL:
            prep = det.prepare(s.values, s.win, s.n_windows)
            delays.setdefault(det.name, []).append(
                baseline_first_delay(det, prep, det.threshold, s)
            )
            if det.name in tuned:
                key = det.name + " [tuned]"
                delays.setdefault(key, []).append(
                    baseline_first_delay(det, prep, tuned[det.name], s)
                )
    return {"sigma": sigma, "shift": shift, "delays": delays, "pre_alarms": pre_alarms}


def young_task(sigma: float, pre: int, n_streams: int, seed: int) -> dict[str, Any]:
    """cxmetrics on streams whose change comes after a short baseline (warm-up behaviour)."""
    rng = np.random.default_rng(seed)
    delays: dict[str, list[float]] = {OURS_RAW: [], OURS_HIST: []}
    placed = pre_alarms = 0
    for _ in range(n_streams):
        s = change_stream(rng, sigma, YOUNG_SHIFT, pre)
        found = LatencyDetector(improvements=False).extend(s.values)
        pre_alarms += sum(r.detected_at < s.change for r in found)
        after = [r for r in found if r.detected_at >= s.change]
        delays[OURS_RAW].append(after[0].detected_at - s.change + 1 if after else math.inf)
        placed += bool(after) and abs(after[0].start - s.change) <= 150
        delays[OURS_HIST].append(first_delay(ours_hist_alarms(s), s.change))
    return {
        "sigma": sigma,
        "pre": pre,
        "delays": delays,
        "placed": placed,
        "pre_alarms": pre_alarms,
    }


# ------------------------------------------------------------------------------------------------
# report


def nearest_rank(delays: list[float], p: float) -> float:
    """Percentile by nearest rank (never interpolates between a delay and "not detected")."""
    arr = np.sort(np.array(delays))
    return float(arr[max(math.ceil(p * arr.size) - 1, 0)])


def summarize(delays: list[float]) -> tuple[str, str, str]:
    capped = [d if d <= POST else math.inf for d in delays]  # detection within 2,000 counts

    def show(v: float) -> str:
        return f"{v:,.0f}" if math.isfinite(v) else f">{POST:,}"

    detected = 100.0 * np.mean(np.isfinite(capped))
    return show(nearest_rank(capped, 0.5)), show(nearest_rank(capped, 0.9)), f"{detected:.1f}%"


def table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """Aligned text table; the first `left` columns are left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        cells = zip(r, widths, strict=True)
        text = "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(cells))
        return text.rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


# ------------------------------------------------------------------------------------------------
# traffic shapes (--shapes): every detector with its shipped threshold, side by side


def _alarms_all(
    stream: Stream, tuned: dict[str, float], at_report: bool = False
) -> dict[str, tuple[np.ndarray[Any, Any], list[float]]]:
    """Alarm sample indices per detector, and cxmetrics' reported sizes (relative change of the
    reported quantile, as reported: raw samples when `extend` returns the regression, histogram
    windows when an analysis of the windows up to then lists it) for each alarm. Each baseline runs
    with its shipped threshold and, as "<name> [tuned]", with its threshold in `tuned`."""
    found = LatencyDetector(Policy(season=stream.season), improvements=False).extend(stream.values)
    out = {
        OURS_RAW: (
            np.array([r.detected_at for r in found], dtype=np.int64),
            [r.change for r in found],
        )
    }
    ends = window_end(stream)
    counts = bucketed(stream)
    per_window = counts.sum(axis=1)

    def windows(regressions: Any) -> np.ndarray[Any, Any]:
        return np.array([ends[w] for w in reported_at(regressions, per_window)], dtype=np.int64)

    def sizes(regressions: Any, policy: Policy) -> list[float]:
        """Each regression's size as the product reports it when it first lists it (with
        `at_report`: the windows up to then analysed again, as `cxmetrics watch` does at each
        read), not as sized at the end of the stream (a drift open to the end is sized on the
        level it reached there)."""
        if not at_report:
            return [r.change for r in regressions]
        out = []
        for r, w in zip(regressions, reported_at(regressions, per_window), strict=True):
            then = detect_latency_windows(BUCKETS, counts[: w + 1], policy, improvements=False)
            same = [x for x in then.regressions if (x.start, x.signal) == (r.start, r.signal)]
            out.append(same[0].change if same else r.change)
        return out

    if stream.season is not None:
        flat = LatencyDetector(improvements=False).extend(stream.values)
        out[OURS_TRAILING] = (
            np.array([r.detected_at for r in flat], dtype=np.int64),
            [r.change for r in flat],
        )
        trailing = detect_latency_windows(BUCKETS, counts, improvements=False)
        out[OURS_HIST_TRAILING] = (
            windows(trailing.regressions),
            sizes(trailing.regressions, Policy()),
        )
    # the stream's season in windows (the cyclic shapes have fixed windows of shapes.WINDOW)
    season = None if stream.season is None else stream.season / shapes.WINDOW
    hist = detect_latency_windows(
        BUCKETS, counts, Policy(season=season), improvements=False
    ).regressions
    out[OURS_HIST] = (windows(hist), sizes(hist, Policy(season=season)))
    for det in baselines.ALL:
        prep = det.prepare(stream.values, stream.win, stream.n_windows)
        out[det.name] = (baseline_alarms(det, prep, det.threshold, stream), [])
        if det.name in tuned:
            out[det.name + TUNED] = (baseline_alarms(det, prep, tuned[det.name], stream), [])
    return out


def shape_change_task(
    index: int, n_streams: int, seed: int, tuned: dict[str, float]
) -> dict[str, Any]:
    shape = shapes.CHANGE_SHAPES[index]
    rng = np.random.default_rng(seed)
    delays: dict[str, list[float]] = {}
    pre: dict[str, int] = {}
    sizes: dict[str, list[tuple[float, float]]] = {}  # (reported, true p95 at detection)
    at_alarm: dict[str, list[float]] = {}  # true p95 change at the first alarm after the change
    for _ in range(n_streams):
        s = shape.make(rng)
        for name, (alarms, reported) in _alarms_all(s, tuned, at_report=True).items():
            pre[name] = pre.get(name, 0) + int(np.sum(alarms < s.change))
            after = np.flatnonzero(alarms >= s.change)
            delay = float(alarms[after[0]] - s.change + 1) if after.size else math.inf
            delays.setdefault(name, []).append(delay if delay <= shape.horizon else math.inf)
            if after.size and delay <= shape.horizon:
                truth = shape.truth(int(delay))[0]
                at_alarm.setdefault(name, []).append(truth)
                if reported:
                    sizes.setdefault(name, []).append((reported[int(after[0])], truth))
    return {"index": index, "delays": delays, "pre": pre, "sizes": sizes, "at_alarm": at_alarm}


def shape_stationary_task(
    index: int, n_streams: int, seed: int, tuned: dict[str, float]
) -> dict[str, Any]:
    _, make = shapes.STATIONARY_SHAPES[index]
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    sizes: dict[str, list[float]] = {}
    samples = 0
    for _ in range(n_streams):
        s = make(rng)
        samples += s.values.size - WARMUP
        for name, (alarms, reported) in _alarms_all(s, tuned).items():
            late = alarms >= WARMUP
            counts[name] = counts.get(name, 0) + int(np.sum(late))
            if reported:  # baselines report no quantile size
                sizes.setdefault(name, []).extend(np.asarray(reported)[late].tolist())
    return {"index": index, "counts": counts, "samples": samples, "sizes": sizes}


def shape_nab_task(n_streams: int, seed: int, tuned: dict[str, float]) -> dict[str, Any]:
    """Alarms inside NAB's labelled windows (hits) and outside them (false alarms)."""
    rng = np.random.default_rng(seed)
    hits: dict[str, int] = {}
    delays: dict[str, list[float]] = {}
    false: dict[str, int] = {}
    labelled = samples = 0
    for _ in range(n_streams):
        s = shapes.nab_stream(rng)
        inside = np.zeros(s.values.size, dtype=bool)
        for a, b in s.labels:
            inside[a:b] = True
        samples += int(np.sum(~inside[WARMUP:]))
        labelled += len(s.labels)
        for name, (alarms, _) in _alarms_all(s, tuned).items():
            late = alarms[alarms >= WARMUP]
            false[name] = false.get(name, 0) + int(np.sum(~inside[late]))
            for a, b in s.labels:
                got = late[(late >= a) & (late < b)]
                hits[name] = hits.get(name, 0) + int(got.size > 0)
                delays.setdefault(name, []).append(float(got[0] - a + 1) if got.size else math.inf)
    return {
        "hits": hits,
        "delays": delays,
        "false": false,
        "labelled": labelled,
        "samples": samples,
    }


def _median_delay(delays: list[float], horizon: int) -> float:
    return nearest_rank([x if x <= horizon else math.inf for x in delays], 0.5)


def _median_size(pairs: list[tuple[float, float]]) -> tuple[str, str, str]:
    if not pairs:
        return "", "", ""
    reported = np.array([p[0] for p in pairs])
    truth = np.array([p[1] for p in pairs])
    within = np.abs(reported - truth) <= 0.3 * np.abs(truth)
    return (
        f"{np.median(reported):+.1%}",
        f"{np.median(truth):+.1%}",
        f"{100.0 * np.mean(within):.0f}%",
    )


#: change streams per shape, in quarters of --streams (the rare step's)
QUARTERS: dict[Any, int] = {shapes.rare: 20}


def reaches(shape: shapes.ChangeShape, change: float) -> int:
    """Samples after the change at which its true p95 change first reaches `change` (the
    policy's min_change: before that the policy says the change does not matter yet)."""
    for t in range(1, shape.horizon + 1):
        if shape.truth(t)[0] >= change - 1e-12:
            return t
    return shape.horizon


def _from_min_change(delays: list[float], at: int) -> float:
    """Median delay counted from the sample where the change reaches min_change (negative:
    the alarm came while the change was still smaller than that)."""
    return nearest_rank([x - at if math.isfinite(x) else math.inf for x in delays], 0.5)


def shapes_main(quick: bool, only: list[str] | None = None, streams: int | None = None) -> None:
    """`only`: run the shapes whose name contains one of these (change and stationary shapes;
    the NAB series with "NAB"); `streams`: change streams per shape (the rare step's: five
    times as many)."""
    n_change, n_stationary, n_nab, n_cal = (4, 1, 1, 2) if quick else (40, 11, 10, 8)
    if streams is not None:
        n_change = streams

    def wanted(name: str) -> bool:
        return only is None or any(o.lower() in name.lower() for o in only)

    change_idx = [i for i, sh in enumerate(shapes.CHANGE_SHAPES) if wanted(sh.name)]
    stat_idx = [i for i, (name, _) in enumerate(shapes.STATIONARY_SHAPES) if wanted(name)]
    min_change = Policy().min_change
    started = time.perf_counter()
    ss = np.random.SeedSequence(SEED + 1)
    seeds = iter(int(s.generate_state(1)[0]) for s in ss.spawn(64))
    names = [OURS_RAW, OURS_TRAILING, OURS_HIST, OURS_HIST_TRAILING] + [
        d.name + tag for d in baselines.ALL for tag in ("", TUNED)
    ]
    print(
        f"seed {SEED + 1}; traffic shapes (benchmarks/shapes.py); every detector with its shipped"
        f" threshold; windows of {shapes.WINDOW} samples; {n_change} streams per change shape,"
        f" {n_stationary} x {shapes.STATIONARY:,} samples per stationary shape (false alarms"
        f" after a {WARMUP:,}-sample warm-up), NAB series x {n_nab} draws\n"
    )
    with ProcessPoolExecutor(max_workers=2) as pool:
        # The baselines' thresholds tuned, as in the main benchmark, to at most FA_TARGET false
        # alarms per 100k on separate independent streams (diurnal volume, heavy tails): the
        # rate cxmetrics is designed for, so delays compare at an equal false-alarm rate there.
        cal_seed = int(np.random.SeedSequence(SEED + 2).generate_state(1)[0])
        cal_f = [
            pool.submit(stationary_task, k, n_cal, cal_seed + i)
            for i, k in enumerate(("diurnal", "heavy tail"))
        ]
        calibration = [f.result() for f in cal_f]
        tuned = {det.name: tune(det, calibration) for det in baselines.ALL}
        cal_samples = sum(r["samples"] for r in calibration)
        ours_cal = {
            name: 1e5 * sum(r["counts"][name] for r in calibration) / cal_samples
            for name in (OURS_RAW, OURS_HIST)
        }
        # the rare step's streams are short and its sizes scatter (a 500-sample baseline): five
        # times as many, or the median size is noise (its 40 streams read +27.5% for +20%; 300
        # streams of it read +21.8%). The drift's, 20x longer, were a quarter as many: 10
        # streams showed tuned Perfherder faster (20,863 against 26,745) and the raw size
        # within +-30% (+9.4% for +8.1%); 40 show neither (31,018, 75% detected; 1.37x)
        change_f = [
            pool.submit(
                shape_change_task,
                i,
                max(n_change * QUARTERS.get(sh.make, 4) // 4, 1),
                seed,
                tuned,
            )
            for (i, sh), seed in zip(enumerate(shapes.CHANGE_SHAPES), seeds, strict=False)
            if i in change_idx
        ]
        stat_f = [
            pool.submit(shape_stationary_task, i, n_stationary, seed, tuned)
            for i, seed in zip(range(len(shapes.STATIONARY_SHAPES)), seeds, strict=False)
            if i in stat_idx
        ]
        nab_seed = next(seeds)
        nab_f = pool.submit(shape_nab_task, n_nab, nab_seed, tuned) if wanted("NAB") else None
        changes = [f.result() for f in change_f]
        stationary = [f.result() for f in stat_f]
        nab = nab_f.result() if nab_f is not None else None

    def show(v: float) -> str:
        return f"{v:,.0f}" if math.isfinite(v) else "-"

    print(
        "Change shapes: delay in samples after the change (median, p90), share detected within"
        " the horizon (3,000 samples; the drift: 100,000), alarms before the change, the true"
        " p95 change when the first alarm came (median over detections), the median delay"
        f" counted from the sample where the true p95 change reaches min_change ({min_change:+.0%};"
        " negative: the alarm came before the change mattered by the policy), and cxmetrics'"
        " reported size (as reported: raw samples when the streaming detector returns it,"
        " windows when an analysis of the windows up to then lists it, once it spans"
        " min_samples samples; the delay counts to then) against the true p95 change then"
        " (within +-30% relative:"
        " share of detections)"
    )
    rows: list[list[str]] = []
    for c in changes:
        shape = shapes.CHANGE_SHAPES[c["index"]]
        p95, p50 = shape.truth(shape.horizon)
        matters_at = reaches(shape, min_change)
        scen = f"{shape.name} (p95 {p95:+.0%}, p50 {p50:+.0%}; {min_change:+.0%} at {matters_at:,})"
        for name in (n for n in names if n in c["delays"]):
            d = [x if x <= shape.horizon else math.inf for x in c["delays"][name]]
            med, p90 = nearest_rank(d, 0.5), nearest_rank(d, 0.9)
            detected = f"{100.0 * np.mean(np.isfinite(d)):.0f}%"
            truths = c["at_alarm"].get(name, [])
            at_alarm = f"{np.median(truths):+.1%}" if truths else ""
            rep, true, within = _median_size(c["sizes"].get(name, []))
            rows.append(
                [
                    scen,
                    name,
                    show(med),
                    show(p90),
                    detected,
                    str(c["pre"][name]),
                    at_alarm,
                    show(_from_min_change(d, matters_at)),
                    rep,
                    true,
                    within,
                ]
            )
            scen = ""
        rows.append([""] * 11)
    header = ["shape", "detector", "median", "p90", "detected", "pre-FA", "true at alarm"]
    header += ["from min_change", "reported", "true p95", "+-30%"]
    print(table(header, rows[:-1], 2))
    print()

    print(
        "Faster than every baseline at an equal false-alarm rate? Baselines tuned to <="
        f" {FA_TARGET:g} false alarm per 100k on {cal_samples:,} independent calibration samples"
        " (thresholds: "
        + ", ".join(f"{d.name} {tuned[d.name]:.3g}" for d in baselines.ALL)
        + f"); cxmetrics' own rate there: raw {ours_cal[OURS_RAW]:.2f}, histogram"
        f" {ours_cal[OURS_HIST]:.2f} per 100k. Median delay (- = detected in under half the"
        ' streams within the horizon). "true at alarm": the median true p95 change when the'
        f" first alarm came; a detector that alarms before the change reaches min_change"
        f" ({min_change:+.0%}) alarms on a change the policy says does not matter yet, which"
        " cxmetrics does not report"
    )
    rows = []
    for c in changes:
        shape = shapes.CHANGE_SHAPES[c["index"]]

        ours = _median_delay(c["delays"][OURS_RAW], shape.horizon)
        rivals = {
            d.name: _median_delay(c["delays"][d.name + TUNED], shape.horizon) for d in baselines.ALL
        }
        best = min(rivals, key=lambda n: rivals[n])
        faster = math.isfinite(ours) and all(ours < v for v in rivals.values())

        def true_at(name: str, c: dict[str, Any] = c) -> str:
            truths = c["at_alarm"].get(name, [])
            return f"{np.median(truths):+.1%}" if truths else "-"

        verdict = "yes" if faster else "no"
        best_truth = c["at_alarm"].get(best + TUNED, [])
        if not faster and best_truth and np.median(best_truth) < min_change:
            verdict = f"no: it alarms below min_change ({min_change:+.0%})"
        rows.append(
            [
                shape.name,
                show(ours),
                true_at(OURS_RAW),
                best if math.isfinite(rivals[best]) else "(none detects)",
                show(rivals[best]),
                true_at(best + TUNED) if math.isfinite(rivals[best]) else "-",
                verdict,
            ]
        )
    head = ["shape", "cxmetrics raw", "true at alarm", "fastest tuned baseline", "its median"]
    print(table([*head, "true at alarm", "faster"], rows))
    print()

    if stationary:
        _print_stationary(stationary, names)
    if nab is not None:
        _print_nab(nab, n_nab, names)
    print(f"\nelapsed {time.perf_counter() - started:.0f} s")


def _print_stationary(stationary: list[dict[str, Any]], names: list[str]) -> None:
    print("Stationary shapes: false alarms per 100,000 samples (count; cxmetrics' median size)")
    header = ["detector"] + [shapes.STATIONARY_SHAPES[r["index"]][0] for r in stationary]
    rows = []
    for name in names:
        cells = []
        for r in stationary:
            if name not in r["counts"]:
                cells.append("")
                continue
            count = r["counts"][name]
            size = r["sizes"].get(name, [])
            shown = f", {np.median(size):+.0%}" if size else ""
            cells.append(f"{1e5 * count / r['samples']:.2f} ({count}{shown})")
        rows.append([name, *cells])
    counted = ", ".join(f"{r['samples']:,}" for r in stationary)
    print(f"({counted} samples after warm-up)")
    print(table(header, rows))
    print()


def _print_nab(nab: dict[str, Any], n_nab: int, names: list[str]) -> None:
    print(
        f"Real series: NAB {shapes.NAB_SERIES} ({nab['labelled']} labelled windows over"
        f" {n_nab} draws; false alarms = alarms outside the windows, per 100k of"
        f" {nab['samples']:,} samples)"
    )
    rows = []
    for name in (n for n in names if n in nab["delays"]):
        d = nab["delays"][name]
        med = nearest_rank(d, 0.5)
        rows.append(
            [
                name,
                f"{nab['hits'][name]}/{nab['labelled']}",
                f"{med:,.0f}" if math.isfinite(med) else "-",
                f"{1e5 * nab['false'][name] / nab['samples']:.2f} ({nab['false'][name]})",
            ]
        )
    print(table(["detector", "windows hit", "median delay", "FA per 100k"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer streams (a smoke test)")
    parser.add_argument(
        "--shapes", action="store_true", help="the traffic-shape benchmark (benchmarks/shapes.py)"
    )
    parser.add_argument(
        "--only",
        help="--shapes: only the shapes whose name contains one of these comma-separated words"
        " (change and stationary shapes; NAB for the real series)",
    )
    parser.add_argument(
        "--streams",
        type=int,
        help="--shapes: change streams per shape (the rare step: five times as many)",
    )
    args = parser.parse_args()
    if args.shapes:
        shapes_main(args.quick, args.only.split(",") if args.only else None, args.streams)
        return
    n_change, n_stationary, n_calibration = (40, 4, 4) if args.quick else (200, 20, 20)
    started = time.perf_counter()
    ss = np.random.SeedSequence(SEED)
    seeds = iter(int(s.generate_state(1)[0]) for s in ss.spawn(64))
    print(
        f"seed {SEED}; window-based detectors use windows of {WINDOW} samples "
        f"(time windows in the diurnal stream: 10..90 samples each)"
    )
    print(
        f"{n_change} change streams per scenario (change at sample {PRE:,}..{PRE + WINDOW - 1:,},"
        f" {POST:,} samples after it); {n_stationary} x {STREAM:,}-sample stationary streams"
        f" per kind; baselines tuned on {n_calibration} x {STREAM:,} separate calibration"
        " streams per kind\n"
    )

    with ProcessPoolExecutor(max_workers=2) as pool:
        cal_f = [
            pool.submit(stationary_task, k, n_calibration, next(seeds))
            for k in ("diurnal", "heavy tail")
        ]
        fa_f = [
            pool.submit(stationary_task, k, n_stationary, next(seeds))
            for k in ("diurnal", "heavy tail")
        ]
        calibration = [f.result() for f in cal_f]
        tuned = {det.name: tune(det, calibration) for det in baselines.ALL}
        change_f = [
            pool.submit(change_task, sg, sh, n_change, next(seeds), tuned if sg == 0.5 else {})
            for sg in SIGMAS
            for sh in SHIFTS
        ]
        young_f = [pool.submit(young_task, sg, pre, n_change, next(seeds)) for sg, pre in YOUNG]
        stationary = [f.result() for f in fa_f]
        changes = [f.result() for f in change_f]
        young = [f.result() for f in young_f]

    # false alarms per 100k stationary samples
    fa: dict[str, dict[str, float]] = {}
    names = (
        [OURS_RAW, OURS_HIST]
        + [d.name for d in baselines.ALL]
        + [d.name + " [tuned]" for d in baselines.ALL]
    )
    for r in stationary:
        for name in names:
            if name in r["counts"]:
                count = r["counts"][name]
            else:
                det = next(d for d in baselines.ALL if name.startswith(d.name))
                thr = tuned[det.name] if name.endswith("[tuned]") else det.threshold
                count = baseline_fa_count(det, r, thr)
            fa.setdefault(name, {})[r["kind"]] = count
    total_samples = sum(r["samples"] for r in stationary)
    rows: list[list[str]] = []
    for name in names:
        per = fa[name]
        pooled = 1e5 * sum(per.values()) / total_samples
        shown_thr = ""
        if name not in (OURS_RAW, OURS_HIST):
            det = next(d for d in baselines.ALL if name.startswith(d.name))
            shown_thr = f"{tuned[det.name] if name.endswith('[tuned]') else det.threshold:.3g}"
        cells = [
            f"{1e5 * per[r['kind']] / r['samples']:.2f} ({per[r['kind']]})" for r in stationary
        ]
        rows.append([name, shown_thr, *cells, f"{pooled:.2f}"])
    kinds = [f"{r['kind']}: per 100k (count)" for r in stationary]
    print(f"False alarms per 100,000 stationary samples ({total_samples:,} samples after warm-up)")
    print(table(["detector", "threshold", *kinds, "pooled"], rows))
    print()

    print(
        "Detection delay in samples after the change"
        " (median, p90; >2,000 = not detected within 2,000)"
    )
    rows = []
    for c in changes:
        scen = f"sigma={c['sigma']:g} shift=+{c['shift']:.0%}"
        for name in names:
            if name in c["delays"]:
                med, p90, rate = summarize(c["delays"][name])
                rows.append(
                    [
                        scen,
                        name,
                        med,
                        p90,
                        rate,
                        f"{1e5 * sum(fa[name].values()) / total_samples:.2f}",
                    ]
                )
        rows.append(["", "", "", "", "", ""])
    print(table(["scenario", "detector", "median", "p90", "detected", "FA/100k"], rows[:-1], 2))
    print(
        "(cxmetrics' few misses at large shifts are streams where a false alarm raised shortly"
        " before the change was still open when the change came: it then reports one regression"
        " with an early start instead of a new one)"
    )
    print()

    print(
        f"Young streams: +{YOUNG_SHIFT:.0%} after a short baseline ({n_change} streams each,"
        f" change at the given sample + 0..{WINDOW - 1}, {POST:,} samples after it)"
    )
    rows = []
    for y in young:
        for name in (OURS_RAW, OURS_HIST):
            med, p90, rate = summarize(y["delays"][name])
            placed = f"{100.0 * y['placed'] / n_change:.1f}%" if name == OURS_RAW else ""
            pre = str(y["pre_alarms"]) if name == OURS_RAW else ""
            scen = f"sigma={y['sigma']:g} change at {y['pre']:,}"
            rows.append([scen, name, med, p90, rate, placed, pre])
    header = ["scenario", "detector", "median", "p90", "detected", "start +-150", "pre-change FA"]
    print(table(header, rows, 2))
    print()

    # the goal
    headline = next(c for c in changes if c["sigma"] == 0.5 and c["shift"] == 0.20)
    ours = nearest_rank(headline["delays"][OURS_RAW], 0.5)
    ours_fa = 1e5 * sum(fa[OURS_RAW].values()) / total_samples
    print(
        f"Goal (+20% at sigma=0.5): cxmetrics median delay {ours:.0f} samples "
        f"(goal <= 150) with {ours_fa:.2f} false alarms per 100k (goal <= 1)"
    )
    for name in names[2:]:
        their = (
            nearest_rank(headline["delays"][name], 0.5) if name in headline["delays"] else math.nan
        )
        their_fa = 1e5 * sum(fa[name].values()) / total_samples
        if their_fa > ours_fa and their <= ours:
            verdict = "faster, but with more false alarms than cxmetrics (not an equal footing)"
        elif their_fa > ours_fa:
            verdict = "slower than cxmetrics, and more false alarms"
        elif their > ours:
            verdict = "slower than cxmetrics at an equal or lower false-alarm rate: beaten"
        else:
            verdict = "NOT beaten: as fast or faster at an equal or lower false-alarm rate"
        shown = f"{their:.0f}" if math.isfinite(their) else f">{POST:,}"
        print(f"  vs {name}: median {shown}, {their_fa:.2f} FA/100k -> {verdict}")
    print(
        f"\ncxmetrics pre-change alarms in change streams (all scenarios): "
        f"{sum(c['pre_alarms'] for c in changes)}"
    )
    print(f"elapsed {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
