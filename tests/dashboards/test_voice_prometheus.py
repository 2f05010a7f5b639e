"""Voice of the customer, one definition in three forms, on a real Prometheus: the hand-computed
fixture of ``tests.helpers.feedback`` (NPS 40, CSAT 70%, complaint rate 0.15) as events and as
the counters the runtime would have exposed (backfilled with ``promtool tsdb
create-blocks-from openmetrics``):

- the analyzer (``indicators.compute`` over the events) gives the fixture's numbers,
- every query of the journey overview's "Voice of the customer" row, run by Prometheus over the
  range holding the data, gives the same numbers and the responses behind them,
- the feedback recording rules' expressions give the same numbers too.

Every series starts at 0 one sample before its first event and the query time is the last
sample, so ``increase`` reads no extrapolation: counts are whole and ratios exact."""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cxmetrics._binaries import PROMETHEUS, PROMTOOL, require_binary
from cxmetrics.analysis import promapi
from cxmetrics.analysis.counts import merge_windows
from cxmetrics.analysis.indicators import compute
from cxmetrics.analysis.sources import from_events
from cxmetrics.dashboards import build_dashboards
from cxmetrics.instrument.events import Event, FeedbackRecord, JourneyStarted
from cxmetrics.local import stack
from cxmetrics.records.openmetrics import Backfill
from cxmetrics.rules import build
from cxmetrics.spec import names
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.model import Spec
from tests.helpers import feedback as fx
from tests.helpers.grafana_variables import substitute

pytestmark = pytest.mark.slow
RESOLUTION = 60.0
SPAN = "3h"  # the dashboards' $__range: holds every sample
BASE = (
    (names.SERVICE, fx.SERVICE),
    (names.JOURNEY, fx.JOURNEY),
    (names.STEP, fx.LAST_STEP),
    (names.CHANNEL, "app"),
    (names.SEGMENT, "none"),
)


def _backfill(events: list[Event]) -> Backfill:
    fill = Backfill(RESOLUTION)
    labels: tuple[tuple[str, str], ...]
    for e in events:
        if isinstance(e, JourneyStarted):
            labels = (
                (names.SERVICE, fx.SERVICE),
                (names.JOURNEY, fx.JOURNEY),
                (names.CHANNEL, "app"),
                (names.SEGMENT, "none"),
            )
            fill.count(names.JOURNEYS_STARTED.removesuffix("_total"), labels, e.time)
        elif isinstance(e, FeedbackRecord) and e.scale is not None:
            labels = (*BASE, (names.SCALE, e.scale), (names.SCORE, str(e.score)))
            fill.count(names.FEEDBACK.removesuffix("_total"), labels, e.time)
        elif isinstance(e, FeedbackRecord):
            labels = (*BASE, (names.CATEGORY, str(e.category)), (names.REASON, "none"))
            fill.count(names.FEEDBACK_TOPICS.removesuffix("_total"), labels, e.time)
    return fill


