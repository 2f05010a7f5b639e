"""The demo: the example bank under uvicorn, simulated customers over real HTTP, a stable phase,
then the ``bill_detail`` +20% latency regression and an accuracy fault — all in one process, no
servers to install. Everything it produces lands in one output directory (DESIGN.md §3 end to
end: events → indicators and regressions; spec → rules and dashboards).

Needs a checkout of the repository (the bank app lives in ``examples/bank``) and the ``demo``
and ``analyze`` extras.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._exceptions import CxError
from .spec import Spec, load_spec
from .stack import free_port

if TYPE_CHECKING:
    from .analysis import Analysis

REGRESSION_FAULT = {"latency": {"bill_detail": 1.2}, "accuracy": {"total_matches_details": 0.05}}
Progress = Callable[[str, float, int], None]  # phase, fraction done, requests so far


@dataclass
class DemoResult:
    out_dir: Path
    spec: Spec
    analysis: Analysis
    requests: int
    fault_at: float
    files: dict[str, Path] = field(default_factory=dict)


def bank_modules() -> tuple[Any, Any]:
    """The example bank app and traffic generator, from the checkout this package runs from."""
    try:
        from examples.bank import app, traffic
    except ImportError as exc:
        raise CxError(
            "the demo needs the example bank app from a cxmetrics checkout (examples/bank); "
            "run it from the repository root with 'make demo'"
        ) from exc
    return app, traffic


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on a free loopback port."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
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
    time_scale: float = 0.05,
    concurrency: int = 24,
    seed: int = 7,
    progress: Progress | None = None,
) -> DemoResult:
    """Run both phases for ``duration`` seconds in all and analyse what was recorded."""
    from . import config
    from .analysis import analyze
    from .sources import from_jsonl

    app_module, traffic = bank_modules()
    out_dir.mkdir(parents=True, exist_ok=True)
    events = out_dir / "events.jsonl"
    events.unlink(missing_ok=True)
    spec_path = out_dir / "cxmetrics.yaml"
    shutil.copyfile(app_module.SPEC_PATH, spec_path)
    spec = load_spec(spec_path)

    app = app_module.create_app(
        spec, time_scale=time_scale, seed=seed, spans="off", event_log=str(events)
    )
    requests = 0
    fault_at = 0.0
    try:
        with serve(app) as url:
            for phase, share, faults in (
                ("stable", 0.5, None),
                ("regression", 0.5, REGRESSION_FAULT),
            ):
                if faults is not None:
                    app.state.bank.faults.update(faults)
                    fault_at = time.time()

                def tick(
                    fraction: float, stats: Any, _phase: str = phase, _base: int = requests
                ) -> None:
                    if progress is not None:
                        progress(_phase, fraction, _base + stats.requests)

                stats = asyncio.run(
                    traffic.run(
                        url,
                        duration * share,
                        concurrency=concurrency,
                        seed=seed,
                        on_tick=tick,
                        drain=False,
                    )
                )
                requests += stats.requests
    finally:
        config.shutdown()  # flushes and closes the event log
    # Windows of ~1/40 of the run: enough of them for the detector to place the change point.
    window = max(1.0, round(duration / 40))
    timeline = from_jsonl(spec.scaled(time_scale), events, step=window)
    analysis = analyze(spec.scaled(time_scale), timeline)
    result = DemoResult(out_dir, spec, analysis, requests, fault_at)
    result.files.update({"spec": spec_path, "events": events})
    return result


def summary(result: DemoResult) -> dict[str, Any]:
    """The machine-readable summary ``cxmetrics demo --json`` prints."""
    data = result.analysis.to_json()
    return {
        "out_dir": str(result.out_dir),
        "requests": result.requests,
        "fault_injected_at": result.fault_at,
        "injected": REGRESSION_FAULT,
        "regressions": data["regressions"],
        "steps": data["steps"],
        "journeys": data["journeys"],
        "files": {k: str(v) for k, v in result.files.items()},
    }


def next_steps(result: DemoResult) -> list[str]:
    out = result.out_dir
    lines = []
    if "report" in result.files:
        lines.append(f"open {result.files['report']} in a browser (works offline)")
    lines += [
        f"cxmetrics analyze {out}/cxmetrics.yaml --events {out}/events.jsonl --step 2s",
        "python -m examples.bank.serve --port 8000   # the bank app, /metrics included",
    ]
    if "rules" in result.files:
        lines.append(f"promtool check rules {result.files['rules']}")
    return lines
