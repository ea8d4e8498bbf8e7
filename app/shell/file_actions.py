"""What the File and Presets menus call, as methods of the window: θ export and import (the CLI's checkpoint
format), metrics CSV, plot images, presets. Scripts and tests call the same methods the menus do.

A mixin of ``MainWindow``: it uses the window's ``worker_thread``, ``state``, ``history``, ``cards``,
``status``, ``iteration``, ``adopt_config`` and ``_error``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.shell.exports import export_plots, write_metrics_csv
from imaml_core.common.errors import ImamlError


class FileActions:
    """File and preset operations of the window; each returns success and explains a failure in the banner."""

    worker_thread: Any
    state: Any
    history: Any
    cards: Any
    status: Any
    iteration: int
    adopt_config: Callable[..., bool]
    _error: Callable[..., None]

    def export_meta_parameters(self, path: str | os.PathLike[str]) -> bool:
        """Write θ as a checkpoint (the CLI's format); on failure the banner says why. Returns success."""
        error = self.worker_thread.export_params(str(path))
        if not error:
            self.status.showMessage(f"saved θ (iteration {self.iteration}) to {path}", 5000)
        return not error

    def import_meta_parameters(self, path: str | os.PathLike[str]) -> bool:
        """Replace θ by a checkpoint's (run pauses); a bad file leaves θ and history untouched."""
        return not self.worker_thread.import_params(str(path))

    def export_metrics_csv(self, path: str | os.PathLike[str]) -> bool:
        return self._write(
            lambda: write_metrics_csv(path, self.history),
            f"the metrics to {path}",
            f"wrote {len(self.history)} rows to {path}",
        )

    def export_plots(self, folder: str | os.PathLike[str], fmt: str = "png") -> list[Path]:
        written: list[Path] = []
        plots = [w for card in self.cards for w in card.plots]
        self._write(
            lambda: written.extend(export_plots(plots, folder, fmt)),
            f"the plots to {folder}",
            f"exported the plots to {folder}",
        )
        return written

    def save_preset(self, path: str | os.PathLike[str]) -> bool:
        return self._write(lambda: self.state.config.save(path), f"the preset to {path}", f"saved preset {path}")

    def load_preset(self, path: str | os.PathLike[str]) -> bool:
        """Apply a TOML preset (missing keys take the defaults; the device stays unless it names one)."""
        try:
            config = self.state.preset(path)
        except ImamlError as exc:
            self._error(f"Could not load the preset: {exc}")
            return False
        applied = self.adopt_config(config)
        if applied:
            self.status.showMessage(f"loaded preset {Path(path).name}", 5000)
        return applied

    def _write(self, write: Callable[[], object], what: str, done: str) -> bool:
        try:
            write()
        except (OSError, ValueError, ImamlError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self._error(f"Could not write {what}: {reason}. Try another folder.")
            return False
        self.status.showMessage(done, 5000)
        return True
