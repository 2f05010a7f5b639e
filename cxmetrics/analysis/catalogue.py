"""The indicator catalogue: every ratio indicator defined once, as data, and derived from here
into the analyzer's numbers (``value``, over windowed counts), the recording rules and every
dashboard query (``promql``), and the indicator table of docs/indicators.md (``markdown_table``).

An indicator is a ``Ratio``: a numerator and a denominator, each a sum of ``Count`` terms over the
canonical counters of ``names.METRICS`` (``cx_steps_total`` by outcome × timeliness, good steps,
accuracy checks by result, transitions). The rules every form shares:

- **errors**: a step whose outcome is ``error`` is never satisfied, tolerating or within target
  (standard Apdex counts it frustrated); it stays in every denominator, so failed or abandoned
  attempts lower timeliness and Apdex rather than vanish;
- **steps without checks** have no accuracy (``None``, no series): their CX score rescales the
  remaining weights (Apdex and success) to sum to 1, in the analyzer and on the dashboards alike;
- **empty windows**: a zero denominator gives ``None`` / no series (``> 0`` filter), never NaN, 0
  or 1;
- **clamping**: every ratio is clamped to [0, 1] (``clamp``): counters of one step are separate
  series, and Prometheus' extrapolation can read good steps above steps (1.0005 was seen live);
- **CX score**: 100 × weighted Apdex, accuracy and success, *capped at* ``SCORE_CAP`` (red) while
  any objective of the step — good steps or an accuracy check — burns its error budget at page
  severity over the same window (``PAGE_BURN_RATE`` × budget), so a step with a paging incident
  never looks healthy. A journey's score is capped while any of its steps is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from ..spec import names
from ..spec.model import Journey, ScoreWeights, Spec, Step
from .counts import StepCounts

#: Outcome × timeliness of each index of ``StepCounts.classes``.
CLASS_LABELS: Final = tuple(
    (outcome, timeliness) for outcome in names.OUTCOMES for timeliness in names.TIMELINESS_CLASSES
)
#: The slowest page-severity burn rate of the SRE workbook's table (6h/30m at 6×).
PAGE_BURN_RATE: Final = 6.0
SCORE_CAP: Final = 50.0
#: CX score traffic light: red below the first, amber below the second, green from it.
SCORE_BANDS: Final = (70.0, 85.0)


@dataclass(frozen=True)
class Re:
    """A regex label matcher (``=~``)."""

    pattern: str


Matcher = str | Re


@dataclass(frozen=True)
class Count:
    """The sum of the series of one counter family matching ``match``, times ``weight``."""

    metric: str
    match: tuple[tuple[str, str], ...] = ()
    weight: float = 1.0


@dataclass(frozen=True)
class Ratio:
    """``numerator / denominator`` (or ``1 -`` it when ``complement``), clamped to [0, 1]."""

    name: str
    title: str
    numerator: tuple[Count, ...]
    denominator: tuple[Count, ...]
    definition: str
    complement: bool = False
    per: str = "step"  # "step", "check" (one value per check) or "transition"


def _steps(weight: float = 1.0, **match: str) -> Count:
    return Count(names.STEPS, tuple(match.items()), weight)


_OK, _ERROR = names.OUTCOMES
_SATISFIED, _TOLERATING, _ = names.TIMELINESS_CLASSES
_PASS, _FAIL = names.RESULTS

TIMELINESS = Ratio(
    "timeliness",
    "timeliness compliance (≤T)",
    (_steps(outcome=_OK, timeliness=_SATISFIED),),
    (_steps(),),
    "steps with outcome ok and duration ≤ T / all steps (an error is never within target)",
)
APDEX = Ratio(
    "apdex",
    "Apdex",
    (_steps(outcome=_OK, timeliness=_SATISFIED), _steps(0.5, outcome=_OK, timeliness=_TOLERATING)),
    (_steps(),),
    "(ok steps ≤ T + ok steps ≤ tolerating threshold / 2) / all steps (an error is frustrated)",
)
ERRORS = Ratio(
    "error_rate", "error rate", (_steps(outcome=_ERROR),), (_steps(),), "error steps / all steps"
)
SUCCESS = Ratio("success", "success", (_steps(outcome=_OK),), (_steps(),), "ok steps / all steps")
GOOD = Ratio(
    "good_ratio",
    "good-step ratio",
    (Count(names.GOOD_STEPS),),
    (_steps(),),
    "good steps (outcome ok, ≤ T, every check passed) / all steps",
)
BAD = Ratio(
    "bad_ratio",
    "bad-step ratio (good-step SLO error ratio)",
    GOOD.numerator,
    GOOD.denominator,
    "1 − good-step ratio",
    complement=True,
)
ACCURACY = Ratio(
    "accuracy",
    "accuracy",
    (Count(names.ACCURACY_CHECKS, ((names.RESULT, _PASS),)),),
    (Count(names.ACCURACY_CHECKS),),
    "passed checks / all checks, per check or pooled over the step's checks (none: no value)",
    per="check",
)
ACCURACY_FAIL = Ratio(
    "accuracy_fail",
    "accuracy error ratio",
    (Count(names.ACCURACY_CHECKS, ((names.RESULT, _FAIL),)),),
    (Count(names.ACCURACY_CHECKS),),
    "failed checks / all checks (the accuracy SLO's error ratio)",
    per="check",
)
CONVERSION = Ratio(
    "conversion",
    "conversion to the next step",
    (Count(names.TRANSITIONS),),
    (_steps(),),
    "transitions A → next(A) / steps of A",
    per="transition",
)
ABANDONMENT = Ratio(
    "abandonment",
    "abandonment after the step",
    (Count(names.TRANSITIONS),),
    (_steps(),),
    "1 − transitions out of A (to any step, A itself included) / steps of A",
    complement=True,
    per="transition",
)
CATALOGUE: Final = (
    TIMELINESS,
    APDEX,
    ERRORS,
    SUCCESS,
    GOOD,
    BAD,
    ACCURACY,
    ACCURACY_FAIL,
    CONVERSION,
    ABANDONMENT,
)


# ---------------------------------------------------------------------------------------------
# (a) The analyzer: a ratio over one step's windowed counts


def _count(term: Count, counts: StepCounts, check: str | None, to_step: str | None) -> float:
    match = dict(term.match)
    if term.metric == names.STEPS:
        total = sum(
            n
            for n, (outcome, timeliness) in zip(counts.classes, CLASS_LABELS, strict=True)
            if match.get(names.OUTCOME, outcome) == outcome
            and match.get(names.TIMELINESS, timeliness) == timeliness
        )
    elif term.metric == names.GOOD_STEPS:
        total = counts.good
    elif term.metric == names.ACCURACY_CHECKS:
        index = names.RESULTS.index(match[names.RESULT]) if names.RESULT in match else None
        total = sum(
            pf[index] if index is not None else sum(pf)
            for name, pf in counts.checks.items()
            if check is None or name == check
        )
    elif term.metric == names.TRANSITIONS:
        if to_step is None:
            total = sum(counts.transitions.values())
        else:
            total = counts.transitions.get(to_step, 0)
    else:
        raise ValueError(f"no count for {term.metric} in a step's windowed counts")
    return term.weight * total


def value(
    ratio: Ratio, counts: StepCounts, *, check: str | None = None, to_step: str | None = None
) -> float | None:
    """``ratio`` over ``counts`` (``check``: one check, else pooled; ``to_step``: transitions to
    that step, else out of the step to anywhere); None when the denominator is 0."""
    numerator, denominator = parts(ratio, counts, check=check, to_step=to_step)
    if denominator <= 0:
        return None
    share = numerator / denominator
    return clamp(1.0 - share if ratio.complement else share)


def parts(
    ratio: Ratio, counts: StepCounts, *, check: str | None = None, to_step: str | None = None
) -> tuple[float, float]:
    """The numerator and denominator ``value`` divides (before any complement): whole counts
    for the detector's rate charts."""
    numerator = sum(_count(t, counts, check, to_step) for t in ratio.numerator)
    return numerator, sum(_count(t, counts, check, None) for t in ratio.denominator)


