"""The loop of ``cxmetrics watch``: read, judge, expose, alert; every ``interval`` seconds.

Each read asks the Prometheus API for every declared step's counters (duration histograms, steps
by outcome, accuracy checks by result) over ``[start, end)`` in windows of ``step`` seconds
(``cxmetrics.analysis.prometheus``), channel by channel, and runs the analyzer on each channel's
windows (``cxmetrics.analysis.analyzer``), the same code as ``cxmetrics analyze --prometheus``
under a ``channel`` matcher: a step's latency, error rate and each declared accuracy check's
failure rate are judged per channel, with ``min_volume`` in that channel, as the generated
rules judge latency. ``end`` is now minus ``delay`` (the engine's scrape and ingestion lag),
rounded down to a window edge; ``start`` is ``end - history``, except while a regression is
open: then it stays where it was when the regression was first seen (the state's anchor), so the
regression is judged against the same baseline until it recovers. The detector is causal:
extending the range at its end never changes what it decided earlier in it.

An engine that does not answer, or answers badly, costs that read only: it is counted
(``cx_watch_read_failures_total``), logged once per outage, and the next interval reads again;
the alerts already sent keep their ``endsAt`` and are re-sent after the next good read.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import CxError
from ..analysis.analyzer import ACCURACY, ERRORS, LATENCY, Finding, analyze
from ..analysis.prometheus import MAX_POINTS, from_prometheus
from ..analysis.sources import Timeline
from ..rules.policy import StepPlan
from ..spec import names
from ..spec.model import Spec
from . import alertmanager, state
from .alertmanager import Open
from .exposition import Key, Verdicts

log = logging.getLogger("cxmetrics.watch")


@dataclass(frozen=True)
class Settings:
    prometheus: str
    alertmanager: str | None = None
    step: float = 60.0  # window length, seconds
    interval: float = 60.0  # seconds between reads
    #: seconds each read covers (more while a regression is open); two days or more give
    #: same-phase (time-of-day) baselines (`analysis.analyzer.seasonal`)
    history: float = 172_800.0
    delay: float = 30.0  # the engine's scrape + ingestion lag, seconds
    matchers: str = ""
    state_path: Path | None = None
    dashboard_url: str | None = None

    @property
    def ends_after(self) -> float:
        """How long after a send an alert stays firing without being sent again."""
        return max(4.0 * self.interval, 60.0)

    @property
    def max_range(self) -> float:
        return (MAX_POINTS - 1) * self.step


@dataclass
class Watcher:
    spec: Spec
    plans: dict[tuple[str, str], StepPlan]
    settings: Settings
    verdicts: Verdicts = field(default_factory=Verdicts)
    state: state.WatchState = field(default_factory=state.WatchState)
    #: reads one channel's windows: (spec, url, start, end, step, matchers) → counts
    source: Callable[[Spec, str, float, float, float, str], Timeline] = from_prometheus
    _failing: str | None = None  # the message of the outage being counted, if any
    _alert_failing: str | None = None
    _baselines: str | None = None  # the kind of baselines the last read used, as logged

    def __post_init__(self) -> None:
        path = self.settings.state_path
        if path is not None:
            self.state, why = state.load(path)
            if why is not None:
                log.warning("%s; starting from Prometheus' history alone", why)
            elif self.state.alerts:
                log.info("resuming with %d alert(s) firing", len(self.state.alerts))

    # -- one read ------------------------------------------------------------------------------

    def window(self, now: float) -> tuple[float, float]:
        s = self.settings
        end = math.floor((now - s.delay) / s.step) * s.step
        start = end - s.history
        if self.state.anchor is not None:
            start = max(min(start, self.state.anchor), end - s.max_range)
        return math.floor(start / s.step) * s.step, end

    def tick(self, now: float | None = None) -> bool:
        """One read, judgement and send; ``False`` when the read failed (counted and logged)."""
        now = time.time() if now is None else now
        start, end = self.window(now)
        try:
            analyses = []
            for channel in self.channels():
                # each channel on its own, as the rules judge it: min_volume in that channel, and
                # a shift of traffic toward a slower channel is no regression
                only = f'{names.CHANNEL}="{channel}"'
                timeline = self.source(
                    self.spec,
                    self.settings.prometheus,
                    start,
                    end,
                    self.settings.step,
                    ",".join(m for m in (self.settings.matchers, only) if m),
                )
                analyses.append((channel, analyze(self.spec, timeline)))
        except (CxError, OSError, ValueError) as exc:
            self.verdicts.health.read_failures += 1
            message = str(exc)
            if self._failing is None:
                log.warning("read failed, retrying every %gs: %s", self.settings.interval, message)
            self._failing = message
            return False
        if self._failing is not None:
            log.info("reading again from %s", self.settings.prometheus)
            self._failing = None
        self.verdicts.health.reads += 1
        self.verdicts.health.last_read = time.time()
        baselines = analyses[0][1].baselines if analyses else ""
        # logged when the kind changes (same-phase once 2 days are in range), not when only the
        # range it states does (every read while a regression holds the range's start)
        kind = baselines.split(" (")[0]
        if kind != self._baselines:
            log.info("latency judged against %s", baselines.removeprefix("histogram windows: "))
            self._baselines = kind
        found = [
            r for channel, a in analyses for r in self.open_regressions(a.findings, end, channel)
        ]
        better = [
            r
            for channel, a in analyses
            for r in self.open_regressions(a.improvements, end, channel)
        ]
        log.debug(
            "read %d windows of %gs per channel ending %s: %d regression(s) open",
            round((end - start) / self.settings.step),
            self.settings.step,
            alertmanager.rfc3339(end),
            len(found),
        )
        self.verdicts.update(self.watched(), found, better)
        self._alert(found, now)
        if not found:
            self.state.anchor = None
        elif self.state.anchor is None:
            self.state.anchor = start
        self._save()
        return True

    def channels(self) -> list[str]:
        """The channels judged: those the steps' plans list (the spec's, without plans)."""
        listed = {c for p in self.plans.values() for c in p.channels} or set(self.spec.channels)
        return [c for c in self.spec.channels if c in listed] + sorted(
            listed - set(self.spec.channels)
        )

    def _step_channels(self, journey: str, step: str) -> tuple[str, ...]:
        p = self.plans.get((journey, step))
        return tuple(self.channels()) if p is None else p.channels

    def watched(self) -> list[Key]:
        """Every verdict the watch exposes: per step and channel, each latency quantile, the
        error rate and each declared accuracy check."""
        out: list[Key] = []
        for j, s in self.spec.steps():
            for c in self._step_channels(j.name, s.name):
                quantiles = self.spec.regression(j, s).quantiles
                out += [(j.name, s.name, c, LATENCY, "", f"{q:g}") for q in quantiles]
                out.append((j.name, s.name, c, ERRORS, "", ""))
                out += [(j.name, s.name, c, ACCURACY, check.name, "") for check in s.checks]
        return out

    def open_regressions(self, findings: Sequence[Finding], end: float, channel: str) -> list[Open]:
        """The regressions (or improvements) of ``channel`` among ``findings`` open at the end of
        the read for at least the policy's ``for`` since the detector became sure (as the rule's
        ``for``: a move of the machine's own that the detector sees recover sooner is never
        sent): one per step for latency, one per step for the error rate, one per declared check
        for accuracy; other indicators (conversion, feedback) are not the watch's."""
        out: dict[tuple[str, str, str, str], Open] = {}
        for f in findings:
            if f.indicator not in (LATENCY, ERRORS, ACCURACY) or f.end_time is not None:
                continue
            if channel not in self._step_channels(f.journey, f.step):
                continue
            r = f.regression
            journey = self.spec.journey(f.journey)
            step = journey.step(f.step)
            check = (f.subject or "") if f.indicator == ACCURACY else ""
            if f.indicator == ACCURACY and check not in {c.name for c in step.checks}:
                continue  # a check the spec does not declare: no verdict series, no alert
            policy = self.spec.regression(journey, step)
            if end - f.detected_time < policy.for_:
                continue
            quantile = (
                _quantile(r.statistic, policy.quantiles[0]) if f.indicator == LATENCY else None
            )
            out[(f.journey, f.step, f.indicator, check)] = Open(
                f.journey,
                f.step,
                quantile,
                f.start_time,
                f.detected_time,
                r.baseline,
                r.current,
                r.change,
                r.change_low,
                r.change_high,
                r.affected,
                channel,
                f.indicator,
                check,
            )
        return list(out.values())

    # -- alerts --------------------------------------------------------------------------------

    def _alert(self, found: list[Open], now: float) -> None:
        firing: dict[str, state.SentAlert] = {}
        batch: list[dict[str, Any]] = []
        for r in found:
            plan = self.plans.get((r.journey, r.step))
            if plan is None:
                continue
            labels = alertmanager.labels(plan, r)
            key = state.alert_key(labels)
            before = self.state.alerts.get(key)
            starts_at = before.starts_at if before is not None else r.start
            notes = alertmanager.annotation_texts(plan, r, self.settings.dashboard_url, starts_at)
            firing[key] = state.SentAlert(labels, starts_at, notes)
            batch.append(
                alertmanager.payload(labels, notes, starts_at, now + self.settings.ends_after)
            )
            if before is None:
                log.info("regression: %s", notes.get("summary", f"{r.journey}/{r.step}"))
        for key, sent in self.state.alerts.items():
            if key not in firing:  # recovered: resolve it now
                batch.append(
                    alertmanager.payload(sent.labels, sent.annotations, sent.starts_at, now)
                )
                log.info("recovered: %s", key)
        url = self.settings.alertmanager
        if url is not None and batch:
            try:
                alertmanager.post(url, batch)
            except CxError as exc:
                self.verdicts.health.alert_failures += 1
                if self._alert_failing is None:
                    log.warning(
                        "alerts not sent, sending again every %gs: %s", self.settings.interval, exc
                    )
                self._alert_failing = str(exc)
                # keep the resolved ones too, so they are sent again next time
                firing = {**self.state.alerts, **firing}
            else:
                if self._alert_failing is not None:
                    log.info("alerts sent to %s again", url)
                self._alert_failing = None
        self.state.alerts = firing

    def _save(self) -> None:
        path = self.settings.state_path
        if path is None:
            return
        try:
            state.save(path, self.state)
        except OSError as exc:
            log.warning("cannot write the state file %s: %s", path, exc)

    # -- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Read every ``interval`` seconds until ``stop`` is set (SIGTERM, SIGINT)."""
        while not stop.is_set():
            began = time.monotonic()
            self.tick()
            stop.wait(max(self.settings.interval - (time.monotonic() - began), 0.0))


def _quantile(statistic: str, default: float) -> float:
    """The quantile a latency regression is sized on ("p95" → 0.95, "p50" → 0.5)."""
    try:
        return round(float(statistic.removeprefix("p")) / 100.0, 12)
    except ValueError:
        return default
