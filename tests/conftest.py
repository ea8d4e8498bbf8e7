"""Shared test setup. GUI tests run offscreen; OpenMP waits passively (see app/__init__.py for why).

The GUI fixtures import Qt lazily, so the engine's tests never load it."""

import os

import pytest

# Both must be set before Qt or torch is first loaded, i.e. before any test module is imported.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .leftovers import nothing_left_behind  # noqa: F401  (autouse: every test leaves nothing behind)

WORKER_TIMEOUT_MS = 60_000  # generous: the first trainer imports torch's optimiser stack on a busy machine


@pytest.fixture(autouse=True)
def _default_heap_policy(monkeypatch):
    """In-process ``imaml`` runs must not retune the test process's allocator (imaml_core/memory.py) for
    every later test; the policy itself is tested in a subprocess (tests/test_memory.py)."""
    monkeypatch.setattr("imaml_core.cli.keep_freed_memory", lambda: False)


@pytest.fixture(autouse=True, scope="session")
def _private_data_folders(tmp_path_factory):
    """Omniglot's cache and data folders are the session's own, never the user's (a test that wants its own
    sets the variables again)."""
    base = tmp_path_factory.mktemp("imaml-data")
    saved = {k: os.environ.get(k) for k in ("IMAML_CACHE_DIR", "IMAML_DATA_DIR")}
    os.environ["IMAML_CACHE_DIR"], os.environ["IMAML_DATA_DIR"] = str(base / "cache"), str(base / "data")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def settings_dir(tmp_path):
    """QSettings (geometry, last config) go to a temp folder, so GUI tests neither read nor leak state."""
    from PySide6.QtCore import QSettings

    folder = tmp_path / "settings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder


@pytest.fixture
def runs_dir(tmp_path):
    """The runs folder GUI tests record into (never the user's app-data folder)."""
    return tmp_path / "runs"


@pytest.fixture
def make_window(qtbot, settings_dir, runs_dir):
    """Build MainWindows (small config by default) whose trainer and first preview are ready; afterwards
    close them and check that no worker thread outlived its window."""
    from app.shell.main_window import MainWindow
    from app.worker.thread import WorkerThread

    from .app_helpers import small_config

    windows = []

    def make(config=None, restore: bool = False) -> MainWindow:
        """``restore=True`` without a config: the window starts from the last launch's settings."""
        window = MainWindow(config or (None if restore else small_config()), restore=restore, runs_folder=str(runs_dir))
        window.confirm_restarts = False
        qtbot.addWidget(window)
        windows.append(window)
        with qtbot.waitSignal(window.trainer_ready, timeout=WORKER_TIMEOUT_MS):
            window.show()
        qtbot.waitUntil(lambda: window.task_view.currentWidget().result is not None, timeout=WORKER_TIMEOUT_MS)
        return window

    yield make
    for window in windows:
        window.close()
    assert WorkerThread.running_threads() == 0, "a worker thread outlived its window"
