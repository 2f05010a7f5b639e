"""``cxmetrics import``: CSV and JSONL exports, bad rows counted and named with file:line (never
a crash, nothing silently dropped), the CLI's exit codes and JSON report."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from cxmetrics._exceptions import CxError
from cxmetrics.analysis import contact
from cxmetrics.exposition.eventlog import read_log
from cxmetrics.instrument.redaction import hmac_redactor
from cxmetrics.records.importer import import_calls
from cxmetrics.records.openmetrics import Backfill
from cxmetrics.spec.load import load_spec
from cxmetrics.spec.model import Spec
from tests.helpers.calls import EXPECTED, HEADER, rows, write_csv, write_jsonl
from tests.helpers.paths import EXAMPLE_SPEC, ROOT

SPEC = ROOT / "tests" / "data" / "contact_centre.yaml"
CLI = ROOT / ".venv" / "bin" / "cxmetrics"
REDACT = hmac_redactor(b"fixture-key")
T0 = 1_760_000_000.0
GOOD = "g1,A,care,1760000000,1760000010,1760000100,no,resolved,,5"


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec(SPEC)


def test_csv_and_jsonl_import_the_same_events(spec: Spec, tmp_path: Path) -> None:
    records = rows(T0)
    outs = []
    for path in (
        write_csv(tmp_path / "c.csv", records),
        write_jsonl(tmp_path / "c.jsonl", records),
    ):
        events = io.BytesIO()
        report = import_calls(
            spec, path, "csv" if path.suffix == ".csv" else "jsonl", REDACT, events=events
        )
        assert (report.rows, report.imported, report.rejected) == (8, 8, 0)
        outs.append(events.getvalue())
    assert outs[0] == outs[1]


def test_iso_timestamps_with_an_offset_or_in_the_mapping_time_zone(
    spec: Spec, tmp_path: Path
) -> None:
    export = tmp_path / "iso.csv"
    export.write_text(
        ",".join(HEADER)
        + "\n"
        + "i1,A,care,2025-10-09T08:53:20Z,2025-10-09T08:53:30+00:00,2025-10-09T08:55:00Z,,,,\n"
        + "i2,B,care,2025-10-09 08:53:20,2025-10-09 08:53:50,2025-10-09 08:55:00,,,,\n"
    )
    events = io.BytesIO()
    report = import_calls(spec, export, "csv", REDACT, events=events)
    assert report.rejected == 0, report.problems
    (log := tmp_path / "e.jsonl").write_bytes(events.getvalue())
    calls = [e for e in read_log(log).events if e.kind == "contact"]
    assert [(c.offered, c.wait) for c in calls] == [(T0, 10.0), (T0, 30.0)]


BAD_CSV = [
    (",A,care,1760000000,,1760000100,,,,", "call_id: missing"),
    ("b2,A,care,yesterday,,1760000100,,,,", "offered_at: 'yesterday' is not a time"),
    ("b3,A,care,1760000000,,1759999000,,,,", "ended_at: '1759999000' is not between the offered"),
    ("b4,A,care,1760000000,1760000200,1760000100,,,,", "answered_at: '1760000200' is not between"),
    ("b5,A,care,1760000000,,1760000100,maybe,,,", "transferred: 'maybe' is not a yes/no value"),
    ("b6,A,care,1760000000,1760000010,1760000100,,,,7", "survey_score: '7' is not a csat score"),
    ("b7,A,sales,1760000000,,1760000100,,,,", "queue 'sales' is not listed"),
    ("b8,A,care,1760000000,,1760000100,,,,,extra", "11 fields, the header has 10"),
    ("b9,A,care,,,1760000100,,,,", "offered_at: missing"),
    ("b10,A,care,99,,100,,,,", "offered_at: '99' is not between 2000-01-01"),
    ("b11,A,care,1759990000,,1759990100,,,,", "offered more than an hour before a call"),
]


def test_bad_rows_are_counted_and_named_with_file_and_line(spec: Spec, tmp_path: Path) -> None:
    lines = [",".join(HEADER), GOOD] + [line for line, _ in BAD_CSV] + [GOOD.replace("g1", "g2")]
    export = tmp_path / "bad.csv"
    export.write_text("\n".join(lines) + "\n")
    rejects = io.BytesIO()
    events = io.BytesIO()
    report = import_calls(spec, export, "csv", REDACT, events=events, rejects=rejects)
    assert (report.rows, report.imported, report.rejected) == (13, 2, 11)
    assert len(report.problems) == 11
    for k, (problem, (_, reason)) in enumerate(zip(report.problems, BAD_CSV, strict=True)):
        assert problem.startswith(f"{export}:{k + 3}: "), problem
        assert reason in problem, (reason, problem)
    assert sum(report.reasons.values()) == 11
    written = [json.loads(line) for line in rejects.getvalue().splitlines()]
    assert [w["line"] for w in written] == list(range(3, 14))
    assert written[0]["row"]["call_id"] == ""
    assert contact.offered(report.counts["care"]) == 2


def test_bad_jsonl_lines(spec: Spec, tmp_path: Path) -> None:
    good = rows(T0)[0]
    export = tmp_path / "bad.jsonl"
    export.write_text(
        "\n".join(
            [
                json.dumps(good),
                "{not json",
                "[1, 2]",
                json.dumps({**good, "call_id": {"nested": 1}}),
                "",
                json.dumps({**good, "transferred": "sometimes"}),
            ]
        )
    )
    report = import_calls(spec, export, "jsonl", REDACT)
    assert (report.rows, report.imported, report.rejected) == (5, 1, 4)
    assert [p.split(": ", 1)[0] for p in report.problems] == [f"{export}:{n}" for n in (2, 3, 4, 6)]
    assert "not JSON" in report.problems[0]
    assert "not a JSON object" in report.problems[1]
    assert "a dict where a text or number belongs" in report.problems[2]


def test_a_spec_without_contact_journey_is_refused(tmp_path: Path) -> None:
    export = write_csv(tmp_path / "c.csv", rows(T0))
    text = EXAMPLE_SPEC.read_text()
    (plain := tmp_path / "plain.yaml").write_text(text[: text.index("    contact:")])
    with pytest.raises(CxError, match="declares no contact journey"):
        import_calls(load_spec(plain), export, "csv", REDACT)


def test_backfill_holds_every_series_from_zero(spec: Spec, tmp_path: Path) -> None:
    backfill = Backfill(60.0)
    import_calls(spec, write_csv(tmp_path / "c.csv", rows(T0)), "csv", REDACT, backfill=backfill)
    text = (tmp_path / "c.om").read_text() if backfill.write(tmp_path / "c.om") else ""
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    series: dict[str, list[tuple[float, float]]] = {}
    for line in lines:
        name, value, stamp = line.rsplit(" ", 2)
        series.setdefault(name, []).append((float(stamp), float(value)))
    first = min(t for points in series.values() for t, _ in points)
    assert all(points[0] == (first, 0.0) for points in series.values())
    answered = series[
        'cx_contacts_total{service="contact_fixture",journey="care",disposition="answered",wait="within"}'
    ]
    assert answered[-1][1] == 4.0
    assert text.endswith("# EOF\n")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "import", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow
def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    export = write_csv(tmp_path / "c.csv", rows(T0))
    events = tmp_path / "e.jsonl"
    ok = _cli(str(SPEC), str(export), "--events", str(events), "--json", "--customer-key", "k")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert (report["rows"], report["imported"], report["rejected"]) == (8, 8, 0)
    values = {k: v["value"] for k, v in report["journeys"]["care"]["indicators"].items()}
    assert values == pytest.approx(EXPECTED)
    bad = tmp_path / "bad.csv"
    bad.write_text(export.read_text() + "x,A,care,later,,1,,,,\n")
    rejected = _cli(str(SPEC), str(bad), "--events", str(tmp_path / "e2.jsonl"))
    assert rejected.returncode == 6
    assert f"{bad}:10: offered_at: 'later' is not a time" in rejected.stdout
    nothing = _cli(str(SPEC), str(export))
    assert nothing.returncode == 1
    assert "nothing to write" in nothing.stderr
    analyzed = subprocess.run(
        [str(CLI), "analyze", str(SPEC), "--events", str(events), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert analyzed.returncode in (0, 4), analyzed.stderr
    data = json.loads(analyzed.stdout)
    assert data["contact"]["care"]["service_level"]["value"] == pytest.approx(4 / 7)
    # call_answered → issue_resolved within the 10-minute window: calls 1, 2, 6, 7 continue
    # (300, 180, 600, 120 s later), calls 3-5 were never answered; call 8, answered at 6005 s,
    # is in flight: the data end (6065 s) is less than 10 minutes after it.
    answered = data["conversion_judged"]["care/call_answered"]
    assert (answered["judged"], answered["in_flight"]) == (7, 1)
    assert answered["conversion"] == pytest.approx(4 / 7)
    assert data["journey_time"]["care"]["completed"] == 5


def test_the_bank_contact_centre_simulation_imports_whole(spec: Spec, tmp_path: Path) -> None:
    from examples.bank.contact import write

    export = tmp_path / "bank.csv"
    totals = write(export, 3000, start=T0)
    report = import_calls(spec, export, "csv", REDACT)
    assert (report.rows, report.imported, report.rejected) == (3000, 3000, 0), report.problems
    counts = report.counts["care"]
    calls = {d: 0.0 for d in ("answered", "abandoned", "failed")}
    for (disposition, _), n in counts.series["cx_contacts_total"].items():
        calls["abandoned" if disposition == "short_abandoned" else disposition] += n
    assert calls == {k: float(v) for k, v in totals.items()}
    view = {r.name: r.value for r in contact.view(spec.journey("care"), counts)}
    assert all(view[name] is not None for name in view)
    fcr = view["first_contact_resolution"]
    assert fcr is not None
    assert 0 < fcr < 1  # call-backs are repeats


def test_segment_and_channel_columns_fold_undeclared_names(tmp_path: Path) -> None:
    text = SPEC.read_text().replace(
        "channels: [phone]\njourneys:", "channels: [phone, web]\nsegments: [vip, mass]\njourneys:"
    )
    text = text.replace(
        "  - name: care\n    channels: [phone]", "  - name: care\n    channels: [phone, web]"
    )
    (spec_path := tmp_path / "spec.yaml").write_text(text)
    spec = load_spec(spec_path)
    export = tmp_path / "seg.csv"
    export.write_text(
        ",".join((*HEADER, "channel", "segment"))
        + "\n"
        + "s1,A,care,1760000000,1760000010,1760000100,,,,5,web,vip\n"
        + "s2,B,care,1760000001,,1760000050,,,,,,mass\n"
        + "s3,C,care,1760000002,1760000012,1760000102,,,,4,fax,gold\n"
        + "s4,D,care,1760000003,1760000013,1760000103,,,,,,\n"
    )
    events = io.BytesIO()
    report = import_calls(spec, export, "csv", REDACT, events=events)
    assert (report.imported, report.rejected) == (4, 0), report.problems
    (log := tmp_path / "e.jsonl").write_bytes(events.getvalue())
    seen = {
        (e.kind, e.journey_id): (e.channel, e.segment)
        for e in read_log(log).events
        if e.kind in ("contact", "feedback", "journey")
    }
    assert seen == {
        (kind, call): where
        for call, where in (
            ("s1", ("web", "vip")),
            ("s2", ("phone", "mass")),
            ("s3", ("other", "other")),
            ("s4", ("phone", "none")),
        )
        for kind in ("journey", "contact", *(("feedback",) if call in ("s1", "s3") else ()))
    }
    assert report.counts["care"].series["cx_feedback_responses_total"] == {
        ("issue_resolved", "web", "vip", "csat", "5"): 1.0,
        ("issue_resolved", "other", "other", "csat", "4"): 1.0,
    }
