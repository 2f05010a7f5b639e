"""The catalogue is the only place indicator PromQL is written: rules and dashboards call it.

Also: the catalogue's page burn rate is the slowest page pair of the rules' burn table, and the
analyzer's values follow the catalogue's rules (errors, clamping, empty windows)."""

from __future__ import annotations

import re

import pytest

from cxmetrics.analysis import catalogue
from cxmetrics.analysis.counts import ERROR_SATISFIED, OK_SATISFIED, OK_TOLERATING, StepCounts
from cxmetrics.rules.policy import BURN_PAIRS
from tests.helpers.paths import ROOT

# What indicator PromQL is made of: a range function over a counter or bucket, a quantile.
HAND_WRITTEN = re.compile(r"histogram_quantile|\b(rate|increase|irate)\(|\[\$__r|\[\{window")


@pytest.mark.parametrize("package", ["rules", "dashboards", "report", "cli", "local"])
def test_no_indicator_promql_outside_the_catalogue(package: str) -> None:
    found = []
    for path in sorted((ROOT / "cxmetrics" / package).glob("*.py")):
        if path.name in ("synthetic.py", "expect.py"):  # promtool scenarios model Prometheus
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if HAND_WRITTEN.search(line) and not line.lstrip().startswith(("#", '"""')):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_page_burn_rate_is_the_slowest_page_pair() -> None:
    assert min(p.factor for p in BURN_PAIRS if p.severity == "page") == catalogue.PAGE_BURN_RATE


def _counts(classes: dict[int, int], good: int = 0) -> StepCounts:
    values = [0] * 6
    for index, n in classes.items():
        values[index] = n
    return StepCounts((1.0,), (0, 0), tuple(values), good)


def test_errors_are_never_satisfied_and_ratios_are_clamped() -> None:
    fast_errors = _counts({OK_SATISFIED: 60, ERROR_SATISFIED: 60}, good=60)
    assert catalogue.value(catalogue.APDEX, fast_errors) == 0.5
    assert catalogue.value(catalogue.TIMELINESS, fast_errors) == 0.5
    late_and_hung_up = _counts({OK_TOLERATING: 6, ERROR_SATISFIED: 4})
    assert catalogue.value(catalogue.TIMELINESS, late_and_hung_up) == 0.0
    assert catalogue.value(catalogue.APDEX, late_and_hung_up) == 0.3
    too_good = _counts({OK_SATISFIED: 10}, good=11)  # counters read at different moments
    assert catalogue.value(catalogue.GOOD, too_good) == 1.0
    assert catalogue.value(catalogue.BAD, too_good) == 0.0
    assert catalogue.value(catalogue.APDEX, _counts({})) is None