def clamp(share: float) -> float:
    return min(1.0, max(0.0, share))


def page_share(objective: float) -> float:
    """The bad share above which an objective burns its error budget at page severity."""
    return PAGE_BURN_RATE * (1.0 - objective)


def burning(spec: Spec, journey: Journey, step: Step, counts: StepCounts) -> bool:
    """True when an objective of the step burns its error budget at page severity."""
    bad = value(BAD, counts)
    if bad is not None and bad > page_share(spec.objectives(journey, step).good_ratio):
        return True
    for check in step.checks:
        failed = value(ACCURACY_FAIL, counts, check=check.name)
        if failed is not None and failed > page_share(spec.check_objective(journey, step, check)):
            return True
    return False


def cx_score(
    apdex: float | None,
    accuracy: float | None,
    error_rate: float | None,
    weights: ScoreWeights,
    burning: bool = False,
) -> float | None:
    """100 × (apdex·w_apdex + accuracy·w_accuracy + success·w_success), success = 1 − error rate;
    without accuracy the other weights are rescaled to sum to 1; capped at ``SCORE_CAP`` while
    ``burning``. None when the step did not run."""
    if apdex is None or error_rate is None:
        return None
    terms = [(apdex, weights.apdex), (1.0 - error_rate, weights.success)]
    if accuracy is not None:
        terms.append((accuracy, weights.accuracy))
    weight = sum(w for _, w in terms)
    if weight <= 0:
        return None
    score = 100.0 * sum(v * w for v, w in terms) / weight
    return min(score, SCORE_CAP) if burning else score


