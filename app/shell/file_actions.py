"""What the File and Presets menus do: θ export and import (the CLI's checkpoint format), metrics CSV, plot
images, presets. The window's methods of the same names delegate here, so scripts and tests drive exactly
what the menus do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pyqtgraph as pg

from app.model.session import SessionState
from app.shell.exports import export_plots, write_metrics_csv
from app.shell.status import StatusBar
from app.worker.thread import WorkerThread
from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ImamlError

SHOWN_MS = 5000  # how long the status bar shows what was written


class FileActions:
    """File and preset operations; each returns success and explains a failure through ``report_error``."""

    def __init__(
        self,
        worker: WorkerThread,
        state: SessionState,
        plots: Sequence[pg.PlotWidget],
        status: StatusBar,
        adopt_config: Callable[[ExperimentConfig], bool],
        report_error: Callable[[str], None],
    ) -> None:
        """``adopt_config`` makes a loaded preset the run's (asking first where the window asks)."""
        self._worker = worker
        self._state = state
        self._plots = list(plots)
        self._status = status
        self._adopt_config = adopt_config
        self._report_error = report_error

    def export_meta_parameters(self, path: str | os.PathLike[str]) -> bool:
        """Write θ as a checkpoint (the CLI's format). Returns success; the banner says why it failed."""
        error = self._worker.export_params(str(path))
        if not error:
            self._status.showMessage(f"saved θ (iteration {self._state.iteration}) to {path}", SHOWN_MS)
        return not error

    def import_meta_parameters(self, path: str | os.PathLike[str]) -> bool:
        """Replace θ by a checkpoint's (the run pauses); a bad file leaves θ and history untouched."""
        return not self._worker.import_params(str(path))

    def export_metrics_csv(self, path: str | os.PathLike[str]) -> bool:
        history = self._state.history
        return self._write(
            lambda: write_metrics_csv(path, history), f"the metrics to {path}", f"wrote {len(history)} rows to {path}"
        )

    def export_plots(self, folder: str | os.PathLike[str], fmt: str = "png") -> list[Path]:
        written: list[Path] = []
        self._write(
            lambda: written.extend(export_plots(self._plots, folder, fmt)),
            f"the plots to {folder}",
            f"exported the plots to {folder}",
        )
        return written

    def save_preset(self, path: str | os.PathLike[str]) -> bool:
        return self._write(lambda: self._state.config.save(path), f"the preset to {path}", f"saved preset {path}")

    def load_preset(self, path: str | os.PathLike[str]) -> bool:
        """Apply a TOML preset (missing keys take the defaults; the device stays unless it names one)."""
        try:
            config = self._state.preset(path)
        except ImamlError as exc:
            self._report_error(f"Could not load the preset: {exc}")
            return False
        applied = self._adopt_config(config)
        if applied:
            self._status.showMessage(f"loaded preset {Path(path).name}", SHOWN_MS)
        return applied

    def _write(self, write: Callable[[], object], what: str, done: str) -> bool:
        try:
            write()
        except (OSError, ValueError, ImamlError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self._report_error(f"Could not write {what}: {reason}. Try another folder.")
            return False
        self._status.showMessage(done, SHOWN_MS)
        return True
