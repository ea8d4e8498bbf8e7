"""The worker: owns the ``MetaTrainer`` inside a background QThread.

Commands arrive as queued slot calls; results leave as signals carrying plain data (``StepReport``,
``PreviewResult``, profile rows). Meta-iterations run one per turn of a zero-interval QTimer, so the
thread's event loop handles commands (pause, a new λ, stop) between any two iterations. The worker never
touches a widget; all numerics are calls into ``imaml_core``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Slot

from app.model.messages import (
    Failure,
    Job,
    PreviewTask,
    ProfileRequest,
    RunStart,
    TrainerChange,
    TrainerInfo,
    one_line,
)
from app.worker.interrupt import Interrupt
from app.worker.previews import fitting_task, make_preview, next_preview_at, preview_task
from app.worker.priority import yield_cpu_to_gui
from app.worker.profiles import ProfileQueue
from app.worker.recording import RunNamer, run_ref
from app.worker.signals import WorkerSignals, result
from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ImamlError, StepCancelled
from imaml_core.engine.checkpoint import load_checkpoint, save_checkpoint
from imaml_core.engine.threads import use_threads_for
from imaml_core.engine.trainer import MetaTrainer
from imaml_core.experiments.runs import Run, RunKeeper
from imaml_core.experiments.training import DivergenceGuard, TrainingSession

# A meta-iteration starts once the window has taken in every earlier report (``report_seen``): a slider
# moved while the window shows iteration n is used by n + 1 or n + 2, for a queued round trip per iteration.


class Worker(QObject):
    """Runs meta-iterations, previews, profiles, import and export for the GUI, one at a time."""

    # the results live on ``signals``, in the GUI thread (see signals.py); ``worker.reported`` etc. for short
    reported, previewed, profiled = result("reported"), result("previewed"), result("profiled")
    evaluated, trainer_changed = result("evaluated"), result("trainer_changed")
    running_changed, exported = result("running_changed"), result("exported")
    failed, run_changed = result("failed"), result("run_changed")

    def __init__(
        self,
        config: ExperimentConfig,
        runs_folder: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        signals: WorkerSignals | None = None,
    ) -> None:
        """Every trainer is recorded as a run in ``runs_folder`` (None: not recorded); ``clock`` paces the
        previews (tests may pass a fake one). ``signals``: the results' object, kept in the GUI thread."""
        super().__init__()
        self.signals = signals if signals is not None else WorkerSignals()
        self._clock = clock
        self._initial = config
        self._runs_folder = runs_folder
        self._runs = RunKeeper()
        self._names = RunNamer(self._runs)
        self._trainer: MetaTrainer | None = None
        self._session: TrainingSession | None = None
        self._running = False
        self._timer = QTimer(self)  # moves to the worker thread with its parent
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._tick)
        self._task: PreviewTask | None = None
        self._next_preview = 0.0
        self._profiles = ProfileQueue()
        self._unseen = 0  # reports emitted that the window has not acknowledged yet
        # Set from the GUI thread when the window closes: the engine polls it between inner steps and CG
        # iterations, so even a huge meta-iteration ends within milliseconds instead of holding the join.
        self.cancel = threading.Event()
        self.interrupt = Interrupt(self.signals)  # before a pause, new settings or closing (see interrupt.py)

    # -- lifecycle ---------------------------------------------------------------------------------
    @Slot()
    def initialise(self) -> None:
        """Build the first trainer inside the worker thread (never in the GUI thread)."""
        yield_cpu_to_gui()
        try:
            self._trainer = MetaTrainer(self._initial)
        except ImamlError as exc:
            fallback = self._initial.replace(device="cpu")
            self.failed.emit(Failure(Job.INIT, f"{exc}; using the CPU instead"))
            self._trainer = MetaTrainer(fallback)
        if self._runs_folder is not None:
            self._recording(lambda: self._runs.set_root(self._runs_folder))
        self._switch(self._trainer, TrainerChange.INIT)
        self._sample_preview(0)

    @Slot()
    def stop(self) -> None:
        """Stop all work, save the run, end the thread's event loop; hand this object back to the GUI thread."""
        if self._trainer is not None:
            self._recording(lambda: self._runs.end(self._trainer))
        self._timer.stop()
        self._running = False
        self._profiles.clear()
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
        self._recording(self._runs.running)
        self.running_changed.emit(True)

    @Slot()
    def pause(self) -> None:
        self.interrupt.clear()
        if not self._running:
            return
        self._running = False
        if not self._profiles:
            self._timer.stop()
        if self._trainer is not None:
            self._recording(lambda: self._runs.pause(self._trainer))
        self.running_changed.emit(False)

    @Slot()
    def step_once(self) -> None:
        """One meta-iteration (pauses first when running); the run is saved after it, as on a pause."""
        self.pause()
        if self._trainer is not None:
            self._step(force_preview=True)
            self._recording(lambda: self._runs.pause(self._trainer))

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
        self.interrupt.clear()
        if self._trainer is None:
            return
        try:
            self._trainer.apply_config(config)
        except ImamlError as exc:
            self.failed.emit(Failure(Job.CONFIG, str(exc), getattr(exc, "fields", ())))
            return
        self._apply_thread_policy()
        if self._trainer is not None:
            self._recording(lambda: self._names.follow_settings(self._trainer))

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
        self._switch(trainer, TrainerChange.RESET)
        self._preview_now()

    # -- files and runs ----------------------------------------------------------------------------
    @Slot(str)
    def export_params(self, path: str) -> None:
        """Write θ, its config and iteration as a checkpoint (atomic; same format as the CLI)."""
        trainer = self._trainer
        if trainer is None:
            self.failed.emit(Failure(Job.EXPORT, "the trainer is not ready yet"))
            return
        try:
            save_checkpoint(path, trainer.params(), trainer.config, trainer.iteration, trainer.current_lam())
        except (ImamlError, OSError) as exc:
            self.failed.emit(Failure(Job.EXPORT, f"could not write {path}: {one_line(exc)}"))
            return
        self.exported.emit(path)

    @Slot(str)
    def import_params(self, path: str) -> None:
        """Continue from a checkpoint's θ; any problem leaves the current θ untouched."""
        try:
            ckpt = load_checkpoint(path)
            device = self._trainer.config.device if self._trainer is not None else ckpt.config.device
            config = ckpt.config.replace(device=device)  # where to run is this machine's choice
            trainer = MetaTrainer(config, theta=ckpt.params, iteration=ckpt.iteration, current_lam=ckpt.current_lam)
        except (ImamlError, OSError) as exc:
            self.failed.emit(Failure(Job.IMPORT, one_line(exc)))
            return
        self.pause()
        self._switch(trainer, TrainerChange.IMPORT, name=f"imported {Path(path).stem}")
        self._preview_now()

    @Slot(str)
    def set_runs_folder(self, path: str) -> None:
        """New runs go to ``path``; with nothing recorded yet, the live trainer starts one there now."""
        if self._recording(lambda: self._runs.set_root(path)) and self._runs.run is None and self._trainer:
            self._begin_run(self._trainer)

    @Slot(object)
    def fork(self, config: ExperimentConfig | None) -> None:
        """Continue the live trainer in a new run that starts at this iteration, with ``config``'s live
        settings (None: the same); the parent is saved first and keeps its own."""
        trainer = self._trainer
        if trainer is None:
            self.failed.emit(Failure(Job.FORK, "the trainer is not ready yet"))
            return
        try:
            run, parent = self._names.fork(trainer, config)
        except (ImamlError, OSError) as exc:
            self.failed.emit(Failure(Job.FORK, one_line(exc)))
            return
        self._apply_thread_policy()
        if run is None:
            self.failed.emit(Failure(Job.FORK, "no runs folder is open"))
            return
        self._announce_run(run, RunStart.FORK, parent.name)

    @Slot(str)
    def open_run(self, path: str) -> None:
        """Continue a recorded run exactly (θ, Adam, task stream, iteration); a problem changes nothing."""
        try:
            run, trainer = self._runs.prepare_continue(path)
        except (ImamlError, OSError) as exc:
            self.failed.emit(Failure(Job.CONTINUE, one_line(exc)))
            return
        self.pause()
        self._switch(trainer, TrainerChange.CONTINUE, continuing=run)
        self._preview_now()

    @Slot(str, str)
    def rename_run(self, run_id: str, name: str) -> None:
        """The user's name for a run; the live run's name then no longer follows its settings."""
        self._names.renamed(run_id)
        try:
            self._runs.rename(run_id, name)
        except (ImamlError, OSError) as exc:
            self.failed.emit(Failure(Job.RENAME, one_line(exc)))

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
        self._profiles.start(request)
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
        if self._profiles:
            self._profile_one()
        elif self._running and not self._unseen:
            self._step(force_preview=False)
        waiting = not self._running or self._unseen > 0
        if waiting and not self._profiles:
            self._timer.stop()  # ``report_seen`` or ``start`` turns it on again

    def _step(self, force_preview: bool) -> None:
        assert self._trainer is not None
        session = self._session
        assert session is not None and session.trainer is self._trainer
        session.recorder = self._runs.recorder
        try:
            with self.interrupt.step():
                report = session.step(should_stop=lambda: self.cancel.is_set() or self.interrupt.is_set())
        except StepCancelled:
            return  # closing, or a command is waiting (it runs next); θ is untouched
        except Exception as exc:  # an engine bug must not kill the thread: pause and say so
            self.pause()
            self.failed.emit(Failure(Job.STEP, f"the meta-iteration failed: {one_line(exc)}"))
            return
        self._unseen += 1
        self.reported.emit(report)
        if error := session.take_record_error():
            self._stop_recording(error)
        if session.stop_reason:
            self.pause()
        if force_preview or self._clock() >= self._next_preview:
            self._preview_now()

    def _profile_one(self) -> None:
        progress, error = self._profiles.run_one()
        if error:
            self.failed.emit(Failure(Job.PROFILE, error))
        self.profiled.emit(progress)

    def _switch(
        self, trainer: MetaTrainer, reason: TrainerChange, name: str = "", continuing: Run | None = None
    ) -> None:
        """Make ``trainer`` the live one: save and close the previous run, then record into a new run (or
        into ``continuing``, a run being continued)."""
        previous, self._trainer = self._trainer, trainer
        self._session = TrainingSession(trainer, guard=DivergenceGuard(limit=1))  # the window pauses at once
        if previous is not None and previous is not trainer:
            self._recording(lambda: self._runs.end(previous))
        self._announce(reason)
        if continuing is not None:
            self._names.continued()
            if self._recording(lambda: self._runs.continue_run(continuing, trainer)):
                self._announce_run(continuing, RunStart.CONTINUE)
        else:
            self._begin_run(trainer, name)

    def _begin_run(self, trainer: MetaTrainer, name: str = "") -> None:
        """A new run for ``trainer``, named ``name`` or by its settings."""
        if self._recording(lambda: self._names.begin(trainer, name)):
            self._announce_run(self._runs.run)

    def _announce_run(self, run: Run | None, start: RunStart = RunStart.NEW, parent_name: str = "") -> None:
        if run is not None:
            self.run_changed.emit(run_ref(run, start, parent_name))

    def _recording(self, write: Callable[[], object]) -> bool:
        """Run one recording step; a failure (disk full, a folder gone) stops recording, never training."""
        try:
            write()
        except (ImamlError, OSError) as exc:
            self._stop_recording(one_line(exc))
            return False
        return True

    def _stop_recording(self, why: str) -> None:
        self._runs.abandon()  # lets go of the run: its TensorBoard writer thread and its lock
        self.failed.emit(Failure(Job.RECORD, f"{why}; this run is no longer recorded"))

    def _announce(self, reason: TrainerChange) -> None:
        trainer = self._trainer
        assert trainer is not None
        loss = trainer.tasks.loss_name
        self._apply_thread_policy()
        self.trainer_changed.emit(TrainerInfo(trainer.config, trainer.iteration, str(trainer.device), reason, loss))

    def _apply_thread_policy(self) -> None:
        """The size rule for CPU threads: the window keeps a core for the GUI thread (threads.py)."""
        if (t := self._trainer) is not None:
            use_threads_for(t.config.meta_batch, t.theta.numel(), t.device)

    def _sample_preview(self, seed: int) -> None:
        if self._trainer is not None:
            self._task = preview_task(self._trainer, seed)
            self._preview_now()

    def _preview_now(self) -> None:
        trainer, task = self._trainer, self._task
        if trainer is None or task is None:
            return
        started = self._clock()
        try:
            self._task = task = fitting_task(trainer, task)
            if len(task.x_support) == 0:
                return  # a family without a preview, or every support point removed
            shown = make_preview(trainer, task)
        except Exception as exc:  # said once: the next try waits, as after a slow preview
            self._next_preview = next_preview_at(started, self._clock()) + 5.0
            self.failed.emit(Failure(Job.PREVIEW, f"the adaptation preview failed: {one_line(exc)}"))
            return
        self._next_preview = next_preview_at(started, self._clock())
        self.previewed.emit(shown)