# ---------------------------------------------------------------------------------------------
# (b), (c) PromQL: recording rules and dashboard queries


def family_labels(metric: str) -> tuple[str, ...]:
    return (names.METRICS.get(metric) or names.FOLLOWUP_METRICS[metric])[1]


def selector(metric: str, **labels: Matcher) -> str:
    """``metric{label="value",label=~"regex"}``; a label the family does not carry is an error."""
    if metric in names.METRICS or metric in names.FOLLOWUP_METRICS:
        allowed = family_labels(metric)
        for label in labels:
            if label not in allowed:
                raise ValueError(f"{metric} has no label '{label}' (labels: {', '.join(allowed)})")
    parts = [
        f'{k}=~"{v.pattern}"' if isinstance(v, Re) else f'{k}="{v}"' for k, v in labels.items()
    ]
    return f"{metric}{{{','.join(parts)}}}"


def number(value: float) -> str:
    """A float as PromQL reads it back exactly (``0.1``, ``14.4``, ``100``)."""
    return f"{value:g}" if float(f"{value:g}") == value else repr(value)


def _range(sel: str, window: str, fn: str, offset: str | None) -> str:
    return f"{fn}({sel}[{window}]{f' offset {offset}' if offset else ''})"


def _by(by: Iterable[str]) -> str:
    return f"sum by ({', '.join(by)})" if tuple(by) else "sum"


def _terms(
    terms: tuple[Count, ...],
    match: Mapping[str, Matcher],
    window: str,
    fn: str,
    by: tuple[str, ...],
    offset: str | None,
    recorded: Mapping[str, str] | None = None,
) -> str:
    """The sum of ``terms``; a family in ``recorded`` is read from that recording rule (its
    rate over ``window`` by every label of the family but instance and segment) instead of the
    raw counters."""
    parts = []
    for term in terms:
        labels = {**match, **dict(term.match)}
        if term.metric == names.TRANSITIONS and names.STEP in labels:
            labels = {names.FROM_STEP if k == names.STEP else k: v for k, v in labels.items()}
        family = family_labels(term.metric)
        kept = {k: v for k, v in labels.items() if k in family}
        if recorded and term.metric in recorded:
            expr = f"{_by(by)} ({selector(recorded[term.metric], **kept)})"
        else:
            expr = f"{_by(by)} ({_range(selector(term.metric, **kept), window, fn, offset)})"
        parts.append(expr if term.weight == 1 else f"{expr} * {number(term.weight)}")
    if len(parts) == 1:
        return parts[0]
    # A term with no series must not erase the others (``a + b`` is empty when b is).
    return f"({' + '.join(parts)} or {' or '.join(parts)})"


def _or_zero(expr: str, like: str) -> str:
    """``expr``, or 0 with the labels of ``like`` where ``expr`` has no series (a label
    combination not created yet: nothing of that kind happened)."""
    return f"({expr} or 0 * {like})"


def promql(
    ratio: Ratio,
    window: str,
    match: Mapping[str, Matcher],
    *,
    fn: str = "rate",
    by: tuple[str, ...] = (names.JOURNEY, names.STEP),
    offset: str | None = None,
    to_step: str | None = None,
    recorded: Mapping[str, str] | None = None,
) -> str:
    """``ratio`` as PromQL over ``window``: terms summed ``by``, the denominator filtered ``> 0``
    (no series rather than NaN), the result clamped to [0, 1]. ``match`` selects series (labels a
    family lacks are dropped for every term, so a ratio never mixes filtered and unfiltered
    counts: transitions and checks carry no channel); transitions match ``step`` as
    ``from_step`` and ``to_step`` as given; they are summed ``by`` with ``step`` left out."""
    families = {t.metric for t in (*ratio.numerator, *ratio.denominator)}
    common = {
        k: v
        for k, v in match.items()
        if all(
            k in family_labels(f) or (k == names.STEP and f == names.TRANSITIONS) for f in families
        )
    }
    num_match: dict[str, Matcher] = dict(common)
    if to_step is not None:
        num_match[names.TO_STEP] = to_step
    num_by = by
    if ratio.per == "transition":
        num_by = tuple(label for label in by if label != names.STEP)
        if num_by != by:
            raise ValueError("transition ratios are summed by journey, not by step")
    numerator = _terms(ratio.numerator, num_match, window, fn, num_by, offset, recorded)
    denominator = _terms(ratio.denominator, common, window, fn, by, offset, recorded)
    if ratio.per != "transition":
        numerator = _or_zero(numerator, denominator)
    share = f"{numerator} / ({denominator} > 0)"
    if ratio.per == "transition" and by:
        share = f"{numerator} / on ({', '.join(by)}) ({denominator} > 0)"
    if ratio.complement:
        share = f"1 - {share}"
    return f"clamp({share}, 0, 1)"


