"""The window's experiment side: the runs folder it records into, the Runs panel, and the overlaid runs.

The worker records the live trainer (see ``imaml_core.runs.RunKeeper``); this dock shows the folder, draws
the runs the user ticks under the live curves, and turns the panel's requests (continue, rename, delete,
another folder) into worker commands or run-store calls. Disk reads happen in pool threads.
"""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QDockWidget, QWidget

from app.model.messages import RunRef, RunStart
from app.model.run_state import RunState
from app.panels.overlays import Overlays, Target
from app.panels.runs_panel import RunsPanel
from app.toolkit import settings
from app.toolkit.background import result_or_error, when_done
from app.worker.thread import WorkerThread
from imaml_core.common.errors import ConfigError
from imaml_core.experiments.runs import HistoryReader, RunError, RunStore

LIST_EVERY_MS = 3000  # runs written by other processes (the CLI, a sweep) appear within this


class RunsDock(QDockWidget):
    """A dock holding the Runs panel; owns the overlays on ``plots`` (meta-loss, memory, CG)."""

    message = Signal(str, str)  # (banner level, text)

    def __init__(self, state: RunState, worker: WorkerThread, plots: dict[str, pg.PlotWidget], parent: QWidget) -> None:
        super().__init__("Runs", parent)
        self.setObjectName("dock_runs")
        self._state = state
        self._worker = worker
        self.live: RunRef | None = None
        self.confirm_delete = None  # callable(names) -> bool, set by the window; None deletes without asking
        self.panel = RunsPanel()
        self.setWidget(self.panel)
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
            lambda run_id: self.panel.model.set_ticked([r for r in self.panel.model.ticked if r != run_id])
        )
        self.panel.overlay_changed.connect(lambda: self.overlays.show(self.panel.overlaid()))
        self.panel.continue_requested.connect(worker.open_run)
        self.panel.rename_requested.connect(worker.rename_run)
        self.panel.delete_requested.connect(self._delete)
        self.panel.failed.connect(lambda text: self.message.emit("warning", text))
        self._timer = QTimer(self)
        self._timer.setInterval(LIST_EVERY_MS)
        self._timer.timeout.connect(self.panel.refresh)
        self._timer.start()

    @property
    def store(self) -> RunStore | None:
        return self.panel.store

    def open_folder(self, path: str | Path) -> bool:
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

    def rows(self) -> list[dict[str, object]]:
        """The runs folder's listing, read now (the ``runs list --json`` keys)."""
        return [summary.row() for summary in self.store.list()] if self.store is not None else []

    def on_run_changed(self, ref: RunRef) -> None:
        """The live trainer records into ``ref`` now: a fork starts a fresh curve with its parent overlaid;
        a continued run shows its recorded history."""
        self.live = ref
        self.panel.set_live(ref.id)
        if ref.start is RunStart.FORK and ref.parent:
            self._state.begin_segment()
            self.panel.model.set_ticked([*self.panel.model.ticked, ref.parent])
        elif ref.start is RunStart.CONTINUE:
            when_done(
                self.reader.read(ref.path),
                lambda done: self._show_history(ref, result_or_error(done, f"cannot show the history of {ref.path}")),
                self,
            )

    def stop(self) -> None:
        self._timer.stop()
        self.reader.close()

    def _show_history(self, ref: RunRef, data: object) -> None:
        if self.live is not ref or data is None:
            return  # another run went live while this one loaded, or the window is closing
        if isinstance(data, str):
            self.message.emit("warning", data)
            return
        assert isinstance(data, dict)
        self._state.history.load(data, self._state.applied)

    def _delete(self, run_id: str) -> None:
        if self.store is None:
            return
        if self.live is not None and run_id == self.live.id:
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
