"""Report delivery against real receivers on loopback (``tests.helpers.receivers``): a local SMTP
server (aiosmtpd) and an HTTP webhook receiver, on random free ports.

The weekly report of two simulated weeks is delivered by ``cxmetrics report --deliver`` once by
mail and once by webhook, each receiver turning the first attempt away (SMTP 421, HTTP 503) so
the command retries; a second run of the same week sends nothing; ``--force`` sends again. A
receiver that is down (nothing listening) at the first attempt gets the report on the retry; a
permanent refusal is not retried and is not recorded as delivered.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from cxmetrics.report.delivery import DeliveryError, Mail, Report, deliver
from cxmetrics.spec.model import Spec
from tests.helpers.bank_log import two_weeks, write_log
from tests.helpers.paths import EXAMPLE_SPEC
from tests.helpers.receivers import free_port, smtp_server, webhook_receiver

from .test_report import CLI

KEY = "bank_app/week-2024-03-11"


@pytest.fixture(scope="module")
def log(example_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_log(tmp_path_factory.mktemp("weeks") / "events.jsonl", two_weeks(example_spec))


def weekly(log: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(CLI), "report", str(EXAMPLE_SPEC), "--events", str(log),
            "--period", "week", "--compare", "previous", "--at", "2024-03-18T06:00",
            "-o", "out/weekly.html", "--retry-delay", "0.2", *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "TZ": "UTC"},
    )  # fmt: skip


@pytest.mark.slow
def test_weekly_report_delivered_once_by_mail_and_once_by_webhook(
    log: Path, tmp_path: Path
) -> None:
    smtp_port, hook_port = free_port(), free_port()
    smtp, hook = f"smtp://127.0.0.1:{smtp_port}", f"http://127.0.0.1:{hook_port}/hook"
    targets: tuple[str, ...] = ("--deliver", smtp, "--to", "cx@bank.example")
    targets += ("--to", "ops@bank.example", "--from", "reports@bank.example", "--deliver", hook)
    with ExitStack() as stack:
        box = stack.enter_context(smtp_server(smtp_port, fail_first=1))
        receiver = stack.enter_context(webhook_receiver(hook_port, fail_first=1))
        first = weekly(log, tmp_path, *targets)
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines()[2:] == [
            f"delivered {KEY} to {smtp} (after 2 attempts)",
            f"delivered {KEY} to {hook} (after 2 attempts)",
        ]
        html = (tmp_path / "out" / "weekly.html").read_text()
        digest = (tmp_path / "out" / "weekly.md").read_text()
        assert "Worst step week over week: bill_detail (bill_inquiry)" in digest

        # the mail: once, to both recipients, the digest as text and the page as HTML
        assert box.refused == 1 and len(box.messages) == 1
        assert box.envelopes == [("reports@bank.example", ["cx@bank.example", "ops@bank.example"])]
        mail = box.messages[0]
        assert mail["Subject"] == "Customer experience — bank_app, week of 2024-03-11"
        assert mail["Message-ID"].startswith("<cxmetrics.") and mail["X-Cxmetrics-Report"] == KEY
        text_part = mail.get_body(("plain",))
        html_part = mail.get_body(("html",))
        assert text_part is not None and html_part is not None
        assert text_part.get_content().replace("\r\n", "\n") == digest
        assert html_part.get_content().replace("\r\n", "\n") == html

        # the webhook: a 503, then the same body accepted, with one idempotency key
        assert [status for _, _, status in receiver.requests] == [503, 200]
        (headers, body), = receiver.accepted  # fmt: skip
        assert headers["Content-Type"] == "application/json"
        assert (
            headers["Idempotency-Key"] == body["id"] == receiver.requests[0][0]["Idempotency-Key"]
        )
        assert body["key"] == KEY and body["period"] == {
            "key": "week-2024-03-11",
            "label": "week of 2024-03-11",
        }
        assert body["text"] == digest and body["html"] == html and "link" not in body

        ledger = tmp_path / "out" / ".cxmetrics-deliveries.jsonl"
        entries = [json.loads(line) for line in ledger.read_text().splitlines()]
        assert [(e["key"], e["target"], e["attempts"]) for e in entries] == [
            (KEY, smtp, 2),
            (KEY, hook, 2),
        ]

        # the same week again: nothing sent
        again = weekly(log, tmp_path, *targets)
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[2:] == [
            f"{KEY} was already delivered to {smtp}; not sent again",
            f"{KEY} was already delivered to {hook}; not sent again",
        ]
        assert len(box.messages) == 1 and len(receiver.requests) == 2
        assert len(ledger.read_text().splitlines()) == 2

        # --force sends again, with the same Message-ID and key, so receivers can tell
        forced = weekly(log, tmp_path, *targets, "--force", "--link", "https://r.example/w.html")
        assert forced.returncode == 0, forced.stderr
        assert len(box.messages) == 2 and box.messages[1]["Message-ID"] == mail["Message-ID"]
        last_headers, last_body, _ = receiver.requests[-1]
        assert last_headers["Idempotency-Key"] == body["id"]
        assert last_body["link"] == "https://r.example/w.html" and "html" not in last_body


def report() -> Report:
    return Report("bank_app", "week-2024-03-11", "week of 2024-03-11", "s", "digest\n", "<p>x</p>")


@pytest.fixture
def started() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.mark.slow
def test_a_receiver_down_at_first_gets_the_report_on_the_retry(
    tmp_path: Path, started: ExitStack
) -> None:
    """Nothing listens at the first attempt; the receivers start during the backoff."""
    smtp_port, hook_port = free_port(), free_port()
    waits: list[float] = []
    boxes: list[object] = []

    def start_smtp(seconds: float) -> None:
        waits.append(seconds)
        boxes.append(started.enter_context(smtp_server(smtp_port)))

    def start_hook(seconds: float) -> None:
        waits.append(seconds)
        boxes.append(started.enter_context(webhook_receiver(hook_port)))

    mail = Mail("reports@bank.example", ("cx@bank.example",))
    ledger = tmp_path / "ledger.jsonl"
    outcome = deliver(
        report(), f"smtp://127.0.0.1:{smtp_port}", ledger, mail=mail, delay=0.5, sleep=start_smtp
    )
    assert (outcome.sent, outcome.attempts) == (True, 2)
    outcome = deliver(
        report(), f"http://127.0.0.1:{hook_port}/h", ledger, delay=0.5, sleep=start_hook
    )
    assert (outcome.sent, outcome.attempts) == (True, 2)
    assert waits == [0.5, 0.5]
    box, hook = boxes
    assert len(box.messages) == 1  # type: ignore[attr-defined]
    assert len(hook.accepted) == 1  # type: ignore[attr-defined]


@pytest.mark.slow
def test_backoff_doubles_and_gives_up_after_the_retries(tmp_path: Path) -> None:
    waits: list[float] = []
    port = free_port()  # nothing ever listens
    with pytest.raises(DeliveryError, match=r"not delivered after 4 attempts: .*refused"):
        deliver(
            report(), f"http://127.0.0.1:{port}/h", tmp_path / "l", delay=1.0, sleep=waits.append
        )
    assert waits == [1.0, 2.0, 4.0]
    assert (tmp_path / "l").read_text() == ""


@pytest.mark.slow
def test_a_permanent_refusal_is_not_retried_nor_recorded(tmp_path: Path, log: Path) -> None:
    port = free_port()
    with webhook_receiver(port, status=404) as hook:
        hook_url = f"http://127.0.0.1:{port}/missing"
        result = weekly(log, tmp_path, "--deliver", hook_url)
        assert result.returncode == 1
        assert result.stderr == f"error: {hook_url}: the receiver answered HTTP 404\n"
        assert len(hook.requests) == 1
    ledger = tmp_path / "out" / ".cxmetrics-deliveries.jsonl"
    assert ledger.read_text() == ""
    assert (tmp_path / "out" / "weekly.html").exists()  # the report itself was written


@pytest.mark.slow
# the local server offers AUTH on a plain connection: loopback only, and what this test is about
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtp_login_with_a_user_and_password(tmp_path: Path) -> None:
    port = free_port()
    target = f"smtp://127.0.0.1:{port}"
    with smtp_server(port, accounts={"reports": "s3cret"}) as box:
        good = Mail("reports@bank.example", ("cx@bank.example",), user="reports", password="s3cret")
        assert deliver(report(), target, tmp_path / "l", mail=good).attempts == 1
        assert len(box.messages) == 1
        wrong = Mail("reports@bank.example", ("cx@bank.example",), user="reports", password="no")
        waits: list[float] = []
        with pytest.raises(DeliveryError, match=r"the mail server refused: 535 "):
            deliver(report(), target, tmp_path / "other", mail=wrong, sleep=waits.append)
        assert waits == [] and len(box.messages) == 1  # refused for good: not retried
        anonymous = Mail("reports@bank.example", ("cx@bank.example",))
        with pytest.raises(DeliveryError, match=r"the mail server refused: 530 "):
            deliver(report(), target, tmp_path / "third", mail=anonymous, sleep=waits.append)
        assert waits == []
