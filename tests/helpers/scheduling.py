"""How ``make test`` shares the suite among its pytest-xdist workers (``-n 2 --dist loadgroup``).

A work unit is a whole test module, so a module's module-scoped fixture (a Prometheus loaded
with two weeks of data, a bank under traffic) starts once, on one worker; tests marked
``xdist_group(name)`` form one unit across modules and run one after another on one worker.
The ``timing`` group holds the tests that keep both cores busy or judge latency (the alerting
and watch end-to-end runs): none of them runs beside another. Tests marked ``alone`` (they load
every core on purpose, or their latency verdicts would move with another worker's load: the demo
runs) are left to a second, serial run.

``order`` puts that group first, then the modules that start servers or subprocesses, then the
rest: the longest units start first and the short ones fill the gaps at the end (with
``--no-loadscope-reorder``, which keeps this order instead of sorting units by test count)."""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadGroupScheduling


class ModuleOrGroupScheduling(LoadGroupScheduling):  # type: ignore[misc]  # xdist is untyped
    def _split_scope(self, nodeid: str) -> str:
        group: str = super()._split_scope(nodeid)
        return group if group != nodeid else nodeid.split("::", 1)[0]


def _rank(item: pytest.Item, slow_modules: set[str]) -> int:
    if item.get_closest_marker("xdist_group") is not None:
        return 0
    return 1 if item.nodeid.split("::", 1)[0] in slow_modules else 2


def order(items: list[pytest.Item]) -> None:
    """Sort ``items`` in place (stable: modules and tests keep their order within a rank)."""
    slow_modules = {i.nodeid.split("::", 1)[0] for i in items if i.get_closest_marker("slow")}
    items.sort(key=lambda item: _rank(item, slow_modules))
