"""The worker's interrupt flag, which also tells the window while a command waits for a step to finish.

A meta-iteration can take long (a large meta-batch, the classification conv net). The GUI thread sets the
flag before a pause, new settings or closing; the engine polls it between inner and CG steps and abandons
the iteration (θ untouched), and the command's slot clears it. ``pending(why)`` says a command ("pausing",
"applying the new setting") waits on an iteration in flight, ``pending("")`` that the worker has taken it,
so the status bar can say "finishing the step" exactly in between.

The object is made in the GUI thread and never moved, so every listener runs in the GUI thread, as with
``WorkerSignals``. ``pending`` itself is only emitted there: the worker's "taken" goes through a queued
signal and is dropped if a new command was announced meanwhile, so a late "taken" of one pause cannot
clear the announcement of the next.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from PySide6.QtCore import QObject, Signal


class Interrupt(QObject):
    """A thread-safe flag (``set``, ``is_set``, ``clear`` as ``threading.Event``) with ``pending(str)``."""

    pending = Signal(str)  # what waits on the iteration in flight; "" once the worker has taken it
    _taken = Signal()  # emitted in the worker thread, delivered in this object's (the GUI) thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._taken.connect(self._on_taken)
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._in_step = False
        self._announced = False

    def set(self, why: str = "pausing") -> None:
        """Ask the iteration in progress to stop at its next step (GUI thread); ``why`` is announced when an
        iteration is in flight."""
        with self._lock:
            self._event.set()
            announce = self._in_step and not self._announced
            self._announced = self._announced or announce
        if announce:
            self.pending.emit(why)

    def is_set(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        """The command that set the flag is being handled (worker thread)."""
        with self._lock:
            self._event.clear()
            announced, self._announced = self._announced, False
        if announced:
            self._taken.emit()

    def _on_taken(self) -> None:
        with self._lock:
            superseded = self._announced  # another command waits now: its announcement stands
        if not superseded:
            self.pending.emit("")

    @property
    def in_step(self) -> bool:
        """Whether a meta-iteration is running now."""
        return self._in_step

    @contextmanager
    def step(self) -> Iterator[None]:
        """Marks a meta-iteration in flight (worker thread)."""
        with self._lock:
            self._in_step = True
        try:
            yield
        finally:
            with self._lock:
                self._in_step = False
