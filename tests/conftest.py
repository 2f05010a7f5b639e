"""Shared fixtures: the example spec and a fresh cxmetrics recording per test (helpers live in
``tests/helpers``); how parallel workers share the suite (``tests/helpers/scheduling.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from cxmetrics import config
from cxmetrics.spec.load import load_spec
from cxmetrics.spec.model import Spec
from cxmetrics.testing import Recording

from .helpers.keys import CONTEXT_KEY
from .helpers.paths import EXAMPLE_SPEC

# Journey contexts cross requests and processes only when signed: every test (and every
# subprocess it starts) shares one context key unless it removes it to test the keyless mode.
os.environ["CXMETRICS_CONTEXT_KEY"] = CONTEXT_KEY.decode()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the longest units first
        from .helpers.scheduling import order

        order(items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadgroup``: a whole module is one unit (see tests/helpers/scheduling.py)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from .helpers.scheduling import ModuleOrGroupScheduling

    return ModuleOrGroupScheduling(config, log)


@pytest.fixture(scope="session")
def example_spec() -> Spec:
    return load_spec(EXAMPLE_SPEC)


@pytest.fixture
def cxmetrics_spec(example_spec: Spec) -> Spec:
    return example_spec


@pytest.fixture
def rec(example_spec: Spec) -> Iterator[Recording]:
    recording = Recording(example_spec)
    try:
        yield recording
    finally:
        recording.close()


@pytest.fixture(autouse=True)
def _no_leftover_configuration() -> Iterator[None]:
    yield
    config.shutdown()
