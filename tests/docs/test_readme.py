"""The README's spec reference and API signatures are the product's: the spec block validates as
pasted (including the checks ``rules`` runs) and the documented ``configure()`` signature is the
real one."""

from __future__ import annotations

import inspect
import re

import cxmetrics
from cxmetrics.rules.policy import plan
from cxmetrics.spec.load import parse_spec
from tests.helpers.paths import ROOT

README = (ROOT / "README.md").read_text()


def test_the_readme_spec_block_validates_as_pasted() -> None:
    section = README[README.index("## Spec reference") :]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)[:1]
    spec = parse_spec(block, "README.md")
    plan(spec)
    assert [j.name for j in spec.journeys] == ["bill_inquiry"]


def test_the_readme_configure_signature_is_the_real_one() -> None:
    (documented,) = re.findall(r"\| `configure\((.*?)\)` \|", README)
    real = ", ".join(
        p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
        for p in inspect.signature(cxmetrics.configure).parameters.values()
    )
    real = real.replace("spec='cxmetrics.yaml'", "spec").replace("'", '"')
    assert documented == real
