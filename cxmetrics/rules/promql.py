"""The rule model (``Rule``, ``Group``) and the few PromQL building blocks every rule uses.

Indicator PromQL is not written here but derived from ``cxmetrics.analysis.catalogue``.
Selectors always name the journey and step (and check), and every aggregation keeps them
(``sum by (journey, step[, le])``): the duration histogram's buckets differ per step, so summing
across steps would mix bucket layouts (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .templates import Part, Text, text

#: The runbook shipped in the repository: one section per alert, anchored by the alert's name.
RUNBOOK = "docs/runbook.md"


def dashboard_link(dashboard_url: str, *uid: Part) -> Text:
    """An alert's ``dashboard`` annotation: the Grafana dashboard ``uid`` (with its query) under
    the spec's ``dashboard_url``."""
    return text(f"{dashboard_url.rstrip('/')}/d/", *uid)


def runbook_url(alert: str) -> str:
    """``docs/runbook.md#cxsteplatencyregression``: the alert's section (a Markdown heading
    anchor is its text in lower case)."""
    return f"{RUNBOOK}#{alert.lower()}"


@dataclass(frozen=True)
class Rule:
    """A recording rule (``record``) or an alerting rule (``alert``); every alert carries a
    ``runbook_url`` annotation pointing at its section of docs/runbook.md."""

    expr: str
    record: str | None = None
    alert: str | None = None
    for_: str | None = None
    keep_firing_for: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, Text] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.alert and "runbook_url" not in self.annotations:
            linked = {**self.annotations, "runbook_url": text(runbook_url(self.alert))}
            object.__setattr__(self, "annotations", linked)

    @property
    def name(self) -> str:
        return self.record or self.alert or ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"record": self.record} if self.record else {"alert": self.alert}
        out["expr"] = self.expr
        if self.for_:
            out["for"] = self.for_
        if self.keep_firing_for:
            out["keep_firing_for"] = self.keep_firing_for
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.annotations:
            out["annotations"] = {k: v.template() for k, v in self.annotations.items()}
        return out


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Rule, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rules": [r.as_dict() for r in self.rules]}


def selector(metric: str, **labels: str) -> str:
    """``metric{journey="bill_inquiry",step="bill_detail"}`` (labels in the order given)."""
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{metric}{{{inner}}}"


def number(value: float) -> str:
    """A float as PromQL reads it back exactly (``0.1``, ``14.4``, ``100``)."""
    return f"{value:g}" if float(f"{value:g}") == value else repr(value)
