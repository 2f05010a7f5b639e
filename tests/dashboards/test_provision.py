"""``cxmetrics provision`` through the CLI's root group against the loopback Grafana stand-in.

No Grafana server runs here (see ``tests/grafana_standin.py``): the stand-in implements the
endpoints grafana-client calls with Grafana's save semantics, keeps state, and checks the bearer
token, so these tests see exactly the requests and state a real Grafana would.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cxmetrics.cli import cli
from cxmetrics.dashboards import build_dashboards, content_digest, recorded_digest
from cxmetrics.spec.model import Spec
from tests.helpers.grafana_standin import GrafanaStandIn
from tests.helpers.paths import EXAMPLE_SPEC

TOKEN = "glsa_standin_0123456789abcdef"
READ_ONLY = "glsa_viewer_0123456789abcdef"
UIDS = [
    "cx-bank_app-home",
    "cx-bill_inquiry-overview",
    "cx-bill_inquiry-steps",
    "cx-transfer-overview",
    "cx-transfer-steps",
    "cx-loan_application-overview",
    "cx-loan_application-steps",
    "cx-loan_application-followups",
    "cx-contact_centre-overview",
    "cx-contact_centre-steps",
    "cx-contact_centre-contact",
]
FOLDER = "folder 'CX: bank_app' (cx-bank_app)"


@pytest.fixture
def grafana() -> Iterator[GrafanaStandIn]:
    with GrafanaStandIn(TOKEN, read_only_token=READ_ONLY) as standin:
        yield standin


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def provision(url: str, *args: str, token: str | None = TOKEN, spec: Path = EXAMPLE_SPEC) -> Run:
    """``cxmetrics provision`` through the CLI's root group, in this process (fast)."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("GRAFANA_")}
    env["GRAFANA_TOKEN"] = token
    result = CliRunner().invoke(
        cli,
        ["provision", str(spec), "--grafana-url", url, "--retry-delay", "0.01", *args],
        env=env,
        catch_exceptions=False,
    )
    run = Run(result.exit_code, result.stdout, result.stderr)
    for secret in (TOKEN, READ_ONLY):
        assert secret not in run.stdout + run.stderr  # never printed
    return run


def actions(result: Run) -> dict[str, str]:
    out = {}
    for line in result.stderr.splitlines():
        if line.startswith("["):
            _, rest = line.split("] ", 1)
            action, uid = rest[:12].strip(), rest[12:].split()[0]
            out[uid] = action
    return out


@pytest.mark.slow
def test_first_run_creates_everything_and_a_second_run_changes_nothing(
    grafana: GrafanaStandIn, example_spec: Spec
) -> None:
    first = provision(grafana.url)
    assert first.returncode == 0, first.stderr
    assert first.stdout == (
        f"created {FOLDER} at {grafana.url}; created 11, updated 0, unchanged 0\n"
    )
    assert actions(first) == dict.fromkeys(UIDS, "created")
    assert [line.split()[0] for line in first.stderr.splitlines()] == [
        f"[{i}/11]" for i in range(1, 12)
    ]
    assert grafana.folders["cx-bank_app"]["title"] == "CX: bank_app"
    local = {b["uid"]: b for b in build_dashboards(example_spec)}
    assert sorted(grafana.dashboards) == sorted(UIDS)
    for uid, stored in grafana.dashboards.items():
        assert stored["version"] == 1 and stored["folderUid"] == "cx-bank_app"
        assert {
            k: v for k, v in stored["dashboard"].items() if k not in ("id", "version")
        } == local[uid]
        assert stored["message"] == f"cxmetrics 0.1.0: spec {example_spec.fingerprint}"

    writes_before = len(grafana.writes())
    second = provision(grafana.url)
    assert second.returncode == 0, second.stderr
    assert (
        second.stdout
        == f"nothing to change: 11 dashboards up to date in {FOLDER} at {grafana.url}\n"
    )
    assert actions(second) == dict.fromkeys(UIDS, "unchanged")
    assert len(grafana.writes()) == writes_before  # not one write
    assert {stored["version"] for stored in grafana.dashboards.values()} == {1}


