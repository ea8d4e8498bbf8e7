"""The worker: owns the ``MetaTrainer`` inside a background QThread.

Commands arrive as queued slot calls; results leave as signals carrying plain data (``StepReport``,
``PreviewResult``, profile rows). Meta-iterations run one per turn of a zero-interval QTimer, so the
thread's event loop handles commands (pause, a new λ, stop) between any two iterations. The worker never
touches a widget; all numerics are calls into ``imaml_core``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal, Slot

from imaml_core import (
    ExperimentConfig,
    ImamlError,
    MetaTrainer,
    StepCancelled,
    load_checkpoint,
    save_checkpoint,
)
from imaml_core.preview import X_RANGE, adapt_preview, sample_preview_task, true_curve
from imaml_core.profiling import profile_rows
from imaml_core.threads import use_threads_for

from .messages import (
    Failure,
    Job,
    PreviewResult,
    PreviewTask,
    ProfileProgress,
    ProfileRequest,
    TrainerChange,
    TrainerInfo,
)

PREVIEW_GRID = 200  # x points on which the preview curves are drawn
PREVIEW_MIN_INTERVAL_S = 0.4  # at most ~2 previews a second while training
PREVIEW_MAX_SHARE = 0.2  # and never more than ~20% of the worker's time
WORKER_NICENESS = 10  # the GUI thread wins the CPU when both want it
# A new meta-iteration starts only once the window has taken in every earlier report (``report_seen``), so
# the worker never runs ahead of what the window shows: a slider moved while the window shows iteration n
# is used by n + 1 or n + 2. The cost is a queued round trip per iteration.


class Worker(QObject):
    """Runs meta-iterations, previews, profiles, import and export for the GUI, one at a time."""

    reported = Signal(object)  # StepReport
    previewed = Signal(object)  # PreviewResult
    profiled = Signal(object)  # ProfileProgress
    evaluated = Signal(object)  # EvalResult
    trainer_changed = Signal(object)  # TrainerInfo
    running_changed = Signal(bool)
    exported = Signal(str)  # path written
    failed = Signal(object)  # Failure

    def __init__(self, config: ExperimentConfig, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock`` paces the previews (tests may pass a fake one)."""
        super().__init__()
        self._clock = clock
        self._initial = config
        self._trainer: MetaTrainer | None = None
        self._running = False
        self._timer = QTimer(self)  # moves to the worker thread with its parent
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._tick)
        self._task: PreviewTask | None = None
        self._next_preview = 0.0
        self._profile_jobs: list[tuple[ProfileRequest, str, int]] = []
        self._profile: ProfileProgress | None = None
        self._unseen = 0  # reports emitted that the window has not acknowledged yet
        # Set from the GUI thread when the window closes: the engine polls it between inner steps and CG
        # iterations, so even a huge meta-iteration ends within milliseconds instead of holding the join.
        self.cancel = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------------
    @Slot()
    def initialise(self) -> None:
        """Build the first trainer inside the worker thread (never in the GUI thread)."""
        _yield_cpu_to_gui()
        try:
            self._trainer = MetaTrainer(self._initial)
        except ImamlError as exc:
            fallback = self._initial.replace(device="cpu")
            self.failed.emit(Failure(Job.INIT, f"{exc}; using the CPU instead"))
            self._trainer = MetaTrainer(fallback)
        self._announce(TrainerChange.INIT)
        self._sample_preview(0)

    @Slot()
    def stop(self) -> None:
        """Stop all work and end the thread's event loop; hand this object back to the GUI thread."""
        self._timer.stop()
        self._running = False
        self._profile_jobs.clear()
        thread = self.thread()
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())
        thread.quit()

    # -- run control -------------------------------------------------------------------------------
    @Slot()
    def start(self) -> None:
        if self._trainer is None or self._running:
            return
        self._running = True
        self._timer.start()
        self.running_changed.emit(True)

    @Slot()
    def pause(self) -> None:
        if not self._running:
            return
        self._running = False
        if not self._profile_jobs:
            self._timer.stop()
        self.running_changed.emit(False)

    @Slot()
    def step_once(self) -> None:
        """One meta-iteration (pauses first when running)."""
        self.pause()
        if self._trainer is not None:
            self._step(force_preview=True)

    @property
    def loop_active(self) -> bool:
        """Whether the loop will run another turn by itself (off while paused or waiting for the window)."""
        return self._timer.isActive()

    @Slot()
    def report_seen(self) -> None:
        """The window has taken in one more report: if training waits for it, go on."""
        self._unseen = max(0, self._unseen - 1)
        if self._running and not self._timer.isActive():
            self._timer.start()

    @Slot(object)
    def apply_config(self, config: ExperimentConfig) -> None:
        """Live settings: applied to the trainer now, so the next meta-iteration uses them."""
        if self._trainer is None:
            return
        try:
            self._trainer.apply_config(config)
        except ImamlError as exc:
            self.failed.emit(Failure(Job.CONFIG, str(exc)))
            return
        self._apply_thread_policy()

    @Slot(object, bool)
    def reset(self, config: ExperimentConfig, keep_running: bool) -> None:
        """A fresh θ (and Adam state, task stream) from ``config``; the old trainer survives a failure."""
        try:
            trainer = MetaTrainer(config)
        except ImamlError as exc:
            self.failed.emit(Failure(Job.RESET, str(exc)))
            return
        if not keep_running:
            self.pause()
        self._trainer = trainer
        self._announce(TrainerChange.RESET)
        self._preview_now()

    # -- files -------------------------------------------------------------------------------------
    @Slot(str)
    def export_params(self, path: str) -> None:
        """Write θ, its config and iteration as a checkpoint (atomic; same format as the CLI)."""
        trainer = self._trainer
        if trainer is None:
            self.failed.emit(Failure(Job.EXPORT, "the trainer is not ready yet"))
            return
        try:
            save_checkpoint(path, trainer.params(), trainer.config, trainer.iteration, trainer.lam())
        except (ImamlError, OSError) as exc:
            self.failed.emit(Failure(Job.EXPORT, f"could not write {path}: {_one_line(exc)}"))
            return
        self.exported.emit(path)

    @Slot(str)
    def import_params(self, path: str) -> None:
        """Continue from a checkpoint's θ; any problem leaves the current θ untouched."""
        try:
            ckpt = load_checkpoint(path)
            device = self._trainer.config.device if self._trainer is not None else ckpt.config.device
            config = ckpt.config.replace(device=device)  # where to run is this machine's choice
            trainer = MetaTrainer(config, theta=ckpt.params, iteration=ckpt.iteration, lam=ckpt.lam)
        except (ImamlError, OSError) as exc:
            self.failed.emit(Failure(Job.IMPORT, _one_line(exc)))
            return
        self.pause()
        self._trainer = trainer
        self._announce(TrainerChange.IMPORT)
        self._preview_now()

    # -- preview, profile, evaluation ----------------------------------------------------------------
    @Slot(int)
    def resample_preview(self, seed: int) -> None:
        self._sample_preview(seed)

    @Slot(object)
    def set_preview_task(self, task: PreviewTask) -> None:
        """Use the user's support points (dragged or added on the plot) and show the adaptation now."""
        self._task = task
        self._preview_now()

    @Slot(object)
    def profile(self, request: ProfileRequest) -> None:
        """Queue one measurement per (method, inner steps); they run between iterations, one per turn."""
        self._profile_jobs = [(request, m, s) for m in request.methods for s in request.inner_steps]
        self._profile = ProfileProgress(total=len(self._profile_jobs))
        self._timer.start()

    @Slot(int, int)
    def evaluate(self, tasks: int, steps: int) -> None:
        if self._trainer is None:
            return
        try:
            self.evaluated.emit(self._trainer.evaluate(tasks=tasks, steps=steps))
        except ImamlError as exc:
            self.failed.emit(Failure(Job.EVAL, str(exc)))

    # -- the loop ----------------------------------------------------------------------------------
    @Slot()
    def _tick(self) -> None:
        if self._profile_jobs:
            self._profile_one()
        elif self._running and not self._unseen:
            self._step(force_preview=False)
        waiting = not self._running or self._unseen > 0
        if waiting and not self._profile_jobs:
            self._timer.stop()  # ``report_seen`` or ``start`` turns it on again

    def _step(self, force_preview: bool) -> None:
        assert self._trainer is not None
        try:
            report = self._trainer.step(should_stop=self.cancel.is_set)
        except StepCancelled:
            return  # the window is closing; θ is untouched
        except Exception as exc:  # an engine bug must not kill the thread: pause and say so
            self.pause()
            self.failed.emit(Failure(Job.STEP, f"the meta-iteration failed: {_one_line(exc)}"))
            return
        self._unseen += 1
        self.reported.emit(report)
        if report.diverged:
            self.pause()
        if force_preview or self._clock() >= self._next_preview:
            self._preview_now()

    def _profile_one(self) -> None:
        request, method, steps = self._profile_jobs.pop(0)
        progress = self._profile
        assert progress is not None
        try:
            rows = profile_rows(request.base, [method], [steps], iterations=request.iterations)
        except Exception as exc:  # e.g. out of memory for a long unroll: report, continue with the rest
            self.failed.emit(Failure(Job.PROFILE, f"{method} with {steps} inner steps: {_one_line(exc)}"))
            rows = []
        progress = replace(progress, rows=(*progress.rows, *rows), done=progress.done + 1)
        self._profile = progress
        self.profiled.emit(progress)

    def _announce(self, reason: TrainerChange) -> None:
        trainer = self._trainer
        assert trainer is not None
        self._apply_thread_policy()
        self.trainer_changed.emit(TrainerInfo(trainer.config, trainer.iteration, str(trainer.device), reason))

    def _apply_thread_policy(self) -> None:
        """The engine's CPU thread policy for this batch size (as the CLI applies it before training)."""
        trainer = self._trainer
        if trainer is not None:
            use_threads_for(trainer.config.meta_batch, trainer.theta.numel(), trainer.device)

    def _sample_preview(self, seed: int) -> None:
        if self._trainer is None:
            return
        amplitude, phase, xs = sample_preview_task(self._trainer.config, seed)
        ys = true_curve(xs, amplitude, phase)
        self._task = PreviewTask(amplitude, phase, xs.copy(), ys, seed)
        self._preview_now()

    def _preview_now(self) -> None:
        trainer, task = self._trainer, self._task
        if trainer is None or task is None or len(task.x_support) == 0:
            return
        start = self._clock()
        x_grid = np.linspace(X_RANGE[0], X_RANGE[1], PREVIEW_GRID)
        y_true = true_curve(x_grid, task.amplitude, task.phase)
        steps = trainer.config.inner_steps
        try:
            pv = adapt_preview(trainer, task.x_support, task.y_support, x_grid, y_true, steps)
        except Exception as exc:
            self.failed.emit(Failure(Job.PREVIEW, f"the adaptation preview failed: {_one_line(exc)}"))
            return
        took = self._clock() - start
        self._next_preview = self._clock() + max(PREVIEW_MIN_INTERVAL_S, took / PREVIEW_MAX_SHARE)
        self.previewed.emit(
            PreviewResult(task, x_grid, y_true, pv.before, pv.after, pv.mse_per_step, steps, trainer.iteration)
        )


def _yield_cpu_to_gui() -> None:
    """Lower this thread's scheduling priority (Linux: per-thread niceness), so that when the CPU is
    contended the GUI thread is scheduled first. Threads the engine starts from here (OpenMP's pool)
    inherit it. Elsewhere this is a no-op."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not permitted: keep the default
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
