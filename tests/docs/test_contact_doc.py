"""docs/contact-centre.md carries the contact indicators' table exactly as the module renders it,
and its spec and import pages' YAML blocks are the real mapping's fields."""

from __future__ import annotations

import re

import yaml

from cxmetrics.analysis.contact import markdown_table
from cxmetrics.spec.model import Contact, RecordMapping
from tests.helpers.paths import ROOT


def test_contact_doc_carries_the_table() -> None:
    text = (ROOT / "docs" / "contact-centre.md").read_text()
    begin, end = "<!-- contact:begin -->\n", "<!-- contact:end -->"
    block = text[text.index(begin) + len(begin) : text.index(end)]
    assert block == markdown_table(), "regenerate the table with contact.markdown_table()"


def test_the_documented_blocks_validate() -> None:
    text = (ROOT / "docs" / "contact-centre.md").read_text()
    (block,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    journey = yaml.safe_load(block.replace("records: {...}", "records: {}"))["journeys"][0]
    Contact.model_validate(journey["contact"])
    mapping = (ROOT / "docs" / "import.md").read_text()
    (records,) = re.findall(r"```yaml\n(.*?)```", mapping, flags=re.S)
    RecordMapping.model_validate(yaml.safe_load(records)["contact"]["records"])
