"""Work off the GUI thread, with its result handed back to the GUI thread.

``in_background`` runs a function in this module's thread pool; ``when_done`` waits for a
``concurrent.futures.Future`` (e.g. a :class:`HistoryReader` read in another process). Either way the result
is delivered in the GUI thread, and dropped when the object it belongs to was deleted meanwhile (a window
closed while its folder was being read).

Both deliver through one relay object that lives in the GUI thread for the whole process. No Qt object is
made per task: a per-task QObject (superqt's ``create_worker`` makes a signals QObject per task) is freed
by whichever thread drops its last reference, at times the pool thread while the GUI thread is delivering
that task's queued signals to it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal, Slot

BACKGROUND_THREADS = 2  # folder listings and sweep reads: short, mostly waiting on the disk
THREAD_PREFIX = "imaml-background"  # its threads live as long as the process (tests allow them by name)

_pool: ThreadPoolExecutor | None = None
_busy = 0  # tasks submitted and not yet finished
_busy_changed = threading.Condition()


def in_background(work: Callable[[], object], done: Callable[[object], None], owner: QObject) -> None:
    """``done(work())`` in the GUI thread, ``work`` in a pool thread; skipped when ``owner`` is gone. An
    exception from ``work`` is raised in the GUI thread (PySide reports it), as an unhandled one would be.
    Call it from the GUI thread."""
    global _pool, _busy
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=BACKGROUND_THREADS, thread_name_prefix=THREAD_PREFIX)
    with _busy_changed:
        _busy += 1
    future = _pool.submit(work)
    future.add_done_callback(_finished)

    def deliver(finished: Future) -> None:
        if not finished.cancelled():
            done(finished.result())

    when_done(future, deliver, owner)


def _finished(_: Future) -> None:
    global _busy
    with _busy_changed:
        _busy -= 1
        _busy_changed.notify_all()


def wait_idle(timeout: float) -> bool:
    """Wait until no ``in_background`` work is running or queued; False on timeout. Its results may still
    be waiting in the GUI thread's event queue (process events to deliver them). For tests and shutdown."""
    with _busy_changed:
        return _busy_changed.wait_for(lambda: _busy == 0, timeout)


class _Relay(QObject):
    """Carries callbacks from the threads that finish futures to the GUI thread (a queued signal). One for
    the process, made in the GUI thread and never deleted, so no thread ever emits on a dying object.
    Queued even from the GUI thread (a future that was done already, or cancelled there): ``done`` never
    runs inside the call that asked for it."""

    call = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.call.connect(self._run, Qt.ConnectionType.QueuedConnection)

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
