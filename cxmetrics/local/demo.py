"""The demo: the example bank under uvicorn, simulated customers over real HTTP, a stable phase,
then the ``bill_detail`` +20% latency regression and an accuracy fault — all in one process, no
servers to install. Everything it produces lands in one output directory (the flow of
docs/architecture.md end to end: events → indicators and regressions; spec → rules and
dashboards).

The bank's contact centre does not run Python: its calls come as a call-detail export (the
bank's ``contact`` simulation: a day of calls with queueing, abandonment, transfers, repeat calls
and surveys), imported as ``cxmetrics import`` does into an event log of their own (and, with
``--stack``, backfilled into the stack's Prometheus), and shown in the report's contact-centre
section: the three highs and three lows against their objectives, by segment and by channel.

Needs the ``demo`` extra. The bank app is ``examples/bank`` in a checkout, shipped in the wheel as
``cxmetrics._examples.bank`` (see ``BANK_PACKAGES``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import math
import multiprocessing
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import CxError
from ..records.importer import ImportReport
from ..report.contact import ContactFigures
from ..spec import names
from ..spec.load import load_spec
from ..spec.model import Spec
from . import followups as followup_rig
from .stack import free_port

if TYPE_CHECKING:
    from ..analysis.analyzer import Analysis, Finding

# 10% of bills wrong: against the clean baseline of a short run (~600 bill_detail steps, a 99.87%
# bound of ~1% bad) the detector's rate charts find 0% -> 10% within a few hundred checks; 5%
# (the demo's fault until the short run had to hold on a busy machine) needed ~1,000.
REGRESSION_FAULT = {"latency": {"bill_detail": 1.2}, "accuracy": {"total_matches_details": 0.10}}
# The detector's verdicts the demo is about: (journey, step, indicator, check or None).
INJECTED = (
    ("bill_inquiry", "bill_detail", "latency", None),
    ("bill_inquiry", "bill_detail", "accuracy", "total_matches_details"),
)
Progress = Callable[[str, float, int], None]  # phase, fraction done, requests so far
# Seconds without 'sign' after upload_documents before a loan applicant is followed up, in the
# demo (the spec says 2h): short enough for most stalls to be delivered while the demo runs.
FOLLOWUP_AFTER = 2.0
LATENCY_VERDICT = "bill_inquiry/bill_detail latency"
DETAIL_PATH = "/bill/detail"
# Calls of the contact centre's simulated export: about a day at the simulation's 120 an hour
# (its import and the report's figures take well under a second).
CONTACT_CALLS = 3000
# bill_detail answers each phase needs: on a --fast run's events thinned at random, with 10% of
# the checks after the change made to fail, the detector's rate path found the fault in 6 of 6
# trials at ~400 answers per phase and ~500, and 5 of 6 at ~300. A phase runs until it has them,
# up to STRETCH times its planned length.
MIN_SAMPLES = 500
STRETCH = 5.0


class NotEnoughTraffic(CxError):
    """The run served too little traffic for the detector to judge the injected faults (a busy
    machine), or the machine's own delays moved the latencies it would judge: no verdict is
    better than a wrong one."""


@dataclass
class DemoResult:
    out_dir: Path
    spec: Spec
    analysis: Analysis
    requests: int
    fault_at: float
    timeouts: int = 0  # requests whose customer hung up (see the bank's traffic.step_timeouts)
    files: dict[str, Path] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # firing in Alertmanager (--stack)
    # Findings on steps no fault was injected into whose move the machine's delays explain
    # (finding name → why): set aside, not reported as regressions.
    machine_noise: dict[str, str] = field(default_factory=dict)
    # Latency alerts (--stack) on steps no fault was injected into whose move the machine's
    # delays explain (alert → why): the step really got slower, because the machine did
    alert_noise: dict[str, str] = field(default_factory=dict)
    # Verdicts about an injected fault the run could not give (what → why): on a busy machine
    # the latency verdict, whose change the machine's own delays could hide; accuracy verdicts
    # do not depend on timing and are given whenever there were enough samples.
    withheld: dict[str, str] = field(default_factory=dict)
    followups: followup_rig.FollowUpRun | None = None
    followups_skipped: str = ""  # why the follow-up part did not run ("" when it ran or was off)
    contact: list[ContactFigures] = field(default_factory=list)  # the imported calls' figures
    contact_import: ImportReport | None = None


# Where the example bank is importable from: a wheel ships it as ``cxmetrics._examples.bank``
# (pyproject's force-include of examples/bank); a checkout has it as ``examples.bank``. One copy.
BANK_PACKAGES = ("cxmetrics._examples.bank", "examples.bank")


def bank_package() -> str:
    """The import name of the example bank: the installed wheel's, else the checkout's."""
    import importlib.util

    for name in BANK_PACKAGES:
        try:
            if importlib.util.find_spec(name) is not None:
                return name
        except ModuleNotFoundError:
            continue
    raise CxError(
        "the demo needs the example bank app: install cxmetrics with the demo extra "
        "(pip install 'cxmetrics[demo]') or run it from a cxmetrics checkout ('make demo')"
    )


def bank_contact() -> Any:
    """The example bank's contact-centre simulation (``examples/bank/contact.py``)."""
    import importlib

    return importlib.import_module(f"{bank_package()}.contact")


