"""The main window: controls on the left, four plot cards in the centre, run buttons on top.

It holds the desired ``ExperimentConfig`` (what the controls show) and forwards each change to the worker
— live fields at once, restart fields after asking. Reports arrive as signals and are appended to the
history; a ~30 Hz timer redraws the plots from it. Nothing here computes on tensors.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QMessageBox,
    QStyle,
)

from imaml_core import EvalResult, ExperimentConfig, ImamlError, StepReport
from imaml_core.config import METHODS
from imaml_core.heap import release_free_memory
from imaml_core.trainer import resolve_device

from . import settings
from .adaptation import AdaptationCard
from .banner import Banner
from .controls import ADVANCED, GROUPS, ControlPanel
from .exports import export_plots, write_metrics_csv
from .history import History
from .layout import body, plot_grid, run_toolbar
from .menus import build_menus
from .plots import CGCard, MemoryCard, MetaLossCard
from .redraw import RedrawScheduler
from .session import Session
from .status import StatusBar
from .theme import apply_theme
from .worker import PreviewResult, ProfileProgress, ProfileRequest, TrainerInfo

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STATUS_MS = 500
MARKER_MERGE_ITERATIONS = 10
TRIM_INTERVAL_S = 0.25  # at most ~4 heap trims a second: a slow, heavy iteration still gets one after it
METHOD_NAMES = {value: text for spec in GROUPS[0][1] if spec.name == "method" for text, value in spec.choices}
LABELS = {spec.name: spec.label for _title, specs in GROUPS for spec in specs} | {s.name: s.label for s in ADVANCED}


def interactive() -> bool:
    """False when nobody can answer a dialog (offscreen, or IMAML_STUDIO_ASSUME_YES set)."""
    if os.environ.get("IMAML_STUDIO_ASSUME_YES"):
        return False
    return QGuiApplication.platformName() not in ("offscreen", "minimal")


class MainWindow(QMainWindow):
    """iMAML Studio's window. ``config`` defaults to the last session's (QSettings), else the defaults."""

    report_received = Signal(object)  # StepReport, after the window has recorded it
    preview_shown = Signal(object)  # PreviewResult
    trainer_ready = Signal(object)  # TrainerInfo

    def __init__(self, config: ExperimentConfig | None = None, *, restore: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("iMAML Studio")
        self.setObjectName("main_window")
        self._config = config or (settings.last_config() if restore else None) or ExperimentConfig()
        self._applied = self._config
        self._marker_base: ExperimentConfig | None = None  # config of the previous report of this θ
        self._last_change: tuple[int, ExperimentConfig] | None = None  # (iteration, config before it)
        self._trimmed_at = 0.0  # time.monotonic() of the last heap trim
        self.iteration = 0
        self.running = False
        self._closing = False
        self._revealed = False
        self.confirm_restarts = interactive()  # tests and scripts: set False to reset without asking
        self.profile_methods: tuple[str, ...] = METHODS
        self.profile_steps: tuple[int, ...] = (1, 2, 4, 8, 16)
        self.profile_iterations = 1
        self.history = History()
        self.theme = settings.theme() if restore else "dark"

        self._build()
        self.actions_by_name = build_menus(self)
        self.controls.set_config(self._config)
        self.set_theme(self.theme)
        self.resize(1280, 800)
        if restore:
            geometry, state = settings.window_geometry()
            if geometry is not None:
                self.restoreGeometry(geometry)
            if state is not None:
                self.restoreState(state)

        self.session = Session(self._config, self)
        s = self.session
        s.reported.connect(self._on_report)
        s.previewed.connect(self._on_preview)
        s.profiled.connect(self._on_profile)
        s.evaluated.connect(self._on_evaluated)
        s.trainer_changed.connect(self._on_trainer_changed)
        s.running_changed.connect(self._on_running_changed)
        s.failed.connect(self._on_failed)

        self._redraw = RedrawScheduler((self.meta_card, self.memory_card, self.cg_card), self.history, self)
        self._redraw.start()
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(STATUS_MS)
        self._status_timer.timeout.connect(self._refresh_status)
        self._status_timer.start()

    # -- layout ------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.controls = ControlPanel(cuda_available=_cuda_available())
        self.controls.setMinimumWidth(330)
        self.controls.edited.connect(self._on_edited)
        bar, buttons, self.readout = run_toolbar(
            self.style(), {"button_start": self.toggle_run, "button_step": self.step, "button_reset": self.reset}
        )
        self.button_start, self.button_step, self.button_reset = buttons.values()
        self._icons = (self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay),
                       self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)

        self.meta_card = MetaLossCard()
        self.adaptation = AdaptationCard()
        self.memory_card = MemoryCard()
        self.cg_card = CGCard()
        self.adaptation.task_edited.connect(lambda task: self.session.set_preview_task(task))
        self.adaptation.resample_requested.connect(lambda seed: self.session.resample_preview(seed))
        self.memory_card.button.clicked.connect(self.run_profile)
        self.cards = (self.meta_card, self.adaptation, self.memory_card, self.cg_card)

        self.banner = Banner()
        grid = plot_grid(self.meta_card, self.adaptation, self.memory_card, self.cg_card)
        self.setCentralWidget(body(self.controls, self.banner, grid))
        self.status = StatusBar()
        self.setStatusBar(self.status)

    # -- the names automated checks use ------------------------------------------------------------
    def applied_config(self) -> ExperimentConfig:
        """The config used by the last finished meta-iteration (or the trainer's, before the first)."""
        return self._applied

    def config(self) -> ExperimentConfig:
        """The config the controls show (what the next meta-iteration will use)."""
        return self._config

    def plots(self) -> dict[str, object]:
        return {w.objectName(): w for card in self.cards for w in card.plots}

    # -- run control -------------------------------------------------------------------------------
    def toggle_run(self) -> None:
        if self.running:
            self.session.pause()
        else:
            self.session.start()
        self._show_running(not self.running)

    def start(self) -> None:
        if not self.running:
            self.toggle_run()

    def pause(self) -> None:
        if self.running:
            self.toggle_run()

    def step(self) -> None:
        self._show_running(False)
        self.session.step()

    def reset(self) -> None:
        """A new θ from the current settings (the run pauses; history is cleared when the worker confirms)."""
        self._show_running(False)
        self.session.reset(self._config, keep_running=False)

    def set_config(self, config: ExperimentConfig) -> bool:
        """Adopt ``config`` as if every control had been edited; False when the user declined a reset."""
        return self._apply(config)

    def restore_defaults(self) -> None:
        self._apply(ExperimentConfig().replace(device=self._config.device))

    def run_profile(self) -> None:
        """Memory vs inner steps for every method at the current settings, measured in the worker."""
        request = ProfileRequest(self._config, tuple(self.profile_methods), tuple(self.profile_steps),
                                 self.profile_iterations)
        self.memory_card.show_profile([], 0, len(request.methods) * len(request.inner_steps))
        for curve in self.memory_card.profile_curves.values():
            curve.setData([], [])
        self.session.profile(request)

    def evaluate(self, tasks: int = 200) -> None:
        self.session.evaluate(tasks, self._config.inner_steps)
        self.status.showMessage(f"evaluating θ on {tasks} fresh tasks…", 3000)

    # -- files -------------------------------------------------------------------------------------
    def export_meta_parameters(self, path: str | os.PathLike[str]) -> bool:
        """Write θ as a checkpoint (the CLI's format); on failure the banner says why. Returns success."""
        error = self.session.export_params(str(path))
        if not error:
            self.status.showMessage(f"saved θ (iteration {self.iteration}) to {path}", 5000)
        return not error

    def import_meta_parameters(self, path: str | os.PathLike[str]) -> bool:
        """Replace θ by a checkpoint's (run pauses); a bad file leaves θ and history untouched."""
        return not self.session.import_params(str(path))

    def export_metrics_csv(self, path: str | os.PathLike[str]) -> bool:
        try:
            write_metrics_csv(path, self.history)
        except OSError as exc:
            self._error(f"Could not write the metrics to {path}: {exc.strerror or exc}. Try another folder.")
            return False
        self.status.showMessage(f"wrote {len(self.history)} rows to {path}", 5000)
        return True

    def export_plots(self, folder: str | os.PathLike[str], fmt: str = "png") -> list[Path]:
        try:
            written = export_plots([w for card in self.cards for w in card.plots], folder, fmt)
        except (OSError, ValueError) as exc:
            self._error(f"Could not export the plots to {folder}: {exc}. Try another folder.")
            return []
        self.status.showMessage(f"exported {len(written)} plots to {folder}", 5000)
        return written

    def save_preset(self, path: str | os.PathLike[str]) -> bool:
        try:
            self._config.save(path)
        except (OSError, ImamlError) as exc:
            self._error(f"Could not save the preset to {path}: {exc}. Try another folder.")
            return False
        self.status.showMessage(f"saved preset {path}", 5000)
        return True

    def load_preset(self, path: str | os.PathLike[str]) -> bool:
        """Apply a TOML preset (missing keys take the defaults; the device stays unless it names one)."""
        try:
            config = ExperimentConfig.load(path)
            named = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (ImamlError, OSError, tomllib.TOMLDecodeError) as exc:
            self._error(f"Could not load the preset: {exc}")
            return False
        if "device" not in named:
            config = config.replace(device=self._config.device)
        applied = self._apply(config)
        if applied:
            self.status.showMessage(f"loaded preset {Path(path).name}", 5000)
        return applied

    # -- theme -------------------------------------------------------------------------------------
    def set_theme(self, name: str) -> None:
        app = QApplication.instance()
        if not isinstance(app, QApplication):
            return
        palette = apply_theme(app, name)
        self.theme = name
        for card in self.cards:
            card.apply_palette(palette)

    # -- config edits ------------------------------------------------------------------------------
    def _on_edited(self, name: str, value: object) -> None:
        try:
            config = self._config.replace(**{name: value})
        except ImamlError as exc:
            self._error(f"Invalid setting: {exc}. The previous value is kept.")
            self.controls.set_config(self._config)
            return
        self._apply(config)

    def _apply(self, config: ExperimentConfig) -> bool:
        changed = config.changed(self._config)
        if not changed:
            return True
        restart = [k for k in changed if not ExperimentConfig.is_live(k)]
        if restart and self.iteration > 0 and self.confirm_restarts and not self._ask_reset(restart):
            self.controls.set_config(self._config)
            return False
        self._config = config
        self.controls.set_config(config)
        if restart:
            self.session.reset(config, keep_running=self.running)
        else:
            self.session.set_config(config)
        return True

    def _ask_reset(self, fields: list[str]) -> bool:
        names = ", ".join(LABELS.get(f, f) for f in fields)
        answer = QMessageBox.question(
            self,
            "Reset θ?",
            f"Changing {names} needs a new θ. The current θ (iteration {self.iteration}) and its plots "
            "will be discarded — export θ first (Ctrl+E) to keep it.\n\nReset θ now?",
        )
        return answer == QMessageBox.StandardButton.Yes

    # -- results from the worker -------------------------------------------------------------------
    def _on_report(self, report: StepReport) -> None:
        base = self._marker_base
        if base is not None and not report.diverged and report.config.changed(base):
            self._mark_change(report, base)
        self._marker_base = report.config
        self._applied = report.config
        self.iteration = report.iteration
        self.history.append(report)
        # A heavy iteration's freed memory must not stay resident. The trim runs here, in the GUI thread,
        # between paints: run from the worker it held the allocator's locks while a paint here needed to
        # allocate, and twice in 20,000 soak iterations the window froze 100-150 ms that way. Throttled,
        # because after every one of hundreds of tiny iterations a second the window fell behind the worker.
        now = time.monotonic()
        if now - self._trimmed_at >= TRIM_INTERVAL_S:
            release_free_memory()
            self._trimmed_at = now
        self.status.note_report(report)
        if report.diverged:
            self._show_running(False)
            self._error(f"{report.message}. The run is paused; θ and the history are intact — change the "
                        "setting and press Start to continue.")
        self.report_received.emit(report)

    def _mark_change(self, report: StepReport, base: ExperimentConfig) -> None:
        """A labelled marker where live settings changed. Changes that follow within a few iterations (a
        slider being dragged) update the same marker, from the first old values to the latest new ones."""
        last = self._last_change
        if last is not None and report.iteration - last[0] <= MARKER_MERGE_ITERATIONS:
            first_base = last[1]
            fields = report.config.changed(first_base)
            if fields:
                self.meta_card.relabel_last_marker(_change_label(first_base, report.config, fields))
            self._last_change = (report.iteration, first_base)
            return
        self.meta_card.add_marker(report.iteration, _change_label(base, report.config, report.config.changed(base)))
        self._last_change = (report.iteration, base)

    def _on_preview(self, result: PreviewResult) -> None:
        self.adaptation.show_result(result)
        self.preview_shown.emit(result)

    def _on_profile(self, progress: ProfileProgress) -> None:
        self.memory_card.show_profile(progress.rows, progress.done, progress.total)

    def _on_evaluated(self, result: EvalResult) -> None:
        self.banner.show_message(
            "info",
            f"θ at iteration {self.iteration} on {result.tasks} fresh {result.shots}-shot tasks: query MSE "
            f"{result.mse:.4g} ± {result.ci95:.2g} after {result.steps} adaptation steps "
            f"(before adaptation {result.mse_per_step[0]:.4g}).",
        )

    def _on_trainer_changed(self, info: TrainerInfo) -> None:
        if info.reason == "import":
            self._config = info.config
        else:  # keep live edits made meanwhile; adopt what the trainer was built with
            restart = {k: getattr(info.config, k) for k in ExperimentConfig.restart_fields()}
            self._config = self._config.replace(**restart)
        self._applied = info.config
        self._marker_base = info.config
        self._last_change = None
        self.iteration = info.iteration
        self.history.clear()
        for card in (self.meta_card, self.memory_card, self.cg_card):
            card.clear()
        self._redraw.invalidate()
        self.controls.set_config(self._config)
        self.status.set_device(info.device)
        self.status.reset_rate()
        self.status.refresh(self.iteration)
        if info.reason == "import":
            self.banner.show_message(
                "info", f"Imported θ ({info.config.method}, iteration {info.iteration}). Press Start to continue "
                "training, or watch the adaptation plot to evaluate it.")
        elif info.reason == "reset":
            self.banner.hide()
        self.trainer_ready.emit(info)

    def _on_running_changed(self, running: bool) -> None:
        self._show_running(running)

    def _on_failed(self, what: str, message: str) -> None:
        hints = {
            "import": f"Import failed: {message}. θ and the history are unchanged.",
            "export": f"Export failed: {message}. Choose another folder or file name.",
            "reset": f"Could not start a run with these settings: {message}. θ was not reset.",
            "step": f"{message}. The run is paused; θ and the history are intact.",
            "config": f"Invalid setting: {message}.",
            "init": f"Start-up: {message}.",
        }
        self._error(hints.get(what, f"{what.capitalize()} failed: {message}"), "error" if what in hints else "warning")
        if what == "reset":
            restart = {k: getattr(self._applied, k) for k in ExperimentConfig.restart_fields()}
            self._config = self._config.replace(**restart)
            self.controls.set_config(self._config)
        if what == "step":
            self._show_running(False)

    # -- drawing -----------------------------------------------------------------------------------
    def _refresh_status(self) -> None:
        self.status.refresh(self.iteration)
        h = self.history
        if not len(h):
            self.readout.setText(f"<b>{METHOD_NAMES.get(self._applied.method, self._applied.method)}</b> · "
                                 f"iteration {self.iteration}")
            return
        loss = h.column("meta_loss")[-1]
        val = h.column("val_loss")
        seen = val[np.isfinite(val)]
        name = METHOD_NAMES.get(self._applied.method, self._applied.method)
        text = f"<b>{name}</b> · iteration <b>{self.iteration}</b> · train {loss:.3g}"
        if len(seen):
            text += f" · validation <b>{seen[-1]:.3g}</b>"
        self.readout.setText(text)

    def _show_running(self, running: bool) -> None:
        self.running = running
        self.button_start.setText("Pause" if running else "Start")
        self.button_start.setIcon(self._icons[1] if running else self._icons[0])
        self.button_start.setProperty("running", running)
        self.button_start.style().unpolish(self.button_start)
        self.button_start.style().polish(self.button_start)
        self.status.set_state("running" if running else "paused")

    def _error(self, message: str, level: str = "error") -> None:
        self.banner.show_message(level, message)

    # -- first paint ------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if not self._revealed:  # first show: plots appear one per event-loop turn (see redraw.py)
            self._revealed = True
            self._redraw.reveal([w for card in self.cards for w in card.plots])

    # -- closing -----------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        """Stop the worker after its current iteration, join it (≤ 2 s), remember geometry and config."""
        if not self._closing:
            self._closing = True
            self._redraw.stop()
            self._status_timer.stop()
            if not self.session.shutdown():
                # One meta-iteration can outlast the 2 s budget (huge settings); the engine cannot be
                # interrupted mid-step, so wait for it rather than destroy a running thread.
                self.session.thread.wait()
            settings.save_session(self._config, self.saveGeometry(), self.saveState(), self.theme)
        event.accept()


def _change_label(old: ExperimentConfig, new: ExperimentConfig, fields: list[str]) -> str:
    parts = []
    for name in fields[:3]:
        a, b = getattr(old, name), getattr(new, name)
        parts.append(f"{LABELS.get(name, name)} {_short(a)}→{_short(b)}")
    return ", ".join(parts) + (" …" if len(fields) > 3 else "")


def _short(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _cuda_available() -> bool:
    try:
        return resolve_device("auto").type == "cuda"
    except ImamlError:  # pragma: no cover
        return False
