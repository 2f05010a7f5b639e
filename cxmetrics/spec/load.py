"""Loading a spec: YAML with line numbers, validation, and errors people can act on.

Every problem is reported at once, each with the file, line, field path (with names instead of
bare indexes: ``journeys[bill_inquiry].steps[bill_detail].target``) and a likely fix.
"""

from __future__ import annotations

import difflib
import os
from typing import Any

from pydantic import BaseModel, ValidationError

from .._exceptions import SpecError, SpecIssue
from .model import (
    Baseline,
    Check,
    Defaults,
    FollowUp,
    Journey,
    Objectives,
    ObjectivesOverride,
    RegressionOverride,
    RegressionPolicy,
    ScoreWeights,
    Spec,
    Step,
)
from .positions import Path, line_of, load_with_lines


def load_spec(path: str | os.PathLike[str]) -> Spec:
    """Load and validate the spec at ``path``; raise ``SpecError`` listing every problem."""
    filename = os.fspath(path)
    try:
        with open(filename, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise SpecError(
            [
                SpecIssue(
                    filename,
                    None,
                    "",
                    f"cannot read spec: {exc.strerror}",
                    "check the path, or run 'cxmetrics validate' on it",
                )
            ]
        ) from exc
    except UnicodeDecodeError as exc:
        raise SpecError(
            [
                SpecIssue(
                    filename,
                    None,
                    "",
                    f"the spec is not UTF-8 text (byte {exc.start} cannot be decoded)",
                    "save the file as UTF-8 without a byte-order mark",
                )
            ]
        ) from None
    return parse_spec(text, filename)


def parse_spec(text: str, filename: str = "<spec>") -> Spec:
    """Validate spec ``text``; ``filename`` is used in messages."""
    data, lines, issues = load_with_lines(text, filename)
    if issues:
        raise SpecError(issues)
    if not isinstance(data, dict):
        raise SpecError(
            [
                SpecIssue(
                    filename,
                    1,
                    "",
                    "a spec is a YAML mapping",
                    f"start with: {STARTER}",
                )
            ]
        )
    try:
        spec = Spec.model_validate({**data, "source": filename}, context=_context(data))
    except ValidationError as exc:
        raise SpecError(_issues(exc, data, lines, filename)) from None
    return spec


STARTER = "{service: my_app, journeys: [{name: checkout, steps: [{name: pay, target: 1s}]}]}"
"""The smallest spec that validates, offered when a file has none."""


def _context(data: dict[str, Any]) -> dict[str, Any]:
    """What nested models check against: the spec's channels, reasons and segments (when they
    are names)."""
    out: dict[str, Any] = {}
    channels = data.get("channels", list(Spec.model_fields["channels"].default))
    if isinstance(channels, list) and all(isinstance(c, str) for c in channels):
        out["channels"] = tuple(channels)
    reasons = data.get("reasons", [])
    if isinstance(reasons, list) and all(isinstance(r, str) for r in reasons):
        out["reasons"] = tuple(reasons)
    segments = data.get("segments", [])
    if isinstance(segments, list) and all(isinstance(s, str) for s in segments):
        out["segments"] = tuple(segments)
    return out


def _issues(
    exc: ValidationError, data: Any, lines: dict[Path, int], filename: str
) -> list[SpecIssue]:
    issues: list[SpecIssue] = []
    seen: set[tuple[Path, str]] = set()
    errors = exc.errors(include_url=False)
    failing = [_yaml_path(e["loc"], data) for e in errors]
    for error in errors:
        loc = _yaml_path(error["loc"], data)
        if error["type"] == "too_short" and any(
            len(other) > len(loc) and other[: len(loc)] == loc for other in failing
        ):
            continue  # "too short after validation" only echoes its failing items
        message, hint = _explain(error, loc, data)
        if (loc, message) in seen:
            continue
        seen.add((loc, message))
        issues.append(SpecIssue(filename, line_of(lines, loc), _field(loc, data), message, hint))
    return issues


def _yaml_path(loc: tuple[int | str, ...], data: Any) -> Path:
    """``loc`` as a path into the YAML: pydantic inserts union and validator tags
    (``function-after[...]``, ``list[...]``) into locations; a part is dropped only when it is
    such a tag and not a key the data really has at that point."""
    path: list[str | int] = []
    node = data
    for part in loc:
        key = "for" if part == "for_" else part
        in_dict = isinstance(node, dict) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
        if in_dict or in_list:
            node = node[key]
        elif isinstance(key, str) and ("[" in key or key.startswith("function-")):
            continue
        else:
            node = None
        path.append(key)
    return tuple(path)


def _explain(error: Any, loc: Path, data: Any) -> tuple[str, str | None]:
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _model_for(loc[:-1])
        valid = (
            [(f.alias or n) for n, f in parent.model_fields.items() if n != "source"]
            if parent
            else []
        )
        # a near miss only: 'alerting' is not a misspelt 'version'
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.75)
        fix = f"did you mean '{close[0]}'?" if close else f"valid fields here: {', '.join(valid)}"
        return f"unknown field '{loc[-1]}'", fix
    if kind == "missing":
        return "required field is missing", f"add '{loc[-1]}:'"
    if kind == "string_pattern_mismatch":
        return (
            f"{error['input']!r} is not a valid name",
            "use lower-case letters, digits and '_', starting with a letter (max 63)",
        )
    if kind == "too_short":
        return "needs at least one entry", None
    if kind == "literal_error":
        return f"{error['input']!r} is not allowed", str(error["msg"]).replace(
            "Input should be ", "use "
        )
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    hint = None
    if "; did you mean" in message or "; declared in" in message:  # "<wrong>; <the fix>"
        message, hint = message.split("; ", 1)
    return message, hint


_MODEL_PATHS: dict[str, type[BaseModel]] = {
    "": Spec,
    "defaults": Defaults,
    "defaults.objectives": Objectives,
    "defaults.regression": RegressionPolicy,
    "defaults.score": ScoreWeights,
    "journeys": Journey,
    "journeys.objectives": ObjectivesOverride,
    "journeys.regression": RegressionOverride,
    "journeys.steps": Step,
    "journeys.steps.objectives": ObjectivesOverride,
    "journeys.steps.regression": RegressionOverride,
    "journeys.steps.checks": Check,
    "journeys.steps.followup": FollowUp,
    "defaults.regression.baseline": Baseline,
    "journeys.regression.baseline": Baseline,
    "journeys.steps.regression.baseline": Baseline,
}


def _model_for(path: Path) -> type[BaseModel] | None:
    key = ".".join(str(p) for p in path if not isinstance(p, int))
    return _MODEL_PATHS.get(key)


def _field(loc: Path, data: Any) -> str:
    """``journeys[bill_inquiry].steps[bill_detail].target`` — names instead of bare indexes."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            label: str | int = part
            if isinstance(node, list) and 0 <= part < len(node):
                item = node[part]
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    label = item["name"]
                node = item
            else:
                node = None
            out += f"[{label}]"
        else:
            node = node.get(part) if isinstance(node, dict) else None
            out += f".{part}" if out else part
    return out