def bank_modules() -> tuple[Any, Any]:
    """The example bank app and traffic generator (see ``BANK_PACKAGES``)."""
    import importlib

    package = bank_package()
    return importlib.import_module(f"{package}.app"), importlib.import_module(f"{package}.traffic")


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on a free loopback port."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="critical",  # requests cut off at shutdown are expected, not news
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, name="cxmetrics-demo-app", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise CxError("the demo app did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def run(
    out_dir: Path,
    duration: float = 60.0,
    time_scale: float = 0.2,
    concurrency: int = 96,
    seed: int = 7,
    progress: Progress | None = None,
    with_stack: bool = False,
    followups: followup_rig.Mode = "off",
) -> DemoResult:
    """Run both phases for ``duration`` seconds in all and analyse what was recorded.

    ``with_stack``: also run a real Prometheus (loaded with the generated rules, windows shortened
    to the demo's minute) and Alertmanager, and collect the alerts that fire.
    ``followups``: ``"on"`` runs the follow-up rig (redis-server, receiver, worker: loan
    applicants who stall at upload_documents handed to the receiver) or fails saying what is
    missing; ``"auto"`` runs it when it can and says why not otherwise; ``"off"`` does not."""
    app_module, traffic_module = bank_modules()
    out_dir.mkdir(parents=True, exist_ok=True)
    events = out_dir / "events.jsonl"
    events.unlink(missing_ok=True)
    spec_path = out_dir / "cxmetrics.yaml"
    shutil.copyfile(app_module.SPEC_PATH, spec_path)
    spec = load_spec(spec_path)

    calls = _import_calls(spec, out_dir, with_stack)
    skipped = followup_rig.unavailable() if followups != "off" else ""
    if skipped and followups == "on":
        raise CxError(f"follow-ups cannot run: {skipped}")
    rig = ExitStack()
    fu: followup_rig.FollowUpRun | None = None
    run_spec = spec
    if followups != "off" and not skipped:
        run_spec, fu = rig.enter_context(followup_rig.rig(spec, out_dir, FOLLOWUP_AFTER, serve))
    with rig:
        served, app = _serve_and_drive(
            app_module,
            traffic_module,
            run_spec,
            events,
            out_dir,
            spec_path,
            duration,
            time_scale,
            concurrency,
            seed,
            progress,
            with_stack,
            fu,
            calls.openmetrics,
        )
    # The rig has stopped: what the worker delivered is in ``fu``.
    return _analyse(
        out_dir,
        spec,
        events,
        spec_path,
        time_scale,
        app,
        served,
        fu,
        skipped,
        calls,
    )


