"""The GUI thread's handle on the worker: owns the QThread, queues commands into it, joins it on close.

Results are not relayed: the window connects to ``worker``'s signals itself. They belong to the worker's
``signals`` object, which this GUI-thread object owns, so every listener (a slot, a lambda, a test's signal
blocker) runs in the GUI thread: Qt queues each emission there. The operations scripts need to finish
before they go on (export and import of θ, a fork, opening a run) wait in a local event loop, so the window
keeps repainting while the worker finishes its current meta-iteration.
"""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Callable
from typing import ClassVar

import torch._dynamo  # noqa: F401  (see below)
from PySide6.QtCore import QEventLoop, QObject, QThread, QTimer, Signal, Slot

from app.model.messages import (
    Failure,
    Job,
    PreviewTask,
    ProfileRequest,
    RunRef,
    RunStart,
    TrainerChange,
    TrainerInfo,
)
from app.worker.signals import WorkerSignals
from app.worker.worker import Worker
from imaml_core.common.config import ExperimentConfig

# ``torch._dynamo`` is imported lazily by the first ``torch.optim.Adam`` the trainer builds: seconds of
# import work holding the GIL. Importing it with this module, before any window shows, keeps that stall
# out of a running GUI.

# While the worker runs Python (the engine's many small ops), the GUI thread must win the GIL back for every
# Python paint callback of a plot; the default 5 ms switch interval makes a single repaint wait tens of ms.
GIL_SWITCH_INTERVAL_S = 0.001

JOIN_TIMEOUT_MS = 2000
FILE_TIMEOUT_MS = 120_000


