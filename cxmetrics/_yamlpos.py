"""YAML loading that remembers where each value came from, so spec errors can name a line."""

from __future__ import annotations

from typing import Any

import yaml

from ._exceptions import SpecIssue

Path = tuple[str | int, ...]


def load_with_lines(text: str, filename: str) -> tuple[Any, dict[Path, int], list[SpecIssue]]:
    """Parse ``text``; return the data, a map from field path to 1-based line, and any issues.

    Duplicate keys are issues (plain YAML silently keeps the last one, which hides typos).
    """
    issues: list[SpecIssue] = []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or "invalid YAML"
        issues.append(
            SpecIssue(
                filename,
                line,
                "",
                f"YAML syntax error: {problem}",
                "check indentation and quoting on this line",
            )
        )
        return None, {}, issues
    lines: dict[Path, int] = {}
    constructor = yaml.constructor.SafeConstructor()

    def build(node: yaml.Node, path: Path) -> Any:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = constructor.construct_object(key_node, deep=True)
                if not isinstance(key, (str, int)):
                    issues.append(
                        SpecIssue(
                            filename,
                            key_node.start_mark.line + 1,
                            _dotted(path),
                            f"mapping key {key!r} is not a name",
                        )
                    )
                    continue
                key_text = str(key)
                if key_text in result:
                    issues.append(
                        SpecIssue(
                            filename,
                            key_node.start_mark.line + 1,
                            _dotted((*path, key_text)),
                            "duplicate key",
                            "remove one of the two entries",
                        )
                    )
                    continue
                key_path = (*path, key_text)
                lines[key_path] = key_node.start_mark.line + 1
                result[key_text] = build(value_node, key_path)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, index)) for index, item in enumerate(node.value)]
        return constructor.construct_object(node, deep=True)

    data = build(root, ()) if root is not None else None
    return data, lines, issues


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of ``path`` or of its nearest ancestor present in the file."""
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        path = path[:-1]


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
