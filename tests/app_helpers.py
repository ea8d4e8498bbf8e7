"""Fixtures and helpers for the GUI tests (tests/test_app_*.py): a small, fast config and a window
whose settings live in a temp folder and whose worker thread is checked to be gone after every test."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from imaml_core import ExperimentConfig

WORKER_TIMEOUT_MS = 60_000  # generous: the first trainer imports torch's optimiser stack on a busy CI box


def small_config(**changes: object) -> ExperimentConfig:
    """A few milliseconds per meta-iteration: 5 tasks, 3 inner steps, a small validation set."""
    return ExperimentConfig().replace(meta_batch=5, inner_steps=3, val_tasks=20, val_every=5, **changes)


@pytest.fixture
def settings_dir(tmp_path):
    """QSettings (geometry, last config) go to a temp folder, so tests neither read nor leak state."""
    folder = tmp_path / "settings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder


@pytest.fixture
def make_window(qtbot, settings_dir):
    """Build a MainWindow on a small config, wait until its trainer exists; close and join it afterwards."""
    from app.main_window import MainWindow
    from app.session import Session

    windows = []

    def make(config: ExperimentConfig | None = None, restore: bool = False) -> MainWindow:
        """``restore=True`` without a config: the window starts from the last session's settings."""
        window = MainWindow(config or (None if restore else small_config()), restore=restore)
        window.confirm_restarts = False
        qtbot.addWidget(window)
        windows.append(window)
        with qtbot.waitSignal(window.trainer_ready, timeout=WORKER_TIMEOUT_MS):
            window.show()
        qtbot.waitUntil(lambda: window.adaptation.result is not None, timeout=WORKER_TIMEOUT_MS)
        return window

    yield make
    for window in windows:
        window.close()
    assert Session.running_threads() == 0, "a worker thread outlived its window"


def plot_points(plot) -> int:
    """Number of finite points drawn by the curves of a pyqtgraph PlotWidget."""
    total = 0
    for item in plot.getPlotItem().listDataItems():
        x, _y = item.getData()
        total += 0 if x is None else len(x)
    return total
