"""The analyzer: indicators and regressions of every declared step over a ``Timeline``.

``analyze(spec, timeline)`` runs the indicator math (``cxmetrics.analysis.indicators``) on the
whole range and the regression detector (``cxmetrics.analysis.regression``) per step with the
step's regression policy (``min_change``; ``min_volume`` becomes the detector's ``min_samples``;
the first of ``quantiles`` is the latency statistic reported; a regression that recovered within
``for`` is transient):

- latency: on the raw durations in arrival order when the source kept them (events), else on the
  per-window duration histograms (Prometheus); against same-phase baselines (the same time of
  day of earlier days) once a step's samples span two days (``samples_season``) or the range
  holds two days of windows (``seasonal``), else against the trailing baseline —
  ``Analysis.baselines`` says which, and why;
- errors: the share of ok steps (``catalogue.SUCCESS``), per window: a step that starts failing
  requests is a regression of its own, not only a burn of the good-step budget;
- accuracy: the pass rate of each check, per window;
- conversion: transitions to the next step / steps, per window;
- feedback, by the step the customers had reached (``catalogue.CSAT``, ``catalogue.NPS``): CSAT
  as the share of CSAT responses scoring 4-5 per window; NPS = 100 × (promoter share −
  detractor share), so it drops exactly when the promoter share drops or the detractor share
  rises — judged as two rates, promoters / responses (subject ``promoters``) and
  non-detractors / responses (subject ``detractors``). Every rate goes through the same
  Bernoulli CUSUM as accuracy, with the journey's feedback ``min_responses`` (else the step's
  ``min_volume``) as its minimum volume.

The detector speaks in sample or window indices; a ``Finding`` carries them back to wall-clock
times (a sample's end time; a window's start for a change point, its end for a detection), so a
report can say "since 14:05". The ``Analysis`` is what ``cxmetrics analyze`` prints, as a table or
as JSON.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from typing import Any

import numpy as np

from ..spec.model import Journey, RegressionPolicy, Spec, Step
from . import catalogue
from . import stats as _stats
from .counts import StepCounts
from .indicators import Indicators, StepIndicators, compute
from .policy import Policy
from .regression import (
    Detection,
    LatencyDetector,
    Regression,
    Sensitivity,
    detect_latency,
    detect_latency_windows,
    detect_rate,
)
from .sources import Timeline

LATENCY, ACCURACY, CONVERSION = "latency", "accuracy", "conversion"
#: the error rate: judged as the share of ok steps (``catalogue.SUCCESS``) dropping
ERRORS = "errors"
CSAT, NPS = catalogue.CSAT.name, catalogue.NPS.name


@dataclass(frozen=True)
class Verdict:
    """The detector's verdict on one indicator of one step (``subject``: check or next step)."""

    journey: str
    step: str
    indicator: str
    subject: str | None
    verdict: str  # "regressed" | "stable" | "insufficient_data"
    sensitivity: Sensitivity


@dataclass(frozen=True)
class Finding:
    """One regression, with its indices mapped to times (seconds since the epoch)."""

    journey: str
    step: str
    indicator: str
    subject: str | None
    regression: Regression
    start_time: float
    detected_time: float
    end_time: float | None  # when it recovered; None while still regressed
    sensitivity: Sensitivity

    @property
    def name(self) -> str:
        return f"{self.journey}/{self.step}"


