"""Conversion windows: a step's finish is judged only after the journey's ``conversion_window``,
so calls still in progress at the end of the data are not counted as abandoned — exactly in the
analyzer, approximately in PromQL (its residual bias measured on a real Prometheus)."""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cxmetrics._binaries import PROMETHEUS, PROMTOOL, require_binary
from cxmetrics.analysis import catalogue, conversion, promapi
from cxmetrics.analysis.sources import from_events
from cxmetrics.instrument.events import Event, StepRecord
from cxmetrics.local import stack
from cxmetrics.records.openmetrics import Backfill
from cxmetrics.spec import names
from cxmetrics.spec.model import Spec

SPEC = Spec.model_validate(
    {
        "service": "calls",
        "channels": ["phone"],
        "journeys": [
            {
                "name": "contact_centre",
                "conversion_window": "5m",
                "steps": [
                    {"name": "call_answered", "target": "25s"},
                    {"name": "issue_resolved", "target": "5m"},
                ],
            }
        ],
    }
)
WINDOW = 300.0


def calls(t0: float, n: int, spacing: float = 10.0) -> list[Event]:
    """Call ``i`` offered at ``t0 + spacing·i``, answered 20 s later; every tenth abandons after
    the answer, the others are resolved 3-5 min after it."""
    events: list[Event] = []
    for i in range(n):
        answered = t0 + spacing * i + 20
        events.append(_step(i, "call_answered", answered, None, 20.0))
        if i % 10 != 9:
            resolved = answered + 180 + (i % 5) * 30
            events.append(
                _step(i, "issue_resolved", resolved, "call_answered", resolved - answered)
            )
    return sorted(events, key=lambda e: e.time)


def _step(i: int, step: str, end: float, previous: str | None, duration: float) -> StepRecord:
    return StepRecord(
        time=end,
        journey="contact_centre",
        step=step,
        channel="phone",
        journey_id=f"{i:032x}",
        previous_step=previous,
        duration=duration,
        outcome="ok",
        timeliness="satisfied",
        good=True,
    )


def run(t0: float, n: int) -> list[Event]:
    """``calls`` of a run that stops at the last call's answer, as the demo does: calls still
    being handled then never finish in the data."""
    events = calls(t0, n)
    cut = t0 + 10.0 * (n - 1) + 20
    return [e for e in events if e.time <= cut]


def test_in_flight_calls_are_not_abandoned() -> None:
    """Measured on main: the demo's contact centre showed 46.9% abandonment after call_answered,
    mostly calls still being handled when the run ended. Here 60 calls over 10 minutes, each
    resolved 3-5 min after its answer except every tenth (true abandonment 10%): the catalogue's
    abandonment over the run reads 45% (27 of 60 not continued: 6 abandoned, 21 in progress);
    judged after the 5-minute window, calls 0-29 are judged (3 abandoned: 10%), 30-59 are in
    flight."""
    t0 = 1_760_000_000.0
    events = run(t0, 60)
    counts = from_events(SPEC, events, step=3600.0).total().steps
    naive = catalogue.value(catalogue.ABANDONMENT, counts[("contact_centre", "call_answered")])
    assert naive == pytest.approx(27 / 60)
    result = conversion.judged(SPEC, events)[("contact_centre", "call_answered")]
    assert (result.finished, result.in_flight) == (30, 30)
    assert result.abandonment == pytest.approx(3 / 30)
    assert result.conversion == pytest.approx(27 / 30)


def test_a_late_continuation_is_not_a_conversion() -> None:
    t0 = 1_760_000_000.0
    events: list[Event] = [
        _step(1, "call_answered", t0, None, 1.0),
        _step(1, "issue_resolved", t0 + WINDOW + 1, "call_answered", 1.0),
        _step(2, "call_answered", t0, None, 1.0),
        _step(2, "issue_resolved", t0 + WINDOW, "call_answered", 1.0),
    ]
    result = conversion.judged(SPEC, events)[("contact_centre", "call_answered")]
    assert (result.finished, result.continued, result.converted) == (2, 1, 1)
    # The last step of the journey never converts, and its finishes are judged alike.
    last = conversion.judged(SPEC, events)[("contact_centre", "issue_resolved")]
    assert (last.finished, last.in_flight, last.conversion) == (0, 2, None)


def _backfill(events: list[Event], path: Path) -> None:
    """The step and transition counters the app would have exported, every 10 s."""
    filler = Backfill(10.0)
    for e in events:
        assert isinstance(e, StepRecord)
        labels = (
            (names.JOURNEY, e.journey),
            (names.STEP, e.step),
            (names.CHANNEL, e.channel),
            (names.OUTCOME, e.outcome),
            (names.TIMELINESS, e.timeliness),
        )
        filler.count(names.STEPS.removesuffix("_total"), labels, e.time)
        if e.previous_step is not None:
            move = (
                (names.JOURNEY, e.journey),
                (names.FROM_STEP, e.previous_step),
                (names.TO_STEP, e.step),
            )
            filler.count(names.TRANSITIONS.removesuffix("_total"), move, e.time)
    filler.write(path)


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, float, list[Event]]]:
    require_binary(PROMETHEUS)
    promtool = require_binary(PROMTOOL)
    work = tmp_path_factory.mktemp("conversion")
    t0 = (time.time() // 10) * 10 - 3 * 3600
    events = run(t0, 360)  # an hour of steady traffic from zero, cut at the last answer
    source = work / "calls.om"
    _backfill(events, source)
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(work / "data")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    server = stack.prometheus(work, [])
    with server.start(60):
        yield server.url, math.ceil(max(e.time for e in events) / 10) * 10, events


@pytest.mark.slow
def test_promql_conversion_window_residual_bias(
    prometheus: tuple[str, float, list[Event]],
) -> None:
    """A run from zero, read at its end over its whole length (the demo's case). Exact, judged
    after the window: 90%. PromQL without a window reads the calls in progress as lost (84.2%); with ``offset 5m`` on the finishes it reads high instead, by the continuations of the
    last 5 minutes' finishes that already happened (91.8%): closer, not exact — the
    residual bias of counters, which cannot tell which finish a transition belongs to."""
    url, at, events = prometheus
    judged = conversion.judged(SPEC, events)[("contact_centre", "call_answered")].conversion
    assert judged is not None
    assert judged == pytest.approx(0.9, abs=0.005)
    expr = conversion.promql("contact_centre", "call_answered", "issue_resolved", "2h", "5m")
    (row,) = promapi.query(url, expr, time_s=at)
    windowed = float(row["value"][1])
    (row,) = promapi.query(url, expr.replace(" offset 5m", ""), time_s=at)
    naive = float(row["value"][1])
    print(f"exact {judged:.4f}, PromQL windowed {windowed:.4f}, naive {naive:.4f}")
    assert naive < judged < windowed
    assert abs(windowed - judged) < abs(naive - judged)
    assert abs(windowed - judged) < 0.03


def test_end_to_end_journey_time_from_the_first_step_start() -> None:
    """Call i: answered step of 20 s ending at offered + 20, resolved 180 + 30·(i mod 5) s after
    its answer, a step of that duration: the journey takes 200-320 s end to end."""
    from cxmetrics.analysis.journey_time import journey_times

    times = journey_times(SPEC, calls(1_760_000_000.0, 10))["contact_centre"]
    expected = sorted(20 + 180 + 30 * (i % 5) for i in range(10) if i % 10 != 9)
    assert times.completed == 9
    assert times.mean == pytest.approx(sum(expected) / 9)
    assert times.p50 == pytest.approx(expected[4])
