"""The exception tree of cxmetrics.

    CxError                  base of everything cxmetrics raises on purpose
    └── SpecError            a spec (``cxmetrics.yaml``) that cannot be used; lists every problem
        └── (issues)         each a ``SpecIssue``: file, line, field path, message, suggested fix

Only configuration-time and CLI code raises. The instrumentation path inside the host app never
raises: it counts the failure in ``cx_internal_errors_total`` and logs it once.
"""

from __future__ import annotations

from dataclasses import dataclass


class CxError(Exception):
    """Base class of the errors cxmetrics raises on purpose."""


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec, located as precisely as the YAML allows."""

    file: str
    line: int | None
    field: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        text = (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )
        return f"{text} ({self.hint})" if self.hint else text


class SpecError(CxError):
    """A spec that cannot be used. ``issues`` lists every problem found, in file order."""

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.file, i.line or 0, i.field))
        count = len(self.issues)
        head = f"{count} problem{'s' if count != 1 else ''} in spec"
        super().__init__(head + ":\n" + "\n".join(f"  {i}" for i in self.issues))
