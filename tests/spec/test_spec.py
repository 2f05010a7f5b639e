"""The spec loader: valid specs load, every bad spec names file, line, field and a fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cxmetrics import SpecError, load_spec
from cxmetrics.spec.durations import parse_duration, prometheus_duration
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.model import Spec
from tests.helpers.paths import EXAMPLE_SPEC, ROOT

GOOD = """\
service: bank
journeys:
  - name: bill_inquiry
    steps:
      - name: login
        target: 800ms
      - name: bill_detail
        target: 1.5s
        checks:
          - name: total_matches_details
            kind: reconcile
"""


def test_example_spec_loads_with_defaults_resolved(example_spec: Spec) -> None:
    journey = example_spec.journey("bill_inquiry")
    assert journey.step_names == ("login", "bill_total", "bill_detail")
    detail = journey.step("bill_detail")
    assert detail.target == 1.5
    assert example_spec.tolerating(detail) == 6.0
    policy = example_spec.regression(journey, detail)
    assert (policy.min_change, policy.window, policy.baseline.mode, policy.baseline.window) == (
        0.10,
        600.0,
        "offset",
        86400.0,
    )
    assert policy.quantiles == (0.95, 0.5)
    contact = example_spec.journey("contact_centre")
    assert example_spec.objectives(contact).timeliness == 0.8
    assert example_spec.objectives(contact).accuracy == 0.999
    assert example_spec.channel_default == "app"
    assert journey.tags == {"stage": "retain"}


def test_overrides_merge_journey_then_step() -> None:
    spec = parse_spec(
        GOOD.replace("    steps:\n", "    regression: {min_change: 0.2, for: 1m}\n    steps:\n", 1)
    )
    journey = spec.journey("bill_inquiry")
    policy = spec.regression(journey, journey.step("login"))
    assert (policy.min_change, policy.for_, policy.window) == (0.2, 60.0, 600.0)


def test_scaled_spec_scales_targets_and_tolerating(example_spec: Spec) -> None:
    fast = example_spec.scaled(0.01)
    step = fast.journey("bill_inquiry").step("bill_detail")
    assert step.target == pytest.approx(0.015)
    assert fast.tolerating(step) == pytest.approx(0.06)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("800ms", 0.8),
        ("1.5s", 1.5),
        ("10m", 600),
        ("6h", 21600),
        ("1d", 86400),
        ("1w", 604800),
        (2, 2.0),
    ],
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(600, "10m"), (86400, "1d"), (90, "1m30s"), (0.25, "250ms"), (93784, "1d2h3m4s")],
)
def test_prometheus_durations(seconds: float, text: str | float) -> None:
    assert prometheus_duration(seconds) == text


def _messages(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "bank.yaml")
    return [str(issue) for issue in info.value.issues]


BAD = [
    # (what, spec text, expected messages exactly)
    (
        "typo in a step field",
        GOOD.replace("target: 800ms", "targte: 800ms"),
        [
            "bank.yaml:5: journeys[bill_inquiry].steps[login].target: required field is missing "
            "(add 'target:')",
            "bank.yaml:6: journeys[bill_inquiry].steps[login].targte: unknown field 'targte' "
            "(did you mean 'target'?)",
        ],
    ),
    (
        "bad duration",
        GOOD.replace("1.5s", "1.5 sec"),
        [
            "bank.yaml:8: journeys[bill_inquiry].steps[bill_detail].target: '1.5 sec' is not a duration;"
            " write a number and a unit, e.g. '800ms', '1.5s', '10m', '6h', '1d', '1w'"
        ],
    ),
    (
        "negative duration",
        GOOD.replace("800ms", "0s"),
        [
            "bank.yaml:6: journeys[bill_inquiry].steps[login].target: a duration must be positive, "
            "got '0s'"
        ],
    ),
    (
        "duplicate step",
        GOOD.replace("name: bill_detail", "name: login"),
        [
            "bank.yaml:4: journeys[bill_inquiry].steps: step 'login' is declared twice; "
            "names must be unique"
        ],
    ),
    (
        "bad name",
        GOOD.replace("name: bill_inquiry", "name: Bill-Inquiry"),
        [
            "bank.yaml:3: journeys[Bill-Inquiry].name: 'Bill-Inquiry' is not a valid name "
            "(use lower-case letters, digits and '_', starting with a letter (max 63))"
        ],
    ),
    (
        "unknown check kind",
        GOOD.replace("kind: reconcile", "kind: reconcil"),
        [
            "bank.yaml:11: journeys[bill_inquiry].steps[bill_detail].checks[total_matches_details].kind:"
            " 'reconcil' is not allowed (use 'check', 'reconcile' or 'consistency')"
        ],
    ),
    (
        "tolerating below target",
        GOOD.replace("target: 800ms", "target: 800ms\n        tolerating: 500ms"),
        [
            "bank.yaml:5: journeys[bill_inquiry].steps[login]: tolerating must be longer than target "
            "(default: 4 × target)"
        ],
    ),
    (
        "consistency check without against",
        GOOD.replace("kind: reconcile", "kind: consistency"),
        [
            "bank.yaml:10: journeys[bill_inquiry].steps[bill_detail].checks[total_matches_details]: "
            "a consistency check needs 'against': the fingerprint key to compare with"
        ],
    ),
    (
        "consistency against unknown step",
        GOOD.replace("kind: reconcile", "kind: consistency\n            against: bill_totl"),
        [
            "bank.yaml:4: journeys[bill_inquiry].steps: check 'total_matches_details' of step "
            "'bill_detail' is against unknown step 'bill_totl' (did you mean 'bill_detail'?)"
        ],
    ),
    (
        "unknown default channel",
        "default_channel: ap\nchannels: [app, web]\n" + GOOD,
        ["bank.yaml:1: default_channel: unknown channel 'ap' (did you mean 'app'?)"],
    ),
    (
        "objective out of range",
        GOOD.replace("kind: reconcile", "kind: reconcile\n            objective: 1.5"),
        [
            "bank.yaml:12: journeys[bill_inquiry].steps[bill_detail].checks[total_matches_details]."
            "objective: 1.5 is not a share between 0 and 1, such as 0.95 or '95%'"
        ],
    ),
    (
        "baseline not understood",
        "defaults:\n  regression:\n    baseline: yesterday please\n" + GOOD,
        [
            "bank.yaml:3: defaults.regression.baseline: baseline 'yesterday please' not understood; write "
            "'1d' (same window a day earlier), 'offset 7d' or 'trailing 6h'"
        ],
    ),
    (
        "trailing baseline shorter than window",
        "defaults:\n  regression:\n    baseline: trailing 5m\n    window: 10m\n" + GOOD,
        [
            "bank.yaml:2: defaults.regression: a trailing baseline must be longer than the regression "
            "window"
        ],
    ),
    (
        "no journeys",
        "service: bank\njourneys: []\n",
        ["bank.yaml:2: journeys: needs at least one entry"],
    ),
    (
        "missing service",
        GOOD.replace("service: bank\n", ""),
        ["bank.yaml:1: service: required field is missing (add 'service:')"],
    ),
    (
        "duplicate key",
        GOOD.replace("        target: 800ms\n", "        target: 800ms\n        target: 1s\n"),
        ["bank.yaml:7: journeys[0].steps[0].target: duplicate key (remove one of the two entries)"],
    ),
    (
        "yaml syntax",
        "service: bank\njourneys:\n  - name: [x\n",
        [
            "bank.yaml:4: YAML syntax error: expected ',' or ']', but got '<stream end>' "
            "(check indentation and quoting on this line)"
        ],
    ),
    (
        "reserved name",
        GOOD.replace("name: login", "name: other"),
        [
            "bank.yaml:5: journeys[bill_inquiry].steps[other].name: 'other' is reserved for undeclared "
            "names; rename the step"
        ],
    ),
]


@pytest.mark.parametrize(("what", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_specs_name_line_field_and_fix(what: str, text: str, expected: list[str]) -> None:
    assert _messages(text) == expected


def test_every_problem_is_reported_at_once() -> None:
    text = GOOD.replace("800ms", "fast").replace("kind: reconcile", "kind: nope")
    assert len(_messages(text)) == 2


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read spec"):
        load_spec(tmp_path / "absent.yaml")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("cxmetrics")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.mark.slow
def test_validate_cli_ok_and_errors(tmp_path: Path) -> None:
    ok = _cli("validate", str(EXAMPLE_SPEC))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith("service bank_app, 4 journeys, 12 steps, 5 accuracy checks")
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("800ms", "fast").replace("kind: reconcile", "kind: nope"))
    result = _cli("validate", str(bad))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{bad}:6: journeys[bill_inquiry].steps[login].target: 'fast'")
    assert lines[1].startswith(f"{bad}:11: journeys[bill_inquiry].steps[bill_detail].checks")
