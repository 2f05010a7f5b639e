"""The contact-centre dashboard (``cx-<journey>-contact``) on a real Prometheus: the
hand-computed calls of ``tests.helpers.calls`` backfilled by ``cxmetrics import``, then every
panel query of the generated dashboard, with Grafana's ``$__range`` (and ``$__rate_interval``)
set to the range holding the data, equals the hand-computed value (service level 4/7 and 4/8,
ASA 16 s, AHT 252 s, p90 510 s, FCR 3/4, the three highs and lows)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cxmetrics.analysis import promapi
from cxmetrics.dashboards import build_dashboards
from cxmetrics.spec import names
from cxmetrics.spec.load import load_spec
from tests.helpers.calls import EXPECTED, EXPECTED_WITH_SHORT, SPEC, backfilled
from tests.helpers.grafana_variables import substitute

JOURNEYS = {"care": EXPECTED, "care_all": EXPECTED_WITH_SHORT}
TOLERANCE = 1e-9
WINDOW = "3h"  # the range holding the fixture's calls (they span 6065 s)
SERVICE = load_spec(SPEC).service


def _boards() -> dict[str, dict[str, Any]]:
    return {b["uid"]: b for b in build_dashboards(load_spec(SPEC)) if b["uid"].endswith("-contact")}


def _stats(board: dict[str, Any]) -> dict[str, str]:
    """Each number panel's query, by indicator (its legend)."""
    return {
        p["targets"][0]["legendFormat"]: p["targets"][0]["expr"]
        for p in board["panels"]
        if p.get("type") == "stat"
    }


def test_one_contact_view_per_contact_journey_with_every_indicator() -> None:
    boards = _boards()
    assert sorted(boards) == ["cx-care-contact", "cx-care_all-contact"]
    for journey, expected in JOURNEYS.items():
        board = boards[f"cx-{journey}-contact"]
        assert _stats(board).keys() == expected.keys()
        annotation = board["annotations"]["list"][1]["expr"]
        assert names.ALERT_CONTACT_OBJECTIVE in annotation
        colours = {
            p["targets"][0]["legendFormat"]: p["fieldConfig"]["defaults"]["thresholds"]["steps"]
            for p in board["panels"]
            if p.get("type") == "stat"
        }
        # answer rate: objective 90% in care (green from 0.9), the spec's default 95% elsewhere
        green_from = colours["answer_rate"][-1]["value"]
        assert green_from == (0.9 if journey == "care" else 0.95)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float, Path]]:
    with backfilled(tmp_path_factory.mktemp("contact-dashboard")) as prometheus:
        yield prometheus


@pytest.mark.slow
@pytest.mark.parametrize("journey", sorted(JOURNEYS))
def test_panel_queries_equal_hand_computed(served: tuple[str, float, Path], journey: str) -> None:
    url, at, _ = served
    board = _boards()[f"cx-{journey}-contact"]
    got = {}
    for name, expr in _stats(board).items():
        assert "$__range" in expr
        result = promapi.query(url, substitute(expr, window=WINDOW, service=SERVICE), time_s=at)
        assert len(result) == 1, (name, result)
        got[name] = float(result[0]["value"][1])
    assert got == pytest.approx(JOURNEYS[journey], abs=TOLERANCE)
    curves = {
        t["legendFormat"]: t["expr"]
        for p in board["panels"]
        if p.get("type") == "timeseries"
        for t in p["targets"]
    }
    assert sorted(curves) == sorted(
        ["service level", "answer rate", "abandon rate", "ASA", "AHT", "p90 handle"]
    )
    over_window = {
        label: float(
            promapi.query(url, substitute(expr, window=WINDOW, service=SERVICE), time_s=at)[0][
                "value"
            ][1]
        )
        for label, expr in curves.items()
    }
    expected = JOURNEYS[journey]
    assert over_window == pytest.approx(
        {
            "service level": expected["service_level"],
            "answer rate": expected["answer_rate"],
            "abandon rate": expected["abandon_rate"],
            "ASA": expected["asa"],
            "AHT": expected["aht"],
            "p90 handle": expected["p90_handle"],
        },
        abs=TOLERANCE,
    )
