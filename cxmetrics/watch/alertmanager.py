"""The alerts ``cxmetrics watch`` sends to Alertmanager's v2 API (``POST /api/v2/alerts``).

Each open latency regression is one ``CxStepLatencyRegression`` alert with the labels and the
annotations of the generated rule (``cxmetrics.rules.alerts.latency_rule``: its annotation texts,
filled with the detector's values instead of PromQL results), so routes, inhibitions and
templates written for the rule work unchanged. Like Prometheus, the process re-sends every firing
alert each interval with ``endsAt`` a few intervals ahead; a recovered one is sent once more with
``endsAt`` = now, which resolves it. If the process dies, Alertmanager resolves its alerts when
their ``endsAt`` passes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .._exceptions import CxError
from ..rules.alerts import latency_rule
from ..rules.policy import StepPlan
from ..spec import names


@dataclass(frozen=True)
class Open:
    """An open latency regression as the watch reports it."""

    journey: str
    step: str
    quantile: float
    start: float  # the estimated change point, seconds since the epoch
    detected: float
    baseline: float  # seconds
    current: float
    change: float  # relative, 0.2 = +20%
    change_low: float
    change_high: float
    volume: int  # steps measured since the change point
    #: the channel judged (each on its own, with min_volume in that channel, as the rules do)
    channel: str = "all"

    @property
    def quantile_label(self) -> str:
        return f"{self.quantile:g}"


def labels(plan: StepPlan, regression: Open) -> dict[str, str]:
    """The rule's labels: alertname, service, journey, step, channel, severity, quantile."""
    rule = latency_rule(plan, regression.quantile, regression.channel, None)
    return {names.ALERTNAME: names.ALERT_LATENCY, **rule.labels}


def annotation_texts(
    plan: StepPlan, regression: Open, dashboard_url: str | None, since: float
) -> dict[str, str]:
    """The rule's annotations, filled with the detector's values."""
    rule = latency_rule(plan, regression.quantile, regression.channel, dashboard_url)
    values: dict[str, float | None] = {
        "baseline": regression.baseline,
        "current": regression.current,
        "change": regression.change,
        "volume": float(regression.volume),
        "since": since,
    }
    return {key: text.expand(values) for key, text in rule.annotations.items()}


def rfc3339(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload(
    alert_labels: dict[str, str],
    alert_annotations: dict[str, str],
    starts_at: float,
    ends_at: float,
) -> dict[str, Any]:
    return {
        "labels": alert_labels,
        "annotations": alert_annotations,
        "startsAt": rfc3339(starts_at),
        "endsAt": rfc3339(ends_at),
    }


def post(base_url: str, alerts: list[dict[str, Any]], timeout: float = 10.0) -> None:
    """``POST /api/v2/alerts``; ``CxError`` saying why when Alertmanager does not take them."""
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()[:200].decode(errors="replace")
        raise CxError(f"Alertmanager at {base_url} answered HTTP {exc.code}: {body}") from None
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        raise CxError(f"cannot reach Alertmanager at {base_url}: {reason}") from None