def next_step_promql(
    window: str,
    match: Mapping[str, Matcher],
    pairs: str,
    *,
    by: tuple[str, ...] = (names.SERVICE, names.JOURNEY, names.STEP),
    offset: str | None = None,
    recorded: Mapping[str, str] | None = None,
) -> str:
    """``CONVERSION`` of every step at once: transitions from each step to its next step (the
    (step, to_step) pairs ``pairs`` has series for, e.g. ``cx:step_next:info``) / the step's
    finishes, summed ``by`` (which holds ``step``), labelled ``to_step`` too. Same rules as
    ``promql``: ``> 0`` denominator, clamped."""
    moved_by = tuple(names.FROM_STEP if label == names.STEP else label for label in by)
    kept = {k: v for k, v in match.items() if k in family_labels(names.TRANSITIONS)}
    moved = _terms(CONVERSION.numerator, kept, window, "rate", (*moved_by, names.TO_STEP), offset)
    renamed = f'label_replace({moved}, "{names.STEP}", "$1", "{names.FROM_STEP}", "(.*)")'
    keys = ", ".join((*by, names.TO_STEP))
    numerator = f"sum by ({keys}) ({renamed}) and on ({keys}) {pairs}"
    denominator = _terms(CONVERSION.denominator, match, window, "rate", by, offset, recorded)
    return f"clamp(({numerator}) / on ({', '.join(by)}) group_left () ({denominator} > 0), 0, 1)"


def volume_promql(
    window: str,
    match: Mapping[str, Matcher],
    *,
    fn: str = "rate",
    by: tuple[str, ...] = (),
    offset: str | None = None,
    recorded: Mapping[str, str] | None = None,
) -> str:
    """Finished steps (every outcome)."""
    return _terms((_steps(),), match, window, fn, by, offset, recorded)


def no_baseline_promql(match: Mapping[str, Matcher]) -> str:
    """1 for each matching step that has no baseline yet (a fresh install, a new step, a
    trailing baseline not yet filled): the generated rules record it as
    ``cx:step_baseline:missing``, and a panel comparing with the baseline shows "no baseline yet"
    where this has a series, rather than "no traffic". Alerts that need a baseline stay silent
    meanwhile (their comparison has no series)."""
    return selector(names.REC_BASELINE_MISSING, **match)


#: The recorded short-window rate of each counter family a burn ratio reads (by journey, step
#: and, for checks, check and result).
RECORDED_RATES: Final = {
    names.STEPS: names.REC_STEPS_RATE5M,
    names.GOOD_STEPS: names.REC_GOOD_RATE5M,
    names.ACCURACY_CHECKS: names.REC_CHECKS_RATE5M,
}


def recorded_rate_promql(
    metric: str,
    match: Mapping[str, Matcher],
    *,
    by: tuple[str, ...] = (names.JOURNEY, names.STEP),
) -> str:
    """The expression of ``RECORDED_RATES[metric]``: the family's 5m rate per step (and check,
    result), recorded once and averaged into every long window."""
    by = tuple(by)
    if metric == names.ACCURACY_CHECKS:
        by += (names.CHECK, names.RESULT)
    return _terms((Count(metric),), match, names.SHORT_RATE_WINDOW, "rate", by, None)


def _recorded_terms(
    terms: tuple[Count, ...], match: Mapping[str, Matcher], window: str, by: tuple[str, ...]
) -> str:
    parts = []
    for term in terms:
        labels = {**match, **dict(term.match)}
        record = RECORDED_RATES[term.metric]
        sel = selector(record, **labels)
        expr = f"{_by(by)} (avg_over_time({sel}[{window}]))"
        parts.append(expr if term.weight == 1 else f"{expr} * {number(term.weight)}")
    if len(parts) == 1:
        return parts[0]
    return f"({' + '.join(parts)} or {' or '.join(parts)})"


def recorded_promql(
    ratio: Ratio,
    window: str,
    match: Mapping[str, Matcher],
    *,
    by: tuple[str, ...] = (names.JOURNEY, names.STEP),
) -> str:
    """``ratio`` over a long ``window`` from the recorded 5m rates (``avg_over_time``): one
    recorded series per step read instead of every raw series of the step on every instance.
    Same rules as ``promql`` (``> 0`` denominator, missing numerator 0, clamped)."""
    numerator = _recorded_terms(ratio.numerator, match, window, by)
    denominator = _recorded_terms(ratio.denominator, match, window, by)
    share = f"{_or_zero(numerator, denominator)} / ({denominator} > 0)"
    if ratio.complement:
        share = f"1 - {share}"
    return f"clamp({share}, 0, 1)"


