"""The GUI-thread side of the worker: owns the QThread, sends commands down, re-emits results up.

Every command is a queued signal into the worker's thread, so no method here waits on the engine. The
two file operations the menus need synchronously (export and import of θ) wait in a local event loop:
the window keeps repainting and the worker finishes its current meta-iteration first.
"""

from __future__ import annotations

import gc
import sys
import weakref
from typing import ClassVar

import torch._dynamo  # noqa: F401  (see below)
from PySide6.QtCore import QEventLoop, QObject, QThread, QTimer, Signal, Slot

from imaml_core import ExperimentConfig

from .worker import PreviewTask, ProfileRequest, Worker

# ``torch._dynamo`` is imported lazily by the first ``torch.optim.Adam`` the trainer builds: seconds of
# import work holding the GIL. Importing it with this module, before any window shows, keeps that stall
# out of a running GUI.

# While the worker runs Python (the engine's many small ops), the GUI thread must win the GIL back for every
# Python paint callback of a plot; the default 5 ms switch interval makes a single repaint wait tens of ms.
GIL_SWITCH_INTERVAL_S = 0.001

JOIN_TIMEOUT_MS = 2000
FILE_TIMEOUT_MS = 120_000


class Session(QObject):
    """One background training session: start it, command it, shut it down (joins the thread)."""

    # results, re-emitted in the GUI thread
    reported = Signal(object)
    previewed = Signal(object)
    profiled = Signal(object)
    evaluated = Signal(object)
    trainer_changed = Signal(object)
    running_changed = Signal(bool)
    exported = Signal(str)
    failed = Signal(str, str)

    # commands, queued into the worker thread
    _start = Signal()
    _pause = Signal()
    _step = Signal()
    _reset = Signal(object, bool)
    _set_config = Signal(object)
    _export = Signal(str)
    _import = Signal(str)
    _resample = Signal(int)
    _set_task = Signal(object)
    _profile = Signal(object)
    _evaluate = Signal(int, int)
    _seen = Signal()
    _stop = Signal()

    _all: ClassVar[weakref.WeakSet[Session]] = weakref.WeakSet()

    def __init__(self, config: ExperimentConfig, parent: QObject | None = None) -> None:
        super().__init__(parent)
        Session._all.add(self)
        self._closed = False
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
        # Python's full garbage collections walk every tracked object — with torch and Qt loaded, about a
        # million — and stop every thread for 100–250 ms. What exists now (modules, classes, registries)
        # lives for the whole session, so it is moved out of the collector's sight; later full collections
        # then take a few milliseconds.
        gc.freeze()
        self._waiting: dict[str, tuple[QEventLoop, list[str]]] = {}
        self.thread = QThread()
        self.thread.setObjectName("imaml-worker")
        self.worker = Worker(config)
        self.worker.moveToThread(self.thread)
        w = self.worker
        for cmd, slot in (
            (self._start, w.start),
            (self._pause, w.pause),
            (self._step, w.step_once),
            (self._reset, w.reset),
            (self._set_config, w.set_config),
            (self._export, w.export_params),
            (self._import, w.import_params),
            (self._resample, w.resample_preview),
            (self._set_task, w.set_preview_task),
            (self._profile, w.profile),
            (self._evaluate, w.evaluate),
            (self._seen, w.report_seen),
            (self._stop, w.stop),
        ):
            cmd.connect(slot)
        w.reported.connect(self._on_reported)
        for result in (
            "previewed",
            "profiled",
            "evaluated",
            "trainer_changed",
            "running_changed",
            "exported",
        ):
            getattr(w, result).connect(getattr(self, result))
        w.failed.connect(self._on_failed)
        w.exported.connect(self._on_exported)
        w.trainer_changed.connect(self._on_trainer_changed)
        self.thread.started.connect(w.initialise)
        self.thread.start()

    # -- commands ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._send(self._start)

    def pause(self) -> None:
        self._send(self._pause)

    def step(self) -> None:
        self._send(self._step)

    def reset(self, config: ExperimentConfig, keep_running: bool = False) -> None:
        self._send(self._reset, config, keep_running)

    def set_config(self, config: ExperimentConfig) -> None:
        self._send(self._set_config, config)

    def resample_preview(self, seed: int) -> None:
        self._send(self._resample, seed)

    def set_preview_task(self, task: PreviewTask) -> None:
        self._send(self._set_task, task)

    def profile(self, request: ProfileRequest) -> None:
        self._send(self._profile, request)

    def evaluate(self, tasks: int, steps: int) -> None:
        self._send(self._evaluate, tasks, steps)

    def export_params(self, path: str) -> str:
        """Write θ to ``path``; returns "" on success or the one-line error (the GUI keeps painting)."""
        return self._wait("export", lambda: self._send(self._export, path))

    def import_params(self, path: str) -> str:
        """Replace θ by a checkpoint's; returns "" on success or the one-line error (θ then untouched)."""
        return self._wait("import", lambda: self._send(self._import, path))

    @classmethod
    def running_threads(cls) -> int:
        """How many sessions' worker threads are still running (tests assert none outlives a window)."""
        return sum(1 for s in list(cls._all) if s.thread.isRunning())

    @property
    def closed(self) -> bool:
        return self._closed

    def shutdown(self, timeout_ms: int = JOIN_TIMEOUT_MS) -> bool:
        """Stop the worker after its current iteration and join the thread; True when it has ended."""
        if self._closed:
            return not self.thread.isRunning()
        self._closed = True
        for loop, result in self._waiting.values():
            result.append("the window was closed")
            loop.quit()
        if self.thread.isRunning():
            self.worker.cancel.set()  # abandons a meta-iteration in progress (thread-safe Event)
            self._stop.emit()
        return self.thread.wait(timeout_ms)

    # -- internals ---------------------------------------------------------------------------------
    def _send(self, signal: Signal, *args: object) -> None:
        if not self._closed:
            signal.emit(*args)

    def _wait(self, what: str, send: object) -> str:
        if self._closed:
            return "the session is closed"
        loop = QEventLoop()
        result: list[str] = []
        self._waiting[what] = (loop, result)
        timer = QTimer(singleShot=True)
        timer.timeout.connect(lambda: (result.append(f"{what} timed out"), loop.quit()))
        timer.start(FILE_TIMEOUT_MS)
        send()  # type: ignore[operator]
        if not result:
            loop.exec()
        timer.stop()
        self._waiting.pop(what, None)
        return result[0] if result else f"{what} did not finish"

    def _finish(self, what: str, message: str) -> bool:
        waiting = self._waiting.get(what)
        if waiting is None:
            return False
        loop, result = waiting
        result.append(message)
        loop.quit()
        return True

    @Slot(object)
    def _on_reported(self, report: object) -> None:
        """Re-emit, then acknowledge: the worker starts its next iteration only after every handler here
        has run, so a setting changed after the window has taken in iteration n is used by n + 1 or n + 2.
        Acknowledged even if a handler raised: a failing plot must not stop training."""
        try:
            self.reported.emit(report)
        finally:
            self._send(self._seen)

    @Slot(str, str)
    def _on_failed(self, what: str, message: str) -> None:
        self._finish(what, message)
        self.failed.emit(what, message)

    @Slot(str)
    def _on_exported(self, _path: str) -> None:
        self._finish("export", "")

    @Slot(object)
    def _on_trainer_changed(self, info: object) -> None:
        if getattr(info, "reason", "") == "import":
            self._finish("import", "")
