"""Alert annotations as data: literal text plus value slots, rendered two ways.

``Text.template()`` is the Prometheus (Go) template written into the rule file; ``Text.expand``
fills the same slots with known values through Python copies of Prometheus' ``humanize*``
functions, which is how the generated ``promtool test rules`` suites state the exact annotation
an alert must carry. Keeping one definition for both is what lets those suites assert annotations
exactly without restating any wording.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Format = Literal["duration", "percent", "timestamp", "%.0f", "%.1f"]
_GO_FUNCTIONS: dict[str, str] = {
    "duration": "humanizeDuration",
    "percent": "humanizePercentage",
    "timestamp": "humanizeTimestamp",
    "%.0f": 'printf "%.0f"',
    "%.1f": 'printf "%.1f"',
}


@dataclass(frozen=True)
class Slot:
    """A value in an annotation: the alert's ``$value`` (``query=None``) or an instant query's
    first sample; ``key`` names it for ``expand``; ``fallback`` is shown when the query is empty.

    A generic rule's query names the alert's own labels: ``params`` lists them, and each ``%s``
    of ``query`` is filled with ``$labels.<param>`` in the template (``bind`` fills them with a
    known alert's labels)."""

    key: str
    fmt: Format
    query: str | None = None
    fallback: str = "unknown"
    params: tuple[str, ...] = ()

    def template(self) -> str:
        function = _GO_FUNCTIONS[self.fmt]
        if self.query is None:
            return f"{{{{ $value | {function} }}}}"
        if "`" in self.query:
            raise ValueError(f"query {self.query!r} cannot contain a backquote")
        query = f"query `{self.query}`"
        if self.params:
            args = " ".join(f"$labels.{p}" for p in self.params)
            query = f"printf `{self.query}` {args} | query"
        return (
            f"{{{{ with {query} }}}}{{{{ . | first | value | {function} }}}}"
            f"{{{{ else }}}}{self.fallback}{{{{ end }}}}"
        )

    def expand(self, value: float | None) -> str:
        if value is None:
            return self.fallback
        return format_value(self.fmt, value)


@dataclass(frozen=True)
class Label:
    """One of the alert's labels (``{{ $labels.journey }}``): a generic rule's annotations name
    the journey and step each alert is about."""

    name: str

    def template(self) -> str:
        return f"{{{{ $labels.{self.name} }}}}"


@dataclass(frozen=True)
class Choice:
    """A text that depends on one label: ``cases`` for the label values that need their own
    text, ``default`` (with ``%s`` for the value) for all others — a dashboard uid cut short with
    a digest for a long journey name, which a template cannot compute."""

    label: str
    default: str
    cases: tuple[tuple[str, str], ...] = ()

    def template(self) -> str:
        plain = self.default.replace("%s", f"{{{{ $labels.{self.label} }}}}")
        if not self.cases:
            return plain
        out = ""
        for i, (value, literal) in enumerate(self.cases):
            keyword = "if" if i == 0 else "else if"
            out += f'{{{{ {keyword} eq $labels.{self.label} "{value}" }}}}{literal}'
        return f"{out}{{{{ else }}}}{plain}{{{{ end }}}}"

    def literal(self, value: str) -> str:
        return dict(self.cases).get(value, self.default.replace("%s", value))


Part = str | Slot | Label | Choice


@dataclass(frozen=True)
class Text:
    parts: tuple[Part, ...]

    def template(self) -> str:
        out = []
        for part in self.parts:
            if not isinstance(part, str):
                out.append(part.template())
            elif "{{" in part or "}}" in part:
                raise ValueError(f"literal annotation text {part!r} contains template braces")
            else:
                out.append(part)
        return "".join(out)

    def bind(self, labels: Mapping[str, str], known: Mapping[str, float] | None = None) -> Text:
        """This text for one alert of a generic rule: its labels written out, and the slots
        whose values the spec fixes (``known``: a step's min_change, objective) formatted."""
        known = known or {}
        parts: list[Part] = []
        for part in self.parts:
            if isinstance(part, Label):
                parts.append(labels[part.name])
            elif isinstance(part, Choice):
                parts.append(part.literal(labels[part.label]))
            elif isinstance(part, Slot) and part.key in known:
                parts.append(part.expand(known[part.key]))
            elif isinstance(part, Slot) and part.params:
                query = part.query % tuple(labels[p] for p in part.params) if part.query else None
                parts.append(Slot(part.key, part.fmt, query, part.fallback))
            else:
                parts.append(part)
        merged: list[Part] = []
        for part in parts:  # adjacent literals as one, as a hand-written text would have them
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            else:
                merged.append(part)
        return text(*merged)

    def expand(self, values: Mapping[str, float | None]) -> str:
        """The text with ``values`` in its slots (a bound text: no label parts left)."""
        out = []
        for p in self.parts:
            if isinstance(p, Slot):
                out.append(p.expand(values[p.key]))
            elif isinstance(p, str):
                out.append(p)
            else:
                raise ValueError(f"{p!r}: bind the text to an alert's labels first")
        return "".join(out)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.parts if isinstance(p, Slot))


def text(*parts: Part) -> Text:
    return Text(tuple(p for p in parts if p != ""))


def format_value(fmt: Format, value: float) -> str:
    if fmt == "duration":
        return humanize_duration(value)
    if fmt == "percent":
        return humanize_percentage(value)
    if fmt == "timestamp":
        return humanize_timestamp(value)
    return fmt % value


# Python copies of Prometheus 2.x ``template/template.go``. Go's %.4g and Python's agree
# (precision, exponent form, no trailing zeros).


def humanize_duration(v: float) -> str:
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return f"{_g4(v)}s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        whole = int(v)
        seconds, minutes = whole % 60, (whole // 60) % 60
        hours, days = (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(v: float) -> str:
    return f"{_g4(v * 100)}%"


def humanize_timestamp(v: float) -> str:
    """Go's ``time.Time.String()`` in UTC, as Prometheus prints an alert's start."""
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    seconds = math.floor(v)
    nanos = round((v - seconds) * 1e9)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return moment.strftime("%Y-%m-%d %H:%M:%S") + fraction + " +0000 UTC"


def _g4(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return f"{v:.4g}"