def recorded_count_promql(
    metric: str, window: str, window_s: float, match: Mapping[str, Matcher], by: tuple[str, ...]
) -> str:
    """How many ``metric`` events over a long ``window``, from the recorded 5m rate."""
    return f"{_recorded_terms((Count(metric),), match, window, by)} * {number(window_s)}"


def count_promql(
    metric: str,
    window: str,
    match: Mapping[str, Matcher],
    *,
    fn: str = "increase",
    by: tuple[str, ...] = (),
    offset: str | None = None,
) -> str:
    """The count (``increase``) or rate of one counter family's matching series, summed ``by``:
    volume guards, journeys started, failing checks."""
    return _terms((Count(metric),), match, window, fn, by, offset)


def quantile_promql(
    q: float,
    window: str,
    match: Mapping[str, Matcher],
    *,
    offset: str | None = None,
    fn: str = "rate",
    by: tuple[str, ...] = (names.JOURNEY, names.STEP),
) -> str:
    """The ``q`` quantile of step durations, per step (and per channel when ``by`` says so):
    buckets are never summed across steps (each step has its own ``le`` layout)."""
    _per_step(by)
    buckets = selector(f"{names.STEP_DURATION}_bucket", **match)
    summed = f"sum by ({', '.join((*by, 'le'))})"
    return f"histogram_quantile({q:g}, {summed} ({_range(buckets, window, fn, offset)}))"


def changes_promql(sel: str, window: str, offset: str | None = None) -> str:
    """How often ``sel`` changed value inside ``window`` (a step's target T, whose change is a
    change of its bucket layout)."""
    return _range(sel, window, "changes", offset)


def bucket_rate_promql(
    window: str,
    match: Mapping[str, Matcher],
    *,
    offset: str | None = None,
    by: tuple[str, ...] = (names.JOURNEY, names.STEP, names.CHANNEL),
) -> str:
    """The duration buckets' rates per step, channel and ``le`` (recorded once per step and
    window, and every quantile derived from the record: ``recorded_quantile_promql``)."""
    buckets = selector(f"{names.STEP_DURATION}_bucket", **match)
    summed = f"sum by ({', '.join((*by, 'le'))})"
    return f"{summed} ({_range(buckets, window, 'rate', offset)})"


def recorded_quantile_promql(
    q: float, record: str, match: Mapping[str, Matcher], *, by: tuple[str, ...]
) -> str:
    """The ``q`` quantile from recorded bucket rates (``bucket_rate_promql``), per step (``by``
    journey, step) or per channel (journey, step, channel); never across steps."""
    _per_step(by)
    summed = f"sum by ({', '.join((*by, 'le'))})"
    return f"histogram_quantile({q:g}, {summed} ({selector(record, **match)}))"


def _per_step(by: tuple[str, ...]) -> None:
    if names.JOURNEY not in by or names.STEP not in by:
        raise ValueError("a quantile is always per journey and step")


def _weighted(terms: list[tuple[str, float]]) -> str:
    total = sum(w for _, w in terms)
    inner = " + ".join(f"{number(w / total)} * ({expr})" for expr, w in terms)
    return f"100 * ({inner})"


def _burn_conditions(
    spec: Spec,
    journey: Journey,
    steps: tuple[Step, ...],
    window: str,
    fn: str,
    by: tuple[str, ...],
    match: Mapping[str, Matcher],
) -> list[str]:
    """PromQL conditions (series present = burning) of every objective of ``steps``, grouped by
    objective so one condition covers every step or check sharing it."""
    conditions: list[str] = []
    goods: dict[float, list[str]] = {}
    checks: dict[float, list[tuple[str, str]]] = {}
    for step in steps:
        goods.setdefault(spec.objectives(journey, step).good_ratio, []).append(step.name)
        for check in step.checks:
            objective = spec.check_objective(journey, step, check)
            checks.setdefault(objective, []).append((step.name, check.name))
    for objective, members in goods.items():
        sel = {**match, names.STEP: _alternatives(members)}
        bad = promql(BAD, window, sel, fn=fn, by=by)
        conditions.append(f"{bad} > {number(page_share(objective))}")
    for objective, pairs in checks.items():
        sel = {
            **match,
            names.STEP: _alternatives(sorted({s for s, _ in pairs})),
            names.CHECK: _alternatives(sorted({c for _, c in pairs})),
        }
        failed = promql(ACCURACY_FAIL, window, sel, fn=fn, by=(*by, names.CHECK))
        worst = f"max by ({', '.join(by)})" if by else "max"
        conditions.append(f"{worst} ({failed} > {number(page_share(objective))})")
    return conditions


