"""Spec overrides: YAML mappings merged onto a spec before it is validated.

For time-compressed runs (tests, demos, ``cxmetrics stack``) that need, say, a 20 s regression
window instead of 10 m, without a second spec or a second code path: the merged document goes
through the one parser, ``parse_spec``. Mappings merge key by key; lists of named mappings
(journeys, steps, checks) merge item by item on ``name`` (new names are appended); any other value
replaces what it overrides::

    defaults: {regression: {window: 20s, baseline: trailing 60s}}
    journeys: [{name: bill_inquiry, steps: [{name: bill_detail, regression: {for: 5s}}]}]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import yaml

from .._exceptions import SpecError, SpecIssue
from ..spec.load import parse_spec
from ..spec.model import Spec


def load_with_overrides(
    path: str | os.PathLike[str], overrides: Sequence[str | os.PathLike[str]] = ()
) -> Spec:
    """The spec at ``path`` with the override files merged onto it, in order."""
    filename = os.fspath(path)
    texts: list[tuple[str, str]] = []
    for name in (filename, *(os.fspath(o) for o in overrides)):
        try:
            with open(name, encoding="utf-8") as handle:
                texts.append((name, handle.read()))
        except OSError as exc:
            raise SpecError([SpecIssue(name, None, "", f"cannot read: {exc.strerror}")]) from exc
    return parse_with_overrides(
        texts[0][1], [t for _, t in texts[1:]], filename, [n for n, _ in texts[1:]]
    )


def parse_with_overrides(
    text: str,
    overrides: Sequence[str],
    filename: str = "<spec>",
    override_names: Sequence[str] = (),
) -> Spec:
    """``parse_spec(text)`` with each YAML text in ``overrides`` merged onto it first."""
    if not overrides:
        return parse_spec(text, filename)
    names = list(override_names) or [f"<override {i + 1}>" for i in range(len(overrides))]
    merged = _load(text, filename)
    for name, override in zip(names, overrides, strict=True):
        merged = merge(merged, _load(override, name))
    source = f"{filename} + {' + '.join(names)}"
    try:
        return parse_spec(yaml.safe_dump(merged, sort_keys=False), source)
    except SpecError as exc:
        # Line numbers would point into the merged document, which exists nowhere on disk.
        raise SpecError(
            [SpecIssue(i.file, None, i.field, i.message, i.hint) for i in exc.issues]
        ) from None


def merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    if _named(base) and _named(override):
        items = {item["name"]: item for item in base}
        for item in override:
            items[item["name"]] = (
                merge(items[item["name"]], item) if item["name"] in items else item
            )
        return list(items.values())
    return override


def _named(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, dict) and isinstance(item.get("name"), str) for item in value
    )


def _load(text: str, name: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError([SpecIssue(name, None, "", f"YAML syntax error: {exc}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError(
            [
                SpecIssue(
                    name,
                    None,
                    "",
                    "an override is a YAML mapping",
                    "e.g. 'defaults: {regression: {window: 20s}}'",
                )
            ]
        )
    return data