@pytest.mark.slow
def test_dry_run_prints_what_would_change_and_changes_nothing(grafana: GrafanaStandIn) -> None:
    result = provision(grafana.url, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"dry run, nothing changed: would create {FOLDER} at {grafana.url}; "
        "would create 11, would update 0, unchanged 0\n"
    )
    assert actions(result) == dict.fromkeys(UIDS, "would create")
    assert grafana.writes() == [] and grafana.folders == {} and grafana.dashboards == {}


@pytest.mark.slow
def test_a_changed_spec_updates_only_the_dashboards_it_changes(
    grafana: GrafanaStandIn, tmp_path: Path
) -> None:
    assert provision(grafana.url).returncode == 0
    spec = tmp_path / "cxmetrics.yaml"
    spec.write_text(EXAMPLE_SPEC.read_text().replace("target: 1.5s", "target: 1.2s"))
    dry = provision(grafana.url, "--dry-run", spec=spec)
    assert dry.stdout.endswith("would create 0, would update 1, unchanged 10\n")
    assert grafana.dashboards["cx-bill_inquiry-steps"]["version"] == 1
    result = provision(grafana.url, spec=spec)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"in {FOLDER} at {grafana.url}: created 0, updated 1, unchanged 10\n")
    assert actions(result)["cx-bill_inquiry-steps"] == "updated"
    stored = grafana.dashboards["cx-bill_inquiry-steps"]
    assert stored["version"] == 2
    latency = next(
        p
        for p in stored["dashboard"]["panels"]
        if p["title"] == "Latency of the step: p50, p95, p99"
    )
    bands = {
        o["matcher"]["options"]["names"][0]: o["properties"][0]["value"]["steps"][1]["value"]
        for o in latency["fieldConfig"]["overrides"]
        if o["properties"][0]["id"] == "thresholds"
    }
    assert bands == {"login p50": 0.8, "bill_total p50": 1.0, "bill_detail p50": 1.2}


@pytest.mark.slow
def test_a_dashboard_edited_in_grafana_is_refused_unless_forced(grafana: GrafanaStandIn) -> None:
    assert provision(grafana.url).returncode == 0
    grafana.edit_in_ui("cx-transfer-overview", "transfer (my copy)")

    refused = provision(grafana.url)
    assert refused.returncode == 1
    assert actions(refused)["cx-transfer-overview"] == "refused"
    assert (
        "cx-transfer-overview           transfer: journey overview: edited in Grafana since "
        "cxmetrics provisioned it (version 2)"
    ) in refused.stderr
    assert refused.stderr.endswith(
        "error: 1 dashboard(s) left as they are because they were edited in Grafana, not "
        "written by cxmetrics, or hold another service's journey: cx-transfer-overview; re-run "
        "with --force to overwrite them\n"
    )
    assert grafana.dashboards["cx-transfer-overview"]["dashboard"]["title"] == "transfer (my copy)"
    assert provision(grafana.url, "--dry-run").returncode == 1  # the dry run says so too

    forced = provision(grafana.url, "--force")
    assert forced.returncode == 0, forced.stderr
    assert actions(forced)["cx-transfer-overview"] == "updated"
    stored = grafana.dashboards["cx-transfer-overview"]
    assert stored["version"] == 3
    assert stored["dashboard"]["title"] == "transfer: journey overview"
    assert content_digest(stored["dashboard"]) == recorded_digest(stored["dashboard"])
    assert provision(grafana.url).stdout.startswith("nothing to change: 11 dashboards")


