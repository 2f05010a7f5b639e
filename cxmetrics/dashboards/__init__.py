"""Grafana dashboards derived from the spec (docs/dashboards.md: spec → dashboards → Grafana).

A home view of every journey (``cx-<service>-home``), then for each journey an overview
(``cx-<journey>-overview``) and a focused step view (``cx-<journey>-steps``, one step at a
time), a follow-up view for a journey with key steps and a contact-centre view
(``cx-<journey>-contact``) for a journey with a ``contact:`` block, built with
grafana-foundation-sdk (the ``[grafana]`` extra, imported only when dashboards are built) and
returned as plain JSON-ready dicts. Output is deterministic
(sorted keys, ids in reading order, uids from the spec), so regenerating an unchanged spec gives
byte-identical files and a changed spec gives a readable diff.

Every dashboard carries a content digest in a ``cxmetrics-digest:`` tag; HTTP provisioning
(``cxmetrics.dashboards.grafana_http``) compares it with the dashboard's actual content to tell a
dashboard edited in Grafana from one cxmetrics wrote.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._exceptions import CxError
from ..spec.model import Spec

__all__ = [
    "DIGEST_TAG",
    "INSTALL_HINT",
    "build_dashboards",
    "content_digest",
    "recorded_digest",
    "render",
    "write_dashboards",
]

INSTALL_HINT = "pip install 'cxmetrics[grafana]'"
DIGEST_TAG = "cxmetrics-digest:"
Dashboard = dict[str, Any]


def build_dashboards(spec: Spec) -> list[Dashboard]:
    """Every dashboard of ``spec``: the home view, then journey by journey its overview, its step
    view and, for a journey with key steps, its follow-ups."""
    try:
        from grafana_foundation_sdk.cog.encoder import JSONEncoder

        from . import contact, followups, home, overview, steps
    except ImportError as exc:  # the [grafana] extra is optional
        missing = (exc.name or "grafana_foundation_sdk").split(".")[0]
        raise CxError(
            f"building dashboards needs grafana-foundation-sdk ({missing} is missing); "
            f"install it with: {INSTALL_HINT}"
        ) from exc
    from .frame import ALERT_ANNOTATION

    models = [home.build(spec)]
    for journey in spec.journeys:
        # A journey with key steps also gets its follow-up view (dashboards/followups.py), a
        # journey with a contact block its contact-centre view (dashboards/contact.py).
        views = (
            overview,
            steps,
            *((followups,) if journey.key_steps else ()),
            *((contact,) if journey.contact is not None else ()),
        )
        models += [module.build(spec, journey) for module in views]
    boards = []
    for model in models:
        board: Dashboard = json.loads(json.dumps(model, cls=JSONEncoder))
        for annotation in board.get("annotations", {}).get("list", []):
            if "expr" in annotation:  # an alert drawn on the panels: title, text and tags
                annotation.update(ALERT_ANNOTATION)
        board["tags"] = sorted([*board.get("tags", []), DIGEST_TAG + content_digest(board)])
        boards.append(board)
    return boards


def content_digest(board: Mapping[str, Any]) -> str:
    """A digest of what a dashboard shows: everything but Grafana's bookkeeping (``id``,
    ``version``) and the digest tag itself."""
    body = {k: v for k, v in board.items() if k not in ("id", "version")}
    body["tags"] = sorted(t for t in board.get("tags", []) if not str(t).startswith(DIGEST_TAG))
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def recorded_digest(board: Mapping[str, Any]) -> str | None:
    """The digest cxmetrics recorded in ``board``'s tags, or ``None`` for a foreign dashboard."""
    for tag in board.get("tags", []) or []:
        if isinstance(tag, str) and tag.startswith(DIGEST_TAG):
            return tag.removeprefix(DIGEST_TAG)
    return None


def render(board: Mapping[str, Any]) -> str:
    """The file text of a dashboard: sorted keys, two-space indent, final newline."""
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_dashboards(spec: Spec, out_dir: str | Path) -> list[Path]:
    """Write ``<uid>.json`` for every dashboard into ``out_dir``; return the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for board in build_dashboards(spec):
        path = out / f"{board['uid']}.json"
        path.write_text(render(board), encoding="utf-8")
        written.append(path)
    return written
