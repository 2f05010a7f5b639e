"""The Prometheus source against a real Prometheus scraping the real bank app.

One run (module fixture): the bank app under uvicorn with an event log, Prometheus scraping it
every second, ~10 s of simulated customers with some accuracy faults and errors. The counts the
analyzer reads back from Prometheus must equal what the app counted, and the event log of the
same run must give the same counts, bucket by bucket.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from prometheus_client import CollectorRegistry

from cxmetrics import config
from cxmetrics._binaries import PROMETHEUS, require_binary
from cxmetrics.analysis import promapi
from cxmetrics.analysis.counts import StepCounts
from cxmetrics.analysis.indicators import compute
from cxmetrics.analysis.prometheus import from_prometheus
from cxmetrics.analysis.sources import Timeline, from_events, from_jsonl
from cxmetrics.exposition.eventlog import read_events
from cxmetrics.local import stack
from cxmetrics.spec.model import Spec
from examples.bank import traffic
from examples.bank.app import ROUTES, create_app
from tests.helpers.paths import EXAMPLE_SPEC, ROOT
from tests.helpers.servers import post_json, serve_app, wait_for

TIME_SCALE = 0.02
CLI = ROOT / ".venv" / "bin" / "cxmetrics"
pytestmark = pytest.mark.slow


@dataclass
class Run:
    spec: Spec  # the spec as the app runs it (targets scaled)
    by_path: dict[str, int]  # requests the customers made
    app_steps: dict[tuple[str, str], int]  # the app's own cx_steps_total, summed over labels
    app_classes: dict[tuple[str, str, str, str], int]  # ... by outcome and timeliness
    prometheus: Timeline
    events: Timeline
    cli: subprocess.CompletedProcess[str]
    web_prometheus: Timeline  # read with the matcher channel="web" (analyze --match)
    web_events: Timeline  # the event log's records of channel web


def _app_counts(registry: CollectorRegistry) -> dict[tuple[str, str, str, str], int]:
    out: dict[tuple[str, str, str, str], int] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "cx_steps_total" and sample.value:
                labels = sample.labels
                key = (labels["journey"], labels["step"], labels["outcome"], labels["timeliness"])
                out[key] = out.get(key, 0) + int(sample.value)
    return out


@pytest.fixture(scope="module")
def run(example_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    require_binary(PROMETHEUS)  # missing: fails with the apt-get command
    workdir = tmp_path_factory.mktemp("analyze-prometheus")
    log_path = workdir / "events.jsonl"
    registry = CollectorRegistry()
    app = create_app(
        example_spec, registry, time_scale=TIME_SCALE, seed=3, spans="off", event_log=str(log_path)
    )
    scaled = example_spec.scaled(TIME_SCALE)
    port = stack.free_port()
    begin = time.time()
    try:
        with serve_app(app, port) as url:
            post_json(
                f"{url}/admin/faults",
                {"accuracy": {"total_matches_details": 0.1}, "errors": {"bill_total": 0.05}},
            )
            with stack.prometheus(workdir / "prometheus", [f"127.0.0.1:{port}"]).start() as prom:
                wait_for(lambda: promapi.query(prom.url, "cx_steps_total"), 20, "the first scrape")
                stats = asyncio.run(traffic.run(url, duration=10.0, concurrency=10, seed=5))
                classes = _app_counts(registry)
                total = sum(classes.values())
                scraped = "sum(cx_steps_total)"
                wait_for(
                    lambda: (
                        [float(r["value"][1]) for r in promapi.query(prom.url, scraped)] == [total]
                    ),
                    15,
                    "Prometheus to scrape the last steps",
                )
                end = time.time()
                timeline = from_prometheus(scaled, prom.url, begin - 2.0, end, 1.0)
                web = from_prometheus(scaled, prom.url, begin - 2.0, end, 1.0, 'channel="web"')
                cli = subprocess.run(
                    [
                        str(CLI),
                        "analyze",
                        str(EXAMPLE_SPEC),
                        "--prometheus",
                        prom.url,
                        "--since",
                        "5m",
                        "--step",
                        "1s",
                        "--json",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
    finally:
        config.shutdown()  # closes the app's event log
    steps: dict[tuple[str, str], int] = {}
    for (journey, step, _, _), count in classes.items():
        steps[(journey, step)] = steps.get((journey, step), 0) + count
    events = from_jsonl(scaled, log_path)
    web_records = [e for e in read_events(log_path) if e.channel == "web"]
    web_events = from_events(scaled, web_records, 1.0, events.edges[0], events.edges[-1])
    yield Run(scaled, stats.by_path, steps, classes, timeline, events, cli, web, web_events)


def test_step_volumes_from_prometheus_equal_the_apps_counts(run: Run) -> None:
    requested = {ROUTES[path]: count for path, count in run.by_path.items()}
    assert run.app_steps == requested  # every request was one step, as the customers saw it
    assert sum(requested.values()) > 200  # ~1,000 on an idle machine
    indicators = compute(run.spec, run.prometheus.total())
    volumes = {(r.journey, r.step): r.volume for r in indicators.steps if r.volume}
    assert volumes == run.app_steps
    classes = run.prometheus.total().steps
    for (journey, step, outcome, timeliness), count in run.app_classes.items():
        index = ("satisfied", "tolerating", "frustrated").index(timeliness)
        index += 3 if outcome == "error" else 0
        assert classes[(journey, step)].classes[index] == count, (journey, step, outcome)


def test_event_log_of_the_same_run_gives_the_same_counts(run: Run) -> None:
    def counts_only(c: StepCounts) -> StepCounts:
        return replace(c, samples=None, times=None)

    from_prometheus_ = run.prometheus.total()
    from_events = run.events.total()
    assert from_events.steps.keys() == from_prometheus_.steps.keys()
    for key, counts in from_events.steps.items():
        # the same bucket layout (read from the le labels / derived from the spec), the same
        # buckets, classes, good steps, checks and transitions
        assert counts_only(counts) == from_prometheus_.steps[key], key
    assert from_events.journeys == from_prometheus_.journeys
    detail = from_events.steps[("bill_inquiry", "bill_detail")]
    # the accuracy fault (a detail line off by a cent) was seen by the consistency check
    assert detail.checks["detail_consistent_with_total"][1] > 0
    assert sum(from_events.steps[("bill_inquiry", "bill_total")].classes[3:]) > 0  # and errors
    assert (
        compute(run.spec, from_events).step("bill_inquiry", "bill_detail").volume
        == (run.app_steps[("bill_inquiry", "bill_detail")])
    )


def test_a_channel_matcher_keeps_checks_and_transitions(run: Run) -> None:
    """``analyze --match channel=web`` on Prometheus: checks and transitions carry the channel
    (on main they had none, so the matcher emptied them); the counts equal the event log's web
    records. The duration histogram carries no channel (the series budget): its buckets are
    not read under a channel matcher, so quantiles come from the event log."""
    web, events = run.web_prometheus.total(), run.web_events.total()
    checks = {k: dict(c.checks) for k, c in web.steps.items() if c.checks}
    transitions = {k: dict(c.transitions) for k, c in web.steps.items() if c.transitions}
    assert checks == {k: dict(c.checks) for k, c in events.steps.items() if c.checks}
    assert transitions == {k: dict(c.transitions) for k, c in events.steps.items() if c.transitions}
    assert sum(p + f for p, f in checks[("bill_inquiry", "bill_detail")].values()) > 0
    assert transitions[("bill_inquiry", "login")]["bill_total"] > 0
    for key, counts in web.steps.items():
        assert counts.classes == events.steps[key].classes, key
    assert {j: c.started for j, c in web.journeys.items()} == {
        j: c.started for j, c in events.journeys.items()
    }


def test_analyze_cli_reads_prometheus(run: Run) -> None:
    assert run.cli.returncode in (0, 3), run.cli.stderr
    report = json.loads(run.cli.stdout)
    volumes = {(s["journey"], s["step"]): s["volume"] for s in report["steps"] if s["volume"]}
    assert volumes == run.app_steps
    started = {j["journey"]: j["started"] for j in report["journeys"]}
    assert started == {j: c.started for j, c in run.events.total().journeys.items()}
    assert (run.cli.returncode == 3) == bool(report["regressions"])


def test_unreachable_prometheus_is_a_clear_error(example_spec: Spec) -> None:
    from cxmetrics import CxError

    url = f"http://127.0.0.1:{stack.free_port()}"
    with pytest.raises(CxError, match=f"cannot reach Prometheus at {url}"):
        from_prometheus(example_spec, url, 0.0, 60.0, 60.0)


def test_bad_urls_and_ranges_are_refused_before_asking(example_spec: Spec) -> None:
    from cxmetrics import CxError

    with pytest.raises(CxError, match="write it like http://localhost:9090"):
        from_prometheus(example_spec, "localhost:9090", 0.0, 60.0, 60.0)
    with pytest.raises(CxError, match="use a larger --step or a shorter --since"):
        from_prometheus(example_spec, "http://127.0.0.1:1", 0.0, 86400.0, 1.0)


def test_counter_increments_handle_resets_and_late_series() -> None:
    from cxmetrics.analysis.prometheus import increments

    edges = [0.0, 1.0, 2.0, 3.0, 4.0]
    assert increments([[0, "5"], [1, "7"], [2, "7"], [3, "2"], [4, "4"]], edges) == [2, 0, 2, 2]
    assert increments([[2, "3"], [3, "3"], [4, "6"]], edges) == [0, 3, 0, 3]
    assert increments([], edges) == [0, 0, 0, 0]