@pytest.mark.slow
def test_a_dashboard_not_written_by_cxmetrics_is_not_overwritten(grafana: GrafanaStandIn) -> None:
    request(grafana.url, "POST", "/api/folders", {"title": "CX: bank_app", "uid": "cx-bank_app"})
    request(
        grafana.url,
        "POST",
        "/api/dashboards/db",
        {
            "dashboard": {"uid": "cx-transfer-steps", "title": "hand made", "panels": []},
            "folderUid": "cx-bank_app",
        },
    )
    result = provision(grafana.url)
    assert result.returncode == 1
    assert (
        "transfer: step view: a dashboard with this uid exists in Grafana but was not written "
        "by cxmetrics" in result.stderr
    )
    assert result.stdout.endswith("created 10, updated 0, unchanged 0\n")
    assert grafana.dashboards["cx-transfer-steps"]["dashboard"]["title"] == "hand made"


@pytest.mark.slow
def test_another_service_with_a_journey_of_the_same_name_does_not_overwrite_its_dashboards(
    grafana: GrafanaStandIn, tmp_path: Path
) -> None:
    """Uids name the journey (``cx-transfer-overview``), not the service: a second service with
    a ``transfer`` journey would have replaced bank_app's dashboards with its own."""
    assert provision(grafana.url).returncode == 0
    other = tmp_path / "cxmetrics.yaml"
    other.write_text(EXAMPLE_SPEC.read_text().replace("service: bank_app", "service: cards"))
    result = provision(grafana.url, spec=other)
    assert result.returncode == 1
    refused = {uid for uid, action in actions(result).items() if action == "refused"}
    assert refused == {u for u in UIDS if u != "cx-bank_app-home"}
    assert (
        "cx-transfer-overview           transfer: journey overview: this uid holds service "
        "'bank_app''s dashboard of a journey of the same name; give the journey a name of its "
        "own in one of the specs, or provision 'cards' to another Grafana organisation"
    ) in result.stderr
    assert actions(result)["cx-cards-home"] == "created"
    for uid in refused:  # bank_app's dashboards are as bank_app provisioned them
        stored = grafana.dashboards[uid]
        assert stored["version"] == 1 and stored["folderUid"] == "cx-bank_app", uid
    assert provision(grafana.url).stdout.startswith("nothing to change: 11 dashboards")


@pytest.mark.slow
def test_a_save_racing_ours_is_a_clear_412(grafana: GrafanaStandIn, tmp_path: Path) -> None:
    assert provision(grafana.url).returncode == 0
    spec = tmp_path / "cxmetrics.yaml"
    spec.write_text(EXAMPLE_SPEC.read_text().replace("target: 1.5s", "target: 1.2s"))
    grafana.edit_after_next_read("cx-bill_inquiry-steps", "saved meanwhile")
    result = provision(grafana.url, spec=spec)
    assert result.returncode == 1
    assert result.stderr.endswith(
        "error: saving dashboard cx-bill_inquiry-steps: changed in Grafana while cxmetrics was "
        "updating it (412 Precondition Failed: version mismatch); run again to re-check, or "
        "pass --force to overwrite\n"
    )
    assert grafana.dashboards["cx-bill_inquiry-steps"]["dashboard"]["title"] == "saved meanwhile"


@pytest.mark.slow
def test_transient_failures_are_retried_with_backoff(grafana: GrafanaStandIn) -> None:
    grafana.fail_next(503, 0, 502)  # 503, a connection reset, 502: then Grafana answers
    result = provision(grafana.url)
    assert result.returncode == 0, result.stderr
    assert [e.status for e in grafana.log[:4]] == [503, 0, 502, 200]
    retries = [line for line in result.stderr.splitlines() if line.startswith("transient")]
    assert len(retries) == 3
    assert retries[0] == (
        "transient failure, connecting: 503 stand-in: injected failure; retry 1/4 in 0.01s"
    )
    assert retries[1].endswith("retry 2/4 in 0.02s") and "Connection" in retries[1]
    assert retries[2].endswith("502 stand-in: injected failure; retry 3/4 in 0.04s")
    assert sorted(grafana.dashboards) == sorted(UIDS)


