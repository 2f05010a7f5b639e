"""cxmetrics: customer experience as an engineering quantity.

Mark the steps of a customer journey in code; cxmetrics measures each step's timeliness and
accuracy, exposes Prometheus metrics and OpenTelemetry spans, and derives indicators, regression
alerts and Grafana dashboards from one spec (``cxmetrics.yaml``)::

    import cxmetrics
    cxmetrics.configure(spec="cxmetrics.yaml")
    with cxmetrics.journey("bill_inquiry", channel="app") as j:
        with j.step("bill_total"):
            total = fetch_total()
        with j.step("bill_detail") as s:
            lines = fetch_lines()
            s.reconcile("total_matches_details", expected=total, actual=sum(lines))
"""

import typing as _typing

from ._exceptions import CxError, SpecError, SpecIssue
from ._version import __version__
from .config import configure, current_spec, is_configured, shutdown
from .exposition.server import start_http_server
from .instrument.carry import extract
from .instrument.decorators import step
from .instrument.journeys import JourneyInstance, bind, current_journey, inject, journey
from .instrument.steps import StepInstance
from .propagation.codec import JourneyContext

if _typing.TYPE_CHECKING:
    from .spec.load import load_spec
    from .spec.model import Spec

__all__ = [
    "CxError",
    "JourneyContext",
    "JourneyInstance",
    "Spec",
    "SpecError",
    "SpecIssue",
    "StepInstance",
    "__version__",
    "bind",
    "configure",
    "current_journey",
    "current_spec",
    "extract",
    "inject",
    "is_configured",
    "journey",
    "load_spec",
    "shutdown",
    "start_http_server",
    "step",
]


def __getattr__(name: str) -> object:
    # The spec's models and loader need pydantic and PyYAML: imported when first asked for, so
    # ``import cxmetrics`` stays light for an app that instruments only (configure() loads them).
    if name == "Spec":
        from .spec.model import Spec

        return Spec
    if name == "load_spec":
        from .spec.load import load_spec

        return load_spec
    raise AttributeError(f"module 'cxmetrics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "Spec", "load_spec"})
