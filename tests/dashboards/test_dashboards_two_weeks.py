"""Every dashboard query against a real Prometheus holding two simulated weeks of the bank.

The two weeks of ``tests.helpers.bank_log.two_weeks`` (bill_detail 25% slower and 5% of a check
failing in the second week), backfilled with ``promtool tsdb create-blocks-from openmetrics`` at
15-minute resolution: the cx_ counters the app would have exported (with the customers' feedback),
and the 5-minute rates the ``cxmetrics rules`` recording rules record from them
(``cx:step_steps:rate5m``, ``cx:step_good_steps:rate5m``), which feed the 28-day panels. Queries
run at the end of the second week with Grafana's variables as a manager would set them (the time
range: the last week), so the week-over-week panels compare with the first week. The home view is
then provisioned into the Grafana stand-in and opened in headless Chromium.
"""

from __future__ import annotations

import math
import random
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterator

import pytest

from cxmetrics.analysis import promapi
from cxmetrics.analysis.sources import Timeline, from_events
from cxmetrics.instrument.events import Event, FeedbackRecord, StepRecord
from cxmetrics.local import stack
from cxmetrics.spec import names
from cxmetrics.spec.load import load_spec
from cxmetrics.spec.model import Spec
from tests.helpers import grafana_variables
from tests.helpers.bank_log import TWO_WEEKS_T0, WEEK, two_weeks
from tests.helpers.grafana_render import Renderer
from tests.helpers.grafana_standin import GrafanaStandIn
from tests.helpers.paths import EXAMPLE_SPEC
from tests.report.test_report_browser import Chromium, Tab, decode_png, pixels_near

from .test_dashboards_prometheus import all_queries
from .test_provision import TOKEN, provision

pytestmark = pytest.mark.slow
INSTALL = "apt-get install -y --no-install-recommends prometheus"
STEP_S = 900.0
END = TWO_WEEKS_T0 + 2 * WEEK
AT = END - 800  # the last samples are in (within the 5m lookback), with room for a rate


def substitute(expr: str, step: str) -> str:
    return grafana_variables.substitute(expr, window="7d", rate_interval="1h", step=step)