@dataclass(frozen=True)
class Analysis:
    source: str
    start: float
    end: float
    step: float
    indicators: Indicators
    verdicts: tuple[Verdict, ...]
    findings: tuple[Finding, ...]
    ignored: int = 0
    transient: int = 0  # blips, and latency changes measured below min_change: not reported
    #: latency that became faster by at least min_change (sized as for regressions, negative
    #: change): reported as such, never a regression
    improvements: tuple[Finding, ...] = ()
    #: what latency was compared with, one sentence per form judged ("raw samples: …" for an
    #: event log, "histogram windows: …" for Prometheus): same-phase or trailing baselines, why
    baselines: str = ""

    @property
    def regressed(self) -> bool:
        return bool(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "range": {"start": iso(self.start), "end": iso(self.end), "step_s": self.step},
            "ignored_records": self.ignored,
            "transient_regressions": self.transient,
            "baselines": self.baselines,
            "steps": [_step_json(row) for row in self.indicators.steps],
            "journeys": [_plain(row) for row in self.indicators.journeys],
            "regressions": [_finding_json(f) for f in self.findings],
            "improvements": [_finding_json(f) for f in self.improvements],
            "verdicts": [
                {
                    "journey": v.journey,
                    "step": v.step,
                    "indicator": v.indicator,
                    "subject": v.subject,
                    "verdict": v.verdict,
                    "sensitivity": v.sensitivity.describe(),
                }
                for v in self.verdicts
            ],
        }


def analyze(spec: Spec, timeline: Timeline) -> Analysis:
    """Indicators over the whole timeline and regressions per step, in spec order."""
    total = timeline.total()
    season, baselines = seasonal(timeline.edges)
    # raw samples: a season per step, from its own samples (`samples_season`)
    raw_seasons: dict[tuple[str, str], float | None] = {}
    short: dict[str, Sequence[float]] = {}  # the steps left on trailing baselines
    for journey, step in spec.steps():
        times = total.steps[(journey.name, step.name)].times
        if times:
            raw_seasons[(journey.name, step.name)] = daily = samples_season(times)
            if daily is None:
                short[f"{journey.name}/{step.name}"] = times
    if any(counts.times is not None for counts in total.steps.values()):
        baselines = samples_baselines(short, len(raw_seasons))
    verdicts: list[Verdict] = []
    findings: list[Finding] = []
    improvements: list[Finding] = []
    transient = 0
    for journey, step in spec.steps():
        key = (journey.name, step.name)
        per_window = [w.steps[key] for w in timeline.windows]
        regression = spec.regression(journey, step)
        policy = _policy(regression)
        detections = _detections(
            journey,
            step,
            total.steps[key],
            per_window,
            timeline.edges,
            policy,
            season,
            raw_seasons.get(key),
        )
        feedback = spec.feedback(journey)
        heard = policy if feedback is None else replace(policy, min_samples=feedback.min_responses)
        detections += _feedback_detections(journey, step, timeline, heard)
        for indicator, subject, detection, to_time in detections:
            verdicts.append(
                Verdict(
                    journey.name,
                    step.name,
                    indicator,
                    subject,
                    detection.verdict,
                    detection.sensitivity,
                )
            )
            found = partial(Finding, journey.name, step.name, indicator, subject)
            for r in detection.regressions:
                start = to_time(r.start, False)
                end = to_time(r.end, False) if r.end is not None else None
                blip = end is not None and (
                    r.affected < policy.min_samples or end - start < regression.for_
                )
                # below min_change when the whole interval is; not shown to be a change at all
                # when the interval does not exclude no change, whatever the estimate: a measured
                # +9.6% in [+5%, +14%] is listed, marked at the threshold; neither +6% in
                # [-10%, +26%] nor +16% in [-4%, +41%] (140 samples of a thin step) is
                small = indicator == LATENCY and (
                    not r.change_high >= policy.min_change or not r.change_low > 0.0
                )
                if blip or small:
                    # Over before it touched min_volume customers or before it had lasted the
                    # policy's `for` (a collector pause, a noisy neighbour: an alert with the same
                    # `for` would never have fired), or smaller than the spec's min_change when
                    # measured: counted, not reported — nobody should be paged for it. One still
                    # going at the end of the data is reported: nothing says it will end.
                    transient += 1
                    continue
                findings.append(
                    found(r, start, to_time(r.detected_at, True), end, detection.sensitivity)
                )
            for r in detection.improvements:
                start = to_time(r.start, False)
                end = to_time(r.end, False) if r.end is not None else None
                # the same volume and duration rules as regressions; a fall of min_change in the
                # reciprocal latency is one of min_change / (1 + min_change) in latency
                least = policy.min_change / (1.0 + policy.min_change)
                if (
                    end is not None
                    and (r.affected < policy.min_samples or end - start < regression.for_)
                ) or not r.change_low <= -least:
                    continue
                improvements.append(
                    found(r, start, to_time(r.detected_at, True), end, detection.sensitivity)
                )
    return Analysis(
        timeline.source,
        timeline.start,
        timeline.end,
        timeline.step,
        compute(spec, total),
        tuple(verdicts),
        tuple(findings),
        timeline.ignored,
        transient,
        tuple(improvements),
        baselines,
    )