@pytest.mark.slow
def test_a_reset_during_a_save_that_went_through_is_not_an_error(grafana: GrafanaStandIn) -> None:
    """The first POST is answered with a reset *after* Grafana stored it: the retry's 412 is
    recognised as our own save."""
    assert provision(grafana.url, "--dry-run").returncode == 0
    grafana.reset_after_next_save()
    result = provision(grafana.url)
    assert result.returncode == 0, result.stderr
    saves = [e.status for e in grafana.log if e.path == "/api/dashboards/db"]
    assert saves == [0, 412, *[200] * 10]  # reset, our own save seen, the rest
    assert actions(result) == dict.fromkeys(UIDS, "created")
    assert {stored["version"] for stored in grafana.dashboards.values()} == {1}


@pytest.mark.slow
def test_persistent_failures_give_up_with_a_clear_message(grafana: GrafanaStandIn) -> None:
    grafana.fail_next(*[500] * 3)
    result = provision(grafana.url, "--retries", "2")
    assert result.returncode == 1
    assert result.stderr.endswith(
        f"error: connecting: kept failing: Grafana at {grafana.url} (500 stand-in: injected "
        "failure); gave up after 3 attempts\n"
    )
    assert grafana.writes() == []


def test_unreachable_grafana(unused_port_url: str) -> None:
    result = provision(unused_port_url, "--retries", "1")
    assert result.returncode == 1
    assert result.stderr.startswith("transient failure, connecting: ConnectionError")
    assert (
        f"error: connecting: cannot reach Grafana at {unused_port_url} (ConnectionError"
        in result.stderr
    )
    assert result.stderr.endswith("gave up after 2 attempts\n")


@pytest.fixture
def unused_port_url() -> str:
    from cxmetrics.local.stack import free_port

    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.slow
def test_401_403_404_are_explained(grafana: GrafanaStandIn) -> None:
    bad = provision(grafana.url, token="wrong-token")
    assert bad.returncode == 1
    assert bad.stderr == (
        "error: connecting: Grafana rejected the token (401 Unauthorized): "
        "set GRAFANA_TOKEN or --token-file to a valid service-account token\n"
    )
    viewer = provision(grafana.url, token=READ_ONLY)
    assert viewer.returncode == 1
    assert viewer.stderr == (
        "error: creating folder cx-bank_app: the token is not allowed to do this (403 "
        "Forbidden): give the service account the Editor role, or dashboards:write and "
        "folders:create, in this organisation\n"
    )
    subpath = provision(grafana.url + "/grafana/")
    assert subpath.returncode == 1
    assert subpath.stderr == (
        f"error: connecting: not found (404) at {grafana.url}/grafana/: is --grafana-url "
        "Grafana's root URL, including any sub-path it is served under?\n"
    )
    assert [(e.method, e.path, e.status) for e in grafana.writes()] == [
        ("POST", "/api/folders", 403)
    ]


@pytest.mark.slow
def test_token_from_file_or_environment_and_never_printed(
    grafana: GrafanaStandIn, tmp_path: Path
) -> None:
    missing = provision(grafana.url, token=None)
    assert missing.returncode == 1
    assert missing.stderr == (
        "error: no Grafana token: set GRAFANA_TOKEN or pass --token-file "
        "FILE (a service-account token with the Editor role)\n"
    )
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    result = provision(grafana.url, "--token-file", str(token_file), token=None)
    assert result.returncode == 0, result.stderr
    assert all(e.authorized for e in grafana.log if e.path != "/api/health")
    url_with_password = grafana.url.replace("http://", f"http://admin:{TOKEN}@")
    shown = provision(url_with_password, "--dry-run")  # provision() asserts TOKEN is not shown
    assert shown.returncode == 0, shown.stderr


