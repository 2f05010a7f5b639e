"""Rows of a call-detail export, streamed: CSV (with a header row) or JSONL (one object a line),
each with the line it starts on. A line that is not a row at all (bad JSON, not an object, a CSV
row with more fields than the header) comes out as a ``BadRow`` with the reason, never raises."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Format = Literal["csv", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl")
MAX_LINE = 1 << 16  # bytes: a call record is a few hundred


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    reason: str


Row = dict[str, object]


def detect(path: str) -> Format:
    """The format of ``path`` by its extension (``.csv``; ``.jsonl``/``.ndjson``/``.json``)."""
    lower = path.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise ValueError(f"cannot tell the format of {path!r} by its name; pass --format csv|jsonl")


def read_rows(path: str | os.PathLike[str], fmt: Format) -> Iterator[tuple[int, Row | BadRow]]:
    """``(line, row)`` for every record of the file, in file order. Raises ``OSError`` when the
    file cannot be opened."""
    if fmt == "csv":
        return _csv_rows(os.fspath(path))
    return _jsonl_rows(os.fspath(path))


def _csv_rows(path: str) -> Iterator[tuple[int, Row | BadRow]]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield 1, BadRow(1, f"header row is not CSV ({exc})")
            return
        width = len(header)
        start = reader.line_num + 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, BadRow(start, f"not a CSV row ({exc})")
                start = reader.line_num + 1
                continue
            line, start = start, reader.line_num + 1
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if len(fields) > width:
                yield line, BadRow(line, f"{len(fields)} fields, the header has {width}")
                continue
            yield line, dict(zip(header, fields, strict=False))


def _jsonl_rows(path: str) -> Iterator[tuple[int, Row | BadRow]]:
    with open(path, "rb") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            if len(raw) > MAX_LINE:
                yield line, BadRow(line, f"a line of {len(raw):,} bytes; a record is a few hundred")
                continue
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                yield line, BadRow(line, f"not JSON ({exc})")
                continue
            if not isinstance(data, dict):
                yield line, BadRow(line, "not a JSON object")
                continue
            yield line, data
