"""When plots repaint. Painting, not training, is the GUI thread's main cost, so it is rationed:

- a ~30 Hz timer redraws at most one out-of-date time-series card per tick, and each card at most
  ``CARD_MIN_INTERVAL_S`` apart (a card update costs two paints: new data, then the new axis range);
- on first show the plots are revealed one per event-loop turn instead of all in one ~150 ms paint.
No single pass of the GUI event loop therefore grows long enough to stall the window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QWidget

from app.model.history import History

REDRAW_MS = 33  # ~30 Hz
CARD_MIN_INTERVAL_S = 0.25
REVEAL_MS = 15


class RefreshableCard(Protocol):
    def refresh(self, history: History) -> None: ...


class RedrawScheduler(QObject):
    """Redraws ``cards`` from ``history`` on a timer; ``invalidate()`` after the history is cleared.

    ``clock`` (seconds, monotonic) paces the cards; tests pass a fake one and call ``tick()`` themselves."""

    def __init__(
        self,
        cards: Sequence[RefreshableCard],
        history: History,
        parent: QObject | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._cards = list(cards)
        self._history = history
        self._drawn = [-1] * len(self._cards)  # history version each card shows
        self._drawn_at = [-math.inf] * len(self._cards)
        self._next = 0
        self._unrevealed: list[QWidget] = []
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.tick)
        self._reveal = QTimer(self)
        self._reveal.setInterval(REVEAL_MS)
        self._reveal.timeout.connect(self._reveal_next)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self._reveal.stop()

    @property
    def revealing(self) -> bool:
        """True until every plot held back on first show has been let paint."""
        return bool(self._unrevealed) or self._reveal.isActive()

    def invalidate(self) -> None:
        self._drawn = [-1] * len(self._cards)

    def reveal(self, plots: Sequence[QWidget]) -> None:
        """Hold back painting of ``plots``, then let one paint per event-loop turn."""
        self._unrevealed = list(plots)
        for w in self._unrevealed:
            w.setUpdatesEnabled(False)
        self._reveal.start()

    def _reveal_next(self) -> None:
        if self._unrevealed:
            self._unrevealed.pop(0).setUpdatesEnabled(True)
        else:
            self._reveal.stop()

    def tick(self) -> None:
        """Redraw the next out-of-date card whose last redraw is at least ``CARD_MIN_INTERVAL_S`` old."""
        version, now = self._history.version, self._clock()
        n = len(self._cards)
        for offset in range(n):
            i = (self._next + offset) % n
            if self._drawn[i] != version and now - self._drawn_at[i] >= CARD_MIN_INTERVAL_S:
                self._cards[i].refresh(self._history)
                self._drawn[i], self._drawn_at[i] = version, now
                self._next = i + 1
                return
