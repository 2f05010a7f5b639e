"""The Prometheus HTTP API, read with the standard library: any Prometheus-API engine
(Prometheus, Thanos, Mimir, VictoriaMetrics) answers the same queries."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .._exceptions import CxError


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def query(base_url: str, promql: str, time_s: float | None = None) -> list[dict[str, Any]]:
    """An instant query's result vector; raises ``CxError`` with Prometheus' error text."""
    params = {"query": promql}
    if time_s is not None:
        params["time"] = f"{time_s:.3f}"
    status, body = http_get(f"{base_url}/api/v1/query?{urllib.parse.urlencode(params)}")
    data = json.loads(body)
    if status != 200 or data.get("status") != "success":
        raise CxError(f"query {promql!r} failed: {data.get('error', status)}")
    result: list[dict[str, Any]] = data["data"]["result"]
    return result
