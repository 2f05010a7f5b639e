"""Where the repository and its example spec are."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SPEC = ROOT / "examples" / "bank" / "cxmetrics.yaml"
