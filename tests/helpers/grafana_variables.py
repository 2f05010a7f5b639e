"""Grafana's template variables, substituted as a dashboard sets them, so a panel's query can be
sent to a real Prometheus: one substitution for every test that runs panel queries."""

from __future__ import annotations

EXAMPLE_SERVICE = "bank_app"  # the example spec's service


def substitute(
    expr: str,
    *,
    window: str,
    rate_interval: str | None = None,
    step: str = "",
    service: str = EXAMPLE_SERVICE,
    channel: str = ".*",
) -> str:
    """``expr`` with ``$__range`` = ``window``, ``$__rate_interval`` = ``rate_interval`` (default
    ``window``), the step view's ``$step``, the dashboard's ``$service`` and ``$channel`` (All);
    fails when a variable is left."""
    values = {
        "${__url_time_range}": "",
        "$__rate_interval": rate_interval or window,
        "$__range": window,
        "$service": service,
        "$channel": channel,
        "$journey": ".*",
        "$step": step,
    }
    for variable, value in values.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr
