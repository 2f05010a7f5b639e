"""``import cxmetrics`` is light: the spec's models and loader (pydantic, PyYAML) are imported only
once a spec is loaded, so an app pays for them at ``configure()``, not at import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.paths import EXAMPLE_SPEC, ROOT

HEAVY = ("pydantic", "yaml", "cxmetrics.spec.model", "cxmetrics.spec.load")
SCRIPT = """
import json, sys
import cxmetrics
before = [m for m in {heavy!r} if m in sys.modules]
public = sorted(cxmetrics.__all__)
spec = cxmetrics.load_spec({spec!r})
after = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"before": before, "after": after, "public": public,
                  "spec": type(spec).__name__, "is_spec": isinstance(spec, cxmetrics.Spec)}}))
"""


@pytest.mark.slow
def test_import_cxmetrics_loads_neither_pydantic_nor_yaml_until_a_spec_is_loaded() -> None:
    code = SCRIPT.format(heavy=HEAVY, spec=str(EXAMPLE_SPEC))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["before"] == []
    assert result["after"] == list(HEAVY)
    assert "Spec" in result["public"] and "load_spec" in result["public"]
    assert result["spec"] == "Spec" and result["is_spec"] is True
