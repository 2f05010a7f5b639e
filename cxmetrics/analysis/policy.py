"""What the detector is asked to find: the smallest change that matters, the least evidence for a
verdict, the false-alarm rate it may spend, and the quantile it reports."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    min_change: float = 0.10  # relative worsening that matters (the spec's regression policy)
    min_samples: int = 100  # below this: insufficient_data, never a verdict
    false_alarm_rate: float = 1e-5  # per sample, target
    quantile: float = 0.95  # the statistic reported for latency
    #: same-phase baselines: the length of the cycle (a day, a week) in the unit of the sample
    #: times given to `LatencyDetector.extend`; None = no cycle (trailing baseline only)
    season: float | None = None

    def __post_init__(self) -> None:
        if not (self.min_change > 0.0 and math.isfinite(self.min_change)):
            raise ValueError(f"min_change must be a positive number, got {self.min_change!r}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, got {self.min_samples!r}")
        if not 0.0 < self.false_alarm_rate < 0.01:
            raise ValueError(
                f"false_alarm_rate must be in (0, 0.01), got {self.false_alarm_rate!r}"
            )
        if self.season is not None and not (self.season > 0 and math.isfinite(self.season)):
            raise ValueError(f"season must be a positive period, got {self.season!r}")
        if not 0.0 < self.quantile < 1.0:
            raise ValueError(f"quantile must be in (0, 1), got {self.quantile!r}")


DEFAULT_POLICY = Policy()
