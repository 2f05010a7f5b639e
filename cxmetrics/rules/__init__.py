"""Prometheus recording and alerting rules generated from the spec (docs/rules.md, layer 1).

    spec ──► policy.plan (checked, resolved per step) ──► recording / alerts ──► document (YAML)
                                                       └─► promtest (promtool test suites)

``build(spec)`` gives a ``RuleSet``; ``render(ruleset, fmt)`` the rule file (plain or
``PrometheusRule``); ``promtest.suite(...)`` a ``promtool test rules`` file that proves the rules
on synthetic series derived from the same spec. See docs/rules.md.
"""

from __future__ import annotations

from .document import FORMATS, Format, RuleSet, build, header, render, write_atomic
from .overlay import load_with_overrides, parse_with_overrides
from .policy import BURN_PAIRS, BurnPair, Plan, StepPlan, plan

__all__ = [
    "BURN_PAIRS",
    "FORMATS",
    "BurnPair",
    "Format",
    "Plan",
    "RuleSet",
    "StepPlan",
    "build",
    "header",
    "load_with_overrides",
    "parse_with_overrides",
    "plan",
    "render",
    "write_atomic",
]
