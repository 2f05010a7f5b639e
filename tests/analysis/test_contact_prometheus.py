"""Contact-centre conformance on a real Prometheus: the hand-computed calls of
``tests.helpers.calls`` imported with ``cxmetrics import --backfill`` (``promtool tsdb
create-blocks-from openmetrics``), then every contact indicator of both fixture journeys (short
abandons out of / in the service level) read four ways, all equal to the hand-computed value:

- (a) the analyzer on the event log the same import wrote,
- (b) the recording rule's expression (``cxmetrics rules``' ``cxmetrics.<journey>.contact``
  group), evaluated by Prometheus at the last sample,
- (c) the dashboard query (``analysis.contact.queries``) over the range holding the data,
- (d) the import's own report.

Every series starts at 0 one sample before its first event and all share sample times, so
``increase``/``rate`` read no extrapolation: counts and ratios are exact (``TOLERANCE``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cxmetrics.analysis import contact, promapi
from cxmetrics.exposition.eventlog import read_log
from cxmetrics.rules import build
from cxmetrics.spec import names
from cxmetrics.spec.load import load_spec
from cxmetrics.spec.model import Spec
from tests.helpers.calls import EXPECTED, EXPECTED_WITH_SHORT, SPEC, backfilled

pytestmark = pytest.mark.slow
TOLERANCE = 1e-9
JOURNEYS = {"care": EXPECTED, "care_all": EXPECTED_WITH_SHORT}


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec(SPEC)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float, Path]]:
    """(Prometheus URL, time of the last sample, event log)."""
    with backfilled(tmp_path_factory.mktemp("contact")) as served:
        yield served


def _one(url: str, expr: str, at: float) -> float:
    result = promapi.query(url, expr, time_s=at)
    assert len(result) == 1, (expr, result)
    return float(result[0]["value"][1])


@pytest.mark.parametrize("journey", sorted(JOURNEYS))
def test_recording_rules_equal_hand_computed(
    spec: Spec, imported: tuple[str, float, Path], journey: str
) -> None:
    url, at, _ = imported
    group = next(g for g in build(spec).groups if g.name == f"cxmetrics.{journey}.contact")
    got = {}
    for rule in group.rules:
        if rule.record is None:
            continue  # the objective alerts: below
        name = rule.record.removeprefix(names.REC_CONTACT_PREFIX).split(":")[0]
        got[name] = _one(url, rule.expr, at)
    assert got.keys() == JOURNEYS[journey].keys()
    for name, expected in JOURNEYS[journey].items():
        assert got[name] == pytest.approx(expected, abs=TOLERANCE), name


@pytest.mark.parametrize("journey", sorted(JOURNEYS))
def test_dashboard_queries_equal_hand_computed(
    spec: Spec, imported: tuple[str, float, Path], journey: str
) -> None:
    url, at, _ = imported
    queries = contact.queries(spec.journey(journey), "3h", service=spec.service)
    got = {name: _one(url, expr, at) for name, expr in queries.items()}
    for name, expected in JOURNEYS[journey].items():
        assert got[name] == pytest.approx(expected, abs=TOLERANCE), name


def test_analyzer_on_the_event_log_equals_hand_computed(
    spec: Spec, imported: tuple[str, float, Path]
) -> None:
    _, _, events = imported
    log = read_log(events)
    # care: 8 starts, 8 answer steps, 5 handle steps, 8 calls, 3 surveys; care_all: no handle step
    assert (log.records, log.skipped) == ((8 + 8 + 5 + 8 + 3) + (8 + 8 + 8 + 3), 0)
    counts = contact.from_events(spec, log.events)
    for journey, expected in JOURNEYS.items():
        got = {r.name: r.value for r in contact.view(spec.journey(journey), counts[journey])}
        assert got == pytest.approx(expected, abs=TOLERANCE)
        assert counts[journey].unjudged == 1


def test_raw_counts_equal_the_file(imported: tuple[str, float, Path]) -> None:
    """The backfilled counters hold the file's calls, count for count (no extrapolation)."""
    url, at, _ = imported
    expr = f"sum by (journey, disposition) (increase({names.CONTACTS}[3h]))"
    got = {
        (r["metric"]["journey"], r["metric"]["disposition"]): float(r["value"][1])
        for r in promapi.query(url, expr, time_s=at)
    }
    for journey in JOURNEYS:
        assert got[(journey, "answered")] == 5
        assert got[(journey, "abandoned")] == 1
        assert got[(journey, "short_abandoned")] == 1
        assert got[(journey, "failed")] == 1


def test_objective_alerts_fire_only_with_enough_volume(
    spec: Spec, imported: tuple[str, float, Path]
) -> None:
    """``CxContactObjectiveMissed`` over the backfilled calls (each recorded series replaced by
    its rule's expression, Prometheus evaluating both): ``care`` (min_volume 5, min_responses 3)
    misses answer rate, service level, satisfaction, transfer and complaint rates, meets ticket
    rate and FCR; ``care_all`` misses the same but on 8 calls, below its default minimum of 50."""
    url, at, _ = imported
    firing = set()
    for group in build(spec).groups:
        if not group.name.endswith(".contact"):
            continue
        records = {r.record: r.expr for r in group.rules if r.record}
        for rule in group.rules:
            if rule.alert is None:
                continue
            expr = rule.expr
            for record, body in records.items():
                scope = f'service="{spec.service}",journey="{rule.labels["journey"]}"'
                expr = expr.replace(f"{record}{{{scope}}}", f"({body})")
            assert names.REC_CONTACT_PREFIX not in expr
            if promapi.query(url, expr, time_s=at):
                firing.add((rule.labels["journey"], rule.labels[names.INDICATOR]))
    assert firing == {
        ("care", "answer_rate"),
        ("care", "service_level"),
        ("care", "satisfaction"),
        ("care", "transfer_rate"),
        ("care", "complaint_rate"),
    }
