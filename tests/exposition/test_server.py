"""The standalone /metrics endpoint: loopback by default, basic auth, TLS, real clients."""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import cxmetrics
from cxmetrics.spec.model import Spec

pytestmark = pytest.mark.slow  # every test here starts a server or a subprocess

STEP = {
    "service": "bank_app",
    "journey": "bill_inquiry",
    "step": "bill_total",
    "channel": "app",
    "segment": "none",
    "outcome": "ok",
    "timeliness": "satisfied",
}


@contextmanager
def metrics_server(**kwargs: Any) -> Iterator[tuple[Any, int]]:
    httpd, thread = cxmetrics.start_http_server(0, **kwargs)
    try:
        yield httpd, httpd.server_port
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    assert not thread.is_alive()


@pytest.fixture
def registry(example_spec: Spec) -> CollectorRegistry:
    registry = CollectorRegistry()
    cxmetrics.configure(example_spec, registry=registry, spans="off", strict=True)
    with cxmetrics.journey("bill_inquiry") as j:
        for _ in range(3):
            with j.step("bill_total"):
                pass
    return registry


def steps_total(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cx_steps_total" and sample.labels == STEP:
                return sample.value
    raise AssertionError("cx_steps_total sample missing")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is missing: apt-get install -y --no-install-recommends openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_binds_loopback_by_default(registry: CollectorRegistry) -> None:
    assert inspect.signature(cxmetrics.start_http_server).parameters["addr"].default == "127.0.0.1"
    with metrics_server(registry=registry) as (httpd, port):
        assert httpd.socket.getsockname() == ("127.0.0.1", port)
        response = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        assert steps_total(response.text) == 3.0


def test_basic_auth_rejects_everything_but_the_credentials(registry: CollectorRegistry) -> None:
    with metrics_server(registry=registry, basic_auth=("prometheus", "s3cret:pass")) as (_, port):
        url = f"http://127.0.0.1:{port}/metrics"
        with httpx.Client() as client:
            anonymous = client.get(url)
            assert anonymous.status_code == 401
            assert (
                anonymous.headers["www-authenticate"] == 'Basic realm="cxmetrics", charset="UTF-8"'
            )
            assert "cx_" not in anonymous.text
            for user, password in [
                ("prometheus", "s3cret"),
                ("prometheus", "s3cret:passX"),
                ("Prometheus", "s3cret:pass"),
                ("", ""),
                ("prometheus", ""),
            ]:
                assert client.get(url, auth=(user, password)).status_code == 401, (user, password)
            good = base64.b64encode(b"prometheus:s3cret:pass").decode()
            for header in [f"Bearer {good}", "Basic !!!not-base64!!!", "Basic", good]:
                assert client.get(url, headers={"authorization": header}).status_code == 401, header
            ok = client.get(url, auth=("prometheus", "s3cret:pass"))
            assert ok.status_code == 200
            assert steps_total(ok.text) == 3.0
            assert client.get(url, headers={"authorization": f"basic {good}"}).status_code == 200


def test_basic_auth_compares_equal_length_digests_in_constant_time(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with metrics_server(registry=registry, basic_auth=("prometheus", "pw")) as (_, port):
        url = f"http://127.0.0.1:{port}/metrics"
        assert (
            httpx.get(url, auth=("prometheus", "a-much-longer-wrong-password")).status_code == 401
        )
        assert httpx.get(url, auth=("prometheus", "pw")).status_code == 200
    expected = hashlib.sha256(b"prometheus:pw").digest()
    assert compared == [
        (hashlib.sha256(b"prometheus:a-much-longer-wrong-password").digest(), expected),
        (expected, expected),
    ]


def test_basic_auth_and_tls_misconfiguration_raise_at_start(
    registry: CollectorRegistry, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    for bad in [("", "pw"), ("user", ""), ("us:er", "pw")]:
        with pytest.raises(ValueError, match="basic_auth"):
            cxmetrics.start_http_server(0, registry=registry, basic_auth=bad)
    with pytest.raises(ValueError, match="certfile"):
        cxmetrics.start_http_server(0, registry=registry, keyfile=str(key))
    with pytest.raises(FileNotFoundError):
        cxmetrics.start_http_server(0, registry=registry, certfile=str(cert) + ".missing")


def test_tls_with_basic_auth_against_a_verifying_client(
    registry: CollectorRegistry, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    trust = ssl.create_default_context(cafile=str(cert))
    with metrics_server(
        registry=registry, certfile=str(cert), keyfile=str(key), basic_auth=("prometheus", "pw")
    ) as (_, port):
        https = f"https://127.0.0.1:{port}/metrics"
        with httpx.Client(verify=trust) as client:
            assert client.get(https).status_code == 401
            response = client.get(https, auth=("prometheus", "pw"))
            assert response.status_code == 200
            assert steps_total(response.text) == 3.0
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            trust.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version() == "TLSv1.3"
        # a client that does not trust the certificate refuses it
        with (
            httpx.Client() as untrusting,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            untrusting.get(https)
        # plain HTTP to the TLS port gets no metrics
        with httpx.Client() as plain, pytest.raises(httpx.TransportError):
            plain.get(f"http://127.0.0.1:{port}/metrics", auth=("prometheus", "pw"))
        with httpx.Client(verify=trust) as client:
            assert client.get(https, auth=("prometheus", "pw")).status_code == 200


def test_a_client_stalling_the_tls_handshake_blocks_nobody(
    registry: CollectorRegistry, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    trust = ssl.create_default_context(cafile=str(cert))
    with metrics_server(registry=registry, certfile=str(cert), keyfile=str(key)) as (_, port):
        with socket.create_connection(("127.0.0.1", port)) as stalled:  # connects, says nothing
            stalled.settimeout(5)
            started = time.monotonic()
            with httpx.Client(verify=trust, timeout=5) as client:
                response = client.get(f"https://127.0.0.1:{port}/metrics")
            assert response.status_code == 200
            assert time.monotonic() - started < 2.0


def test_idle_client_is_cut_after_the_timeout(registry: CollectorRegistry) -> None:
    with metrics_server(registry=registry, timeout=0.5) as (_, port):
        with socket.create_connection(("127.0.0.1", port)) as idle:
            idle.settimeout(5)
            started = time.monotonic()
            assert idle.recv(1) == b""  # the server closed it
            assert 0.4 < time.monotonic() - started < 3.0
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200


def test_ipv6_loopback(registry: CollectorRegistry) -> None:
    with metrics_server(registry=registry, addr="::1") as (httpd, port):
        assert httpd.socket.getsockname()[:2] == ("::1", port)
        response = httpx.get(f"http://[::1]:{port}/metrics")
        assert response.status_code == 200
        assert steps_total(response.text) == 3.0


@pytest.mark.slow
def test_slow_clients_hold_no_thread_and_a_scrape_still_answers(
    registry: CollectorRegistry,
) -> None:
    """300 connections each sending one byte every 1.5 s (a slow-loris client, a real TCP
    client in this process): the server's threads stay bounded and a normal scrape answers."""
    before = threading.active_count()
    with metrics_server(registry=registry, timeout=30) as (httpd, port):
        assert httpd.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert httpd.request_queue_size >= 128
        slow = []
        for _ in range(300):
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn.sendall(b"G")
            slow.append(conn)
        try:
            peak = threading.active_count()
            for k in range(3):  # 4.5 s of one byte every 1.5 s each
                time.sleep(1.5)
                for conn in slow:
                    conn.sendall(b"ET /metrics HTTP/1.1\r\n"[k : k + 1])
                peak = max(peak, threading.active_count())
                response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
                assert response.status_code == 200
                assert steps_total(response.text) == 3.0
            assert peak - before <= 10
        finally:
            for conn in slow:
                conn.close()


def test_the_listen_backlog_is_real(registry: CollectorRegistry) -> None:
    with metrics_server(registry=registry) as (httpd, _):
        assert httpd.request_queue_size == 128
