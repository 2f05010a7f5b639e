"""Fleet arithmetic from the generator itself: rules, series per instance, samples per cycle.

A fleet spec of ``--journeys`` journeys × ``--steps`` steps × ``--channels`` channels (one accuracy
check on each journey's last step) is generated; then

- rules: ``cxmetrics.rules.build`` counts recording and alerting rules;
- series per instance: ``cxmetrics.configure`` with a fresh registry, every series the collector
  exposes (``other`` combinations included), counted from the exposition itself;
- samples read per evaluation cycle: every selector of every generated rule is matched against
  those series (× ``--instances``, scrape every ``--scrape`` s) — a range selector ``[W]`` reads
  W / scrape samples per matching raw series; recording-rule outputs carry no instance label
  and are counted once per matching series, per evaluation point in their range.

    .venv/bin/python benchmarks/fleet.py [--journeys 50 --steps 10 --channels 3 --instances 100]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

import yaml
from prometheus_client import CollectorRegistry

import cxmetrics
from cxmetrics.rules import build
from cxmetrics.spec.durations import parse_duration
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.model import Spec


def _seconds(window: str) -> float:
    """A Prometheus duration, compound ones (``1d10m``) included."""
    return sum(parse_duration(part) for part in re.findall(r"[0-9.]+[a-z]+", window))


SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}(?:\[([0-9a-z]+)\])?")
MATCHER = re.compile(r'([a-z_]+)(=~|!=|=)"([^"]*)"')
BY = re.compile(r"(?:sum|max) by \(([^)]*)\)")


def fleet_spec(journeys: int, steps: int, channels: int) -> Spec:
    names = ["app", "web", "phone", "branch", "chat", "post"][:channels]
    document = {
        "version": 1,
        "service": "fleet",
        "channels": names,
        "default_channel": names[0],
        "journeys": [
            {
                "name": f"j{j:02d}",
                "steps": [
                    {"name": f"s{s:02d}", "target": f"{100 * (1 + s % 5)}ms"}
                    | ({"checks": [{"name": "amount_ok"}]} if s == steps - 1 else {})
                    for s in range(steps)
                ],
            }
            for j in range(journeys)
        ],
    }
    return parse_spec(yaml.safe_dump(document), "<fleet>")


def exposed_series(spec: Spec) -> list[tuple[str, dict[str, str]]]:
    registry = CollectorRegistry()
    cxmetrics.configure(spec, registry=registry, spans="off")
    try:
        return [
            (sample.name, dict(sample.labels))
            for family in registry.collect()
            for sample in family.samples
        ]
    finally:
        cxmetrics.shutdown()


def _matches(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for label, op, value in matchers:
        have = labels.get(label, "")
        if op == "=" and have != value:
            return False
        if op == "!=" and have == value:
            return False
        if op == "=~" and not re.fullmatch(value, have):
            return False
    return True


def _outputs(
    expr: str,
    by_name: dict[str, list[dict[str, str]]],
    recorded: dict[str, list[dict[str, str]]],
) -> list[dict[str, str]]:
    """The series a recording rule writes: its input series (raw or recorded) matching its first
    selector, reduced to the labels of its outermost ``by (...)`` (without ``le`` when it is a
    quantile). A generic rule writes one series per step (channel, check …) it covers."""
    found = SELECTOR.search(expr)
    if found is None:
        return []
    metric, inner, _ = found.groups()
    matchers = MATCHER.findall(inner)
    inputs = [
        labels
        for labels in recorded.get(metric, by_name.get(metric, []))
        if _matches(labels, matchers)
    ]
    grouping = BY.search(expr)
    if grouping is None:
        return [dict(labels) for labels in inputs]
    keys = [k for k in grouping.group(1).split(", ") if k]
    if expr.startswith("histogram_quantile"):
        keys = [k for k in keys if k != "le"]
    if "label_replace" in expr:  # transitions relabelled from_step → step
        inputs = [{**labels, "step": labels.get("from_step", "")} for labels in inputs]
    distinct = {tuple((k, labels.get(k, "")) for k in keys) for labels in inputs}
    return [dict(row) for row in sorted(distinct)]


def samples_per_cycle(
    spec: Spec, series: list[tuple[str, dict[str, str]]], instances: int, scrape_s: float
) -> tuple[float, Counter[str]]:
    ruleset = build(spec)
    by_name: dict[str, list[dict[str, str]]] = {}
    for name, labels in series:
        by_name.setdefault(name, []).append(labels)
    recorded: dict[str, list[dict[str, str]]] = {}
    for group in ruleset.groups:  # the recorded series, in evaluation order
        for rule in group.rules:
            if rule.record:
                outputs = _outputs(rule.expr, by_name, recorded)
                recorded.setdefault(rule.record, []).extend(
                    {**labels, **rule.labels} for labels in outputs
                )
    total = 0.0
    by_window: Counter[str] = Counter()
    for group in ruleset.groups:
        for rule in group.rules:
            for metric, inner, window in SELECTOR.findall(rule.expr):
                matchers = MATCHER.findall(inner)
                if metric in recorded:  # recording-rule outputs carry no instance label
                    n = sum(1 for labels in recorded[metric] if _matches(labels, matchers))
                else:
                    n = instances * sum(
                        1 for labels in by_name.get(metric, []) if _matches(labels, matchers)
                    )
                per_series = _seconds(window) / scrape_s if window else 1.0
                read = n * per_series
                total += read
                by_window[window or "instant"] += int(read)
    return total, by_window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--journeys", type=int, default=50)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--scrape", type=float, default=15.0, help="scrape interval, seconds")
    args = parser.parse_args()
    spec = fleet_spec(args.journeys, args.steps, args.channels)
    ruleset = build(spec)
    recording, alerting = ruleset.count()
    series = exposed_series(spec)
    buckets = sum(1 for name, _ in series if name.endswith("_bucket"))
    others = sum(1 for _, labels in series if "other" in labels.values())
    samples, by_window = samples_per_cycle(spec, series, args.instances, args.scrape)
    print(
        f"fleet: {args.journeys} journeys × {args.steps} steps × {args.channels} channels × "
        f"{args.instances} instances, scrape {args.scrape:g}s"
    )
    print(f"rules: {recording:,} recording + {alerting:,} alerting = {recording + alerting:,}")
    print(
        f"series per instance: {len(series):,} ({buckets:,} buckets, {others:,} with an "
        f"'other' label); fleet: {len(series) * args.instances:,}"
    )
    print(f"samples read per evaluation cycle: {samples:,.0f}")
    for window, read in sorted(by_window.items(), key=lambda kv: -kv[1]):
        print(f"  [{window}]: {read:,} ({read / samples:.1%})")


if __name__ == "__main__":
    main()
