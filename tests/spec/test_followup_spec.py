"""Follow-up policies in the spec: valid ones load, bad ones name file, line, field and a fix."""

from __future__ import annotations

import pytest

from cxmetrics import SpecError
from cxmetrics.spec.load import parse_spec
from cxmetrics.spec.names import FOLLOWUP_FIELDS

GOOD = """\
service: bank
journeys:
  - name: loan_application
    tags: {segment: retail}
    steps:
      - name: apply
        target: 2s
      - name: upload_documents
        target: 5s
        followup:
          after: 2h
          until: 3d
          webhook: https://crm.bank.example/hooks/stalled
          queue: relationship_managers
      - name: sign
        target: 3s
"""


def _messages(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "bank.yaml")
    return [str(issue) for issue in info.value.issues]


def test_followup_loads_with_default_fields() -> None:
    spec = parse_spec(GOOD, "bank.yaml")
    journey = spec.journey("loan_application")
    (key,) = journey.key_steps
    assert key.name == "upload_documents"
    assert key.followup is not None
    assert (key.followup.after, key.followup.until) == (7200.0, 259200.0)
    assert key.followup.webhook == "https://crm.bank.example/hooks/stalled"
    assert key.followup.queue == "relationship_managers"
    assert key.followup.fields == FOLLOWUP_FIELDS
    assert journey.segment(key) == "retail"
    assert journey.segment(journey.step("apply")) == "retail"


BAD = [
    (
        "no target",
        GOOD.replace("          webhook: https://crm.bank.example/hooks/stalled\n", "").replace(
            "          queue: relationship_managers\n", ""
        ),
        [
            "bank.yaml:10: journeys[loan_application].steps[upload_documents].followup: a follow-up "
            "needs a target; add 'webhook: https://…' and/or 'queue: <name>'"
        ],
    ),
    (
        "until not after after",
        GOOD.replace("until: 3d", "until: 1h"),
        [
            "bank.yaml:10: journeys[loan_application].steps[upload_documents].followup: until (3600s) "
            "must be longer than after (7200s): it is when a follow-up not yet delivered is given up"
        ],
    ),
    (
        "webhook not a URL",
        GOOD.replace("https://crm.bank.example/hooks/stalled", "crm.bank.example"),
        [
            "bank.yaml:13: journeys[loan_application].steps[upload_documents].followup.webhook: "
            "webhook 'crm.bank.example' is not an http(s) URL; write e.g. 'https://crm.example/hooks'"
        ],
    ),
    (
        "unknown field",
        GOOD.replace(
            "queue: relationship_managers", "queue: rm\n          fields: [journey, customer_id]"
        ),
        [
            "bank.yaml:15: journeys[loan_application].steps[upload_documents].followup.fields: "
            "unknown follow-up field 'customer_id' (did you mean 'customer_ref'?)"
        ],
    ),
    (
        "typo in a followup field",
        GOOD.replace("after: 2h", "afer: 2h"),
        [
            "bank.yaml:10: journeys[loan_application].steps[upload_documents].followup.after: "
            "required field is missing (add 'after:')",
            "bank.yaml:11: journeys[loan_application].steps[upload_documents].followup.afer: "
            "unknown field 'afer' (did you mean 'after'?)",
        ],
    ),
    (
        "bad duration",
        GOOD.replace("after: 2h", "after: soon"),
        [
            "bank.yaml:11: journeys[loan_application].steps[upload_documents].followup.after: 'soon' "
            "is not a duration; write a number and a unit, e.g. '800ms', '1.5s', '10m', '6h', '1d', '1w'"
        ],
    ),
    (
        "followup on the last step",
        GOOD.replace(
            "        target: 3s\n",
            "        target: 3s\n        followup: {after: 1h, until: 1d, queue: rm}\n",
        ),
        [
            "bank.yaml:5: journeys[loan_application].steps: step 'sign' is the journey's last step, "
            "so no later step can clear its follow-up; put 'followup' on the step customers stall at "
            "before the end"
        ],
    ),
]


@pytest.mark.parametrize(("what", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_followups_name_line_field_and_fix(what: str, text: str, expected: list[str]) -> None:
    assert _messages(text) == expected