def backfill(
    spec: Spec, timeline: Timeline, feedback: list[FeedbackRecord], events: list[Event]
) -> str:
    """OpenMetrics text of the cumulative counters at every edge, plus the recorded 5m rates."""
    edges = timeline.edges
    series: dict[tuple[str, str], list[float]] = {}
    kinds: dict[str, str] = {}

    def add(family: str, kind: str, sample: str, labels: dict[str, str], k: int, v: float) -> None:
        kinds[family] = kind
        text = ",".join(f'{key}="{value}"' for key, value in labels.items())
        values = series.setdefault((family, f"{sample}{{{text}}}"), [0.0] * len(edges))
        values[k + 1] += v  # per-window increments; made cumulative below

    duration = names.STEP_DURATION
    service = {names.SERVICE: spec.service}
    for k, window in enumerate(timeline.windows):
        for (journey, step), c in window.steps.items():
            base = {**service, "journey": journey, "step": step, "channel": "app"}
            running = 0
            for bound, count in zip((*c.bounds, math.inf), c.buckets, strict=True):
                running += count
                le = "+Inf" if math.isinf(bound) else repr(bound)
                add(duration, "histogram", f"{duration}_bucket", {**base, "le": le}, k, running)
            add(duration, "histogram", f"{duration}_count", base, k, sum(c.buckets))
            add(duration, "histogram", f"{duration}_sum", base, k, sum(c.samples or ()))
            for index, count in enumerate(c.classes):
                labels = {
                    **base,
                    "outcome": "error" if index >= 3 else "ok",
                    "timeliness": names.TIMELINESS_CLASSES[index % 3],
                }
                add(names.STEPS, "counter", names.STEPS, labels, k, count)
            add(names.GOOD_STEPS, "counter", names.GOOD_STEPS, base, k, c.good)
            rec = {**service, "journey": journey, "step": step}
            spec_step = spec.journey(journey).step(step)
            for gauge, value in (
                (names.STEP_TARGET, spec_step.target),
                (names.STEP_TOLERATING, spec.tolerating(spec_step)),
            ):
                add(gauge, "gauge", gauge, rec, k, value)
            add(
                names.REC_STEPS_RATE5M,
                "gauge",
                names.REC_STEPS_RATE5M,
                rec,
                k,
                sum(c.classes) / STEP_S,
            )
            add(names.REC_GOOD_RATE5M, "gauge", names.REC_GOOD_RATE5M, rec, k, c.good / STEP_S)
            for check, (passed, failed) in c.checks.items():
                for result, count in (("pass", passed), ("fail", failed)):
                    labels = {
                        **service,
                        "journey": journey,
                        "step": step,
                        "check": check,
                        "result": result,
                    }
                    add(names.ACCURACY_CHECKS, "counter", names.ACCURACY_CHECKS, labels, k, count)
            for to_step, count in c.transitions.items():
                labels = {**service, "journey": journey, "from_step": step, "to_step": to_step}
                add(names.TRANSITIONS, "counter", names.TRANSITIONS, labels, k, count)
        for journey, j in window.journeys.items():
            labels = {**service, "journey": journey, "channel": "app"}
            add(names.JOURNEYS_STARTED, "counter", names.JOURNEYS_STARTED, labels, k, j.started)
    for record in feedback:
        if record.scale is None:
            continue  # a category without a score: no survey response
        k = min(int((record.time - edges[0]) // STEP_S), len(edges) - 2)
        labels = {
            **service,
            "journey": record.journey,
            "step": record.step or "other",
            "scale": record.scale,
            "score": str(record.score),
        }
        add(names.FEEDBACK, "counter", names.FEEDBACK, labels, k, 1)
    # end-to-end journey times as the runtime observes them (analysis.journey_time's definition)
    first = {j.name: j.steps[0].name for j in spec.journeys}
    last = {j.name: j.steps[-1].name for j in spec.journeys}
    began: dict[tuple[str, str], float] = {}
    timed = names.JOURNEY_DURATION
    for e in sorted((e for e in events if isinstance(e, StepRecord)), key=lambda e: e.time):
        if e.journey not in first:
            continue
        key = (e.journey, e.journey_id)
        if e.step == first[e.journey]:
            began[key] = min(began.get(key, e.time - e.duration), e.time - e.duration)
        if e.step == last[e.journey] and key in began:
            seconds = e.time - began.pop(key)
            k = min(int((e.time - edges[0]) // STEP_S), len(edges) - 2)
            base = {**service, "journey": e.journey, "channel": e.channel}
            for bound in (*names.JOURNEY_DURATION_BUCKETS, math.inf):
                if seconds <= bound:
                    le = "+Inf" if math.isinf(bound) else repr(bound)
                    add(timed, "histogram", f"{timed}_bucket", {**base, "le": le}, k, 1)
            add(timed, "histogram", f"{timed}_count", base, k, 1)
            add(timed, "histogram", f"{timed}_sum", base, k, seconds)
    by_family: dict[str, list[str]] = defaultdict(list)
    for (family, name), values in series.items():
        if kinds[family] != "gauge":  # counters and buckets: cumulative
            total = 0.0
            for i, v in enumerate(values):
                total += v
                values[i] = total
        by_family[family] += [
            f"{name} {v:g} {t:.0f}" for t, v in zip(edges[1:], values[1:], strict=True)
        ]
    lines = []
    for family, samples in by_family.items():
        kind = kinds[family]
        declared = family.removesuffix("_total") if kind == "counter" else family
        lines.append(f"# TYPE {declared} {kind}")
        lines += samples
    return "\n".join(lines) + "\n# EOF\n"


def survey(events: list[Event]) -> list[FeedbackRecord]:
    """One customer in five answers a survey after their last step (CSAT or NPS, alternately),
    scoring lower after a bad step."""
    last: dict[str, StepRecord] = {}
    for event in events:
        if isinstance(event, StepRecord):
            last[event.journey_id] = event
    rng = random.Random(5)
    out = []
    for n, record in enumerate(sorted(last.values(), key=lambda r: r.time)):
        if n % 5:
            continue
        nps = n % 2 == 0
        top = 10 if nps else 5
        score = rng.randint(top // 2, top) if record.good else rng.randint(0, top // 2)
        out.append(
            FeedbackRecord(
                time=record.time + 1,
                journey=record.journey,
                step=record.step,
                journey_id=record.journey_id,
                scale="nps" if nps else "csat",
                score=score,
            )
        )
    return out


@pytest.fixture(scope="module")
def example_spec() -> Spec:
    """The bank as ``tests.helpers.bank_log`` simulates it: its three journeys before
    ``loan_application`` (the two-week log has no loan applications, so its panels would be
    empty by construction)."""
    spec = load_spec(EXAMPLE_SPEC)
    kept = tuple(j for j in spec.journeys if j.name != "loan_application")
    return spec.model_copy(update={"journeys": kept})


@pytest.fixture(scope="module")
def prometheus_url(example_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(f"promtool is not installed; install it with: {INSTALL}")
    work = tmp_path_factory.mktemp("prometheus")
    events = two_weeks(example_spec)
    timeline = from_events(example_spec, events, STEP_S, TWO_WEEKS_T0, END)
    feedback = survey(events)
    source = work / "backfill.om"
    source.write_text(backfill(example_spec, timeline, feedback, events))
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(work / "data")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    server = stack.prometheus(work, [])
    with server.start(120):
        yield server.url


def test_every_dashboard_query_returns_data_over_two_weeks(
    example_spec: Spec, prometheus_url: str
) -> None:
    queries = all_queries(example_spec)
    empty, checked = [], 0
    for uid, title, expr in queries:
        if "ALERTS" in expr or "cx:step_duration" in expr or "cx:step_conversion" in expr:
            continue  # alerts and the regression rules' own records: not backfilled here
        if "cx:step_bad" in expr:
            continue  # burn-rate records: evaluated live in test_dashboards_prometheus.py
        if uid.endswith("-contact"):
            continue  # imported calls: test_contact_dashboard.py backfills hand-computed ones
        if "$step" in expr:
            journey = uid.removeprefix("cx-").removesuffix("-steps")
            steps = example_spec.journey(journey).step_names
        else:
            steps = ("",)
        for step in steps:
            checked += 1
            result = promapi.query(prometheus_url, substitute(expr, step), time_s=AT)
            values = [float(r["value"][1]) for r in result]
            if not values or any(math.isnan(v) for v in values):
                about_checks = "accuracy" in title.lower() or "check" in title.lower()
                name = uid.removeprefix("cx-").rsplit("-", 1)[0]
                journeys = [
                    j for j in example_spec.journeys if j.name == name or uid.endswith("-home")
                ]
                checked_steps = [st for j in journeys for st in j.steps if st.checks]
                if about_checks and not [st for st in checked_steps if st.name == step or not step]:
                    continue  # a step (journey) without checks has no accuracy: no series, by design
                empty.append(f"{uid} / {title} [{step}]: {values}")
    assert empty == [], "queries without data over two weeks:\n" + "\n".join(empty)
    assert checked > 150


@pytest.fixture(scope="module")
def home_page(
    prometheus_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Tab, GrafanaStandIn]]:
    """The home view provisioned into the Grafana stand-in by ``cxmetrics provision`` and opened
    in headless Chromium, drawn from the two weeks (the last 7 days as the time range)."""
    with GrafanaStandIn(TOKEN) as grafana:
        grafana.renderer = Renderer(
            prometheus_url,
            AT,
            {"__rate_interval": "1h", "__range": "7d", "channel": ".*", "__url_time_range": ""},
        )
        run = provision(grafana.url)
        assert run.returncode == 0, run.stderr
        browser = Chromium(tmp_path_factory.mktemp("profile"))
        try:
            yield browser.open(f"{grafana.url}/d/cx-bank_app-home"), grafana
        finally:
            browser.close()


def test_the_home_view_renders_in_chromium_without_console_errors(
    home_page: tuple[Tab, GrafanaStandIn], tmp_path_factory: pytest.TempPathFactory
) -> None:
    page, grafana = home_page
    assert page.evaluate("document.readyState") == "complete"
    assert page.evaluate("document.title") == "bank_app: customer journeys"
    assert page.problems() == []
    status = page.evaluate("document.getElementById('panel-2').innerText")
    # a quarter of callers need a second call: contact_centre misses its good-step objective
    assert "contact_centre below objective" in status
    table = page.evaluate("document.getElementById('panel-3').innerText")
    assert all(journey in table for journey in ("bill_inquiry", "transfer", "contact_centre"))
    worst = page.evaluate("document.getElementById('panel-5').innerText")
    assert "bill_detail" in worst and "issue_resolved" in worst
    hrefs = page.evaluate(
        "[...document.querySelectorAll('#panel-5 a')].map(a => a.getAttribute('href'))"
    )
    assert "/d/cx-bill_inquiry-steps?var-step=bill_detail&" in hrefs
    weekly = page.evaluate("document.getElementById('panel-8').innerText")
    assert "bill_inquiry" in weekly and "no baseline yet" not in weekly
    png = page.screenshot("#grid")
    (tmp_path_factory.getbasetemp() / "home.png").write_bytes(png)
    width, height, rows = decode_png(png)
    assert width > 900 and height > 600
    background = bytes.fromhex("111217")
    painted = sum(1 for row in rows for k in range(0, len(row), 3) if row[k : k + 3] != background)
    assert painted > 0.3 * width * height  # panels, values and colours, not a blank page
    assert pixels_near(rows, "#56a64b") > 500 and pixels_near(rows, "#e02f44") > 500
    assert [e.path for e in grafana.log if e.path.startswith("/d/")] == ["/d/cx-bank_app-home"]
