"""The weekly report from Prometheus: two simulated weeks of the bank
(``tests.helpers.bank_log.two_weeks``) backfilled into a real Prometheus with ``promtool tsdb
create-blocks-from openmetrics`` — the cx_ counters the app would have exported, sampled at every
hour — then compared week over week through the Prometheus source. The comparison must equal the
one computed from the event log of the same customers, count for count (the p95 aside: Prometheus
has buckets, the log exact durations), and name the same worst step."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cxmetrics.analysis.comparison import Comparison, compare
from cxmetrics.analysis.periods import calendar_period, previous_period
from cxmetrics.analysis.prometheus import from_prometheus
from cxmetrics.analysis.sources import Timeline, from_events
from cxmetrics.instrument.events import Event
from cxmetrics.local import stack
from cxmetrics.spec import names
from cxmetrics.spec.model import Spec
from tests.helpers.bank_log import TWO_WEEKS_T0, WEEK, two_weeks
from tests.helpers.paths import EXAMPLE_SPEC

from .test_report import CLI, UTC

pytestmark = pytest.mark.slow
INSTALL = "apt-get install -y --no-install-recommends prometheus"


def openmetrics(spec: Spec, timeline: Timeline) -> str:
    """Cumulative cx_ counters of ``timeline`` at each of its edges, one channel, OpenMetrics."""
    families: dict[str, tuple[str, dict[str, list[float]]]] = {}

    def add(family: str, kind: str, sample: str, labels: dict[str, str], k: int, v: float) -> None:
        series = families.setdefault(family, (kind, {}))[1]
        text = ",".join(f'{key}="{value}"' for key, value in labels.items())
        values = series.setdefault(f"{sample}{{{text}}}", [0.0] * len(timeline.edges))
        for j in range(k + 1, len(timeline.edges)):
            values[j] += v

    duration = names.STEP_DURATION
    for k, window in enumerate(timeline.windows):
        for (journey, step), c in window.steps.items():
            base = {"journey": journey, "step": step, "channel": "app"}
            running = 0
            for bound, count in zip((*c.bounds, math.inf), c.buckets, strict=True):
                running += count
                le = "+Inf" if math.isinf(bound) else repr(bound)
                add(duration, "histogram", f"{duration}_bucket", {**base, "le": le}, k, running)
            add(duration, "histogram", f"{duration}_count", base, k, sum(c.buckets))
            add(duration, "histogram", f"{duration}_sum", base, k, sum(c.samples or ()))
            for index, count in enumerate(c.classes):
                outcome = "error" if index >= 3 else "ok"
                cls = names.TIMELINESS_CLASSES[index % 3]
                labels = {**base, "outcome": outcome, "timeliness": cls}
                add(names.STEPS, "counter", names.STEPS, labels, k, count)
            add(names.GOOD_STEPS, "counter", names.GOOD_STEPS, base, k, c.good)
            for check, (passed, failed) in c.checks.items():
                for result, count in (("pass", passed), ("fail", failed)):
                    labels = {**base, "check": check, "result": result}
                    add(names.ACCURACY_CHECKS, "counter", names.ACCURACY_CHECKS, labels, k, count)
            for to_step, count in c.transitions.items():
                labels = {"journey": journey, "from_step": step, "to_step": to_step}
                labels["channel"] = "app"
                add(names.TRANSITIONS, "counter", names.TRANSITIONS, labels, k, count)
        for journey, j in window.journeys.items():
            labels = {"journey": journey, "channel": "app"}
            add(names.JOURNEYS_STARTED, "counter", names.JOURNEYS_STARTED, labels, k, j.started)
    lines = []
    for family, (kind, series) in families.items():
        declared = family.removesuffix("_total") if kind == "counter" else family
        lines.append(f"# TYPE {declared} {kind}")
        for name, values in series.items():
            lines += [f"{name} {v:g} {t:.0f}" for t, v in zip(timeline.edges, values, strict=True)]
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def events(example_spec: Spec) -> list[Event]:
    return two_weeks(example_spec)


@pytest.fixture(scope="module")
def prometheus_url(
    example_spec: Spec,
    events: list[Event],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(f"promtool is not installed; install it with: {INSTALL}")
    work = tmp_path_factory.mktemp("prometheus")
    timeline = from_events(example_spec, events, 3600.0, TWO_WEEKS_T0, TWO_WEEKS_T0 + 2 * WEEK)
    source = work / "backfill.om"
    source.write_text(openmetrics(example_spec, timeline))
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(work / "data")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    server = stack.prometheus(work, [])
    with server.start(60):
        yield server.url


def weeks(spec: Spec, load: Callable[[float, float], Timeline]) -> Comparison:
    current = calendar_period("week", TWO_WEEKS_T0 + 2 * WEEK + 6 * 3600, UTC.tz)
    previous = previous_period(current, UTC.tz)
    now, before = (load(p.start, p.end) for p in (current, previous))
    return compare(spec, now.total(), before.total(), (current, previous))


def test_the_comparison_from_prometheus_equals_the_event_logs(
    example_spec: Spec,
    events: list[Event],
    prometheus_url: str,
) -> None:
    from_log = weeks(example_spec, lambda a, b: from_events(example_spec, events, 3600, a, b))
    from_prom = weeks(
        example_spec, lambda a, b: from_prometheus(example_spec, prometheus_url, a, b, 3600)
    )
    assert from_prom.baseline and from_prom.worst is not None
    assert (from_prom.worst.journey, from_prom.worst.step) == ("bill_inquiry", "bill_detail")
    for log_step, prom_step in zip(from_log.steps, from_prom.steps, strict=True):
        assert prom_step.affected == log_step.affected
        assert prom_step.affected_before == log_step.affected_before
        assert prom_step.more_bad == log_step.more_bad
        for name, change in log_step.changes.items():
            if name == "p95":
                continue
            assert prom_step.changes[name] == change, (log_step.step, name)
    detail = from_prom.worst.changes["p95"]
    assert detail.significant and detail.worse
    assert detail.relative is not None and 0.15 < detail.relative < 0.35  # +25%, from buckets


def test_weekly_report_command_reads_prometheus(prometheus_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(CLI), "report", str(EXAMPLE_SPEC), "--prometheus", prometheus_url,
            "--period", "week", "--compare", "previous", "--at", "2024-03-18T06:00",
            "-o", str(tmp_path / "weekly.html"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TZ": "UTC"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    worst = result.stdout.splitlines()[1]
    assert worst.startswith(
        "Worst step week over week: bill_detail (bill_inquiry): good steps 93.9% (was 99.91%), "
        "145 more customers had a bad step; p95 "
    ), worst