@dataclass
class Calls:
    """The contact centre's export and what its import wrote."""

    export: Path
    events: Path
    report: ImportReport
    openmetrics: Path | None  # for the stack's Prometheus (``--stack``)


def _import_calls(spec: Spec, out_dir: Path, with_stack: bool) -> Calls:
    """Simulate the contact centre's export and import it (event log; OpenMetrics for the
    stack's backfill), as ``cxmetrics import`` does."""
    import os

    from ..instrument.redaction import hmac_redactor
    from ..records.importer import import_calls
    from ..records.openmetrics import Backfill

    export = out_dir / "calls.csv"
    bank_contact().write(export, CONTACT_CALLS)
    log = out_dir / "contact-events.jsonl"
    backfill = Backfill(60.0) if with_stack else None
    redact = hmac_redactor(os.urandom(32))  # references match within this export only
    with open(log, "wb") as sink:
        report = import_calls(spec, export, "csv", redact, events=sink, backfill=backfill)
    openmetrics = None
    if backfill is not None and not backfill.empty:
        openmetrics = out_dir / "calls.om"
        report.samples = backfill.write(openmetrics)
    return Calls(export, log, report, openmetrics)


def _serve_and_drive(
    app_module: Any,
    traffic_module: Any,
    spec: Spec,
    events: Path,
    out_dir: Path,
    spec_path: Path,
    duration: float,
    time_scale: float,
    concurrency: int,
    seed: int,
    progress: Progress | None,
    with_stack: bool,
    fu: followup_rig.FollowUpRun | None,
    calls_om: Path | None = None,
) -> tuple[Served, Any]:
    """The bank under uvicorn and its customers; the app stops recording before it returns."""
    from .. import config

    app = app_module.create_app(
        _stack_spec(spec, spec_path) if with_stack else spec,
        time_scale=time_scale,
        seed=seed,
        spans="off",
        event_log=str(events),
        followup=fu.redis_url if fu is not None else None,
        customer_key=fu.customer_key if fu is not None else None,
    )
    # Long-lived objects out of the collector's way, as servers do: a full collection otherwise
    # stalls the event loop every few seconds and shows up as latency blips on every step.
    gc.collect()
    gc.freeze()
    app.state.bank.lateness = []  # how late the machine lets each step end (see _machine_noise)

    def inject() -> float:
        app.state.bank.faults.update(REGRESSION_FAULT)
        return time.time()

    seen: dict[str, dict[str, Any]] = {}
    with serve(app) as url, ExitStack() as servers:
        alertmanager = (
            _start_stack(out_dir, spec_path, url, servers, calls_om) if with_stack else None
        )

        def watch() -> None:
            # While the customers are still there: when they leave, the volume guards make
            # every alert resolve, as they should.
            if alertmanager is not None:
                for alert in _firing(alertmanager.url):
                    seen.setdefault(alert["fingerprint"], alert)

        timeouts = traffic_module.step_timeouts(spec.scaled(time_scale))
        try:
            served = _traffic(url, duration, concurrency, seed, timeouts, inject, progress, watch)
        finally:
            # Stop recording before the server stops: phone calls still in flight when the
            # traffic ends are cut off by the shutdown, not by the bank.
            config.shutdown()  # flushes and closes the event log (and the follow-up tracker)
    if fu is not None:
        fu.stalled, fu.cut_off = served.loans
    app.state.alerts = list(seen.values())
    return served, app


