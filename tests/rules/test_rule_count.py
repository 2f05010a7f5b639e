"""Rules grow with distinct policies, not with steps: the fleet spec (50 journeys × 10 steps ×
3 channels, one accuracy check on each journey's last step) gets the same rules as a 3-step
spec, far under the 1,000-rule goal (19,900 when rules were written per step)."""

from __future__ import annotations

from typing import Any

import yaml

from cxmetrics.rules import build
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.model import Spec


def _fleet(journeys: int, steps: int, **overrides: Any) -> Spec:
    document = {
        "version": 1,
        "service": "fleet",
        "channels": ["app", "web", "phone"],
        "journeys": [
            {
                "name": f"j{j:02d}",
                "steps": [
                    {"name": f"s{s:02d}", "target": f"{100 * (1 + s % 5)}ms"}
                    | ({"checks": [{"name": "amount_ok"}]} if s == steps - 1 else {})
                    | overrides.get(f"j{j:02d}/s{s:02d}", {})
                    for s in range(steps)
                ],
            }
            for j in range(journeys)
        ],
    }
    return parse_spec(yaml.safe_dump(document), "<fleet>")


def test_the_fleet_spec_has_a_few_dozen_rules() -> None:
    assert build(_fleet(50, 10)).count() == (48, 10)


def test_steps_and_journeys_with_the_same_policy_add_no_rule() -> None:
    assert build(_fleet(50, 20)).count() == (48, 10)
    assert build(_fleet(100, 10)).count() == (48, 10)
    assert build(_fleet(1, 3)).count() == (48, 10)


def test_a_second_policy_adds_its_alerts_and_the_policy_series() -> None:
    """A last step with its own window: its policy's alerts (2 quantiles, the target change, 3
    good-step and 3 accuracy burn pairs; a last step has no conversion), and the exposed and
    held policy series; the recording rules of both policies share one rule per name."""
    other = {"j07/s09": {"regression": {"window": "20m"}}}
    assert build(_fleet(50, 10, **other)).count() == (48 + 2, 10 + 9)
    # in a 20-step journey s09 has no check but a next step: no accuracy burns, a conversion
    assert build(_fleet(50, 20, **other)).count() == (50, 10 + 7)