def _alternatives(values: list[str]) -> Matcher:
    return values[0] if len(values) == 1 else Re("|".join(values))


def score_promql(
    spec: Spec,
    journey: Journey,
    steps: tuple[Step, ...],
    window: str,
    match: Mapping[str, Matcher],
    *,
    fn: str = "rate",
    by: tuple[str, ...] = (names.STEP,),
) -> str:
    """The CX score of ``steps`` (one series per step when ``by`` has ``step``, else pooled),
    with the catalogue's rules for steps without checks and for page-severity burns."""
    if names.STEP in by:
        with_checks = tuple(s for s in steps if s.checks)
        without = tuple(s for s in steps if not s.checks)
        parts = [
            _score(spec, journey, group, window, fn, by, match)
            for group in (with_checks, without)
            if group
        ]
        return parts[0] if len(parts) == 1 else " or ".join(f"({p})" for p in parts)
    return _score(spec, journey, steps, window, fn, by, match)


def _score(
    spec: Spec,
    journey: Journey,
    steps: tuple[Step, ...],
    window: str,
    fn: str,
    by: tuple[str, ...],
    match: Mapping[str, Matcher],
) -> str:
    weights = spec.defaults.score
    sel = {**match, names.STEP: _alternatives([s.name for s in steps])}
    if len(steps) == len(journey.steps) and names.STEP not in by:
        sel = dict(match)
    terms = [
        (promql(APDEX, window, sel, fn=fn, by=by), weights.apdex),
        (promql(SUCCESS, window, sel, fn=fn, by=by), weights.success),
    ]
    if any(s.checks for s in steps):
        terms.append((promql(ACCURACY, window, sel, fn=fn, by=by), weights.accuracy))
    score = _weighted(terms)
    conditions = _burn_conditions(spec, journey, steps, window, fn, by, match)
    burning = " or ".join(f"({c})" for c in conditions)
    on = f"on ({', '.join(by)})"
    if names.STEP not in by:
        burning = f"count({burning}) > 0"
        on = "on ()"
    return f"(clamp_max({score}, {number(SCORE_CAP)}) and {on} ({burning})) or {score}"


# ---------------------------------------------------------------------------------------------
# docs/indicators.md


def markdown_table() -> str:
    """The catalogue's indicators as the Markdown table docs/indicators.md carries: the step
    ratios, then the voice of the customer (per journey, and per last step for the scores)."""
    rows = ["| indicator | definition |", "|---|---|"]
    indicators: list[Ratio | Score] = [*CATALOGUE, *SCORES, COMPLAINT_RATE]
    rows += [f"| {r.title} (`{r.name}`) | {r.definition} |" for r in indicators]
    return "\n".join(rows) + "\n"


# ---------------------------------------------------------------------------------------------
# (d) Dashboard forms for the manager's views: period over period, customers affected as counts,
# feedback (NPS/CSAT), the transition matrix. Kept apart from the definitions above: they only
# combine them, and the rules do not read them.

#: Weeks are the manager's period: week-over-week panels shift by this much.
PERIOD_OFFSET: Final = "7d"
_FRUSTRATED = names.TIMELINESS_CLASSES[2]


@dataclass(frozen=True)
class Tally:
    """How many customers something happened to: ``terms`` counted (``increase``, rounded:
    Prometheus extrapolates, and a count of customers has no fraction), minus ``minus``."""

    name: str
    title: str
    terms: tuple[Count, ...]
    definition: str
    minus: tuple[Count, ...] = ()


FAILED_STEPS = Tally(
    "failed_steps", "failed steps", (_steps(outcome=_ERROR),), "steps with outcome error"
)
FRUSTRATED_STEPS = Tally(
    "frustrated_steps",
    "frustrated steps",
    (_steps(outcome=_OK, timeliness=_FRUSTRATED),),
    "ok steps slower than the tolerating threshold (Apdex frustrated, errors aside)",
)
BAD_STEPS = Tally(
    "bad_steps",
    "customers with a bad step",
    (_steps(),),
    "steps − good steps (late, wrong or failed)",
    minus=(Count(names.GOOD_STEPS),),
)
FAILED_CHECKS = Tally(
    "failed_checks",
    "failed accuracy checks",
    (Count(names.ACCURACY_CHECKS, ((names.RESULT, _FAIL),)),),
    "accuracy checks with result fail",
)
TALLIES: Final = (FAILED_STEPS, FRUSTRATED_STEPS, BAD_STEPS, FAILED_CHECKS)