class WorkerThread(QObject):
    """Runs the worker in its own thread (``launch``), sends it commands, and stops and joins it."""

    # commands, queued into the worker thread (the worker's slots run there)
    _start = Signal()
    _pause = Signal()
    _step = Signal()
    _reset = Signal(object, bool)
    _config = Signal(object)
    _export = Signal(str)
    _import = Signal(str)
    _resample = Signal(int)
    _set_task = Signal(object)
    _profile = Signal(object)
    _evaluate = Signal(int, int)
    _seen = Signal()
    _runs_folder = Signal(str)
    _fork = Signal(object)
    _open_run = Signal(str)
    _rename_run = Signal(str, str)
    _stop = Signal()

    _all: ClassVar[weakref.WeakSet[WorkerThread]] = weakref.WeakSet()

    def __init__(self, config: ExperimentConfig, runs_folder: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        WorkerThread._all.add(self)
        self._closed = False
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
        # Python's full garbage collections walk every tracked object — with torch and Qt loaded, about a
        # million — and stop every thread for 100–250 ms. What exists now (modules, classes, registries)
        # lives for the whole run, so it is moved out of the collector's sight; later full collections
        # then take a few milliseconds.
        gc.freeze()
        self._waiting: dict[Job, tuple[QEventLoop, list[str]]] = {}
        self.qthread = QThread()
        self.qthread.setObjectName("imaml-worker")
        # The results' object is this one's child: it stays in the GUI thread and is deleted with the window.
        self.worker = Worker(config, runs_folder, signals=WorkerSignals(self))
        self.worker.moveToThread(self.qthread)
        w = self.worker
        for command, slot in (
            (self._start, w.start),
            (self._pause, w.pause),
            (self._step, w.step_once),
            (self._reset, w.reset),
            (self._config, w.apply_config),
            (self._export, w.export_params),
            (self._import, w.import_params),
            (self._resample, w.resample_preview),
            (self._set_task, w.set_preview_task),
            (self._profile, w.profile),
            (self._evaluate, w.evaluate),
            (self._seen, w.report_seen),
            (self._runs_folder, w.set_runs_folder),
            (self._fork, w.fork),
            (self._open_run, w.open_run),
            (self._rename_run, w.rename_run),
            (self._stop, w.stop),
        ):
            command.connect(slot)
        self.qthread.started.connect(w.initialise)

    def launch(self) -> None:
        """Start the thread. Connect to ``worker``'s signals first: nothing it emits earlier is seen."""
        w = self.worker
        # Completions of the calls that wait, connected last so that they run after every other handler of
        # the same result (a waiting import returns once the window has taken in the new trainer).
        w.failed.connect(self._on_failed)
        w.exported.connect(self._on_exported)
        w.trainer_changed.connect(self._on_trainer_changed)
        w.run_changed.connect(self._on_run_changed)
        self.qthread.start()

    # -- commands ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._send(self._start)

    def pause(self) -> None:
        self.worker.interrupt.set()  # the iteration in progress stops at its next step (see Worker)
        self._send(self._pause)

    def step(self) -> None:
        self._send(self._step)

    def reset(self, config: ExperimentConfig, keep_running: bool = False) -> None:
        self._send(self._reset, config, keep_running)

    def reset_and_wait(self, config: ExperimentConfig, keep_running: bool = False) -> str:
        """``reset``; returns "" once the new trainer records into its new run, or the one-line error."""
        return self._wait(Job.RESET, lambda: self._send(self._reset, config, keep_running))

    def send_config(self, config: ExperimentConfig) -> None:
        """Live settings for the worker to apply before its next meta-iteration (the one in progress stops at
        its next step and runs again with them)."""
        self.worker.interrupt.set("applying the new setting")
        self._send(self._config, config)

    def resample_preview(self, seed: int) -> None:
        self._send(self._resample, seed)

    def set_preview_task(self, task: PreviewTask) -> None:
        self._send(self._set_task, task)

    def profile(self, request: ProfileRequest) -> None:
        self._send(self._profile, request)

    def evaluate(self, tasks: int, steps: int) -> None:
        self._send(self._evaluate, tasks, steps)

    def set_runs_folder(self, path: str) -> None:
        self._send(self._runs_folder, path)

    def fork(self, config: ExperimentConfig | None = None) -> str:
        """Go on in a child run with ``config``'s live settings (None: the same); returns "" once the fork
        is the live run, or the one-line error."""
        return self._wait(Job.FORK, lambda: self._send(self._fork, config))

    def open_run(self, path: str) -> None:
        """Continue the run at ``path``; the worker answers with ``trainer_changed`` or ``failed``."""
        self._send(self._open_run, path)

    def open_run_and_wait(self, path: str) -> str:
        """Continue the run at ``path``; returns "" once its trainer is live, or the one-line error."""
        return self._wait(Job.CONTINUE, lambda: self._send(self._open_run, path))

    def rename_run(self, run_id: str, name: str) -> None:
        self._send(self._rename_run, run_id, name)

    def acknowledge_report(self) -> None:
        """The window has taken in one report; the worker starts its next iteration only after this, so a
        setting changed while the window shows iteration n is used by n + 1 or n + 2."""
        self._send(self._seen)

    def export_params(self, path: str) -> str:
        """Write θ to ``path``; returns "" on success or the one-line error (the GUI keeps painting)."""
        return self._wait(Job.EXPORT, lambda: self._send(self._export, path))

    def import_params(self, path: str) -> str:
        """Replace θ by a checkpoint's; returns "" on success or the one-line error (θ then untouched)."""
        return self._wait(Job.IMPORT, lambda: self._send(self._import, path))

    # -- lifetime ----------------------------------------------------------------------------------
    @classmethod
    def running_threads(cls) -> int:
        """How many worker threads are still running (tests assert none outlives a window)."""
        return sum(1 for t in list(cls._all) if t.qthread.isRunning())

    @property
    def closed(self) -> bool:
        return self._closed

    def shutdown(self, timeout_ms: int = JOIN_TIMEOUT_MS) -> bool:
        """Cancel the current iteration, stop the worker and join the thread; True when it has ended."""
        if self._closed:
            return not self.qthread.isRunning()
        self._closed = True
        for loop, result in self._waiting.values():
            result.append("the window was closed")
            loop.quit()
        if self.qthread.isRunning():
            self.worker.interrupt.set("closing")  # as a pause would: the iteration in progress stops at its next step
            self.worker.cancel.set()  # and is abandoned, whatever the engine checks (thread-safe Events)
            self._stop.emit()
        return self.qthread.wait(timeout_ms)

    def shutdown_and_wait(self) -> None:
        """``shutdown``, then wait for the thread however long it takes: the engine polls the cancel flag
        between inner steps and CG iterations, but a single step of a huge setting can outlast the join
        budget, and a thread destroyed while running takes the process with it."""
        if not self.shutdown():
            self.qthread.wait()

    # -- internals ---------------------------------------------------------------------------------
    def _send(self, signal: Signal, *args: object) -> None:
        if not self._closed:
            signal.emit(*args)

    def _wait(self, job: Job, send: Callable[[], None]) -> str:
        if self._closed:
            return "the window is closing"
        if job in self._waiting:
            return f"another {job.value} is in progress"
        loop = QEventLoop()
        result: list[str] = []
        self._waiting[job] = (loop, result)
        timer = QTimer(singleShot=True)
        timer.timeout.connect(lambda: (result.append(f"{job.value} timed out"), loop.quit()))
        timer.start(FILE_TIMEOUT_MS)
        send()
        if not result:
            loop.exec()
        timer.stop()
        self._waiting.pop(job, None)
        return result[0] if result else f"{job.value} did not finish"

    def _finish(self, job: Job, message: str) -> None:
        waiting = self._waiting.get(job)
        if waiting is not None:
            loop, result = waiting
            result.append(message)
            loop.quit()

    @Slot(object)
    def _on_failed(self, failure: Failure) -> None:
        self._finish(failure.job, failure.message)
        if failure.job is Job.RECORD:  # a new trainer that cannot be recorded still trains
            self._finish(Job.RESET, failure.message)

    @Slot(str)
    def _on_exported(self, _path: str) -> None:
        self._finish(Job.EXPORT, "")

    @Slot(object)
    def _on_trainer_changed(self, info: TrainerInfo) -> None:
        if info.reason is TrainerChange.IMPORT:
            self._finish(Job.IMPORT, "")
        elif info.reason is TrainerChange.CONTINUE:
            self._finish(Job.CONTINUE, "")

    @Slot(object)
    def _on_run_changed(self, ref: RunRef) -> None:
        if ref.start is RunStart.FORK:
            self._finish(Job.FORK, "")
        elif ref.start is RunStart.NEW:
            self._finish(Job.RESET, "")
