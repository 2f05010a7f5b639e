"""``cxmetrics.step(journey, step)``: marking a step without holding the journey instance, as a
decorator (sync and async functions) or a context manager for one block.

The step joins the current journey instance (``with journey(...)``, a middleware's request, or
``bind``); with none current, each use starts an instance of its own.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from ..spec.names import OTHER
from .journeys import current, journey
from .state import STATE
from .steps import NOOP_STEP, StepInstance

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["step"]


class _StepUse:
    """``cxmetrics.step(journey, step)``: a decorator, or a context manager for one use."""

    __slots__ = ("_active", "journey", "step")

    def __init__(self, journey_name: str, step_name: str) -> None:
        self.journey = journey_name if type(journey_name) is str else OTHER
        self.step = step_name
        self._active: StepInstance = NOOP_STEP

    def _begin(self) -> StepInstance:
        rt = STATE.runtime
        if rt is None:
            return NOOP_STEP
        instance = current.get()
        if instance is None or instance.name != self.journey or instance._rt is not rt:
            instance = journey(self.journey)
        return instance.step(self.step)

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with self._begin():
                    return await fn(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._begin():
                return fn(*args, **kwargs)

        return cast(F, wrapper)

    def __enter__(self) -> StepInstance:
        self._active = self._begin()
        return self._active.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._active.finish(et is not None, ev)

    async def __aenter__(self) -> StepInstance:
        return self.__enter__()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(et, ev, tb)


def step(journey_name: str, step_name: str) -> _StepUse:
    """Mark a step of the current journey instance (a new instance when none is current).

    As a decorator (sync or async functions)::

        @cxmetrics.step("bill_inquiry", "bill_total")
        def fetch_total(): ...

    or for one block: ``with cxmetrics.step("bill_inquiry", "bill_total") as s: ...``.
    """
    return _StepUse(journey_name, step_name)
