"""The main window: controls on the left, four plot cards in the centre, run buttons on top.

The run's state (desired and applied configs, history, markers) lives in a Qt-free ``SessionState``; the
window wires it to the widgets and to the worker. Edits become configs for the worker — live fields at
once, restart fields after asking; reports arrive straight from the worker's signals and a ~30 Hz timer
redraws the plots from the history. Nothing here computes on tensors.

Typed members: ``worker_thread`` (the training thread), ``runs_controller`` (runs, overlays, forks,
sweeps), ``files`` (export, import, presets) and ``edits`` (every typed value answered). Its public methods
are the scripting surface in docs/GUI.md; the ones about runs, files and edits delegate.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import QApplication, QMainWindow

from app.model.history import History
from app.model.messages import Failure, Job, ProfileProgress, ProfileRequest, TrainerInfo
from app.model.session import SessionState
from app.model.tasks import classifies, switched_config
from app.model.throttle import Throttle
from app.panels.sweep_view import SweepView
from app.plots.redraw import RedrawScheduler
from app.shell.banner import evaluation_text
from app.shell.dialogs import confirm_delete, confirm_reset, interactive
from app.shell.edits import FieldEdits
from app.shell.file_actions import FileActions
from app.shell.layout import assemble, runs_dock_height, show_running
from app.shell.lifecycle import Lifecycle
from app.shell.menus import build_menus
from app.shell.runs_controller import RunsController
from app.shell.status import readout_text
from app.toolkit import settings
from app.toolkit.theme import apply_theme
from app.worker.thread import WorkerThread
from imaml_core.common.config import METHODS, ExperimentConfig
from imaml_core.common.errors import ConfigError
from imaml_core.common.report import EvalResult, StepReport
from imaml_core.engine.heap import release_free_memory
from imaml_core.experiments.runs import RunError

STATUS_MS = 500
# Freed heap goes back to the OS after heavy iterations, at most ~4 times a second: hundreds of tiny
# iterations a second must not each pay for a trim, and a slow, heavy iteration still gets one after it.
TRIM_INTERVAL_S = 0.25


class MainWindow(QMainWindow):
    """iMAML Studio's window. ``config`` defaults to the last launch's (QSettings), else the defaults."""

    report_received = Signal(object)  # StepReport, after the window has recorded it
    preview_shown = Signal(object)  # PreviewResult
    trainer_ready = Signal(object)  # TrainerInfo

    def __init__(
        self, config: ExperimentConfig | None = None, *, restore: bool = True, runs_folder: str | None = None
    ) -> None:
        """``runs_folder``: where runs are recorded (default: the last one opened, else the app-data one)."""
        super().__init__()
        self.setWindowTitle("iMAML Studio")
        self.setObjectName("main_window")
        self.state = SessionState(config or (settings.last_config() if restore else None) or ExperimentConfig())
        self.running = False
        self._closing = False
        self._revealed = False
        self._trim = Throttle(TRIM_INTERVAL_S)
        self.confirm_restarts = interactive()  # tests and scripts: set False to reset without asking
        self.profile_methods: tuple[str, ...] = METHODS
        self.profile_steps: tuple[int, ...] = (1, 2, 4, 8, 16)
        self.profile_iterations = 1
        self.theme = settings.theme() if restore else "dark"

        assemble(self)
        self.menu_actions = build_menus(self, self)
        self.controls.show_config(self.state.config)
        self.set_theme(self.theme)
        self.resize(1280, 800)
        self.lifecycle = Lifecycle(self.banner, self.status, lambda: self.iteration, lambda: self.running)

        self.state.config_changed.connect(self.controls.show_config)
        self.state.marker_added.connect(self.meta_card.add_marker)
        self.state.marker_relabelled.connect(self.meta_card.relabel_last_marker)
        self.state.cleared.connect(self._clear_plots)

        runs_folder = str(Path(runs_folder or settings.runs_folder()).expanduser())
        self.worker_thread = WorkerThread(self.state.config, runs_folder, self)
        plots = [w for card in self.cards for w in card.plots]
        self.files = FileActions(
            self.worker_thread, self.state, plots, self.status, self.adopt_config, self.banner.show_error
        )
        runs = RunsController(self.state, self.worker_thread, {w.objectName(): w for w in plots}, runs_folder, self)
        runs.message.connect(self.show_message)
        runs.confirm_delete = lambda run_id: not self.confirm_restarts or confirm_delete(self, run_id)
        runs.building.connect(self.lifecycle.building)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, runs.dock)
        self._sized = restore and settings.restore_window(self)  # after the dock: its size is in the state
        self.runs_controller = runs
        self.task_view.connect_worker(self.worker_thread)
        w = self.worker_thread.worker
        w.reported.connect(self._on_report)
        w.previewed.connect(self._on_preview)
        w.profiled.connect(self._on_profile)
        w.evaluated.connect(self._on_evaluated)
        w.trainer_changed.connect(self._on_trainer_changed)
        w.running_changed.connect(self._show_running)
        w.failed.connect(self._on_failed)
        self.edits = FieldEdits(self.state, self.banner, w, self.adopt_config, self)
        w.interrupt.pending.connect(self.status.show_finishing)
        w.run_changed.connect(self.lifecycle.run_changed)
        self.lifecycle.building()
        self.worker_thread.launch()

        self._redraw = RedrawScheduler((self.meta_card, self.memory_card, self.cg_card), self.history, self)
        self._redraw.start()
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(STATUS_MS)
        self._status_timer.timeout.connect(self._refresh_status)
        self._status_timer.start()

    # -- the run, as automated checks see it -------------------------------------------------------
    @property
    def iteration(self) -> int:
        return self.state.iteration

    @property
    def history(self) -> History:
        return self.state.history

    def applied_config(self) -> ExperimentConfig:
        """The config used by the last finished meta-iteration (or the trainer's, before the first)."""
        return self.state.applied

    def config(self) -> ExperimentConfig:
        """The config the controls show (what the next meta-iteration will use)."""
        return self.state.config

    # -- runs (delegated to the runs controller) -----------------------------------------------------
    def current_run_id(self) -> str | None:
        """The id of the run being recorded now (None before the first is recorded)."""
        return self.runs_controller.current_run_id()

    def open_runs_folder(self, path: str | os.PathLike[str]) -> bool:
        """Record new runs into ``path`` and list it in the Runs panel (remembered for the next launch)."""
        return self.runs_controller.open_runs_folder(path)

    def choose_runs_folder(self) -> None:
        """File ▸ Open runs folder…: ask, then ``open_runs_folder``."""
        self.runs_controller.choose_runs_folder()

    def runs(self) -> list[dict[str, object]]:
        """Every run in the runs folder, with the keys of ``imaml runs list --json``."""
        return self.runs_controller.runs()

    def overlay(self, ids: list[str]) -> None:
        """Overlay exactly these runs (the live run is always drawn, on top)."""
        self.runs_controller.overlay(ids)

    def overlaid(self) -> list[str]:
        """The overlaid runs' ids: drawn under the live run, or the live run itself."""
        return self.runs_controller.overlaid()

    def fork(self, changes: Mapping[str, object] | None = None) -> str:
        """Go on in a new run from this iteration with ``changes`` (config fields) and return its id, the
        live run's from then on; the parent keeps its state. Raises an ``ImamlError`` when it cannot."""
        return self.runs_controller.fork(changes)

    def fork_here(self) -> None:
        """Run ▸ Fork here: ``fork()``; a failure is in the banner."""
        with contextlib.suppress(RunError):
            self.runs_controller.fork()

    def continue_run(self, path: str | os.PathLike[str]) -> None:
        """Continue a recorded run exactly in the window (the run pauses first)."""
        self.runs_controller.continue_run(path)

    def open_sweep(self, folder: str | os.PathLike[str]) -> SweepView:
        """The Sweep view on ``folder``; its best trial opens or forks here."""
        return self.runs_controller.open_sweep(folder)

    def start_sweep(self) -> SweepView | None:
        """Ask for a search space, then run ``imaml sweep`` from the current settings in its own process."""
        return self.runs_controller.start_sweep()

    # -- the task family ---------------------------------------------------------------------------
    def set_task(self, name: str, **settings: object) -> str | None:
        """Train on the family ``name`` (the CLI's: sinusoid, omniglot, glyphs, package.module:name) with
        ``settings`` (config fields: ways, shots, query, data…), taking the family's suggested settings for
        the rest: a new θ in a new run, whose id this returns once it exists. Raises ``ImamlError`` with the
        reason (also in the banner) when the family or a setting cannot be used; the session stays as it was."""
        config = switched_config(self.state.config, name, settings)
        self.state.adopt(config)
        self.lifecycle.building()
        error = self.worker_thread.reset_and_wait(config, keep_running=self.running)
        if error:
            raise ConfigError(error)
        return self.current_run_id()

    def accuracy(self) -> float | None:
        """The latest validation accuracy (0-1) of a classification run; None for a regression family."""
        if not classifies(self.state.applied):
            return None
        value = self.history.last_finite("val_accuracy")
        return None if value is None else float(value)

    def move_query_to_support(self, index: int) -> None:
        """Move the preview task's query image ``index`` into its support set; φ re-adapts at once."""
        self.task_view.images.move_query_to_support(index)

    # -- files (delegated to the file actions) -------------------------------------------------------
    def export_meta_parameters(self, path: str | os.PathLike[str]) -> bool:
        """Write θ as a checkpoint (the CLI's format); returns success, the banner says why not."""
        return self.files.export_meta_parameters(path)

    def import_meta_parameters(self, path: str | os.PathLike[str]) -> bool:
        """Replace θ by a checkpoint's (the run pauses); a bad file leaves θ and history untouched."""
        self.lifecycle.building()
        return self.files.import_meta_parameters(path)

    def export_metrics_csv(self, path: str | os.PathLike[str]) -> bool:
        return self.files.export_metrics_csv(path)

    def export_plots(self, folder: str | os.PathLike[str], fmt: str = "png") -> list[Path]:
        return self.files.export_plots(folder, fmt)

    def save_preset(self, path: str | os.PathLike[str]) -> bool:
        return self.files.save_preset(path)

    def load_preset(self, path: str | os.PathLike[str]) -> bool:
        """Apply a TOML preset (missing keys take the defaults; the device stays unless it names one)."""
        return self.files.load_preset(path)

    # -- run control -------------------------------------------------------------------------------
    def toggle_run(self) -> None:
        if self.running:
            self.worker_thread.pause()
        else:
            self.worker_thread.start()
        self._show_running(not self.running)

    def start(self) -> None:
        if not self.running:
            self.toggle_run()

    def pause(self) -> None:
        if self.running:
            self.toggle_run()

    def step(self) -> None:
        self._show_running(False)
        self.worker_thread.step()

    def reset(self) -> None:
        """A new θ from the current settings (the run pauses; history is cleared when the worker confirms)."""
        self._show_running(False)
        self.lifecycle.building()
        self.worker_thread.reset(self.state.config, keep_running=False)

    def adopt_config(self, config: ExperimentConfig) -> bool:
        """Make ``config`` the run's, as if every control had been edited; False when the user declined a reset."""
        proposal = self.state.propose(config)
        if not proposal.changed:
            return True
        if proposal.discards_progress and self.confirm_restarts and not self._ask_reset(list(proposal.restart)):
            self.state.reshow()
            return False
        self.state.adopt(config)
        if proposal.restart:
            self.lifecycle.building()
            self.worker_thread.reset(config, keep_running=self.running)
        else:
            self.worker_thread.send_config(config)
        return True

    def restore_defaults(self) -> None:
        self.adopt_config(ExperimentConfig().replace(device=self.state.config.device))

    def run_profile(self) -> None:
        """Memory vs inner steps for every method at the current settings, measured in the worker."""
        request = ProfileRequest(
            self.state.config, tuple(self.profile_methods), tuple(self.profile_steps), self.profile_iterations
        )
        self.memory_card.start_profile(len(request.methods) * len(request.inner_steps))
        self.worker_thread.profile(request)

    def resample_preview(self) -> None:
        self.task_view.resample()

    def evaluate(self, tasks: int = 200) -> None:
        self.worker_thread.evaluate(tasks, self.state.config.inner_steps)
        self.status.showMessage(f"evaluating θ on {tasks} fresh tasks…", 3000)

    def set_theme(self, name: str) -> None:
        app = QApplication.instance()
        if not isinstance(app, QApplication):
            return
        palette = apply_theme(app, name)
        self.theme = name
        for card in self.cards:
            card.apply_palette(palette)

    # -- edits and results -------------------------------------------------------------------------
    def _on_edited(self, name: str, value: object) -> None:
        """One rule answers every edit (app/shell/edits.py): refused in the banner, or adopted."""
        if (proposal := self.edits.propose(name, value)) is not None:
            self.adopt_config(proposal.config)

    def _ask_reset(self, fields: list[str]) -> bool:
        return confirm_reset(self, fields, self.iteration)

    def _on_report(self, report: StepReport) -> None:
        """Record the report, then acknowledge it — even if a handler raises: a failing plot must not stop
        training."""
        try:
            self.state.take_report(report)
            if self._trim.ready():  # between paints, in this thread: see imaml_core.engine.heap
                release_free_memory()
            self.status.note_report(report)
            if report.diverged:
                self._show_running(False)
            self.lifecycle.report(report)
            self.report_received.emit(report)
        finally:
            self.worker_thread.acknowledge_report()

    def _on_preview(self, result: object) -> None:  # PreviewResult or ClassPreviewResult
        self.task_view.show_result(result)
        self.preview_shown.emit(result)

    def _on_profile(self, progress: ProfileProgress) -> None:
        self.memory_card.show_profile(list(progress.rows), progress.done, progress.total)

    def _on_evaluated(self, result: EvalResult) -> None:
        self.lifecycle.evaluated(evaluation_text(result, self.iteration))

    def _on_trainer_changed(self, info: TrainerInfo) -> None:
        switched = info.config.task != self.state.applied.task
        self.meta_card.set_family(info.loss_name, classifies(info.config))
        self.state.take_trainer(info)
        self.status.set_device(info.device)
        self.status.reset_rate()
        self.status.refresh(self.iteration)
        self.lifecycle.trainer_changed(info, switched)
        self.trainer_ready.emit(info)

    def _clear_plots(self) -> None:
        for card in (self.meta_card, self.memory_card, self.cg_card):
            card.clear()
        self._redraw.invalidate()

    def _on_failed(self, failure: Failure) -> None:
        if self.edits.settle(failure):
            return  # a refused live setting: answered as its field's refusal
        self.lifecycle.failed(failure)
        if failure.job is Job.RESET:
            self.state.keep_applied_restart_fields()
        if failure.job is Job.STEP:
            self._show_running(False)

    def _refresh_status(self) -> None:
        self.status.refresh(self.iteration)
        val, applied = self.history.last_finite("val_loss"), self.state.applied
        self.runs_controller.update_live(self.iteration, val, self.running, applied, self.accuracy())
        self.readout.setText(readout_text(self.state.applied.method, self.iteration, self.history))

    def _show_running(self, running: bool) -> None:
        self.running = running
        show_running(self.button_start, running)
        self.lifecycle.running_changed()

    def show_message(self, level: str, text: str) -> None:
        """A one-line message in the banner: level info, warning or error."""
        self.banner.show_message(level, text)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if not self._revealed:  # first show: plots appear one per event-loop turn (see redraw.py)
            self._revealed = True
            if not self._sized:  # no saved layout: the Runs dock takes its share of this window's height
                self.resizeDocks([self.runs_controller.dock], [runs_dock_height(self)], Qt.Orientation.Vertical)
            self._redraw.reveal([w for card in self.cards for w in card.plots])

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        """Cancel the worker's current iteration, join it, remember geometry and config."""
        if not self._closing:
            self._closing = True
            self._redraw.stop()
            self._status_timer.stop()
            self.runs_controller.stop()
            self.worker_thread.shutdown_and_wait()
            settings.save_session(self.state.config, self.saveGeometry(), self.saveState(), self.theme)
        event.accept()
