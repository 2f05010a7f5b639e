"""The error rate of each step, judged by the watch as the analyzer judges its rates.

``cxmetrics.analysis.analyzer.analyze`` judges latency and the rates of accuracy checks,
conversion and feedback, not the error rate. The watch judges it too: per window, the steps whose
outcome is ``ok`` (``catalogue.SUCCESS``'s numerator) out of all steps, through the same
Bernoulli CUSUM as the accuracy checks (``regression.detect_rate``) with the step's regression
policy (``min_change``; ``min_volume`` as the detector's ``min_samples``), its indices mapped to
times as the analyzer maps a window's (a window's start for the change point, its end for the
detection). The findings carry the indicator ``errors``; the watch keeps the open ones as it keeps
the analyzer's (``Watcher.open_regressions``: open for the policy's ``for``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ..analysis.analyzer import Finding
from ..analysis.catalogue import CLASS_LABELS, SUCCESS
from ..analysis.policy import Policy
from ..analysis.regression import detect_rate
from ..analysis.sources import Timeline
from ..spec import names
from ..spec.model import Spec

ERRORS: Final = "errors"
OK: Final = dict(SUCCESS.numerator[0].match)[names.OUTCOME]


def error_findings(spec: Spec, timeline: Timeline) -> list[Finding]:
    """The error-rate regressions of every declared step over ``timeline``, in spec order (a
    step without traffic in the range has none)."""
    edges = timeline.edges
    out: list[Finding] = []
    for journey, step in spec.steps():
        key = (journey.name, step.name)
        per_window = [w.steps[key] for w in timeline.windows]
        volumes = [w.volume for w in per_window]
        if not any(volumes):
            continue
        ok = [
            sum(n for n, (outcome, _) in zip(w.classes, CLASS_LABELS, strict=True) if outcome == OK)
            for w in per_window
        ]
        regression = spec.regression(journey, step)
        policy = Policy(
            min_change=regression.min_change,
            min_samples=regression.min_volume,
            quantile=regression.quantiles[0],
        )
        detection = detect_rate(ok, volumes, policy)
        for r in detection.regressions:
            out.append(
                Finding(
                    journey.name,
                    step.name,
                    ERRORS,
                    None,
                    r,
                    _at(edges, r.start),
                    _at(edges, r.detected_at + 1),
                    None if r.end is None else _at(edges, r.end),
                    detection.sensitivity,
                )
            )
    return out


def _at(edges: Sequence[float], index: int) -> float:
    return edges[min(index, len(edges) - 1)]
