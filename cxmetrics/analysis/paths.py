"""Journey maps: where customers go from each step — the from→to transition matrix of a journey —
and the main paths through it, including skips, loops and back-steps.

The transition counts are those of ``cxmetrics.analysis.counts`` (what ``cx_step_transitions_total``
counts: one per step that followed another step of the same journey instance), so a map reads the
same from an event log or from Prometheus. Per step:

- entries: customers whose first recorded step of the journey was this one (its volume minus
  the transitions into it), clamped at zero;
- exits: customers who did not go on to another step (its volume minus the transitions out of it):
  after the last step that is the end of the journey, before it they left.

Counters keep pairs of steps, not whole paths, so main paths are *estimated*: each customer is
taken to choose the next step with the shares observed at the step they are on (a first-order
Markov chain from the entries). Paths are listed by estimated share, most frequent first, found
best-first so the list is exact for that model; a path through a loop is cut at ``MAX_LENGTH``.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from ..spec.model import Journey, Spec
from .counts import Window

MAX_PATHS = 5
MIN_SHARE = 0.01
MAX_LENGTH = 12
_MAX_EXPANSIONS = 20_000

FORWARD, SKIP, LOOP, BACK = "forward", "skip", "loop", "back"


def move_kind(from_index: int, to_index: int) -> str:
    if to_index == from_index + 1:
        return FORWARD
    if to_index > from_index:
        return SKIP
    return LOOP if to_index == from_index else BACK


@dataclass(frozen=True)
class MainPath:
    steps: tuple[str, ...]
    share: float  # of the customers entering the journey, estimated
    customers: int  # share × entries, rounded
    completed: bool  # ends at the journey's last step rather than leaving before it
    moves: tuple[str, ...]  # the kind of each move (forward, skip, loop, back)

    @property
    def unusual(self) -> tuple[str, ...]:
        """``skips amount``, ``loops at payee``, ``goes back to login``: what is not forward."""
        out = []
        for k, kind in enumerate(self.moves):
            target = self.steps[k + 1]
            if kind == SKIP:
                out.append(f"skips to {target}")
            elif kind == LOOP:
                out.append(f"repeats {target}")
            elif kind == BACK:
                out.append(f"goes back to {target}")
        return tuple(out)


@dataclass(frozen=True)
class JourneyMap:
    journey: str
    steps: tuple[str, ...]
    volume: tuple[int, ...]
    matrix: tuple[tuple[int, ...], ...]  # matrix[i][j]: customers from steps[i] to steps[j]
    entries: tuple[int, ...]
    exits: tuple[int, ...]
    paths: tuple[MainPath, ...]

    @property
    def moves(self) -> list[tuple[str, str, int, str]]:
        """Every non-zero ``(from, to, customers, kind)``, largest first."""
        out = [
            (self.steps[i], self.steps[j], n, move_kind(i, j))
            for i, row in enumerate(self.matrix)
            for j, n in enumerate(row)
            if n
        ]
        return sorted(out, key=lambda m: -m[2])


def journey_maps(spec: Spec, window: Window) -> dict[str, JourneyMap]:
    return {j.name: journey_map(j, window) for j in spec.journeys}


def journey_map(journey: Journey, window: Window) -> JourneyMap:
    names = journey.step_names
    counts = [window.steps.get((journey.name, name)) for name in names]
    volume = tuple(0 if c is None else c.volume for c in counts)
    matrix = tuple(
        tuple(0 if c is None else c.transitions.get(to, 0) for to in names) for c in counts
    )
    entries = tuple(
        max(volume[j] - sum(matrix[i][j] for i in range(len(names))), 0) for j in range(len(names))
    )
    exits = tuple(max(volume[i] - sum(matrix[i]), 0) for i in range(len(names)))
    paths = _main_paths(names, volume, matrix, entries, exits)
    return JourneyMap(journey.name, tuple(names), volume, matrix, entries, exits, paths)


def _main_paths(
    names: Sequence[str],
    volume: tuple[int, ...],
    matrix: tuple[tuple[int, ...], ...],
    entries: tuple[int, ...],
    exits: tuple[int, ...],
) -> tuple[MainPath, ...]:
    entered = sum(entries)
    if not entered:
        return ()
    # a step's outgoing shares; its volume may undercount transitions landing a window late
    outgoing = []
    for i in range(len(names)):
        total = max(volume[i], sum(matrix[i]) + exits[i])
        outgoing.append(
            ([(j, n / total) for j, n in enumerate(matrix[i]) if n], exits[i] / total)
            if total
            else ([], 1.0)
        )
    heap: list[tuple[float, tuple[int, ...], bool]] = [
        (-n / entered, (i,), False) for i, n in enumerate(entries) if n
    ]
    heapq.heapify(heap)
    found: list[MainPath] = []
    expansions = 0
    while heap and len(found) < MAX_PATHS and expansions < _MAX_EXPANSIONS:
        negative, path, ended = heapq.heappop(heap)
        share = -negative
        if share < MIN_SHARE:
            break
        if ended or len(path) >= MAX_LENGTH:
            found.append(_path(names, path, share, entered))
            continue
        expansions += 1
        moves, leave = outgoing[path[-1]]
        if leave:
            heapq.heappush(heap, (-share * leave, path, True))
        for j, p in moves:
            heapq.heappush(heap, (-share * p, (*path, j), False))
    return tuple(found)


def _path(names: Sequence[str], path: tuple[int, ...], share: float, entered: int) -> MainPath:
    return MainPath(
        tuple(names[i] for i in path),
        share,
        round(share * entered),
        path[-1] == len(names) - 1,
        tuple(move_kind(a, b) for a, b in pairwise(path)),
    )
