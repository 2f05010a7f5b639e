"""Rule-evaluation time of a real Prometheus for the example spec: these rules against a baseline.

The bank app (``examples.bank.serve``, time compressed) runs as a subprocess with simulated
customers; two Prometheus servers scrape it every second — one evaluating the rules generated now,
one the ``--before`` rule file (e.g. written by an earlier cxmetrics) — so both see the same data.
After ``--seconds``, each server's ``prometheus_rule_group_last_duration_seconds`` (summed over
groups) is sampled once a second for 20 s; the mean per evaluation cycle is printed with the ratio.

    .venv/bin/python benchmarks/bench_rule_eval.py --before old-rules.yml [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from cxmetrics.local import stack
from cxmetrics.rules import build, render
from cxmetrics.spec.load import load_spec
from examples.bank import traffic

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "bank" / "cxmetrics.yaml"
METRIC = "prometheus_rule_group_last_duration_seconds"
QUERY = f"sum({METRIC})"


def _evaluation_seconds(url: str) -> float:
    """Sum of the server's own ``prometheus_rule_group_last_duration_seconds`` over groups (read
    from its /metrics: the servers do not scrape themselves)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(f"{METRIC}{{")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the baseline rule file")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cx-rule-eval-"))
    after = work / "after.yml"
    after.write_text(render(build(load_spec(SPEC))))
    port = stack.free_port()
    app = subprocess.Popen(
        [sys.executable, "-m", "examples.bank.serve", "--port", str(port), "--time-scale", "0.02"],
        cwd=ROOT,
    )
    try:
        time.sleep(3)
        target = [f"127.0.0.1:{port}"]
        with (
            stack.prometheus(work / "before", target, [args.before]).start() as before,
            stack.prometheus(work / "after", target, [after]).start() as now,
        ):
            asyncio.run(
                traffic.run(
                    f"http://127.0.0.1:{port}", duration=args.seconds, concurrency=8, seed=1
                )
            )
            readings: dict[str, list[float]] = {"before": [], "after": []}
            for _ in range(20):
                for name, server in (("before", before), ("after", now)):
                    readings[name].append(_evaluation_seconds(server.url))
                time.sleep(1)
    finally:
        app.terminate()
        app.wait(10)
    b, a = statistics.mean(readings["before"]), statistics.mean(readings["after"])
    print(f"rule evaluation per cycle, example spec ({QUERY}, mean of 20 readings):")
    print(f"  before ({args.before.name}): {b * 1000:.2f} ms")
    print(f"  after  (generated now):     {a * 1000:.2f} ms  ({a / b:.2f}x)")


if __name__ == "__main__":
    main()
