"""The pytest plugin of cxmetrics (entry point ``pytest11``): fixtures that configure cxmetrics
with a fresh registry and an in-memory recorder for one test.

The spec comes from the ``cxmetrics_spec`` fixture (override it) or ``$CXMETRICS_SPEC``. While a
fixture's recording is active, the app's own ``cxmetrics.configure()`` keeps it (and logs once).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ..exposition.memory import Recorder
from ..spec.load import load_spec
from ..spec.model import Spec
from . import Recording


@pytest.fixture
def cxmetrics_spec() -> Spec:
    """The spec under test: override this fixture, or set ``$CXMETRICS_SPEC``."""
    path = os.environ.get("CXMETRICS_SPEC", "cxmetrics.yaml")
    return load_spec(path)


@pytest.fixture
def cx_recording(cxmetrics_spec: Spec) -> Iterator[Recording]:
    """cxmetrics configured with a fresh registry and a recorder, for one test."""
    rec = Recording(cxmetrics_spec)
    try:
        yield rec
    finally:
        rec.close()


@pytest.fixture
def cx_recorder(cx_recording: Recording) -> Recorder:
    """The in-memory recorder of ``cx_recording``."""
    return cx_recording.recorder
