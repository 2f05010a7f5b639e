"""YAML loading that remembers where each value came from, so spec errors can name a line."""

from __future__ import annotations

from typing import Any

import yaml

from .._exceptions import SpecIssue

Path = tuple[str | int, ...]


class _Refused(Exception):
    def __init__(self, node: yaml.Node, message: str, hint: str) -> None:
        super().__init__(message)
        self.line, self.message, self.hint = node.start_mark.line + 1, message, hint


def load_with_lines(text: str, filename: str) -> tuple[Any, dict[Path, int], list[SpecIssue]]:
    """Parse ``text``; return the data, a map from field path to 1-based line, and any issues.

    Duplicate keys are issues (plain YAML silently keeps the last one, which hides typos), and so
    are aliases: a spec has no use for them, and expanding them is how a 300-byte file becomes a
    billion nodes. Nothing but issues comes out of here, whatever the input.
    """
    issues: list[SpecIssue] = []

    def fail(
        line: int | None, message: str, hint: str
    ) -> tuple[Any, dict[Path, int], list[SpecIssue]]:
        issues.append(SpecIssue(filename, line, "", message, hint))
        return None, {}, issues

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return fail(
            line,
            f"YAML syntax error: {exc.problem or 'invalid YAML'}",
            "check indentation and quoting on this line",
        )
    except yaml.YAMLError as exc:  # e.g. a control character the reader refuses
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return fail(None, f"not readable as YAML: {first}", "save the spec as plain UTF-8 text")
    except RecursionError:
        return fail(None, "YAML nested too deeply", "a spec needs only a few levels of nesting")
    lines: dict[Path, int] = {}
    constructor = yaml.constructor.SafeConstructor()
    seen: set[int] = set()

    def scalar(node: yaml.Node) -> Any:
        try:
            return constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            raise _Refused(
                node,
                f"value not understood: {exc}".split("\n")[0],
                "quote it to make it text, or write a plain number or name",
            ) from None

    def build(node: yaml.Node, path: Path) -> Any:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            if id(node) in seen:
                raise _Refused(
                    node,
                    "YAML aliases (*name) are not allowed in a spec",
                    "write the value out where it is used",
                )
            seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = scalar(key_node)
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
        return scalar(node)

    try:
        data = build(root, ()) if root is not None else None
    except _Refused as exc:
        return fail(exc.line, exc.message, exc.hint)
    except RecursionError:
        return fail(None, "YAML nested too deeply", "a spec needs only a few levels of nesting")
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