def _analyse(
    out_dir: Path,
    spec: Spec,
    events: Path,
    spec_path: Path,
    time_scale: float,
    app: Any,
    served: Served,
    fu: followup_rig.FollowUpRun | None,
    skipped: str,
    calls: Calls,
) -> DemoResult:
    """Analyse the run; give the verdicts the traffic and the machine allow, and say which not."""
    from ..analysis.analyzer import analyze
    from ..analysis.sources import from_jsonl

    requests, hung_up, fault_at, duration = (
        served.requests,
        served.timeouts,
        served.fault_at,
        served.seconds,
    )
    got = f"{requests:,} requests answered ({hung_up:,} timed out) in {duration:.0f} s"
    if not requests or not events.exists():
        raise NotEnoughTraffic(f"could not generate any traffic: {got}. {_BUSY}")
    before, after = served.detail
    if min(before, after) < MIN_SAMPLES:
        raise NotEnoughTraffic(
            f"could not generate enough traffic to judge the injected faults: {got}; "
            f"bill_detail answered {before:,} times before the faults and {after:,} after "
            f"(the verdicts need {MIN_SAMPLES:,} in each). {_BUSY}"
        )
    # Windows of ~1/40 of the run: enough of them for the detector to place the change point.
    window = max(1.0, round(duration / 40))
    timeline = from_jsonl(spec.scaled(time_scale), events, step=window)
    analysis = analyze(spec.scaled(time_scale), timeline)
    short = {
        indicator: f"{step} {subject or indicator}: {v.sensitivity.describe()}"
        for journey, step, indicator, subject in INJECTED
        for v in analysis.verdicts
        if (v.journey, v.step, v.indicator, v.subject) == (journey, step, indicator, subject)
        and v.verdict == "insufficient_data"
    }
    if "accuracy" in short:  # the rate path had too few samples: no verdict at all
        raise NotEnoughTraffic(
            f"could not generate enough traffic to judge the injected faults: {got}; "
            + "; ".join(short.values())
            + f". {_BUSY}"
        )
    lateness = app.state.bank.lateness
    analysis, excused, withheld = judge(analysis, lateness, fault_at, got, short.get("latency"))
    result = DemoResult(
        out_dir,
        spec,
        analysis,
        requests,
        fault_at,
        hung_up,
        alerts=list(app.state.alerts),
        machine_noise=excused,
        alert_noise=_alert_noise(app.state.alerts, analysis, lateness),
        withheld=withheld,
        followups=fu,
        followups_skipped=skipped,
        contact_import=calls.report,
    )
    result.files.update(
        {"spec": spec_path, "events": events, "calls": calls.export, "contact_events": calls.events}
    )
    from ..exposition.eventlog import read_log
    from ..report import write_report
    from ..report.contact import figures as contact_figures

    result.contact = contact_figures(spec, read_log(calls.events).events)

    report_spec, figures = spec.scaled(time_scale), []
    if fu is not None:  # the follow-up section, from the worker's metrics at the end
        from ..report.followups import figures as followup_figures

        report_spec = followup_rig.with_policy(
            report_spec, fu.webhook, fu.after, followup_rig.UNTIL
        )
        figures = followup_figures(report_spec, [fu.metrics])
    result.files["report"] = write_report(
        report_spec,
        timeline,
        analysis,
        out_dir / "report.html",
        followups=figures,
        contact=result.contact,
    )
    result.files.update(_artifacts(spec, out_dir))
    return result


_BUSY = (
    "The machine is probably busy (the app and its customers share its CPUs): "
    "run again later or with a longer --duration"
)


def judge(
    analysis: Analysis,
    lateness: list[tuple[float, float]],
    fault_at: float,
    got: str,
    latency_short: str | None = None,
) -> tuple[Analysis, dict[str, str], dict[str, str]]:
    """The verdicts the machine allows: ``(analysis, set aside, withheld)``.

    Accuracy verdicts count failures of a check, which no delay of the machine moves: they are
    always given. When the machine's own delays are as large as half the injected latency change
    (or bill_detail had too few samples, ``latency_short``), no latency verdict can be told from
    them, found or missed: every latency finding is dropped and the latency verdict is withheld,
    said so with how much traffic the run got. Otherwise an uninjected step's move the delays
    explain is set aside, and said so."""
    if latency_short is not None:
        noise = f"too few samples: {latency_short}"
    else:
        noise = _machine_noise([], lateness, fault_at, _injected_move(analysis))
    if noise:
        kept = [f for f in analysis.findings if f.indicator != "latency"]
        injected = LATENCY_VERDICT.removesuffix(" latency")
        excused = {
            f.name: f"latency not judged: {noise}"
            for f in analysis.findings
            if f.indicator == "latency" and f.name != injected
        }
        withheld = {LATENCY_VERDICT: f"not judged ({got}): {noise}"}
        return dataclasses.replace(analysis, findings=tuple(kept)), excused, withheld
    kept, excused = _set_aside(analysis.findings, lateness, fault_at, _injected_move(analysis))
    if excused:
        analysis = dataclasses.replace(analysis, findings=tuple(kept))
    return analysis, excused, {}


