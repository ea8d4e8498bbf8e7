"""The worker's results, on an object that stays in the GUI thread.

PySide runs a plain callable connected to a signal in the thread of the signal's object. On the worker
(which lives in its own QThread) a lambda — or a test's ``qtbot.waitSignal`` blocker, which stops and frees
its QTimer in its callback — would run in the worker's thread, and a GUI-thread QTimer stopped or freed
there stays registered with the GUI thread's event loop and later fires on freed memory. The results
therefore belong to a :class:`WorkerSignals` made in the GUI thread and never moved: every listener, slot
or lambda, runs in the GUI thread, queued.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class WorkerSignals(QObject):
    """The worker's results. Made in the GUI thread and never moved to the worker's."""

    reported = Signal(object)  # StepReport
    previewed = Signal(object)  # PreviewResult
    profiled = Signal(object)  # ProfileProgress
    evaluated = Signal(object)  # EvalResult
    trainer_changed = Signal(object)  # TrainerInfo
    running_changed = Signal(bool)
    exported = Signal(str)  # path written
    failed = Signal(object)  # Failure
    run_changed = Signal(object)  # RunRef: the run being recorded now


def result(name: str) -> property:
    """``worker.<name>``: the signal of that name on the worker's :class:`WorkerSignals`."""
    return property(lambda worker: getattr(worker.signals, name), doc=f"``signals.{name}`` (GUI thread)")