#: The cycle latency is compared over, phase by phase: a day.
SEASON_S = 86_400.0
#: ... when the range holds this many of them (one to learn the profile, one to judge) ...
SEASON_PERIODS = 2
#: ... in windows no longer than this share of the day (the profile has 3 harmonics).
SEASON_MIN_WINDOWS = 24


def seasonal(edges: Sequence[float]) -> tuple[float | None, str]:
    """The season (in windows) for latency judged from histogram windows, and what the
    analyzer compares with, for people: same-phase baselines when the range holds two days of
    windows, else trailing baselines and what same-phase ones would need."""
    step = edges[1] - edges[0] if len(edges) > 1 else 0.0
    span = edges[-1] - edges[0] if edges else 0.0
    if step > 0 and span >= SEASON_PERIODS * SEASON_S and SEASON_S / step >= SEASON_MIN_WINDOWS:
        return SEASON_S / step, (
            "histogram windows: same-phase baselines (each window against the same time of day"
            f" of up to {_stats.SEASON_PERIODS} earlier days); the first day is the baseline, not"
            " judged"
        )
    why = (
        f"windows of {step:g}s are too long for a daily profile"
        if step > 0 and SEASON_S / step < SEASON_MIN_WINDOWS
        else f"the range holds {span / 3600.0:.3g} h"
    )
    return None, (
        "histogram windows: trailing baselines (same-phase baselines need "
        f"{SEASON_PERIODS} days of windows; {why})"
    )


#: Raw samples (an event log) are compared phase by phase when a step's samples span
#: SEASON_PERIODS days and its first day (24 h from its first sample: the first baseline, which
#: the daily profile is first fitted on) holds this many of them. With fewer, the profile's own
#: noise costs about what the cycle does against a trailing baseline (docs/regression.md, step
#: 11: at 200 a day a ±18% cycle raised 11 false regressions against the trailing baseline and
#: none against the same phase; at 100, 5 and 1, but the same phase found fewer changes).
SEASON_MIN_SAMPLES = 200


def samples_season(times: Sequence[float]) -> float | None:
    """The season for one step's raw samples (``times``: their end times, ascending, seconds): a
    day, in seconds since its first sample (the times the analyzer gives the detector), or None
    for the trailing baseline (see ``SEASON_MIN_SAMPLES``)."""
    return SEASON_S if _first_day(times) >= SEASON_MIN_SAMPLES and _days(times) else None


def _days(times: Sequence[float]) -> bool:
    return bool(times) and times[-1] - times[0] >= SEASON_PERIODS * SEASON_S


def _first_day(times: Sequence[float]) -> int:
    return bisect.bisect_right(times, times[0] + SEASON_S) if times else 0


