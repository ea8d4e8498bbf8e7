"""The window's experiment side: the runs folder it records into, the Runs dock listing it, the runs drawn
under the live one, forks and continued runs, and the sweeps the window starts.

The worker records the live trainer (``imaml_core.experiments.runs.RunKeeper``); this controller shows
the folder, overlays the runs the user ticks, and turns requests (continue, fork, rename, delete, another
folder, a sweep) into worker commands, run-store calls or ``imaml sweep`` processes, which it owns and
stops. Disk reads happen in pool threads or the history reader's process. The window's scripting methods
about runs delegate here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QDockWidget, QFileDialog, QWidget

from app.model.messages import RunRef, RunStart
from app.model.session import SessionState
from app.panels.overlays import Overlays, Target
from app.panels.runs_panel import RunsPanel
from app.panels.sweep_launcher import SweepDialog, SweepProcess, default_sweep_folder
from app.panels.sweep_view import SweepView
from app.toolkit import settings
from app.toolkit.background import result_or_error, when_done
from app.worker.thread import WorkerThread
from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ConfigError
from imaml_core.experiments.runs import HistoryReader, RunError, RunStore

LIST_EVERY_MS = 3000  # runs written by other processes (the CLI, a sweep) appear within this
SWEEP_STOP_MS = 15_000  # a sweep interrupted on close records its trials and stops Ray


class RunsController(QObject):
    """Owns the Runs dock (``dock``, holding ``panel``), the overlays on ``plots`` (meta-loss, memory, CG),
    the history reader's process and the sweep processes; ``stop`` ends them all."""

    message = Signal(str, str)  # (banner level, text)
    building = Signal()  # a recorded run is being opened: the worker builds its trainer

    def __init__(
        self,
        state: SessionState,
        worker: WorkerThread,
        plots: Mapping[str, pg.PlotWidget],
        runs_folder: str,
        window: QWidget,
    ) -> None:
        """Connects to ``worker``'s signals: build it before the worker thread is launched."""
        super().__init__(window)
        self._state = state
        self._worker = worker
        self._window = window
        self.live: RunRef | None = None
        self.confirm_delete: Callable[[str], bool] | None = None  # None deletes without asking
        self._sweeps: list[SweepProcess] = []
        self._fork_parent_path = ""  # the folder of a recorded run being forked (it may be in another folder)
        self.panel = RunsPanel()
        self.panel.folder.setMinimumWidth(1)  # a long folder path is clipped, never widens the window
        self._model = self.panel.model
        self.dock = QDockWidget("Runs", window)
        self.dock.setObjectName("dock_runs")
        self.dock.setWidget(self.panel)
        self.reader = HistoryReader()  # histories are parsed in its process, never holding this one's GIL
        self.overlays = Overlays(
            [
                Target(plots["plot_meta_loss"], "meta_loss", log=True),
                Target(plots["plot_meta_loss"], "val_loss", faint=True, log=True),
                Target(plots["plot_memory"], "memory_bytes"),
                Target(plots["plot_cg"], "cg_residual", log=True),
            ],
            self.reader,
            self,
        )
        self.overlays.failed.connect(lambda text: self.message.emit("warning", text))
        self.overlays.failed_run.connect(
            lambda run_id: self._model.set_ticked([r for r in self.ticked() if r != run_id])
        )
        self.panel.overlay_changed.connect(lambda: self.overlays.show(self.panel.overlaid()))
        self.panel.continue_requested.connect(self.continue_run)
        self.panel.rename_requested.connect(worker.rename_run)
        self.panel.delete_requested.connect(self._delete)
        self.panel.open_folder_requested.connect(self.choose_runs_folder)
        self.panel.failed.connect(lambda text: self.message.emit("warning", text))
        worker.worker.run_changed.connect(self._on_run_changed)
        worker.worker.trainer_changed.connect(lambda info: setattr(self._model, "live_task", info.config.task))
        self._timer = QTimer(self)
        self._timer.setInterval(LIST_EVERY_MS)
        self._timer.timeout.connect(self.panel.refresh)
        self._timer.start()
        self.panel.set_store(RunStore(runs_folder))

    # -- the runs folder ---------------------------------------------------------------------------
    @property
    def store(self) -> RunStore | None:
        return self.panel.store

    def open_runs_folder(self, path: str | os.PathLike[str]) -> bool:
        """Record new runs into ``path`` (created if missing), list it, and remember it for the next launch."""
        folder = Path(path).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not folder.is_dir():
                raise ConfigError(f"{folder} is not a folder")
        except (OSError, ConfigError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self.message.emit("error", f"Cannot use {folder} as the runs folder: {reason}. The current one is kept.")
            return False
        self.panel.set_store(RunStore(folder))
        self._worker.set_runs_folder(str(folder))
        settings.save_runs_folder(str(folder))
        return True

    def choose_runs_folder(self) -> None:
        """File ▸ Open runs folder…: ask for a folder, then open it."""
        start = str(self.store.root) if self.store is not None else ""
        folder = QFileDialog.getExistingDirectory(self._window, "Open runs folder", start)
        if folder:
            self.open_runs_folder(folder)

    def runs(self) -> list[dict[str, object]]:
        """The runs folder's listing, read now (the ``runs list --json`` keys)."""
        return [summary.row() for summary in self.store.list()] if self.store is not None else []

    def listed(self) -> list[str]:
        """The ids of the runs the Runs panel lists now."""
        return [row.id for row in self._model.rows]

    def current_run_id(self) -> str | None:
        """The id of the run the live trainer records into (None until the worker has begun one)."""
        return self.live.id if self.live is not None else None

    # -- overlays ----------------------------------------------------------------------------------
    def overlay(self, ids: list[str]) -> None:
        """Overlay exactly these runs (the live run is always drawn, on top); runs the panel has not listed
        yet are listed first, so a script may overlay runs that ``runs()`` has just returned."""
        wanted = list(ids)
        if not self._model.has_rows(wanted):
            self.panel.list_now()
        self._model.set_ticked(wanted)

    def ticked(self) -> list[str]:
        """The ticked runs, in the order they were ticked."""
        return list(self._model.ticked)

    def overlaid(self) -> list[str]:
        """The overlaid runs' ids: drawn under the live run, or the live run itself."""
        live = self.current_run_id()
        drawn = set(self.overlays.drawn())
        return [r for r in self._model.ticked if r in drawn or r == live]

    def update_live(
        self, iteration: int, val_loss: float | None, running: bool, config: ExperimentConfig, accuracy: float | None
    ) -> None:
        """The live run's row follows the window's numbers between listings."""
        self._model.update_live(iteration, val_loss, running, config, accuracy)

    # -- the live run ------------------------------------------------------------------------------
    def continue_run(self, path: str | os.PathLike[str]) -> None:
        """Continue a recorded run exactly in the window (the run pauses first)."""
        self.building.emit()
        self._worker.open_run(str(path))

    def fork(self, changes: Mapping[str, object] | None = None) -> str:
        """Go on in a child run from this iteration with the live settings ``changes`` (config field names);
        returns its id once it is the live run. Raises ``ConfigError`` for a bad or restart setting (a fork
        keeps θ) and ``RunError`` when the worker could not fork (the banner says why too)."""
        config = None
        if changes:
            config = self._state.config.replace(**dict(changes))
            restart = self._state.propose(config).restart
            if restart:
                raise ConfigError(f"a fork keeps θ, so it cannot change {', '.join(restart)}; reset instead")
        error = self._worker.fork(config)
        if error or self.live is None:
            raise RunError(f"could not fork: {error or 'nothing is recorded'}")
        if config is not None:
            self._state.adopt(config)  # the controls show what the fork runs with
        return self.live.id

    # -- sweeps ------------------------------------------------------------------------------------
    def open_sweep(self, folder: str | os.PathLike[str]) -> SweepView:
        """The Sweep view on ``folder``, polled while the sweep runs; its best trial opens or forks here."""
        view = SweepView(str(folder), self._window)
        view.open_requested.connect(self.continue_run)
        view.fork_requested.connect(self._fork_from)
        view.show()
        return view

    def start_sweep(self) -> SweepView | None:
        """Ask for a search space, then run ``imaml sweep`` from the current settings in its own process."""
        root = self.store.root if self.store is not None else Path.cwd()
        dialog = SweepDialog(default_sweep_folder(root), self._window, self._state.config)
        if not dialog.exec():
            return None
        self._sweeps.append(SweepProcess(self._state.config, dialog.arguments(), self._window))
        return self.open_sweep(dialog.out.text().strip())

    def stop(self) -> None:
        """Stop listing, overlaying and reading (the reader's child and thread end here), close the Sweep
        views (their own windows: they would go on polling) and interrupt the sweeps (``imaml sweep
        --resume`` continues them); a sweep that ignores the interrupt is killed, never left behind."""
        self._timer.stop()
        self.overlays.stop()
        self.reader.close()
        for view in self._window.findChildren(SweepView):
            view.close()
        for sweep in self._sweeps:  # interrupted first: the sweep records what finished
            sweep.interrupt()
            if not sweep.process.waitForFinished(SWEEP_STOP_MS):
                sweep.process.kill()
                sweep.process.waitForFinished(SWEEP_STOP_MS)

    # -- internals ---------------------------------------------------------------------------------
    def _fork_from(self, path: str) -> None:
        """Fork from a recorded run: open it, and fork only once it is the live run."""
        self.building.emit()
        previous, self._fork_parent_path = self._fork_parent_path, path
        if self._worker.open_run_and_wait(path):
            self._fork_parent_path = previous  # refused (another open in progress keeps its own parent)
            return  # the worker's failure is in the banner; the live run is left as it was
        with contextlib.suppress(RunError):  # the banner says why
            self.fork()

    def _on_run_changed(self, ref: RunRef) -> None:
        """The live trainer records into ``ref`` now: a fork starts a fresh curve with its parent overlaid;
        a continued run shows its recorded history."""
        self.live = ref
        self.panel.set_live(ref.id)
        if ref.start is RunStart.FORK and ref.parent:
            self._model.remember_name(ref.parent, ref.parent_name, self._fork_parent_path)
            self._fork_parent_path = ""
            self._state.begin_segment()
            self._model.set_ticked([*self._model.ticked, ref.parent])
        elif ref.start is RunStart.CONTINUE:
            when_done(
                self.reader.read(ref.path),
                lambda done: self._show_history(ref, result_or_error(done, f"cannot show the history of {ref.path}")),
                self,
            )

    def _show_history(self, ref: RunRef, data: object) -> None:
        if self.live is not ref or data is None:
            return  # another run went live while this one loaded, or the window is closing
        if isinstance(data, str):
            self.message.emit("warning", data)
            return
        assert isinstance(data, dict)
        self._state.show_recorded(data)

    def _untick(self, run_id: str) -> None:
        self._model.set_ticked([r for r in self._model.ticked if r != run_id])

    def _delete(self, run_id: str) -> None:
        if self.store is None:
            return
        if run_id == self.current_run_id():
            self.message.emit("warning", "The live run cannot be deleted; reset or continue another run first.")
            return
        if self.confirm_delete is not None and not self.confirm_delete(run_id):
            return
        try:
            self.store.trash(run_id)
        except (RunError, OSError) as exc:
            self.message.emit("error", f"Could not delete the run: {exc}")
            return
        self.panel.refresh()
