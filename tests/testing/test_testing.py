"""cxmetrics.testing without traps: an app's own configure() does not take the test's recorder
away, and the Recorder imports without pytest."""

from __future__ import annotations

import importlib.metadata
import logging
import subprocess
import sys

import pytest

import cxmetrics
from cxmetrics.testing import Recorder, Recording
from tests.helpers.paths import EXAMPLE_SPEC, ROOT


def app_module_import() -> None:
    """What an app does at import, as the docs show: configure from its spec file."""
    cxmetrics.configure(EXAMPLE_SPEC)


def test_configure_while_the_fixture_records_keeps_the_fixtures_recorder(
    cx_recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cxmetrics"):
        app_module_import()
        app_module_import()
    with cxmetrics.journey("bill_inquiry") as j, j.step("login"):
        pass
    assert cx_recorder.step_names("bill_inquiry") == ["login"]
    assert [r.getMessage() for r in caplog.records] == [
        "cxmetrics: configure() called while a test recording (cxmetrics.testing) is active; "
        "the test's configuration and recorder stay in place"
    ]


def test_after_the_recording_closes_configure_works_again(cx_recording: Recording) -> None:
    cx_recording.close()
    assert cxmetrics.configure(EXAMPLE_SPEC) is True
    assert cxmetrics.config.is_configured()


@pytest.mark.slow
def test_recorder_imports_without_pytest() -> None:
    code = (
        "import sys; sys.modules['pytest'] = None\n"
        "from cxmetrics.testing import Recorder, recording\n"
        f"rec = recording({str(EXAMPLE_SPEC)!r})\n"
        "import cxmetrics\n"
        "with cxmetrics.journey('bill_inquiry') as j, j.step('login'): pass\n"
        "print(rec.recorder.step_names('bill_inquiry'))\n"
        "rec.close()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "['login']\n", "")


def test_the_pytest_plugin_is_the_fixture_module() -> None:
    (plugin,) = [
        e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "cxmetrics"
    ]
    assert plugin.value == "cxmetrics.testing.pytest_plugin"
    module = plugin.load()
    assert {"cxmetrics_spec", "cx_recording", "cx_recorder"} <= set(vars(module))