def samples_baselines(short: dict[str, Sequence[float]], steps: int) -> str:
    """What raw samples were compared with, for people: ``short`` maps the steps (of ``steps``
    with samples) left on trailing baselines to their samples' times."""
    need = (
        f"same-phase baselines need {SEASON_PERIODS} days of a step's samples,"
        f" {SEASON_MIN_SAMPLES:,} of them in its first day"
    )
    same = (
        "raw samples: same-phase baselines (each sample against the same time of day of up to"
        f" {_stats.SEASON_PERIODS} earlier days); a step's first day is its baseline, not judged"
    )
    if not steps:
        return "raw samples: none to judge (no step record in range)"
    if not short:
        return same
    if len(short) == steps and not any(_days(t) for t in short.values()):  # a short log
        longest = _duration(max(t[-1] - t[0] for t in short.values()))
        return f"raw samples: trailing baselines ({need}; the longest spans {longest})"
    listed = ", ".join(
        f"{name} has {_first_day(t):,} sample{'' if _first_day(t) == 1 else 's'} in its first day"
        if _days(t)
        else f"{name} spans {_duration(t[-1] - t[0])}"
        for name, t in short.items()
    )
    if len(short) == steps:
        return f"raw samples: trailing baselines ({need}; {listed})"
    return f"{same}; trailing baselines for the steps with less ({need}; {listed})"


def _duration(seconds: float) -> str:
    return f"{seconds / 3600.0:.3g} h" if seconds >= 3600.0 else f"{seconds / 60.0:.2g} min"


def _policy(policy: RegressionPolicy) -> Policy:
    return Policy(
        min_change=policy.min_change, min_samples=policy.min_volume, quantile=policy.quantiles[0]
    )


class _Clock:
    """Index → time: sample end times, or window edges (a window's start for a change point,
    its end for the moment of detection)."""

    def __init__(self, times: Sequence[float] | None, edges: Sequence[float]) -> None:
        self.times, self.edges = times, edges

    def __call__(self, index: int, detection: bool) -> float:
        if self.times is not None:
            return self.times[min(index, len(self.times) - 1)]
        return self.edges[min(index + (1 if detection else 0), len(self.edges) - 1)]


def _detections(
    journey: Journey,
    step: Step,
    total: StepCounts,
    per_window: list[StepCounts],
    edges: Sequence[float],
    policy: Policy,
    season: float | None = None,
    raw_season: float | None = None,
) -> list[tuple[str, str | None, Detection, _Clock]]:
    """``season``: in windows, for histogram windows; ``raw_season``: in seconds (since the
    step's first sample), for raw samples."""
    windows = _Clock(None, edges)
    out: list[tuple[str, str | None, Detection, _Clock]] = []
    if total.samples is not None and total.times is not None:
        if not total.samples:
            samples = _insufficient()
        elif raw_season is None:
            samples = detect_latency(total.samples, policy)
        else:
            detector = LatencyDetector(replace(policy, season=raw_season))
            detector.extend(total.samples, np.asarray(total.times) - total.times[0])
            samples = detector.detection()
        out.append((LATENCY, None, samples, _Clock(total.times, edges)))
    elif total.volume == 0:
        out.append((LATENCY, None, _insufficient(), windows))
    else:
        counts = np.array([w.buckets for w in per_window], dtype=np.float64)
        windowed = replace(policy, season=season)
        out.append((LATENCY, None, detect_latency_windows(total.bounds, counts, windowed), windows))
    if total.volume:
        ok, steps = zip(*(catalogue.parts(catalogue.SUCCESS, w) for w in per_window), strict=True)
        out.append(
            (ERRORS, None, _rate([int(n) for n in ok], [int(n) for n in steps], policy), windows)
        )
    declared = [c.name for c in step.checks]
    for check in [*declared, *sorted(set(total.checks) - set(declared))]:
        passed = [w.checks.get(check, (0, 0))[0] for w in per_window]
        checked = [sum(w.checks.get(check, (0, 0))) for w in per_window]
        out.append((ACCURACY, check, _rate(passed, checked, policy), windows))
    names = journey.step_names
    index = names.index(step.name)
    if index + 1 < len(names):
        following = names[index + 1]
        # The newest window's customers may still be between steps: its conversion is not known
        # yet, and a drop there is only the end of the data. The detector judges the others.
        judged = per_window[:-1] if len(per_window) > 1 else per_window
        volumes = [w.volume for w in judged]
        # A transition is counted when the next step ends, possibly one window after this step:
        # clamp so a window never converts more than it served.
        moved = [min(w.transitions.get(following, 0), w.volume) for w in judged]
        out.append((CONVERSION, following, _rate(moved, volumes, policy), windows))
    return out


