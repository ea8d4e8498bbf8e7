"""Work off the GUI thread, with its result handed back to the GUI thread.

``in_background`` runs a function in Qt's thread pool (superqt's ``create_worker``); ``when_done`` waits
for a ``concurrent.futures.Future`` (e.g. a :class:`HistoryReader` read in another process). Either way the
result is delivered in the GUI thread, and dropped when the object it belongs to was deleted meanwhile
(a window closed while its folder was being read).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future

import shiboken6
from PySide6.QtCore import QObject, Signal
from superqt.utils import create_worker


def in_background(work: Callable[[], object], done: Callable[[object], None], owner: QObject) -> None:
    """``done(work())`` in the GUI thread, ``work`` in a pool thread; skipped when ``owner`` is gone."""

    def deliver(result: object) -> None:
        if shiboken6.isValid(owner):
            done(result)

    create_worker(work, _start_thread=True, _connect={"returned": deliver})


class _Relay(QObject):
    """Carries one callback from the thread that finished a future to the GUI thread (a queued signal);
    a child of the owner, so it goes with it."""

    finished = Signal()


def when_done(future: Future, done: Callable[[Future], None], owner: QObject) -> None:
    """``done(future)`` in the GUI thread once ``future`` has finished (or was cancelled); skipped when
    ``owner`` is gone. Call it from the GUI thread."""
    relay = _Relay(owner)

    def deliver() -> None:
        relay.deleteLater()
        if shiboken6.isValid(owner):
            done(future)

    relay.finished.connect(deliver)

    def emit(_: Future) -> None:
        with contextlib.suppress(RuntimeError):  # the owner, and the relay with it, was deleted
            relay.finished.emit()

    future.add_done_callback(emit)


def result_or_error(done: Future, failure: str) -> object:
    """A finished future's result, or ``"<failure>: <the error's first line>"`` for the banner."""
    if done.cancelled():
        return f"{failure}: the read was cancelled"
    exc = done.exception()
    if exc is None:
        return done.result()
    return f"{failure}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
