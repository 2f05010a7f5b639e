"""The alerts ``cxmetrics watch`` sends to Alertmanager's v2 API (``POST /api/v2/alerts``).

Each open latency regression is one ``CxStepLatencyRegression`` alert with the labels and the
annotations of the generated rule (``cxmetrics.rules.alerts.latency_rule``: its annotation texts,
filled with the detector's values instead of PromQL results), so routes, inhibitions and
templates written for the rule work unchanged. Each open regression of a step's error rate is one
``CxStepErrorRegression``, of an accuracy check's failure rate one ``CxStepAccuracyRegression``
(no generated rule raises them: a rule cannot run the detector), with the same label set (service,
journey, step, channel, ``check`` for accuracy, severity) and the same annotation keys (summary,
description, baseline, current, change, since, runbook_url, dashboard), written here. Like
Prometheus, the process re-sends every firing
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
from typing import Any, Final

from .._exceptions import CxError
from ..analysis.analyzer import ACCURACY, ERRORS, LATENCY
from ..rules.alerts import latency_rule
from ..rules.policy import StepPlan
from ..rules.promql import dashboard_link, runbook_url
from ..rules.templates import format_value
from ..spec import names
from ..spec.ids import dashboard_uid


@dataclass(frozen=True)
class Open:
    """An open regression as the watch reports it: of a latency quantile, of the error rate
    (``indicator`` ``errors``) or of an accuracy check's failure rate (``accuracy``, ``check``).
    For the rates, ``baseline`` and ``current`` are the success or pass rates and ``change`` their
    relative drop (positive = worse), as the analyzer reports them."""

    journey: str
    step: str
    quantile: float | None  # the latency quantile sized; None for the rates
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
    indicator: str = LATENCY
    check: str = ""  # the accuracy check

    @property
    def quantile_label(self) -> str:
        return "" if self.quantile is None else f"{self.quantile:g}"

    @property
    def key(self) -> tuple[str, str, str, str, str, str]:
        """Its verdict metrics' label values, in ``names.VERDICT_LABELS`` order."""
        return (
            self.journey,
            self.step,
            self.channel,
            self.indicator,
            self.check,
            self.quantile_label,
        )


#: the alert of each rate the watch judges
RATE_ALERTS: Final = {
    ACCURACY: names.ALERT_ACCURACY_REGRESSION,
    ERRORS: names.ALERT_ERROR_REGRESSION,
}


def labels(plan: StepPlan, regression: Open) -> dict[str, str]:
    """The latency rule's labels: alertname, service, journey, step, channel, severity,
    quantile; for a rate: alertname, service, journey, step, channel, check (accuracy),
    severity."""
    r = regression
    if r.quantile is None:
        check = {names.CHECK: r.check} if r.check else {}
        return {
            names.ALERTNAME: RATE_ALERTS[r.indicator],
            **plan.labels,
            names.CHANNEL: r.channel,
            **check,
            names.SEVERITY: plan.severity,
        }
    rule = latency_rule(plan, r.quantile, r.channel, None)
    return {names.ALERTNAME: names.ALERT_LATENCY, **rule.labels}


def annotation_texts(
    plan: StepPlan, regression: Open, dashboard_url: str | None, since: float
) -> dict[str, str]:
    """The rule's annotations, filled with the detector's values (a rate's: ``_rate_texts``)."""
    if regression.quantile is None:
        return _rate_texts(plan, regression, dashboard_url, since)
    rule = latency_rule(plan, regression.quantile, regression.channel, dashboard_url)
    values: dict[str, float | None] = {
        "baseline": regression.baseline,
        "current": regression.current,
        "change": regression.change,
        "volume": float(regression.volume),
        "since": since,
    }
    return {key: text.expand(values) for key, text in rule.annotations.items()}


def _rate_texts(plan: StepPlan, r: Open, dashboard_url: str | None, since: float) -> dict[str, str]:
    """The error or accuracy alert's annotations: the failure share before and after (1 − the
    success or pass rate), the rate's relative drop with its 95% interval, since when."""

    def pct(value: float) -> str:
        return format_value("percent", value)

    where = f"{r.journey}/{r.step} on {r.channel}"
    before, now = pct(1.0 - r.baseline), pct(1.0 - r.current)
    change = f"-{pct(r.change)}"
    interval = f"[-{pct(r.change_high)}, -{pct(r.change_low)}]"
    when = format_value("timestamp", since)
    if r.indicator == ACCURACY:
        what = "pass rate"
        summary = f"{where}: check {r.check} fails {now} (was {before}), pass rate {change}"
        subject = f"accuracy check {r.check} of step {r.step}"
        counted = "checks"
    else:
        what = "success rate"
        summary = f"{where}: error rate {now} (was {before}), success rate {change}"
        subject = f"step {r.step}"
        counted = "steps"
    notes = {
        "summary": f"{summary} {interval} since {when}",
        "description": (
            f"The failure share of {subject} in journey {r.journey} on channel {r.channel} rose"
            f" from {before} to {now} since {when}: its {what} fell by {pct(r.change)} (95%"
            f" interval {pct(r.change_low)} to {pct(r.change_high)}), over"
            f" {r.volume} {r.channel} {counted} since then."
        ),
        "baseline": before,
        "current": now,
        "change": change,
        "since": when,
        "runbook_url": runbook_url(RATE_ALERTS[r.indicator]),
    }
    if dashboard_url:
        uid = dashboard_uid(r.journey, "steps")
        link = dashboard_link(dashboard_url, uid, f"?var-step={r.step}&var-channel={r.channel}")
        notes["dashboard"] = link.expand({})
    return notes


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