def _feedback_detections(
    journey: Journey, step: Step, timeline: Timeline, policy: Policy
) -> list[tuple[str, str | None, Detection, _Clock]]:
    """CSAT and NPS of the feedback given with ``step`` as the last step, per window (see the
    module docstring); nothing when no response was ever given there."""
    scores: list[dict[str, dict[int, int]]] = []
    for window in timeline.windows:
        counts = window.journeys.get(journey.name)
        by_scale: dict[str, dict[int, int]] = {catalogue.CSAT.scale: {}, catalogue.NPS.scale: {}}
        for (last, scale, value), n in counts.feedback.items() if counts else ():
            if last == step.name and scale in by_scale:
                by_scale[scale][value] = by_scale[scale].get(value, 0) + n
        scores.append(by_scale)
    windows = _Clock(None, timeline.edges)
    out: list[tuple[str, str | None, Detection, _Clock]] = []

    def share(score: catalogue.Score, values: tuple[int, ...], keep: bool) -> list[int]:
        return [sum(n for s, n in w[score.scale].items() if (s in values) == keep) for w in scores]

    judged: tuple[tuple[catalogue.Score, str | None, tuple[int, ...], bool], ...] = (
        (catalogue.CSAT, None, catalogue.CSAT.good, True),
        (catalogue.NPS, "promoters", catalogue.NPS.good, True),
        (catalogue.NPS, "detractors", catalogue.NPS.bad, False),
    )
    for score, subject, values, keep in judged:
        responses = [sum(w[score.scale].values()) for w in scores]
        if any(responses):
            detection = _rate(share(score, values, keep), responses, policy)
            out.append((score.name, subject, detection, windows))
    return out


def _rate(good: list[int], total: list[int], policy: Policy) -> Detection:
    if not any(total):
        return _insufficient()
    return detect_rate(good, total, policy)


def _insufficient() -> Detection:
    return Detection("insufficient_data", (), Sensitivity(0, 0, None))


# ---------------------------------------------------------------------------------------------
# JSON


def iso(seconds: float) -> str:
    """ISO 8601 in UTC, to the millisecond."""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _step_json(row: StepIndicators) -> dict[str, Any]:
    data = _plain(row)
    data["quantiles"] = {f"p{q * 100:g}": _number(v) for q, v in row.quantiles.items()}
    data["checks"] = {
        name: {"passed": c.passed, "failed": c.failed, "rate": c.rate}
        for name, c in row.checks.items()
    }
    return data


def _plain(row: object) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(row)  # type: ignore[call-overload]
    return {k: _number(v) if isinstance(v, float) else v for k, v in data.items()}


def _finding_json(f: Finding) -> dict[str, Any]:
    r = f.regression
    return {
        "journey": f.journey,
        "step": f.step,
        "indicator": f.indicator,
        "subject": f.subject,
        "statistic": r.statistic,
        "direction": r.direction,
        "baseline": _number(r.baseline),
        "current": _number(r.current),
        "change": _number(r.change),
        "change_interval": [_number(r.change_low), _number(r.change_high)],
        "at_threshold": r.at_threshold,
        "start": iso(f.start_time),
        "detected_at": iso(f.detected_time),
        "end": iso(f.end_time) if f.end_time is not None else None,
        "confidence": r.confidence,
        "affected": r.affected,
        "sensitivity": f.sensitivity.describe(),
        "min_detectable_change": f.sensitivity.min_detectable_change,
    }
