"""Process-wide state: the active runtime (or none) and the never-raise error path.

Everything on the instrumentation path reads ``STATE.runtime`` once; ``None`` means cxmetrics is
not configured and every call is a cheap no-op (no buffering of early calls).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger("cxmetrics")


class _State:
    __slots__ = ("errors", "lock", "logged", "runtime")

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.lock = threading.Lock()
        self.errors: dict[str, int] = {}
        self.logged: set[str] = set()

    def reset(self) -> None:
        """Forget internal-error counts and what was logged once: ``configure()`` starts each
        configuration with its own (the counts restart with its collector, as after a restart)."""
        with self.lock:
            self.errors.clear()
            self.logged.clear()


STATE = _State()


def internal_error(component: str, exc: BaseException | None = None, message: str = "") -> None:
    """Count a failure inside cxmetrics and log it the first time it happens for ``component``.

    Never raises: this is the last line of defence between cxmetrics and the host app.
    """
    try:
        with STATE.lock:
            STATE.errors[component] = STATE.errors.get(component, 0) + 1
            first = component not in STATE.logged
            STATE.logged.add(component)
        if first:
            text = (
                message
                or f"cxmetrics: internal error in {component}; further ones are counted only"
            )
            log.error(text, exc_info=exc if exc is not None else False)
    except Exception:  # pragma: no cover - logging itself failed; nothing safe is left to do
        pass


def log_once(key: str, message: str, *args: object) -> None:
    """Warn once per ``key`` for the life of the configuration (see ``_State.reset``)."""
    with STATE.lock:
        if key in STATE.logged:
            return
        STATE.logged.add(key)
    log.warning(message, *args)
