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

from ._exceptions import CxError, SpecError, SpecIssue
from .config import configure, current_spec, is_configured, shutdown
from .exposition.server import start_http_server
from .instrument.decorators import step
from .instrument.journeys import JourneyInstance, bind, current_journey, journey
from .instrument.steps import StepInstance
from .propagation.context import JourneyContext, extract, inject
from .spec.load import load_spec
from .spec.model import Spec

__version__ = "0.1.0"

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