@pytest.mark.slow
def test_standin_rejects_malformed_and_unauthenticated_requests(grafana: GrafanaStandIn) -> None:
    assert request(grafana.url, "GET", "/api/health", token=None)[0] == 200
    assert request(grafana.url, "GET", "/api/folders/x", token=None) == (
        401,
        {"message": "Unauthorized"},
    )
    assert request(grafana.url, "POST", "/api/dashboards/db", b"not json")[0] == 400
    assert request(grafana.url, "POST", "/api/dashboards/db", {"dashboard": []})[0] == 400
    assert (
        request(
            grafana.url,
            "POST",
            "/api/dashboards/db",
            {"dashboard": {"uid": "bad uid!", "title": "t"}},
        )[0]
        == 400
    )
    assert request(
        grafana.url,
        "POST",
        "/api/dashboards/db",
        {"dashboard": {"uid": "u1", "title": "t"}, "folderUid": "nope"},
    ) == (400, {"message": "folder not found"})
    assert request(grafana.url, "POST", "/api/folders", {"uid": "f"})[0] == 400
    created = request(
        grafana.url, "POST", "/api/dashboards/db", {"dashboard": {"uid": "u1", "title": "t"}}
    )
    assert created[0] == 200 and created[1]["version"] == 1
    stale = request(
        grafana.url,
        "POST",
        "/api/dashboards/db",
        {"dashboard": {"uid": "u1", "title": "t", "version": 0}},
    )
    assert stale == (
        412,
        {"status": "version-mismatch", "message": "The dashboard has been changed by someone else"},
    )
    ok = request(
        grafana.url,
        "POST",
        "/api/dashboards/db",
        {"dashboard": {"uid": "u1", "title": "t2", "version": 1}},
    )
    assert ok[1]["version"] == 2
    forced = request(
        grafana.url,
        "POST",
        "/api/dashboards/db",
        {"dashboard": {"uid": "u1", "title": "t3"}, "overwrite": True},
    )
    assert forced[1]["version"] == 3
    assert request(grafana.url, "GET", "/api/dashboards/uid/nope")[0] == 404


def request(
    url: str, method: str, path: str, body: object = None, token: str | None = TOKEN
) -> tuple[int, Any]:
    data = (
        body if isinstance(body, bytes) else (None if body is None else json.dumps(body).encode())
    )
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("status", [400, 500, 401])
def test_a_grafana_echoing_the_token_never_gets_it_printed(
    grafana: GrafanaStandIn, status: int
) -> None:
    grafana.echo_authorization_next(*[status] * 5)
    result = provision(grafana.url, "--retries", "2")  # the helper asserts the token is absent
    assert result.returncode == 1
    if status != 401:  # a 401 is explained without quoting Grafana
        assert "Bearer ***" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'"a string"',
        b"null",
        b'{"dashboard": "not an object", "meta": {}}',
        b'{"dashboard": {"uid": "x"}, "meta": "not an object"}',
        b'{"dashboard": {"uid": "x", "tags": 5}, "meta": {}}',
    ],
    ids=["not json", "a list", "a string", "null", "dashboard str", "meta str", "tags int"],
)
@pytest.mark.parametrize("at", ["folder", "dashboard"])
def test_a_malformed_answer_is_a_clear_error(grafana: GrafanaStandIn, body: bytes, at: str) -> None:
    provision(grafana.url)  # the folder and dashboards exist: the next run reads them back
    grafana.malformed_next(*([body] if at == "folder" else [None, body]))
    result = provision(grafana.url)
    assert result.returncode == 1, result.stderr
    assert "unexpected answer from Grafana" in result.stderr
    assert result.stderr.startswith("error: ")


def _non_loopback_address() -> str:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # UDP connect sends nothing: it only picks a route
        address = str(probe.getsockname()[0])
    assert not address.startswith("127."), "this test needs a non-loopback IPv4 interface"
    return address


def test_plain_http_to_a_non_loopback_host_is_refused_unless_insecure() -> None:
    host = _non_loopback_address()
    with GrafanaStandIn(TOKEN, host=host) as grafana:
        refused = provision(grafana.url)
        assert refused.returncode == 1
        assert refused.stderr.startswith(
            f"error: refusing to send the Grafana token in clear text to {host}"
        )
        assert grafana.log == []  # nothing was sent
        allowed = provision(grafana.url, "--insecure")
        assert allowed.returncode == 0, allowed.stderr
        assert "warning: sending the Grafana token over plain http" in allowed.stderr
        assert len(grafana.dashboards) == 11
