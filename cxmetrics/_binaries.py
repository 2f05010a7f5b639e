"""The external programs cxmetrics runs (promtool, Prometheus, Alertmanager) and how to install
them: a missing one is a clear ``CxError`` with the install command."""

from __future__ import annotations

import shutil

from ._exceptions import CxError

INSTALL_HINT = "apt-get install -y --no-install-recommends prometheus prometheus-alertmanager"
PROMETHEUS, PROMTOOL, ALERTMANAGER = "prometheus", "promtool", "prometheus-alertmanager"
REDIS_SERVER = "redis-server"
REDIS_INSTALL_HINT = "apt-get install -y --no-install-recommends redis-server"


def require_binary(name: str) -> str:
    """The path of ``name``, or a ``CxError`` saying how to install it."""
    found = shutil.which(name)
    if found is None:
        hint = REDIS_INSTALL_HINT if name == REDIS_SERVER else INSTALL_HINT
        raise CxError(f"'{name}' is not installed; install it with: {hint}")
    return found
