"""What the Runs panel, the Run menu and the Sweep view call, as methods of the window: the runs folder,
overlays, forking, continuing a run, and sweeps. Scripts and tests call the same methods.

A mixin of ``MainWindow``: it uses the window's ``worker_thread``, ``runs_dock``, ``state`` and ``_sweeps``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from app.panels.sweep_launcher import SweepDialog, SweepProcess, default_sweep_folder
from app.panels.sweep_view import SweepView


class RunActions:
    """Runs and sweeps of the window."""

    worker_thread: Any
    runs_dock: Any
    state: Any
    _sweeps: list[SweepProcess]

    def fork(self) -> None:
        """Go on in a new run from this iteration (θ, Adam state, task stream); the current run keeps its
        state. Settings changed afterwards apply to the fork only."""
        self.worker_thread.fork()

    def open_runs_folder(self, path: str | os.PathLike[str]) -> bool:
        """Record new runs into ``path`` and list it in the Runs panel (remembered for the next launch)."""
        return self.runs_dock.open_folder(path)

    def runs(self) -> list[dict[str, object]]:
        """Every run in the runs folder, with the keys of ``imaml runs list --json``."""
        return self.runs_dock.rows()

    def overlay(self, ids: list[str]) -> None:
        """Overlay exactly these runs (the live run is always drawn, on top)."""
        self.runs_dock.panel.model.set_ticked(list(ids))

    def overlaid(self) -> list[str]:
        """The overlaid runs' ids: drawn under the live run, or the live run itself."""
        live = self.runs_dock.live.id if self.runs_dock.live else None
        drawn = set(self.runs_dock.overlays.drawn())
        return [r for r in self.runs_dock.panel.model.ticked if r in drawn or r == live]

    def continue_run(self, path: str | os.PathLike[str]) -> None:
        """Continue a recorded run exactly in the window (the run pauses first)."""
        self.worker_thread.open_run(str(path))

    def open_sweep(self, folder: str | os.PathLike[str]) -> SweepView:
        """The Sweep view on ``folder``, polled while the sweep runs; its best trial opens or forks here."""
        view = SweepView(str(folder), self)
        view.open_requested.connect(self.continue_run)
        view.fork_requested.connect(lambda path: (self.continue_run(path), self.fork()))
        view.show()
        return view

    def start_sweep(self) -> SweepView | None:
        """Ask for a search space, then run ``imaml sweep`` from the current settings in its own process."""
        root = self.runs_dock.store.root if self.runs_dock.store is not None else Path.cwd()
        dialog = SweepDialog(default_sweep_folder(root), self)
        if not dialog.exec():
            return None
        self._sweeps.append(SweepProcess(self.state.config, dialog.arguments()))
        return self.open_sweep(dialog.out.text().strip())
