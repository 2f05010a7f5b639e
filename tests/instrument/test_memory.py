"""1,000,000 distinct journey instances through one process: resident memory stays flat.

Journey state travels with the journey, never in process memory (docs/architecture.md). The run happens in
a fresh subprocess (so other tests' memory does not interfere), reading RSS from /proc/self/statm.
The mix is hostile on purpose: undeclared journey and channel names from "user input", malformed
incoming contexts, failed checks that make spans, feedback, cross-request resumes.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.paths import EXAMPLE_SPEC, ROOT

pytestmark = pytest.mark.slow  # every test here starts a server or a subprocess

INSTANCES = 1_000_000
WARM_UP = 200_000
SAMPLE_EVERY = 100_000

SCRIPT = r"""
import gc, json, os, sys, time
from decimal import Decimal
from prometheus_client import CollectorRegistry, generate_latest
import cxmetrics
from cxmetrics.instrument import state as _state

spec, instances, sample_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
registry = CollectorRegistry()
assert cxmetrics.configure(spec, registry=registry, spans="interesting", strict=True)
page = os.sysconf("SC_PAGE_SIZE")

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page

bad_headers = [{"baggage": "cx.journey=bill_inquiry,cx.id=nothex"},
               {"baggage": "cx.journey=Bill,cx.id=" + "a" * 32},
               {"baggage": "x" * 9000}]
started = time.monotonic()
samples = [(0, rss())]
ids = set()
for i in range(1, instances + 1):
    if i % 100 == 0:  # a name from user input: folded into 'other', nothing kept per name
        cxmetrics.extract(bad_headers[i % 3])
        with cxmetrics.journey(f"promo_{i}", channel=f"kiosk_{i}") as j, j.step(f"s{i}"):
            pass
    elif i % 50 == 0:  # a whole journey over three "requests", resumed from its context
        headers = {}
        with cxmetrics.journey("bill_inquiry", channel="web") as j, j.step("login"):
            pass
        j.inject(headers)
        with cxmetrics.journey("bill_inquiry", context=cxmetrics.extract(headers)) as j:
            with j.step("bill_total") as s:
                s.fingerprint(Decimal(i))
            j.inject(headers)
        with cxmetrics.journey("bill_inquiry", context=cxmetrics.extract(headers)) as j:
            with j.step("bill_detail") as s:
                s.reconcile("total_matches_details", Decimal(i), Decimal(i + (i % 200 == 0)))
                s.consistent("detail_consistent_with_total", Decimal(i))
            j.feedback(csat=1 + i % 5)
    else:
        with cxmetrics.journey("transfer") as j, j.step("payee"):
            pass
    if i % 1000 == 0:
        ids.add(j.journey_id)
    if i % sample_every == 0:
        samples.append((i, rss()))
generate_latest(registry)
gc.collect()
samples.append((instances + 1, rss()))
undeclared = registry.get_sample_value("cx_undeclared_names_total", {"kind": "journey"})
started_total = sum(
    s.value for f in registry.collect() for s in f.samples
    if s.name == "cx_journeys_started_total"
)
print(json.dumps({
    "samples": samples, "seconds": time.monotonic() - started, "distinct_ids": len(ids),
    "started": started_total, "undeclared_journeys": undeclared,
    "logged": len(_state.STATE.logged), "errors": _state.STATE.errors,
}))
"""


def test_a_million_journey_instances_keep_memory_flat() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(EXAMPLE_SPEC), str(INSTANCES), str(SAMPLE_EVERY)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout)
    samples = dict(report["samples"])
    mb = 1 << 20
    growth = max(samples.values()) - samples[0]
    # The flatness is about instances: the last sample (after rendering the exposition once, whose
    # size follows the spec's series, not the instances) counts for the growth bound only.
    after_warm_up = [v for i, v in samples.items() if WARM_UP <= i <= INSTANCES]
    print(
        f"{INSTANCES} instances in {report['seconds']:.1f} s; RSS (MB) "
        + ", ".join(f"{i // 1000}k: {v / mb:.1f}" for i, v in samples.items())
    )
    # every instance was real and distinct: 1M starts counted, no instance kept in memory
    assert report["started"] == INSTANCES
    assert report["undeclared_journeys"] == INSTANCES // 100
    assert report["distinct_ids"] == INSTANCES // 1000
    assert report["errors"] == {}
    assert report["logged"] <= 8  # log-once keys per kind/reason, never per name or instance
    assert growth < 50 * mb
    assert max(after_warm_up) - min(after_warm_up) < 2 * mb  # flat: nothing per instance
    assert report["seconds"] < 60
