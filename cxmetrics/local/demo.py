"""The demo: the example bank under uvicorn, simulated customers over real HTTP, a stable phase,
then the ``bill_detail`` +20% latency regression and an accuracy fault — all in one process, no
servers to install. Everything it produces lands in one output directory (the flow of
docs/architecture.md end to end: events → indicators and regressions; spec → rules and
dashboards).

Needs the ``demo`` extra. The bank app is ``examples/bank`` in a checkout, shipped in the wheel as
``cxmetrics._examples.bank`` (see ``BANK_PACKAGES``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import multiprocessing
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import CxError
from ..spec.load import load_spec
from ..spec.model import Spec
from .stack import free_port

if TYPE_CHECKING:
    from ..analysis.analyzer import Analysis, Finding

REGRESSION_FAULT = {"latency": {"bill_detail": 1.2}, "accuracy": {"total_matches_details": 0.05}}
# The detector's verdicts the demo is about: (journey, step, indicator, check or None).
INJECTED = (
    ("bill_inquiry", "bill_detail", "latency", None),
    ("bill_inquiry", "bill_detail", "accuracy", "total_matches_details"),
)
Progress = Callable[[str, float, int], None]  # phase, fraction done, requests so far


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
) -> DemoResult:
    """Run both phases for ``duration`` seconds in all and analyse what was recorded.

    ``with_stack``: also run a real Prometheus (loaded with the generated rules, windows shortened
    to the demo's minute) and Alertmanager, and collect the alerts that fire."""
    from .. import config
    from ..analysis.analyzer import analyze
    from ..analysis.sources import from_jsonl

    app_module, traffic_module = bank_modules()
    out_dir.mkdir(parents=True, exist_ok=True)
    events = out_dir / "events.jsonl"
    events.unlink(missing_ok=True)
    spec_path = out_dir / "cxmetrics.yaml"
    shutil.copyfile(app_module.SPEC_PATH, spec_path)
    spec = load_spec(spec_path)

    app = app_module.create_app(
        spec, time_scale=time_scale, seed=seed, spans="off", event_log=str(events)
    )
    # Long-lived objects out of the collector's way, as servers do: a full collection otherwise
    # stalls the event loop every few seconds and shows up as latency blips on every step.
    gc.collect()
    gc.freeze()
    app.state.bank.lateness = []  # how late the event loop wakes each step (see _machine_noise)

    def inject() -> float:
        app.state.bank.faults.update(REGRESSION_FAULT)
        return time.time()

    seen: dict[str, dict[str, Any]] = {}
    with serve(app) as url, ExitStack() as servers:
        alertmanager = _start_stack(out_dir, spec_path, url, servers) if with_stack else None

        def watch() -> None:
            # While the customers are still there: when they leave, the volume guards make
            # every alert resolve, as they should.
            if alertmanager is not None:
                for alert in _firing(alertmanager.url):
                    seen.setdefault(alert["fingerprint"], alert)

        timeouts = traffic_module.step_timeouts(spec.scaled(time_scale))
        try:
            requests, hung_up, fault_at = _traffic(
                url, duration, concurrency, seed, timeouts, inject, progress, watch
            )
        finally:
            # Stop recording before the server stops: phone calls still in flight when the
            # traffic ends are cut off by the shutdown, not by the bank.
            config.shutdown()  # flushes and closes the event log
    got = f"{requests:,} requests answered ({hung_up:,} timed out) in {duration:.0f} s"
    if not requests or not events.exists():
        raise NotEnoughTraffic(f"could not generate any traffic: {got}. {_BUSY}")
    # Windows of ~1/40 of the run: enough of them for the detector to place the change point.
    window = max(1.0, round(duration / 40))
    timeline = from_jsonl(spec.scaled(time_scale), events, step=window)
    analysis = analyze(spec.scaled(time_scale), timeline)
    short = [
        f"{step} {subject or indicator}: {v.sensitivity.describe()}"
        for journey, step, indicator, subject in INJECTED
        for v in analysis.verdicts
        if (v.journey, v.step, v.indicator, v.subject) == (journey, step, indicator, subject)
        and v.verdict == "insufficient_data"
    ]
    if short:
        raise NotEnoughTraffic(
            f"could not generate enough traffic to judge the injected faults: {got}; "
            + "; ".join(short)
            + f". {_BUSY}"
        )
    lateness, injected_move = app.state.bank.lateness, _injected_move(analysis)
    noise = _machine_noise([], lateness, fault_at, injected_move)
    if noise:  # no latency verdict can be told from the machine's own delays, found or missed
        raise NotEnoughTraffic(
            f"the machine was too busy to judge latency: {got}; {noise}. {_BUSY}"
        )
    # An uninjected step's move that the machine's delays explain is set aside, and said so,
    # rather than reported as a regression or refusing the verdicts the machine cannot explain.
    kept, excused = _set_aside(analysis.findings, lateness, fault_at, injected_move)
    if excused:
        analysis = dataclasses.replace(analysis, findings=tuple(kept))
    result = DemoResult(
        out_dir,
        spec,
        analysis,
        requests,
        fault_at,
        hung_up,
        alerts=list(seen.values()),
        machine_noise=excused,
    )
    result.files.update({"spec": spec_path, "events": events})
    from ..report import write_report

    result.files["report"] = write_report(
        spec.scaled(time_scale), timeline, analysis, out_dir / "report.html"
    )
    result.files.update(_artifacts(spec, out_dir))
    return result


_BUSY = (
    "The machine is probably busy (the app and its customers share its CPUs): "
    "run again later or with a longer --duration"
)


# The spec's windows are hours and days; the demo has a minute. An override, not a code path.
# Compressed this far, a window holds seconds, and a few seconds of a busy machine (Prometheus,
# Alertmanager, the app and its customers share two CPUs here) move the p95 of the shortest steps
# by 10-20%: 20 s windows held for 15 s keep such blips out and still fire on the injected change
# about 25 s after it (run the demo for 60 s or more with --stack).
STACK_OVERRIDE = """
defaults:
  regression:
    window: 20s
    baseline: trailing 40s
    min_volume: 20
    for: 15s
"""


def _machine_noise(
    findings: Sequence[Finding],
    lateness: list[tuple[float, float]],
    fault_at: float,
    injected_move: float,
) -> str:
    """Why the latency verdicts may be the machine's doing, or "".

    The bank's steps wait on a simulated backend; how much later than asked the event loop woke
    them (``lateness``: when, seconds late) is the busy machine's share of every step's latency.
    Its p95 in either phase must stay under half of the injected change (``injected_move``:
    seconds added to bill_detail's p95), or the detector could neither find the fault nor tell it
    from noise; and under half of what any uninjected step's p95 moved, or that move is the
    machine's.
    """
    injected = {(j, s) for j, s, indicator, _ in INJECTED if indicator == "latency"}
    before = sorted(late for when, late in lateness if when < fault_at)
    after = sorted(late for when, late in lateness if when >= fault_at)
    late = max(_p95(before), _p95(after))
    timers = f"the app's timers fired up to {late * 1000:.1f} ms late (p95)"
    if late >= injected_move / 2:
        return f"{timers}, against the injected change of {injected_move * 1000:.1f} ms"
    for finding in findings:
        if finding.indicator != "latency" or (finding.journey, finding.step) in injected:
            continue
        moved = finding.regression.current - finding.regression.baseline
        if late >= moved / 2:
            return (
                f"{finding.name} p95 moved by {moved * 1000:.1f} ms without a fault, while {timers}"
            )
    return ""


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


def _start_stack(out_dir: Path, spec_path: Path, app_url: str, servers: ExitStack) -> Any:
    """Prometheus scraping the app every second with the demo's rules, and Alertmanager."""
    from .. import rules
    from ..rules.overlay import parse_with_overrides
    from . import stack

    work = out_dir / "stack"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spec = parse_with_overrides(spec_path.read_text(), [STACK_OVERRIDE], str(spec_path))
    rule_file = work / "rules.yml"
    rules.write_atomic(rule_file, rules.render(rules.build(spec)))
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


def _traffic(
    url: str,
    seconds: float,
    concurrency: int,
    seed: int,
    timeouts: dict[str, float],
    inject: Callable[[], float],
    progress: Progress | None,
    watch: Callable[[], None] = lambda: None,
) -> tuple[int, int, float]:
    """Drive customers from a separate process (so the app's latencies are not the load
    generator's CPU contention); inject the faults half-way, then ``watch`` every ~2 s.
    Returns requests answered, requests timed out (per path ``timeouts``) and the time the
    faults were injected."""
    context = multiprocessing.get_context("spawn")
    messages: Any = context.Queue()
    process = context.Process(
        target=_drive, args=(url, seconds, concurrency, seed, timeouts, messages), daemon=True
    )
    process.start()
    fault_at = 0.0
    watched = 0.0
    try:
        while True:
            try:
                kind, fraction, count, hung_up = messages.get(timeout=1.0)
            except queue.Empty:
                if not process.is_alive():
                    raise CxError(
                        f"the traffic generator stopped (exit {process.exitcode})"
                    ) from None
                continue
            if fraction >= 0.5 and not fault_at:
                fault_at = inject()
            if fault_at and time.monotonic() - watched >= 2.0 and kind != "done":
                watched = time.monotonic()
                watch()
            if progress is not None:
                progress("stable" if not fault_at else "regression", fraction, count)
            if kind == "done":
                return count, hung_up, fault_at
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
) -> None:
    """The traffic process: simulated customers for ``seconds``, progress on ``messages``."""
    _, traffic = bank_modules()
    stats = asyncio.run(
        traffic.run(
            url,
            seconds,
            concurrency=concurrency,
            seed=seed,
            drain=False,
            timeouts=timeouts,
            on_tick=lambda fraction, st: messages.put(("tick", fraction, st.requests, st.timeouts)),
        )
    )
    messages.put(("done", 1.0, stats.requests, stats.timeouts))
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
        "steps": data["steps"],
        "journeys": data["journeys"],
        "files": {k: str(v) for k, v in result.files.items()},
        "alerts": [
            {
                "alertname": a["labels"].get("alertname"),
                "journey": a["labels"].get("journey"),
                "step": a["labels"].get("step"),
                "summary": a["annotations"].get("summary"),
                "since": a.get("startsAt"),
            }
            for a in result.alerts
        ],
    }


def next_steps(result: DemoResult) -> list[str]:
    out = result.out_dir
    lines = []
    if "report" in result.files:
        lines.append(f"open {result.files['report']} in a browser (works offline)")
    lines += [
        f"cxmetrics analyze {out}/cxmetrics.yaml --events {out}/events.jsonl --step 2s",
        f"python -m {bank_package()}.serve --port 8000   # the bank app, /metrics included",
    ]
    if "rules" in result.files:
        lines.append(f"promtool check rules {result.files['rules']}")
    return lines
