"""Helpers for the GUI tests (tests/test_app_*.py); their fixtures live in conftest.py."""

from __future__ import annotations

from contextlib import contextmanager

from imaml_core import ExperimentConfig


def small_config(**changes: object) -> ExperimentConfig:
    """A few milliseconds per meta-iteration: 5 tasks, 3 inner steps, a small validation set. Everything
    else is the engine's current default (never copied here)."""
    return ExperimentConfig().replace(**{"meta_batch": 5, "inner_steps": 3, "val_tasks": 20, "val_every": 5, **changes})


def plot_points(plot) -> int:
    """Number of points held by the curves of a pyqtgraph PlotWidget."""
    total = 0
    for item in plot.getPlotItem().listDataItems():
        if getattr(item, "is_range_anchor", False):
            continue
        x, _y = item.getData()
        total += 0 if x is None else len(x)
    return total


def train(qtbot, window, iterations: int, timeout_ms: int = 60_000) -> None:
    """Run until ``iterations`` more meta-iterations have finished, then pause (all reports received)."""
    target = window.iteration + iterations
    window.start()
    qtbot.waitUntil(lambda: window.iteration >= target, timeout=timeout_ms)
    with qtbot.waitSignal(window.worker_thread.worker.running_changed, timeout=timeout_ms):
        window.pause()


def banner_state(window) -> tuple[str, str]:
    """(the banner's shown text, its topic); ("", "") when nothing is shown."""
    text = window.banner.message()
    return text, window.banner.topic if text else ""


def status_state(window) -> str:
    """What the status bar says the app is doing (idle, paused, training, building θ…)."""
    return window.status.state.text()


@contextmanager
def shown_window(qtbot, runs_dir, size: tuple[int, int] | None = None, restore: bool = False):
    """A window of ``size`` (before its first show; None: as built or restored) whose trainer is ready;
    closed on exit. ``restore`` takes the last launch's geometry and layout (the config is small_config's)."""
    from app.shell.main_window import MainWindow

    window = MainWindow(small_config(), restore=restore, runs_folder=str(runs_dir))
    window.confirm_restarts = False
    try:
        if size is not None:
            window.resize(*size)
        with qtbot.waitSignal(window.trainer_ready, timeout=60_000):
            window.show()
        yield window
    finally:
        window.close()
