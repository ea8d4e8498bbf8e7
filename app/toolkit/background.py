"""Work off the GUI thread, with its result handed back to the GUI thread.

``in_background`` runs a function in Qt's thread pool (superqt's ``create_worker``); ``when_done`` waits
for a ``concurrent.futures.Future`` (e.g. a :class:`HistoryReader` read in another process). Either way the
result is delivered in the GUI thread, and dropped when the object it belongs to was deleted meanwhile
(a window closed while its folder was being read).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import CancelledError, Future

import shiboken6
from PySide6.QtCore import QObject, Signal, Slot
from superqt.utils import create_worker


def in_background(work: Callable[[], object], done: Callable[[object], None], owner: QObject) -> None:
    """``done(work())`` in the GUI thread, ``work`` in a pool thread; skipped when ``owner`` is gone."""

    def deliver(result: object) -> None:
        if shiboken6.isValid(owner):
            done(result)

    create_worker(work, _start_thread=True, _connect={"returned": deliver})


class _Relay(QObject):
    """Carries callbacks from the threads that finish futures to the GUI thread (a queued signal). One for
    the process, made in the GUI thread and never deleted, so no thread ever emits on a dying object."""

    call = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.call.connect(self._run)

    @Slot(object)
    def _run(self, callback: Callable[[], None]) -> None:
        callback()


_relay: _Relay | None = None


def when_done(future: Future, done: Callable[[Future], None], owner: QObject) -> None:
    """``done(future)`` in the GUI thread once ``future`` has finished or was cancelled; skipped when
    ``owner`` is gone. Call it from the GUI thread."""
    global _relay
    if _relay is None:
        _relay = _Relay()
    relay = _relay

    def deliver() -> None:
        if shiboken6.isValid(owner):
            done(future)

    def emit(_: Future) -> None:
        with contextlib.suppress(RuntimeError):  # the application is gone (the process is exiting)
            relay.call.emit(deliver)

    future.add_done_callback(emit)


def result_or_error(done: Future, failure: str) -> object:
    """A finished future's result; ``"<failure>: <the error's first line>"`` for the banner; or None when
    the work was cancelled (the window is closing: nothing to show)."""
    if done.cancelled() or isinstance(done.exception(), CancelledError):
        return None
    exc = done.exception()
    if exc is None:
        return done.result()
    return f"{failure}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
