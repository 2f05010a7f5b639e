"""The report's verdict in plain words, and the status colour of every step.

Built from the ``Analysis`` only: its findings (step, size of the change, start, recovery,
affected volume), its verdicts (steps with too little traffic to judge) and its indicators
against the spec's objectives. One sentence per regression, in the analysis' (spec) order, open
ones first::

    bill_detail got 27% slower at 22:46 (p95 931 ms → 1.18 s); 1,928 customers affected.
    bill_detail accuracy dropped at 22:46: total_matches_details passed for 94.9% of customers
    (was 100.0%); about 97 of 1,900 customers saw a wrong result.

"Customers affected" counts the step's executions from the change point to the recovery (or the
end of the range): each is one customer's visit to the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..analysis.analyzer import (
    ACCURACY,
    CONVERSION,
    CSAT,
    ERRORS,
    LATENCY,
    NPS,
    Analysis,
    Finding,
)
from ..analysis.indicators import StepIndicators
from ..spec.model import Journey, Spec, Step
from . import text

Status = Literal["red", "amber", "green", "grey"]


@dataclass(frozen=True)
class StepStatus:
    status: Status
    label: str  # the status in words, shown next to its colour
    notes: tuple[str, ...] = ()  # objectives the step misses, as sentences


@dataclass(frozen=True)
class Summary:
    status: Status
    headline: str
    sentences: tuple[str, ...]


def summarize(spec: Spec, analysis: Analysis, clock: text.Clock) -> Summary:
    statuses = step_statuses(spec, analysis)
    names = display_names(spec)
    open_ = [f for f in analysis.findings if f.end_time is None]
    closed = [f for f in analysis.findings if f.end_time is not None]
    sentences = [finding_sentence(f, names[(f.journey, f.step)], clock) for f in open_ + closed]
    unjudged = [
        names[(v.journey, v.step)]
        for v in analysis.verdicts
        if v.indicator == LATENCY and v.verdict == "insufficient_data"
    ]
    judged = sum(1 for _ in spec.steps()) - len(unjudged)
    between = f"between {clock(analysis.start)} and {clock(analysis.end)}"
    voice, unhappy = voice_sentences(spec, analysis)
    rated = f"customers rate {text.plural(unhappy, 'journey')} below objective"
    if not analysis.findings and not judged:
        sentence = f"No step had enough traffic {between} to look for regressions."
        if unhappy:
            headline = f"Too little traffic to judge the steps; {rated}"
            return Summary("amber", headline, (sentence, *voice))
        return Summary("grey", "Too little traffic to judge", (sentence, *voice))
    if not analysis.findings:
        sentences.append(
            f"No regression found in {text.plural(judged, 'step')} of "
            f"{text.plural(len(spec.journeys), 'journey')} {between}."
        )
    watch = [note for s in statuses.values() for note in s.notes]
    sentences += watch
    sentences += voice
    if unjudged:
        sentences.append(f"Too little traffic to judge {text.listing(unjudged)}.")
    below = sum(1 for s in statuses.values() if s.notes)
    if open_:
        verb = "needs" if len(open_) == 1 else "need"
        headline = f"{text.plural(len(open_), 'regression')} {verb} attention"
        return Summary("red", headline, tuple(sentences))
    if closed:
        headline = f"{text.plural(len(closed), 'regression')}, since recovered"
        return Summary("amber", headline, tuple(sentences))
    if below:
        headline = f"No regression found; {text.plural(below, 'step')} below objective"
        return Summary("amber", headline, tuple(sentences))
    if unhappy:
        return Summary("amber", f"No regression found; {rated}", tuple(sentences))
    return Summary("green", "No regression found", tuple(sentences))


def voice_sentences(spec: Spec, analysis: Analysis) -> tuple[list[str], int]:
    """One sentence per journey that heard from its customers (``catalogue.NPS``, ``CSAT``,
    ``COMPLAINT_RATE``: the numbers of ``analyze``, the dashboards and the rules), and how many
    journeys have a score below their feedback objective with at least ``min_responses``
    responses behind it (said in the sentence)."""
    out, unhappy = [], 0
    for journey in spec.journeys:
        row = analysis.indicators.journey(journey.name)
        fb = row.feedback
        parts = []
        if fb.nps is not None:
            heard = text.plural(fb.nps_responses, "response")
            parts.append(f"NPS {text.fixed(fb.nps, 0)} from {heard}")
        if fb.csat is not None:
            heard = text.plural(fb.csat_responses, "response")
            parts.append(f"CSAT {text.fixed(fb.csat, 1, '%')} from {heard}")
        if row.complaints:
            parts.append(
                f"{text.plural(row.complaints, 'complaint')} "
                f"({text.percent(row.complaint_rate)} of journeys started)"
            )
        if not parts:
            continue
        missed = []
        policy = spec.feedback(journey)
        if policy is not None:
            goals = (
                ("NPS", fb.nps, fb.nps_responses, policy.objectives.nps, 0, ""),
                (
                    "CSAT",
                    fb.csat,
                    fb.csat_responses,
                    None if policy.objectives.csat is None else 100 * policy.objectives.csat,
                    1,
                    "%",
                ),
            )
            for title, score, responses, goal, digits, unit in goals:
                enough = responses >= policy.min_responses
                if score is not None and goal is not None and enough and score < goal:
                    goal_text = text.fixed(goal, digits, unit)
                    missed.append(f"{title} below its objective {goal_text}")
        unhappy += bool(missed)
        tail = f"; {', '.join(missed)}" if missed else ""
        out.append(f"Customers of {journey.name}: {'; '.join(parts)}{tail}.")
    return out, unhappy


def finding_sentence(f: Finding, name: str, clock: text.Clock) -> str:
    r = f.regression
    when = (
        f"at {clock(f.start_time)}"
        if f.end_time is None
        else f"from {clock(f.start_time)} to {clock(f.end_time)}"
    )
    affected = text.plural(r.affected, "customer")
    if f.indicator == LATENCY:
        verb = "got" if f.end_time is None else "was"
        return (
            f"{name} {verb} {text.change(r.change)} slower {when} ({r.statistic} "
            f"{text.duration(r.baseline)} → {text.duration(r.current)}); {affected} affected."
        )
    if f.indicator == ACCURACY:
        wrong = round(r.affected * (1.0 - r.current))
        return (
            f"{name} accuracy dropped {when}: {f.subject} passed for {text.percent(r.current)} "
            f"of customers (was {text.percent(r.baseline)}); about {text.count(wrong)} of "
            f"{affected} saw a wrong result."
        )
    if f.indicator == ERRORS:
        return (
            f"{name} failed more often {when}: {text.percent(1.0 - r.current)} of its steps "
            f"ended in an error (was {text.percent(1.0 - r.baseline)}); {affected} affected."
        )
    if f.indicator == CONVERSION:
        return (
            f"Fewer customers went on from {name} to {f.subject} {when}: "
            f"{text.percent(r.current)} (was {text.percent(r.baseline)}); {affected} affected."
        )
    heard = text.plural(r.affected, "response")
    if f.indicator == CSAT:
        return (
            f"Customers who had reached {name} rated the journey lower {when}: CSAT "
            f"{text.percent(r.current)} (was {text.percent(r.baseline)}); {heard}."
        )
    if f.indicator == NPS and f.subject == "detractors":
        return (
            f"More detractors among customers who had reached {name} {when}: "
            f"{text.percent(1.0 - r.current)} of NPS responses (was "
            f"{text.percent(1.0 - r.baseline)}); {heard}."
        )
    if f.indicator == NPS:
        return (
            f"Fewer promoters among customers who had reached {name} {when}: "
            f"{text.percent(r.current)} of NPS responses (was {text.percent(r.baseline)}); "
            f"{heard}."
        )
    return f"{name} {f.indicator} regressed {when}; {affected} affected."


def step_statuses(spec: Spec, analysis: Analysis) -> dict[tuple[str, str], StepStatus]:
    """Red: regressed now. Amber: recovered from a regression, or below an objective (judged only
    with enough traffic). Grey: no traffic or too little to judge. Green: none of these."""
    names = display_names(spec)
    unjudged = {
        (v.journey, v.step)
        for v in analysis.verdicts
        if v.indicator == LATENCY and v.verdict == "insufficient_data"
    }
    out: dict[tuple[str, str], StepStatus] = {}
    for journey, step in spec.steps():
        key = (journey.name, step.name)
        row = analysis.indicators.step(*key)
        findings = [f for f in analysis.findings if (f.journey, f.step) == key]
        flagged = {f.subject for f in findings if f.indicator == ACCURACY}
        notes: tuple[str, ...] = ()
        if row.volume >= spec.regression(journey, step).min_volume:
            notes = tuple(_missed_objectives(spec, row, names[key], flagged))
        if any(f.end_time is None for f in findings):
            out[key] = StepStatus("red", "Regressed", notes)
        elif findings:
            out[key] = StepStatus("amber", "Recovered", notes)
        elif notes:
            out[key] = StepStatus("amber", "Below objective", notes)
        elif row.volume == 0:
            out[key] = StepStatus("grey", "No traffic")
        elif key in unjudged:
            out[key] = StepStatus("grey", "Too little traffic")
        else:
            out[key] = StepStatus("green", "OK")
    return out


def _missed_objectives(
    spec: Spec, row: StepIndicators, name: str, flagged: set[str | None]
) -> list[str]:
    journey = spec.journey(row.journey)
    step = journey.step(row.step)
    objective = spec.objectives(journey, step).timeliness
    notes = []
    if row.timeliness is not None and row.timeliness < objective:
        notes.append(
            f"{name} answered {text.percent(row.timeliness)} on time, below its "
            f"{text.objective(objective)} objective."
        )
    for check, counts in row.checks.items():
        if check in flagged or counts.rate is None:
            continue
        target = check_objective(spec, journey, step, check)
        if counts.rate < target:
            notes.append(
                f"{name}: {check} passed {text.percent(counts.rate)}, below its "
                f"{text.objective(target)} objective."
            )
    return notes


def check_objective(spec: Spec, journey: Journey, step: Step, check: str) -> float:
    """The pass rate a check should reach: its own objective, else the step's accuracy one
    (also for checks the app recorded but the spec does not declare)."""
    for declared in step.checks:
        if declared.name == check:
            return spec.check_objective(journey, step, declared)
    return spec.objectives(journey, step).accuracy


def display_names(spec: Spec) -> dict[tuple[str, str], str]:
    """Step names alone, unless two journeys share one: then ``journey/step``."""
    seen: dict[str, int] = {}
    for _, step in spec.steps():
        seen[step.name] = seen.get(step.name, 0) + 1
    return {
        (j.name, s.name): s.name if seen[s.name] == 1 else f"{j.name}/{s.name}"
        for j, s in spec.steps()
    }
