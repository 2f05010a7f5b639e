"""docs/indicators.md carries the indicator catalogue's table exactly as the catalogue renders it."""

from __future__ import annotations

from cxmetrics.analysis.catalogue import CATALOGUE, markdown_table
from tests.helpers.paths import ROOT


def test_indicators_doc_carries_the_catalogue_table() -> None:
    text = (ROOT / "docs" / "indicators.md").read_text()
    begin, end = "<!-- catalogue:begin -->\n", "<!-- catalogue:end -->"
    block = text[text.index(begin) + len(begin) : text.index(end)]
    assert block == markdown_table(), "regenerate the table with catalogue.markdown_table()"
    assert all(f"(`{r.name}`)" in block for r in CATALOGUE)
