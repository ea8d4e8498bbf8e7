"""A rate limit that takes its clock as an argument, so tests drive it with a fake one."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


class Throttle:
    """``ready()`` is True at most once per ``interval`` seconds of ``clock`` (the first call always is)."""

    def __init__(self, interval: float, clock: Clock = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: float | None = None

    def ready(self) -> bool:
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            return False
        self._last = now
        return True