# The spec's windows are hours and days; the demo has a minute. An override, not a code path.
# Compressed this far, a window holds seconds, and a few seconds of a busy machine (Prometheus,
# Alertmanager, the app and its customers share two CPUs here) move the p95 of the shortest steps
# by 10-20%: 20 s windows held for 15 s keep such blips out and still fire on the injected change
# about 25 s after it (run the demo for 60 s or more with --stack). Latency is judged per channel:
# 50 steps of one channel in a window, not 20, keep the thin loan_application traffic from
# alerting on a few slow samples while bill_detail's app channel still carries its verdict.
STACK_OVERRIDE = """
defaults:
  regression:
    window: 20s
    baseline: trailing 40s
    min_volume: 50
    for: 15s
"""


def _machine_noise(
    findings: Sequence[Finding],
    lateness: list[tuple[float, float]],
    fault_at: float,
    injected_move: float,
) -> str:
    """Why the latency verdicts may be the machine's doing, or "".

    The bank's steps wait on a simulated backend; how much longer than it asked they took
    (``lateness``: when, seconds late) is the busy machine's share of every step's latency.
    Its p95 in either phase must stay under half of the injected change (``injected_move``:
    seconds added to bill_detail's p95), or the detector could neither find the fault nor tell it
    from noise; and under half of what any uninjected step's p95 moved, in either phase or while
    that step was slower (a burst of the machine's load shorter than a phase), or that move is
    the machine's.
    """
    injected = {(j, s) for j, s, indicator, _ in INJECTED if indicator == "latency"}
    before = sorted(late for when, late in lateness if when < fault_at)
    after = sorted(late for when, late in lateness if when >= fault_at)
    late = max(_p95(before), _p95(after))
    if late >= injected_move / 2:
        return f"{_timers(late)}, against the injected change of {injected_move * 1000:.1f} ms"
    for finding in findings:
        if finding.indicator != "latency" or (finding.journey, finding.step) in injected:
            continue
        moved = finding.regression.current - finding.regression.baseline
        end = math.inf if finding.end_time is None else finding.end_time
        slower = _p95(sorted(x for when, x in lateness if finding.start_time <= when <= end))
        if late >= moved / 2:
            why = _timers(late)
        elif slower >= moved / 2:
            why = f"{_timers(slower)} while it was slower"
        else:
            continue
        return f"{finding.name} p95 moved by {moved * 1000:.1f} ms without a fault, while {why}"
    return ""


def _timers(late: float) -> str:
    return f"the app's timers fired up to {late * 1000:.1f} ms late (p95)"


# The stack's regression window and ``for`` (STACK_OVERRIDE): what an alert's move was measured
# over before it fired, and its smallest move (the example spec's ``min_change``).
_ALERT_SPAN_S = 20 + 15
_MIN_CHANGE = 0.10


