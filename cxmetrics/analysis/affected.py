"""Customers affected, as counts: what the ratios of ``cxmetrics.analysis.indicators`` are made of,
for people who ask "how many customers?" rather than "what share?".

Per step, from its windowed counts (``cxmetrics.analysis.counts``):

- failed checks: accuracy checks that failed (a customer shown a wrong result, per check);
- frustrated: steps slower than the tolerating threshold (4T by default), whatever their outcome;
- failed: steps with outcome ``error``;
- abandoned: customers who did not go on from the step to any other step of the journey — the
  numerator of the abandonment indicator (``1 - Σ transitions out / steps``), so counted only for
  non-final steps.

A journey's counts are the sums over its steps (a customer failing two checks counts twice: these
are events suffered, not distinct people, as counters cannot tell them apart).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec.model import Spec
from .counts import ERROR_FRUSTRATED, OK_FRUSTRATED, StepCounts, Window


@dataclass(frozen=True)
class Affected:
    failed_checks: int = 0
    frustrated: int = 0
    failed: int = 0
    abandoned: int = 0

    def __add__(self, other: Affected) -> Affected:
        return Affected(
            self.failed_checks + other.failed_checks,
            self.frustrated + other.frustrated,
            self.failed + other.failed,
            self.abandoned + other.abandoned,
        )

    @property
    def total(self) -> int:
        return self.failed_checks + self.frustrated + self.failed + self.abandoned


def step_affected(counts: StepCounts, final: bool) -> Affected:
    classes = counts.classes
    return Affected(
        failed_checks=sum(failed for _, failed in counts.checks.values()),
        frustrated=classes[OK_FRUSTRATED] + classes[ERROR_FRUSTRATED],
        failed=sum(classes[3:]),
        # a transition lands in the window where the next step ended: never below zero
        abandoned=0 if final else max(counts.volume - sum(counts.transitions.values()), 0),
    )


def affected(spec: Spec, window: Window) -> dict[tuple[str, str], Affected]:
    """Every declared step's counts over ``window``, keyed ``(journey, step)``, in spec order."""
    out: dict[tuple[str, str], Affected] = {}
    for journey in spec.journeys:
        for index, step in enumerate(journey.steps):
            counts = window.steps.get((journey.name, step.name))
            final = index == len(journey.steps) - 1
            out[(journey.name, step.name)] = (
                Affected() if counts is None else step_affected(counts, final)
            )
    return out


def journey_affected(spec: Spec, window: Window) -> dict[str, Affected]:
    per_step = affected(spec, window)
    return {
        j.name: sum((per_step[(j.name, s.name)] for s in j.steps), Affected())
        for j in spec.journeys
    }
