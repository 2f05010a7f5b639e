"""Contact-centre indicators in the analyzer: the hand-computed fixture of
``tests.helpers.calls``, the service-level defect, repeat judgments and classification edges."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cxmetrics.analysis import contact
from cxmetrics.analysis.indicators import compute
from cxmetrics.analysis.sources import from_events
from cxmetrics.exposition.eventlog import read_log
from cxmetrics.instrument.events import ContactRecord
from cxmetrics.instrument.redaction import hmac_redactor
from cxmetrics.records.importer import import_calls
from cxmetrics.spec.load import load_spec
from cxmetrics.spec.model import Contact, Spec
from tests.helpers.calls import EXPECTED, EXPECTED_WITH_SHORT, UNJUDGED, rows, write_csv
from tests.helpers.paths import ROOT

SPEC = ROOT / "tests" / "data" / "contact_centre.yaml"
REDACT = hmac_redactor(b"fixture-key")
T0 = 1_760_000_000.0


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec(SPEC)


def _import(spec: Spec, tmp_path: Path, records: list[dict[str, object]]) -> Path:
    export = write_csv(tmp_path / "calls.csv", records)
    log = tmp_path / "events.jsonl"
    with open(log, "wb") as events:
        report = import_calls(spec, export, "csv", REDACT, events=events)
    assert report.rejected == 0, report.problems
    return log


def test_fixture_equals_hand_computed_in_the_analyzer_and_the_import_report(
    spec: Spec, tmp_path: Path
) -> None:
    export = write_csv(tmp_path / "calls.csv", rows(T0) + rows(T0, "care_all"))
    events = io.BytesIO()
    report = import_calls(spec, export, "csv", REDACT, events=events)
    log = tmp_path / "events.jsonl"
    log.write_bytes(events.getvalue())
    read = read_log(log)
    assert read.skipped == 0
    analyzed = contact.from_events(spec, read.events)
    for journey, expected in (("care", EXPECTED), ("care_all", EXPECTED_WITH_SHORT)):
        for counts in (analyzed[journey], report.counts[journey]):
            got = {r.name: r.value for r in contact.view(spec.journey(journey), counts)}
            assert got == pytest.approx(expected, abs=1e-12)
            assert counts.unjudged == UNJUDGED


def test_three_highs_three_lows_against_objectives(spec: Spec, tmp_path: Path) -> None:
    read = read_log(_import(spec, tmp_path, rows(T0)))
    view = contact.view(spec.journey("care"), contact.from_events(spec, read.events)["care"])
    verdicts = {r.name: (r.direction, r.objective, r.met) for r in view}
    assert verdicts == {
        "answer_rate": ("high", 0.9, False),  # 62.5%
        "service_level": ("high", 0.8, False),  # 57.1%
        "satisfaction": ("high", 0.8, False),  # 66.7%
        "transfer_rate": ("low", 0.1, False),  # 20%
        "ticket_rate": ("low", 0.25, True),  # 20%
        "complaint_rate": ("low", 0.02, False),  # 20%
        "first_contact_resolution": ("high", 0.7, True),  # 75%
        "abandon_rate": (None, None, None),
        "asa": (None, None, None),
        "aht": (None, None, None),
        "p90_handle": (None, None, None),
    }


def test_service_level_counts_abandoned_calls_as_not_answered_in_time(
    spec: Spec, tmp_path: Path
) -> None:
    """Measured on main: with a ``call_answered`` target of 25 s as the service level, two calls
    abandoned after 3 s and 8 s (marked failed) counted as answered on time, and three calls
    answered after 30-50 s as late: 40%. The true service level is 0%: nobody was answered
    within 20 s. Imported, abandoned calls are errors of the answer step and stay in the
    service level's denominator."""
    calls = [
        ("a1", 0.0, None, 3.0),
        ("a2", 10.0, None, 18.0),
        ("x1", 20.0, 50.0, 200.0),
        ("x2", 30.0, 70.0, 300.0),
        ("x3", 40.0, 90.0, 400.0),
    ]
    records: list[dict[str, object]] = [
        {
            "call_id": call_id,
            "customer_ref": call_id,
            "queue": queue,
            "offered_at": T0 + offered,
            "answered_at": None if answered is None else T0 + answered,
            "ended_at": T0 + ended,
        }
        for queue in ("care", "care_all")
        for call_id, offered, answered, ended in calls
    ]
    for record in records:
        for column in ("transferred", "outcome", "wrap_code", "survey_score"):
            record[column] = None
    read = read_log(_import(spec, tmp_path, records))
    counts = contact.from_events(spec, read.events)
    for journey in ("care", "care_all"):  # the 3 s abandon is short: out of care's denominator
        service = next(
            r
            for r in contact.view(spec.journey(journey), counts[journey])
            if r.name == "service_level"
        )
        assert service.value == 0.0
    steps = compute(spec, from_events(spec, read.events, step=3600.0).total())
    assert steps.step("care", "call_answered").timeliness == 0.0


