"""Period over period in words: the sentences the report's summary opens with, and the short
Markdown digest a scheduled report posts to chat or puts in a mail's text part.

The digest names the worst step (``Comparison.worst``: the largest significant fall of the
good-step share, by customers it cost) and its changes against the previous period::

    **Customer experience — bank, week of 2024-03-11** (compared with week of 2024-03-04)
    Worst step: bill_detail (bill_inquiry): good steps 93.7% (was 99.9%), 297 more customers
    had a bad step; p95 1.23 s (was 976 ms, 26% slower); ...

Every value goes through ``change_phrase`` and ``value`` (numbers from ``report.text``).
"""

from __future__ import annotations

from ..analysis.affected import Affected
from ..analysis.comparison import STEP_INDICATORS, Change, Comparison, StepComparison
from ..analysis.periods import Period
from . import text
from .summary import Summary

ORDER = ("good_ratio", "p95", "timeliness", "accuracy", "error_rate", "conversion")
NO_BASELINE = "no baseline yet"


def value(indicator: str, number: float | None) -> str:
    if indicator == "p95":
        return text.duration(number)
    if indicator in ("volume", "started"):
        return "–" if number is None else text.count(round(number))
    return text.percent(number)


def change_phrase(change: Change) -> str:
    """``p95 1.23 s (was 976 ms, 26% slower)``; ``accuracy 97.4% (was 100.0%)``."""
    label = STEP_INDICATORS.get(change.indicator, (change.indicator, True))[0]
    now = value(change.indicator, change.current)
    if change.previous is None:
        return f"{label} {now}"
    was = f"was {value(change.indicator, change.previous)}"
    if change.indicator == "p95" and change.relative is not None and change.relative != 0:
        way = "slower" if change.relative > 0 else "faster"
        was += f", {text.change(change.relative)} {way}"
    return f"{label} {now} ({was})"


def period_name(comparison: Comparison) -> str:
    return comparison.current.kind if comparison.current.kind != "range" else "period"


def worst_sentence(comparison: Comparison) -> str:
    """The worst step and its change, or why there is none."""
    kind = period_name(comparison)
    previous = comparison.previous.label
    if not comparison.baseline:
        return (
            f"No baseline yet: {previous} has no traffic, so this {kind} is not compared with "
            "the one before."
        )
    worst = comparison.worst
    if worst is None:
        return f"No step got significantly worse than {previous}."
    return f"Worst step {kind} over {kind}: {_step_changes(worst)}"


def _step_changes(step: StepComparison) -> str:
    good = step.changes["good_ratio"]
    parts = [f"{change_phrase(good)}, {text.plural(step.more_bad, 'more customer')} had a bad step"]
    parts += [
        change_phrase(step.changes[name])
        for name in ORDER[1:]
        if step.changes[name].significant and step.changes[name].worse
    ]
    return f"{step.step} ({step.journey}): " + "; ".join(parts) + "."


def period_sentences(comparison: Comparison) -> list[str]:
    """The worst step, then how many steps got worse or better, then customers affected."""
    out = [worst_sentence(comparison)]
    if comparison.baseline:
        worse = [s for s in comparison.steps if s.worse]
        better = [s for s in comparison.steps if s.better and not s.worse]
        out.append(
            f"{text.plural(len(worse), 'step')} significantly worse and "
            f"{len(better)} better than {comparison.previous.label} "
            f"(two-sided tests at 99%)."
        )
    total = sum((j.affected for j in comparison.journeys), start=Affected())
    out.append(
        f"Customers affected in the {period_name(comparison)}: "
        f"{text.plural(total.failed_checks, 'failed check')}, "
        f"{text.plural(total.frustrated, 'frustrated step')}, "
        f"{text.plural(total.failed, 'failed step')}, "
        f"{text.plural(total.abandoned, 'customer')} who left a journey."
    )
    return out


def digest(
    service: str, period: Period, summary: Summary, comparison: Comparison | None, link: str | None
) -> str:
    """The Markdown digest: title, the period sentences, the regressions headline, the link."""
    title = f"**Customer experience — {service}, {period.label}**"
    if comparison is not None:
        title += f" (compared with {comparison.previous.label})"
    lines = [title]
    if comparison is not None:
        lines += [f"- {s}" for s in period_sentences(comparison)]
    lines.append(
        f"- Within the {period.kind}: {summary.headline[:1].lower()}{summary.headline[1:]}."
    )
    if link:
        lines.append(f"- Full report: {link}")
    return "\n".join(lines) + "\n"