@pytest.fixture(scope="module")
def spec() -> Spec:
    return parse_spec(fx.SPEC, "<spec>")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float, list[Event]]]:
    """(Prometheus URL, time of the last sample, the events)."""
    promtool = require_binary(PROMTOOL)
    require_binary(PROMETHEUS)
    work = tmp_path_factory.mktemp("voice")
    t0 = (time.time() // RESOLUTION) * RESOLUTION - 2 * 3600
    events = fx.events(t0)
    fill = _backfill(events)
    fill.write(work / "voice.om")
    done = subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(work / "voice.om"),
            str(work / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    at = math.ceil(max(e.time for e in events) / RESOLUTION) * RESOLUTION
    server = stack.prometheus(work, [])
    with server.start(60):
        yield server.url, at, events


def _one(url: str, expr: str, at: float) -> float:
    result = promapi.query(url, expr, time_s=at)
    assert len(result) == 1, (expr, result)
    return float(result[0]["value"][1])


def _voice_panels(spec: Spec) -> dict[str, str]:
    boards = {b["uid"]: b for b in build_dashboards(spec)}
    board: dict[str, Any] = boards[f"cx-{fx.JOURNEY}-overview"]
    titles = ("NPS", "NPS responses", "CSAT", "CSAT responses", "Complaint rate", "Complaints")
    panels = {p["title"]: p for p in board["panels"] if p["type"] != "row"}
    return {
        t: substitute(panels[t]["targets"][0]["expr"], window=SPAN, service=spec.service)
        for t in titles
    }


EXPECTED = {
    "NPS": fx.NPS,
    "NPS responses": 10.0,
    "CSAT": fx.CSAT,
    "CSAT responses": 10.0,
    "Complaint rate": fx.COMPLAINT_RATE,
    "Complaints": 3.0,
}


def test_the_analyzer_gives_the_hand_computed_voice(
    spec: Spec, loaded: tuple[str, float, list[Event]]
) -> None:
    _, _, events = loaded
    timeline = from_events(spec, events, step=60.0)
    row = compute(spec, merge_windows(timeline.windows)).journey(fx.JOURNEY)
    assert (row.feedback.nps, row.feedback.nps_responses) == (fx.NPS, 10)
    assert (row.feedback.csat, row.feedback.csat_responses) == (fx.CSAT, 10)
    assert (row.complaints, row.started) == (3, fx.STARTED)
    assert row.complaint_rate == pytest.approx(fx.COMPLAINT_RATE, abs=1e-12)


def test_the_overview_voice_panels_give_the_hand_computed_numbers(
    spec: Spec, loaded: tuple[str, float, list[Event]]
) -> None:
    url, at, _ = loaded
    got = {title: _one(url, expr, at) for title, expr in _voice_panels(spec).items()}
    assert got == pytest.approx(EXPECTED, abs=1e-9)


def test_the_feedback_recording_rules_give_the_same_numbers(
    spec: Spec, loaded: tuple[str, float, list[Event]]
) -> None:
    url, at, _ = loaded
    (group,) = [g for g in build(spec).groups if g.name == f"cxmetrics.{fx.JOURNEY}.feedback"]
    exprs = {r.record: r.expr.replace("[10m]", f"[{SPAN}]") for r in group.rules if r.record}
    window = "window"
    got = {
        "nps": _one(url, exprs[names.rec_feedback("nps", "score", window)], at),
        "nps_responses": _one(url, exprs[names.rec_feedback("nps", "responses", window)], at),
        "csat": _one(url, exprs[names.rec_feedback("csat", "score", window)], at),
        "complaint_rate": _one(url, exprs[names.REC_COMPLAINT_RATE], at),
    }
    assert got == pytest.approx(
        {"nps": fx.NPS, "nps_responses": 10, "csat": fx.CSAT, "complaint_rate": 0.15}, abs=1e-9
    )


def test_the_segment_panels_break_the_journey_down_by_segment(
    loaded: tuple[str, float, list[Event]],
) -> None:
    # with segments declared the overview gains a "By customer segment" row; the fixture's
    # journeys and responses carry no segment ("none"), so each panel has that one bar
    spec = parse_spec(fx.SPEC.replace("journeys:", "segments: [vip, mass]\njourneys:"), "<spec>")
    url, at, _ = loaded
    boards = {b["uid"]: b for b in build_dashboards(spec)}
    panels = {p["title"]: p for p in boards[f"cx-{fx.JOURNEY}-overview"]["panels"]}

    def by_segment(title: str) -> dict[str, float]:
        expr = substitute(panels[title]["targets"][0]["expr"], window=SPAN, service=spec.service)
        assert "by (segment)" in expr, expr
        return {
            r["metric"]["segment"]: float(r["value"][1])
            for r in promapi.query(url, expr, time_s=at)
        }

    assert by_segment("Journeys started by segment") == {"none": float(fx.STARTED)}
    assert by_segment("NPS by segment") == pytest.approx({"none": fx.NPS})
    # without declared segments the row is left out
    plain = {b["uid"]: b for b in build_dashboards(parse_spec(fx.SPEC, "<spec>"))}
    titles = {p["title"] for p in plain[f"cx-{fx.JOURNEY}-overview"]["panels"]}
    assert "By customer segment" not in titles