def _alert_noise(
    alerts: Sequence[dict[str, Any]], analysis: Analysis, lateness: list[tuple[float, float]]
) -> dict[str, str]:
    """The latency alerts on steps no fault was injected into that the machine's delays explain
    (alert → why), as ``_machine_noise`` sets findings aside: the step's p95 had to move by at
    least ``min_change`` to fire, and the app's timers fired late (p95, over the span the alert
    measured) by at least half of that move."""
    injected = {(j, s) for j, s, indicator, _ in INJECTED if indicator == "latency"}
    p95 = {(r.journey, r.step): r.quantiles.get(0.95) or 0.0 for r in analysis.indicators.steps}
    out: dict[str, str] = {}
    for alert in alerts:
        labels = alert.get("labels", {})
        key = (labels.get("journey"), labels.get("step"))
        if labels.get("alertname") != names.ALERT_LATENCY or key in injected:
            continue
        started = _epoch(str(alert.get("startsAt", "")))
        step_p95 = p95.get(key, 0.0)
        if started is None or not step_p95:
            continue
        late = _p95(sorted(x for when, x in lateness if started - _ALERT_SPAN_S <= when <= started))
        if late >= _MIN_CHANGE * step_p95 / 2:
            name = f"{key[0]}/{key[1]} {names.ALERT_LATENCY} ({labels.get('channel', '')})"
            out[name] = (
                f"{_timers(late)} in the {_ALERT_SPAN_S} s before it fired, against the step's "
                f"p95 of {step_p95 * 1000:.1f} ms"
            )
    return out


def _epoch(stamp: str) -> float | None:
    """Alertmanager's RFC 3339 time (nanoseconds, ``Z``) as epoch seconds, None if unreadable."""
    match = re.fullmatch(r"(.{19})(\.\d+)?(Z|[+-]\d\d:\d\d)", stamp)
    if match is None:
        return None
    fraction = float(match.group(2) or 0.0)
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(match.group(1) + zone).timestamp() + fraction


def _set_aside(
    findings: Sequence[Finding],
    lateness: list[tuple[float, float]],
    fault_at: float,
    injected_move: float,
) -> tuple[list[Finding], dict[str, str]]:
    """The findings to report, and those the machine's delays explain (name → why)."""
    kept: list[Finding] = []
    excused: dict[str, str] = {}
    for finding in findings:
        reason = _machine_noise([finding], lateness, fault_at, injected_move)
        if reason:
            excused[finding.name] = reason
        else:
            kept.append(finding)
    return kept, excused


def _injected_move(analysis: Analysis) -> float:
    """Seconds the latency fault adds to bill_detail's p95 (from the run's own p95)."""
    factor = REGRESSION_FAULT["latency"]["bill_detail"]
    [row] = [r for r in analysis.indicators.steps if r.step == "bill_detail"]
    return (row.quantiles.get(0.95) or 0.0) * (factor - 1) / ((1 + factor) / 2)