def tally_promql(
    tally: Tally,
    window: str,
    match: Mapping[str, Matcher],
    *,
    by: tuple[str, ...] = (),
    offset: str | None = None,
) -> str:
    """``tally`` over ``window`` as a whole number, summed ``by`` (``match`` labels a family
    lacks are dropped, as in ``promql``)."""

    def kept(terms: tuple[Count, ...]) -> dict[str, Matcher]:
        families = [family_labels(t.metric) for t in terms]
        return {k: v for k, v in match.items() if all(k in f for f in families)}

    counted = _terms(tally.terms, kept(tally.terms), window, "increase", by, offset)
    if tally.minus:
        less = _terms(tally.minus, kept(tally.minus), window, "increase", by, offset)
        counted = f"clamp_min({counted} - ({less} or 0 * {counted}), 0)"
    return f"round({counted})"


def abandoned_promql(
    journey: Journey,
    window: str,
    match: Mapping[str, Matcher],
    *,
    offset: str | None = None,
) -> str:
    """Journeys started in ``window`` that did not finish their last step ok, as a whole number
    (by journey)."""
    by = (names.JOURNEY,)
    j = {**match, names.JOURNEY: journey.name}
    started = _terms((Count(names.JOURNEYS_STARTED),), j, window, "increase", by, offset)
    last = {**j, names.STEP: journey.steps[-1].name}
    done = _terms((_steps(outcome=_OK),), last, window, "increase", by, offset)
    return f"round(clamp_min({started} - ({done} or 0 * {started}), 0))"


def change_promql(current: str, baseline: str, *, relative: bool = True) -> str:
    """``current`` against ``baseline`` (relative change, or the difference for ratios). Where
    ``current`` has a series but ``baseline`` has none the answer is NaN, which the dashboards
    show as "no baseline yet"; where neither has one, no series ("no traffic")."""
    change = f"({current}) - ({baseline})"
    if relative:
        change = f"({current}) / (({baseline}) > 0) - 1"
    return f"({change}) or (({current}) * 0 + NaN)"


def quantile_over_range_promql(
    q: float, window: str, match: Mapping[str, Matcher], *, offset: str | None = None
) -> str:
    """The ``q`` quantile of step durations over a whole ``window`` (``increase`` of the
    buckets), per step: the form the period-over-period panels compare."""
    return quantile_promql(q, window, match, offset=offset, fn="increase")


def long_ratio_promql(
    ratio: Ratio, window: str, match: Mapping[str, Matcher], *, by: tuple[str, ...] = ()
) -> str:
    """``ratio`` over a long window (28 days) from the recorded 5m rates: the 28-day panels."""
    return recorded_promql(ratio, window, match, by=by)


def long_count_promql(
    metric: str, window: str, window_s: float, match: Mapping[str, Matcher], by: tuple[str, ...]
) -> str:
    """A count over a long window from the recorded 5m rate, rounded."""
    return f"round({recorded_count_promql(metric, window, window_s, match, by)})"


# ---------------------------------------------------------------------------------------------
# (e) Voice of the customer: NPS, CSAT and the complaint rate, each defined once here and derived
# into the analyzer's numbers (``score_value``, ``complaint_value``), the rules of
# ``cxmetrics.rules.feedback`` and the dashboard panels (``feedback_promql``, ``complaint_promql``).


@dataclass(frozen=True)
class Score:
    """A feedback score over the responses of one ``scale``: 100 × (responses scoring in
    ``good`` − responses scoring in ``bad``) / responses — NPS in points (−100 to 100), CSAT in
    percent (0 to 100). No responses: None / no series."""

    name: str
    title: str
    scale: str
    good: tuple[int, ...]
    bad: tuple[int, ...]
    definition: str

    @property
    def floor(self) -> float:
        return -100.0 if self.bad else 0.0


NPS = Score(
    "nps",
    "NPS",
    "nps",
    (9, 10),
    tuple(range(7)),
    "100 × (promoters (9–10) − detractors (0–6)) / nps responses, from −100 to 100",
)
CSAT = Score(
    "csat", "CSAT", "csat", (4, 5), (), "100 × csat responses scoring 4 or 5 / csat responses (%)"
)
SCORES: Final = (NPS, CSAT)
#: The feedback category that is a complaint.
COMPLAINT: Final = "problem"
COMPLAINT_RATE = Ratio(
    "complaint_rate",
    "complaint rate",
    (Count(names.FEEDBACK_TOPICS, ((names.CATEGORY, COMPLAINT),)),),
    (Count(names.JOURNEYS_STARTED),),
    "feedback of category problem (complaints) / journeys started, per journey",
    per="journey",
)


def score_value(score: Score, responses: Mapping[int, int]) -> float | None:
    """``score`` over response counts by score (of ``score.scale``); None without responses."""
    total = sum(responses.values())
    if total <= 0:
        return None
    good = sum(n for s, n in responses.items() if s in score.good)
    bad = sum(n for s, n in responses.items() if s in score.bad)
    return 100.0 * (good - bad) / total


