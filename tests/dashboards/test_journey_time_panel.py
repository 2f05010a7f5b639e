"""The journey overview's journey-time panels on a real Prometheus, against hand-computed values.

Ten journeys of ``buy`` (``tests.helpers.feedback``'s spec) finish, backfilled as the runtime's
``cx_journey_duration_seconds`` histogram: five on the app after 3 s each (minutes 2-6), then
five on the web after 20 s each (minutes 12-16). Over the range that holds them:

- mean = (5 x 3 + 5 x 20) / 10 = 11.5 s, exact (the histogram's sum over its count);
- p50: rank 5 of 10 is the top of the (2.5, 5] bucket, which holds the first five: 5.0 s;
- p90: rank 9 lies 4 of 5 into the (10, 30] bucket: 10 + 20 x 4/5 = 26.0 s;
- the web channel alone: mean 20 s;
- the last 8 minutes (web only, all in (10, 30]): p50 20 s, p90 28 s, whatever ``increase``
  extrapolates (a quantile does not change when every bucket is scaled alike);
- the app channel over the last 5 minutes, in which none of its journeys finished: no value
  (``histogram_quantile`` of zero increases is NaN, which a stat panel would show as such).
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Iterator

import pytest

from cxmetrics._binaries import PROMETHEUS, PROMTOOL, require_binary
from cxmetrics.analysis import promapi
from cxmetrics.dashboards import build_dashboards
from cxmetrics.local import stack
from cxmetrics.records.openmetrics import Backfill
from cxmetrics.spec import names
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.model import Spec
from tests.helpers import feedback as fx
from tests.helpers.grafana_variables import substitute

pytestmark = pytest.mark.slow  # starts Prometheus
RESOLUTION = 60.0
SPAN = "3h"  # holds every sample


@pytest.fixture(scope="module")
def spec() -> Spec:
    return parse_spec(fx.SPEC, "<spec>")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float]]:
    """(Prometheus URL, time of the last sample)."""
    promtool = require_binary(PROMTOOL)
    require_binary(PROMETHEUS)
    work = tmp_path_factory.mktemp("journey-time")
    t0 = (time.time() // RESOLUTION) * RESOLUTION - 2 * 3600
    fill = Backfill(RESOLUTION)
    end = t0
    for channel, seconds, first_minute in (("app", 3.0, 2), ("web", 20.0, 12)):
        labels = (
            (names.SERVICE, fx.SERVICE),
            (names.JOURNEY, fx.JOURNEY),
            (names.CHANNEL, channel),
        )
        for minute in range(first_minute, first_minute + 5):
            end = t0 + RESOLUTION * minute
            fill.observe(
                names.JOURNEY_DURATION, names.JOURNEY_DURATION_BUCKETS, labels, end, seconds
            )
    fill.write(work / "times.om")
    done = subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(work / "times.om"),
            work / "data",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    server = stack.prometheus(work, [])
    with server.start(60):
        yield server.url, math.ceil(end / RESOLUTION) * RESOLUTION


def _panel(spec: Spec, title: str) -> list[tuple[str, str]]:
    """(legend, query) of each target of the overview panel ``title``."""
    boards = {b["uid"]: b for b in build_dashboards(spec)}
    [panel] = [p for p in boards[f"cx-{fx.JOURNEY}-overview"]["panels"] if p["title"] == title]
    return [(t["legendFormat"], t["expr"]) for t in panel["targets"]]


def _read(url: str, expr: str, at: float, **variables: str) -> list[float]:
    query = substitute(expr, window=SPAN, service=fx.SERVICE, **variables)
    return [float(r["value"][1]) for r in promapi.query(url, query, time_s=at)]


def test_the_journey_time_panel_gives_the_hand_computed_mean_and_quantiles(
    spec: Spec, loaded: tuple[str, float]
) -> None:
    url, at = loaded
    got = {legend: _read(url, expr, at) for legend, expr in _panel(spec, "Journey time")}
    assert got == {"mean": [11.5], "p50": [5.0], "p90": pytest.approx([26.0], abs=1e-9)}
    web = {
        legend: _read(url, expr, at, channel="web") for legend, expr in _panel(spec, "Journey time")
    }
    assert web["mean"] == [20.0]


def test_a_channel_with_no_journey_finished_reads_no_value_rather_than_nan(
    spec: Spec, loaded: tuple[str, float]
) -> None:
    url, at = loaded
    for legend, expr in _panel(spec, "Journey time"):
        assert _read(url, expr.replace("$__range", "5m"), at, channel="app") == [], legend


def test_the_journey_time_over_time_panel_reads_each_interval(
    spec: Spec, loaded: tuple[str, float]
) -> None:
    url, at = loaded
    series = {
        legend: _read(url, expr, at, rate_interval="8m")
        for legend, expr in _panel(spec, "Journey time over time")
    }
    assert series == {"p50": pytest.approx([20.0]), "p90": pytest.approx([28.0])}
