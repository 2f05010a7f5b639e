"""Test helpers for apps instrumented with cxmetrics; the pytest fixtures are in
``cxmetrics.testing.pytest_plugin`` (registered on install). This package imports without pytest,
so app code may use ``Recorder`` as a sink.

The ``cx_recorder`` fixture configures cxmetrics with a fresh registry and an in-memory
``Recorder`` for one test, so the test can assert which journeys and steps its code recorded::

    def test_bill(cx_recorder):
        app.show_bill()
        assert cx_recorder.step_names("bill_inquiry") == ["bill_total", "bill_detail"]

The spec comes from the ``cxmetrics_spec`` fixture (override it) or ``$CXMETRICS_SPEC``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from .. import config
from ..exposition.memory import Recorder
from ..instrument.runtime import SpanMode
from ..spec.load import load_spec
from ..spec.model import Spec

__all__ = ["Recorder", "Recording", "recording"]


class Recording:
    """A configured cxmetrics with its own registry and recorder."""

    def __init__(self, spec: Spec, spans: SpanMode = "off") -> None:
        self.spec = spec
        self.registry = CollectorRegistry()
        self.recorder = Recorder()
        config.hold_for_test(False)
        config.configure(
            spec, registry=self.registry, sinks=[self.recorder], spans=spans, strict=True
        )
        # the app's own configure() (often at import) must not replace this recorder
        config.hold_for_test(True)

    def value(self, name: str, **labels: str) -> float:
        """A sample's value from the registry (0.0 when absent), e.g.
        ``value("cx_good_steps_total", journey="bill_inquiry", step="bill_total", channel="app")``;
        ``service`` is the spec's unless given.
        """
        if "journey" in labels and "service" not in labels:
            labels = {"service": self.spec.service, **labels}
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    def close(self) -> None:
        config.shutdown()


def recording(spec: Spec | str, spans: SpanMode = "off") -> Recording:
    """Configure cxmetrics for a test; call ``close()`` (or use the fixture) afterwards."""
    return Recording(spec if isinstance(spec, Spec) else load_spec(spec), spans)