def complaint_value(complaints: int, started: int) -> float | None:
    """``COMPLAINT_RATE`` of a journey's counts, clamped to [0, 1]; None when none started."""
    return clamp(complaints / started) if started > 0 else None


def _scores(values: tuple[int, ...]) -> Matcher:
    return Re("|".join(str(v) for v in values))


def responses_promql(
    score: Score,
    window: str,
    match: Mapping[str, Matcher],
    *,
    by: tuple[str, ...] = (names.JOURNEY,),
    offset: str | None = None,
    scores: tuple[int, ...] | None = None,
) -> str:
    """Responses of ``score.scale`` (scoring in ``scores``, else any) over ``window``, summed
    ``by`` (``increase``: a count)."""
    labels: dict[str, Matcher] = {**match, names.SCALE: score.scale}
    if scores is not None:
        labels[names.SCORE] = _scores(scores)
    kept = {k: v for k, v in labels.items() if k in family_labels(names.FEEDBACK)}
    return _terms((Count(names.FEEDBACK),), kept, window, "increase", by, offset)


def feedback_promql(
    score: Score,
    window: str,
    match: Mapping[str, Matcher],
    *,
    by: tuple[str, ...] = (names.JOURNEY,),
    offset: str | None = None,
) -> str:
    """``score`` as PromQL over ``window``, summed ``by`` (journey; or step: by the step the
    customer had reached): no series without responses, clamped to its range."""
    total = responses_promql(score, window, match, by=by, offset=offset)
    good = responses_promql(score, window, match, by=by, offset=offset, scores=score.good)
    net = f"({good} or 0 * {total})"
    if score.bad:
        bad = responses_promql(score, window, match, by=by, offset=offset, scores=score.bad)
        net = f"({net} - ({bad} or 0 * {total}))"
    return f"clamp(100 * {net} / ({total} > 0), {number(score.floor)}, 100)"


def complaint_promql(
    window: str,
    match: Mapping[str, Matcher],
    *,
    by: tuple[str, ...] = (names.JOURNEY,),
    offset: str | None = None,
) -> str:
    """``COMPLAINT_RATE`` over ``window``, summed ``by``: no series when no journey started.
    ``match`` labels either family lacks (``step``) are dropped from both sides."""
    [complaints], [started] = COMPLAINT_RATE.numerator, COMPLAINT_RATE.denominator
    common = {
        k: v
        for k, v in match.items()
        if k in family_labels(complaints.metric) and k in family_labels(started.metric)
    }
    num = _terms((complaints,), common, window, "increase", by, offset)
    den = _terms((started,), common, window, "increase", by, offset)
    return f"clamp({_or_zero(num, den)} / ({den} > 0), 0, 1)"


def transitions_promql(window: str, match: Mapping[str, Matcher]) -> str:
    """Journey instances moved from each step to each step (skips, loops and back-steps
    included) over ``window``, rounded: the from → to matrix."""
    kept = {k: v for k, v in match.items() if k in family_labels(names.TRANSITIONS)}
    moved = _range(selector(names.TRANSITIONS, **kept), window, "increase", None)
    return f"round(sum by (from_step, to_step) ({moved}))"


STARTED = Tally("started", "journeys started", (Count(names.JOURNEYS_STARTED),), "journeys started")


# ---------------------------------------------------------------------------------------------
# (f) End-to-end journey time (``cx_journey_duration_seconds``): the live form of
# ``cxmetrics.analysis.journey_time`` (first step start to last step end), per journey.


def journey_time_promql(
    q: float | None,
    window: str,
    match: Mapping[str, Matcher],
    *,
    by: tuple[str, ...] = (names.JOURNEY,),
    offset: str | None = None,
) -> str:
    """The ``q`` quantile of end-to-end journey times over ``window`` (all channels unless
    ``by`` has ``channel``), or their mean (``q`` None: the histogram's sum over its count,
    exact); no series when no instance finished."""
    kept = {k: v for k, v in match.items() if k in family_labels(names.JOURNEY_DURATION)}
    count = _range(selector(f"{names.JOURNEY_DURATION}_count", **kept), window, "increase", offset)
    finished = f"({_by(by)} ({count}) > 0)"
    if q is None:
        total = _range(
            selector(f"{names.JOURNEY_DURATION}_sum", **kept), window, "increase", offset
        )
        return f"{_by(by)} ({total}) / {finished}"
    buckets = _range(
        selector(f"{names.JOURNEY_DURATION}_bucket", **kept), window, "increase", offset
    )
    quantile = f"histogram_quantile({q:g}, sum by ({', '.join((*by, 'le'))}) ({buckets}))"
    return f"{quantile} and on ({', '.join(by)}) {finished}"
