"""What ``cxmetrics watch`` keeps across restarts: one small JSON file, replaced atomically.

The detector's verdicts are recomputed from Prometheus' history on every read; the file only
holds what that history cannot say by itself:

- ``anchor``: where the read range starts while a regression is open. The range then stops
  sliding, so the baseline the regression was measured against stays in view and the regression
  stays open until the detector sees it recover (a sliding range would, after ``--history``,
  hold only the new level and take it for the baseline).
- ``alerts``: the alerts sent as firing (labels, start), so that one that recovered while the
  process was down is sent as resolved after the restart, and a restart keeps each start time.

A missing file is a first start; an unreadable one is logged and treated as a first start (the
verdicts come back from history; only an alert that recovered meanwhile is not resolved early:
Alertmanager resolves it when its ``endsAt`` passes).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import CxError

VERSION = 1


@dataclass(frozen=True)
class SentAlert:
    labels: dict[str, str]
    starts_at: float  # seconds since the epoch
    annotations: dict[str, str] = field(default_factory=dict)  # as last sent


@dataclass
class WatchState:
    anchor: float | None = None
    alerts: dict[str, SentAlert] = field(default_factory=dict)  # key: alert_key(labels)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "anchor": self.anchor,
            "alerts": {
                key: {"labels": a.labels, "starts_at": a.starts_at, "annotations": a.annotations}
                for key, a in sorted(self.alerts.items())
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> WatchState:
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise CxError(f"not a version {VERSION} watch state")
        anchor = data.get("anchor")
        alerts = {
            str(key): SentAlert(
                {str(k): str(v) for k, v in value["labels"].items()},
                float(value["starts_at"]),
                {str(k): str(v) for k, v in value.get("annotations", {}).items()},
            )
            for key, value in data.get("alerts", {}).items()
        }
        return cls(None if anchor is None else float(anchor), alerts)


def alert_key(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def load(path: Path) -> tuple[WatchState, str | None]:
    """The saved state, and why it was not used (``None`` when it was, or on a first start)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return WatchState(), None
    except OSError as exc:
        return WatchState(), f"cannot read {path}: {exc.strerror}"
    try:
        return WatchState.from_json(json.loads(text)), None
    except (ValueError, KeyError, TypeError, AttributeError, CxError) as exc:
        return WatchState(), f"{path} is not a watch state file ({exc})"


def save(path: Path, state: WatchState) -> None:
    """Write ``state`` to a temporary file beside ``path``, flush it to disk, rename it over
    ``path``: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(state.to_json(), out, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