def _call(customer: str | None, offered: float, end: float, answered: bool = True) -> ContactRecord:
    return ContactRecord(
        time=end,
        journey="care",
        channel="phone",
        journey_id=f"{customer}-{offered}",
        offered=offered,
        disposition="answered" if answered else "abandoned",
        wait=1.0 if answered else end - offered,
        handle=end - offered - 1.0 if answered else None,
        customer_ref=customer,
    )


def _resolutions(
    spec: Spec, calls: list[ContactRecord]
) -> tuple[dict[tuple[str, ...], float], int]:
    counts = contact.from_events(spec, calls)["care"]
    return counts.series.get("cx_contact_resolutions_total", {}), counts.unjudged


def test_repeat_window_edges(spec: Spec) -> None:
    hour = 3600.0
    # A calls again exactly when the window closes (a repeat), B one second later (not one).
    calls = [
        _call("a", 0, 100),
        _call("b", 10, 100),
        _call("a", 100 + hour, 100 + hour + 50),
        _call("b", 101 + hour, 101 + hour + 50),
        _call("z", 3 * hour, 3 * hour + 10),  # closes the others' windows
    ]
    series, unjudged = _resolutions(spec, calls)
    # a's first call: repeat; b's first: first contact; a's and b's second calls: first contact
    # (their windows close at 2h + 150 s and 2h + 151 s, before the data ends at 3h + 10 s);
    # z's window is still open: unjudged.
    assert series == {("repeat",): 1.0, ("first_contact",): 3.0}
    assert unjudged == 1


def test_a_call_offered_while_the_first_is_in_progress_is_no_repeat(spec: Spec) -> None:
    calls = [_call("a", 0, 600), _call("a", 300, 400, answered=False), _call("z", 9000, 9001)]
    series, unjudged = _resolutions(spec, calls)
    assert series == {("first_contact",): 1.0}
    assert unjudged == 1  # z


def test_an_abandoned_call_back_is_a_repeat_and_calls_without_customer_are_never_judged(
    spec: Spec,
) -> None:
    calls = [
        _call("a", 0, 100),
        _call("a", 200, 210, answered=False),
        _call(None, 300, 400),
        _call("z", 9000, 9001),
    ]
    counts = contact.from_events(spec, calls)["care"]
    assert counts.series["cx_contact_resolutions_total"] == {("repeat",): 1.0}
    assert (counts.unjudged, counts.no_customer) == (1, 1)


@pytest.mark.parametrize(
    ("disposition", "wait", "expected"),
    [
        ("answered", 20.0, ("answered", "within")),  # at the threshold: within (le)
        ("answered", 20.001, ("answered", "beyond")),
        ("abandoned", 4.999, ("short_abandoned", "within")),
        ("abandoned", 5.0, ("abandoned", "within")),  # at the short threshold: not short
        ("abandoned", 40.0, ("abandoned", "beyond")),
        ("failed", 1.0, ("failed", "within")),
    ],
)
def test_classification_edges(disposition: str, wait: float, expected: tuple[str, str]) -> None:
    block = Contact.model_validate({"short_abandon": "5s", "service_level": {"threshold": "20s"}})
    record = ContactRecord(
        time=T0 + wait,
        journey="care",
        channel="phone",
        journey_id="c",
        offered=T0,
        disposition=disposition,  # type: ignore[arg-type]
        wait=wait,
        handle=0.0 if disposition == "answered" else None,
    )
    assert contact.classify(block, record) == expected


def test_empty_journey_has_no_values(spec: Spec) -> None:
    counts = contact.from_events(spec, [])["care"]
    assert all(r.value is None for r in contact.view(spec.journey("care"), counts))


def test_short_abandon_must_be_below_the_service_level_threshold() -> None:
    with pytest.raises(ValueError, match="short_abandon"):
        Contact.model_validate({"short_abandon": "30s", "service_level": {"threshold": "20s"}})
