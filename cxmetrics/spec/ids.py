"""Stable identifiers derived from the spec: dashboard and folder uids, the data source uid.

Uids never change while the spec's names do not (``cx-<journey>-overview``,
``cx-<journey>-steps``, folder ``cx-<service>``), so bookmarks, links and provisioning state
survive regeneration. SDK-free: provisioning uses it without building dashboards.
"""

from __future__ import annotations

import hashlib

from .model import Spec

DATASOURCE_UID = "cx-prometheus"
DATASOURCE_NAME = "cxmetrics Prometheus"
TAG = "cxmetrics"
UID_MAX = 40  # Grafana's limit on dashboard and folder uids
KINDS = ("overview", "steps")


def _fit(head: str, name: str, tail: str) -> str:
    """``head + name + tail``, or, past Grafana's 40 characters, the name cut short plus a digest
    of the whole name: still stable, still unique."""
    uid = f"{head}{name}{tail}"
    if len(uid) <= UID_MAX:
        return uid
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    keep = UID_MAX - len(f"{head}-{digest}{tail}")
    return f"{head}{name[:keep]}-{digest}{tail}"


def dashboard_uid(journey: str, kind: str) -> str:
    return _fit("cx-", journey, f"-{kind}")


def home_uid(spec: Spec) -> str:
    """The home view of the service: every journey."""
    return _fit("cx-", spec.service, "-home")


def folder_uid(spec: Spec) -> str:
    return _fit("cx-", spec.service, "")


def folder_title(spec: Spec) -> str:
    return f"CX: {spec.service}"