def _p95(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0


def _stack_spec(spec: Spec, spec_path: Path) -> Spec:
    """The spec the app runs with under the stack: the override's regression policy, since the
    generated rules take each step's thresholds from the app's own spec series."""
    from ..rules.overlay import parse_with_overrides

    stacked = parse_with_overrides(spec_path.read_text(), [STACK_OVERRIDE], str(spec_path))
    defaults = spec.defaults.model_copy(update={"regression": stacked.defaults.regression})
    return spec.model_copy(update={"defaults": defaults})


def _start_stack(
    out_dir: Path, spec_path: Path, app_url: str, servers: ExitStack, calls: Path | None
) -> Any:
    """Prometheus scraping the app every second with the demo's rules, and Alertmanager; the
    contact centre's imported ``calls`` (OpenMetrics) backfilled into its data first."""
    from .. import rules
    from ..rules.overlay import parse_with_overrides
    from . import stack

    work = out_dir / "stack"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spec = parse_with_overrides(spec_path.read_text(), [STACK_OVERRIDE], str(spec_path))
    rule_file = work / "rules.yml"
    rules.write_atomic(rule_file, rules.render(rules.build(spec)))
    if calls is not None:
        _create_blocks(calls, work / "data")
    alertmanager = servers.enter_context(stack.alertmanager(work).start())
    # Every 2 s: rendering the exposition holds the interpreter for tens of milliseconds, and a
    # scrape every second stalls enough requests to move the p95 of the shortest steps.
    servers.enter_context(
        stack.prometheus(
            work,
            [app_url.removeprefix("http://")],
            [rule_file],
            alertmanager_url=alertmanager.url,
            interval="2s",
        ).start()
    )
    return alertmanager


def _create_blocks(source: Path, data: Path) -> None:
    """``promtool tsdb create-blocks-from openmetrics``: the backfill ``cxmetrics import
    --backfill`` runs, into a Prometheus data directory not yet opened."""
    import subprocess

    from .._binaries import PROMTOOL, require_binary

    data.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            require_binary(PROMTOOL),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(source),
            str(data),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        raise CxError(f"promtool could not backfill the calls: {result.stderr.strip()[-2000:]}")


def _firing(alertmanager_url: str) -> list[dict[str, Any]]:
    """The ``Cx*`` alerts Alertmanager holds right now."""
    import json

    from ..analysis.promapi import http_get

    status, body = http_get(f"{alertmanager_url}/api/v2/alerts?active=true")
    if status != 200:
        raise CxError(f"Alertmanager answered {status}: {body[:200]!r}")
    return [a for a in json.loads(body) if a["labels"].get("alertname", "").startswith("Cx")]


def _artifacts(spec: Spec, out_dir: Path) -> dict[str, Path]:
    """Everything else the spec gives: Prometheus rules, Grafana dashboards and provisioning."""
    from .. import rules
    from ..dashboards import write_dashboards
    from ..dashboards.grafana_files import write_provisioning

    rules_path = out_dir / "rules.yml"
    rules.write_atomic(rules_path, rules.render(rules.build(spec)))
    boards = out_dir / "dashboards"
    write_dashboards(spec, boards)
    provisioning = out_dir / "provisioning"
    write_provisioning(
        spec, provisioning, "/var/lib/grafana/dashboards/cxmetrics", "http://127.0.0.1:9090"
    )
    return {"rules": rules_path, "dashboards": boards, "provisioning": provisioning}


@dataclass
class Served:
    """What the traffic got: requests answered and timed out, when the faults were injected,
    how long it ran, bill_detail answers before and after the faults, and the loan customers
    left at upload_documents (stalled, cut off)."""

    requests: int
    timeouts: int
    fault_at: float
    seconds: float
    detail: tuple[int, int]
    loans: tuple[list[str], list[str]]


def _traffic(
    url: str,
    seconds: float,
    concurrency: int,
    seed: int,
    timeouts: dict[str, float],
    inject: Callable[[], float],
    progress: Progress | None,
    watch: Callable[[], None] = lambda: None,
) -> Served:
    """Drive customers from a separate process (so the app's latencies are not the load
    generator's CPU contention); inject the faults, then ``watch`` every ~2 s.

    Each phase lasts half of ``seconds`` and until bill_detail was answered ``MIN_SAMPLES``
    times in it, whichever is later, but at most ``STRETCH`` times longer: a busy machine serves
    fewer customers per second, and the accuracy verdict needs samples, not seconds."""
    context = multiprocessing.get_context("spawn")
    messages: Any = context.Queue()
    stop = context.Event()
    longest = seconds * STRETCH
    process = context.Process(
        target=_drive,
        args=(url, longest + 5.0, concurrency, seed, timeouts, messages, stop),
        daemon=True,
    )
    process.start()
    fault_at = 0.0
    watched = 0.0
    started = phase = time.monotonic()
    before = 0
    try:
        while True:
            try:
                kind, count, hung_up, detail, loans = messages.get(timeout=1.0)
            except queue.Empty:
                if not process.is_alive():
                    raise CxError(
                        f"the traffic generator stopped (exit {process.exitcode})"
                    ) from None
                continue
            now = time.monotonic()
            samples = detail - before
            ran = now - phase
            done = min(1.0, ran / (seconds / 2), samples / MIN_SAMPLES)
            if ran >= longest / 2:
                done = 1.0
            if not fault_at and done >= 1.0:
                fault_at, phase, before = inject(), now, detail
                done = 0.0
            elif fault_at and done >= 1.0:
                stop.set()
            if fault_at and now - watched >= 2.0 and kind != "done":
                watched = now
                watch()
            if progress is not None:
                fraction = (0.5 if fault_at else 0.0) + done / 2
                progress("stable" if not fault_at else "regression", fraction, count)
            if kind == "done":
                return Served(
                    count, hung_up, fault_at, now - started, (before, detail - before), loans
                )
    finally:
        process.join(30)
        messages.close()
        messages.join_thread()


def _drive(
    url: str,
    seconds: float,
    concurrency: int,
    seed: int,
    timeouts: dict[str, float],
    messages: Any,
    stop: Any,
) -> None:
    """The traffic process: simulated customers for ``seconds`` or until ``stop`` is set,
    progress on ``messages``."""
    _, traffic = bank_modules()

    def tick(fraction: float, st: Any) -> None:
        messages.put(("tick", st.requests, st.timeouts, st.by_path.get(DETAIL_PATH, 0), None))

    stats = asyncio.run(
        traffic.run(
            url,
            seconds,
            concurrency=concurrency,
            seed=seed,
            drain=False,
            timeouts=timeouts,
            on_tick=tick,
            until=stop.is_set,
        )
    )
    loans = (stats.stalled, stats.cut_off)
    detail = stats.by_path.get(DETAIL_PATH, 0)
    messages.put(("done", stats.requests, stats.timeouts, detail, loans))
    messages.close()
    messages.join_thread()


def summary(result: DemoResult) -> dict[str, Any]:
    """The machine-readable summary ``cxmetrics demo --json`` prints."""
    data = result.analysis.to_json()
    return {
        "out_dir": str(result.out_dir),
        "requests": result.requests,
        "timeouts": result.timeouts,
        "fault_injected_at": result.fault_at,
        "injected": REGRESSION_FAULT,
        "regressions": data["regressions"],
        "transient_regressions": data["transient_regressions"],
        "machine_noise": result.machine_noise,
        "alert_noise": result.alert_noise,
        "withheld": result.withheld,
        "followups": (
            result.followups.summary()
            if result.followups is not None
            else {"skipped": result.followups_skipped or "off"}
        ),
        "steps": data["steps"],
        "journeys": data["journeys"],
        "contact": contact_summary(result),
        "files": {k: str(v) for k, v in result.files.items()},
        "alerts": [
            {
                "alertname": a["labels"].get("alertname"),
                "journey": a["labels"].get("journey"),
                "step": a["labels"].get("step"),
                "channel": a["labels"].get("channel"),
                "summary": a["annotations"].get("summary"),
                "since": a.get("startsAt"),
            }
            for a in result.alerts
        ],
    }


def contact_summary(result: DemoResult) -> dict[str, Any]:
    """The contact centre's figures as JSON: per journey the calls offered, each indicator with
    its objective and whether it is met, and the indicators per segment and per channel."""

    def indicators(rows: list[Any]) -> dict[str, Any]:
        return {r.name: r.as_json() for r in rows}

    report = result.contact_import
    out: dict[str, Any] = {}
    if report is not None:
        out["import"] = {
            "rows": report.rows,
            "imported": report.imported,
            "rejected": report.rejected,
        }
    for figure in result.contact:
        out[figure.journey] = {
            "offered": figure.offered,
            "unjudged": figure.unjudged,
            "indicators": indicators(figure.rows),
            **{
                f"by_{dimension}": {
                    value: {"offered": offered, "indicators": indicators(rows)}
                    for value, (offered, rows) in values.items()
                }
                for dimension, values in figure.breakdowns.items()
            },
        }
    return out


def next_steps(result: DemoResult) -> list[str]:
    out = result.out_dir
    lines = []
    if "report" in result.files:
        lines.append(f"open {result.files['report']} in a browser (works offline)")
    lines += [
        f"cxmetrics analyze {out}/cxmetrics.yaml --events {out}/events.jsonl --step 2s",
        f"cxmetrics import {out}/cxmetrics.yaml {out}/calls.csv --events calls.jsonl   # the "
        "contact centre's export",
        f"python -m {bank_package()}.serve --port 8000   # the bank app, /metrics included",
    ]
    if "rules" in result.files:
        lines.append(f"promtool check rules {result.files['rules']}")
    return lines
