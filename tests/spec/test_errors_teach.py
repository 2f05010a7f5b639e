"""Spec errors that teach: each suggested fix itself validates, suggestions come from the keys
valid where the mistake is, the path is the precise one, and ``validate`` runs every check the
other commands would."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from cxmetrics import SpecError
from cxmetrics.spec.load import parse_spec
from tests.helpers.paths import ROOT

CLI = ROOT / ".venv" / "bin" / "cxmetrics"

SPEC = """\
service: cards
channels: [app, web]
defaults:
  objectives:
    timeliness: 0.95
  regression:
    min_change: 0.10
journeys:
  - name: card_activation
    channels: [app]
    steps:
      - name: enter_card
        target: 500ms
"""


def issues_of(text: str) -> list[tuple[int | None, str, str, str | None]]:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, "cards.yaml")
    return [(i.line, i.field, i.message, i.hint) for i in caught.value.issues]


def test_a_ratio_written_as_a_percentage_suggests_the_share_and_the_fix_validates() -> None:
    bad = SPEC.replace("timeliness: 0.95", "timeliness: 95")
    assert issues_of(bad) == [
        (
            5,
            "defaults.objectives.timeliness",
            "95 is not a share between 0 and 1",
            "did you mean 0.95?",
        )
    ]
    fixed = bad.replace("timeliness: 95", "timeliness: 0.95")
    assert parse_spec(fixed).defaults.objectives.timeliness == 0.95


@pytest.mark.parametrize(
    ("written", "value"), [("10%", 0.10), ("'10%'", 0.10), ("0.1", 0.1), ("25 %", 0.25)]
)
def test_min_change_accepts_a_percentage(written: str, value: float) -> None:
    spec = parse_spec(SPEC.replace("min_change: 0.10", f"min_change: {written}"))
    assert spec.defaults.regression.min_change == value


def test_a_ratio_accepts_a_percentage_too() -> None:
    spec = parse_spec(SPEC.replace("timeliness: 0.95", "timeliness: 99.5%"))
    assert spec.defaults.objectives.timeliness == 0.995


def test_an_unknown_top_level_key_gets_no_nonsense_suggestion() -> None:
    assert issues_of(SPEC + "alerting: {email: ops@example.com}\n") == [
        (
            14,
            "alerting",
            "unknown field 'alerting'",
            "valid fields here: version, service, channels, default_channel, segments, reasons, "
            "dashboard_url, "
            "defaults, journeys",
        )
    ]


def test_a_near_miss_key_still_gets_its_suggestion() -> None:
    assert issues_of(SPEC.replace("channels: [app, web]", "chanels: [app, web]"))[0][3] == (
        "did you mean 'channels'?"
    )


def test_an_empty_files_suggestion_validates() -> None:
    ((line, field, message, hint),) = issues_of("")
    assert (line, field, message) == (1, "", "a spec is a YAML mapping")
    assert hint is not None and hint.startswith("start with: ")
    suggested = hint.removeprefix("start with: ")
    assert parse_spec(suggested).service == "my_app"


def test_an_undeclared_channel_in_a_journey_points_at_the_journeys_channels() -> None:
    assert issues_of(SPEC.replace("channels: [app]", "channels: [app, atm]")) == [
        (
            10,
            "journeys[card_activation].channels",
            "unknown channel 'atm'",
            "declared in the spec's channels: app, web",
        )
    ]


def test_a_near_miss_channel_in_a_journey_is_suggested() -> None:
    assert issues_of(SPEC.replace("channels: [app]", "channels: [wbe]"))[0][2:] == (
        "unknown channel 'wbe'",
        "did you mean 'web'?",
    )


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "validate", str(path)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
def test_validate_counts_in_words_people_read(tmp_path: Path) -> None:
    path = tmp_path / "cards.yaml"
    path.write_text(SPEC)
    result = validate(path)
    assert (result.returncode, result.stdout) == (
        0,
        f"ok: {path}: service cards, 1 journey, 1 step, 0 accuracy checks\n",
    )


@pytest.mark.slow
def test_validate_refuses_what_rules_would_refuse(tmp_path: Path) -> None:
    path = tmp_path / "cards.yaml"
    path.write_text(
        SPEC.replace(
            "    channels: [app]\n", "    regression: {baseline: offset 30s, window: 1m}\n"
        )
    )
    result = validate(path)
    assert result.returncode == 1
    assert result.stderr == (
        f"{path}:10: journeys[card_activation].regression.baseline: an offset baseline of 30s "
        "overlaps the 1m regression window it is compared with (offset the baseline by at least "
        "the window, e.g. 'baseline: 1d', or use 'trailing 6h')\n"
    )
    rules = subprocess.run(
        [str(CLI), "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert rules.returncode == 1


def test_every_value_suggestion_is_itself_valid() -> None:
    """Each 'did you mean <value>?' on a value, put in place of the value, validates."""
    cases = [
        SPEC.replace("timeliness: 0.95", "timeliness: 95"),
        SPEC.replace("timeliness: 0.95", "timeliness: 99.9"),
    ]
    for bad in cases:
        ((line, _field, _message, hint),) = issues_of(bad)
        assert hint is not None and hint.startswith("did you mean ")
        assert line is not None
        value = hint.removeprefix("did you mean ").rstrip("?")
        lines = bad.splitlines()
        key = lines[line - 1].split(":")[0]
        lines[line - 1] = f"{key}: {value}"
        assert yaml.safe_load(value) is not None
        parse_spec("\n".join(lines) + "\n")
