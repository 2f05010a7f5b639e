"""Hand-written ``promtool test rules`` input for one step: per-minute counts of a lognormal
latency in the step's own bucket layout, in promtool's expanding notation."""

from __future__ import annotations

import math
from collections.abc import Callable

from cxmetrics.exposition.collector import spec_rows
from cxmetrics.spec import names
from cxmetrics.spec.model import Spec

SIGMA = 0.3
Z95 = 1.6448536269514722


def median_for_p95(p95: float) -> float:
    return p95 / math.exp(Z95 * SIGMA)


def below(bound: float, median: float, per_minute: int, sigma: float = SIGMA) -> int:
    """Steps per minute at or under ``bound`` seconds."""
    z = math.log(bound / median) / (sigma * math.sqrt(2))
    return round(per_minute * 0.5 * (1 + math.erf(z)))


def layout(
    target: float,
    median: float,
    per_minute: int,
    sigma: float = SIGMA,
    bounds: tuple[float, ...] | None = None,
) -> list[tuple[str, int]]:
    """(``le``, steps per minute at or under it) for a step with target ``target`` (tolerating
    4T, the default), ``+Inf`` last; ``bounds`` replaces the step's layout (another grid)."""
    if bounds is None:
        bounds = names.duration_buckets(target, target * 4)
    rows = [(repr(float(b)), below(b, median, per_minute, sigma)) for b in bounds]
    return [*rows, ("+Inf", per_minute)]


def spec_series(spec: Spec, values: Callable[[float], str], **extra: str) -> list[dict[str, str]]:
    """The spec series the app exposes for ``spec`` (thresholds and policy, ``spec_rows``: the
    generic rules join them), each with ``values(value)`` and the ``extra`` labels (an
    ``instance``)."""
    rows = []
    for family, label_values, value in spec_rows(spec):
        labels = dict(zip(names.METRICS[family][1], label_values, strict=True)) | extra
        inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
        rows.append({"series": f"{family}{{{inner}}}", "values": values(value)})
    return rows


def cumulative(per_minute: list[int]) -> str:
    """A counter's values in promtool's notation from what it counted each minute (the first
    minute's count is its starting point, 0)."""
    total, out = 0, ["0"]
    for n in per_minute[1:]:
        total += n
        out.append(str(total))
    return " ".join(out)
