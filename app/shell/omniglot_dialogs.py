"""File ▸ Choose Omniglot folder… and File ▸ Download Omniglot…: where the window's Omniglot comes from.

The download is the engine's (``imaml data omniglot``: the two official zips, md5-checked, resumable) run in
a background thread, with a progress dialog that can cancel it; a cancelled download resumes next time.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFileDialog, QMainWindow, QProgressDialog

from app.toolkit.background import in_background

PROGRESS_MS = 100


class TaskCommands(Protocol):
    """What these dialogs call on the window."""

    def set_task(self, name: str, **settings: object) -> str | None: ...
    def show_message(self, level: str, text: str) -> None: ...


def choose_omniglot_folder(window: QMainWindow, commands: TaskCommands) -> None:
    """Ask for a folder of Omniglot's zips (or their unpacked folders), then train on it."""
    folder = QFileDialog.getExistingDirectory(window, "Omniglot folder (the zips or their folders)", str(Path.home()))
    if folder:
        try:
            commands.set_task("omniglot", data=folder)
        except Exception as exc:  # the banner already says why; the session is unchanged
            commands.show_message("error", f"Cannot use {folder}: {str(exc).splitlines()[0]}")


class Download:
    """One download in the background: its progress, shared with the GUI thread through plain fields read
    by a timer (the engine calls ``progress`` from the download's thread)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.name, self.done, self.total = "", 0, 0
        self.lock = threading.Lock()

    def progress(self, name: str, done: int, total: int | None) -> None:
        with self.lock:
            self.name, self.done, self.total = name, done, total or 0

    def read(self) -> tuple[str, int, int]:
        with self.lock:
            return self.name, self.done, self.total


def download_omniglot(window: QMainWindow, commands: TaskCommands) -> Download:
    """Download the official zips into the default data folder with a cancellable progress dialog."""
    from imaml_core.tasks.omniglot_download import download_omniglot as fetch

    job = Download()
    dialog = QProgressDialog("Downloading Omniglot…", "Cancel", 0, 1000, window)
    dialog.setObjectName("dialog_download")
    dialog.setWindowTitle("Download Omniglot")
    dialog.setMinimumDuration(0)
    dialog.canceled.connect(job.stop.set)
    timer = QTimer(dialog)
    timer.setInterval(PROGRESS_MS)

    def show() -> None:
        name, done, total = job.read()
        if total:
            dialog.setLabelText(f"{name}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")
            dialog.setValue(int(1000 * done / total))

    def finished(result: object) -> None:
        timer.stop()
        dialog.reset()
        dialog.deleteLater()
        if isinstance(result, Path):
            commands.show_message("info", f"Omniglot is in {result}: pick Omniglot as the task family to train on it.")
        else:
            commands.show_message("warning" if job.stop.is_set() else "error", str(result))

    def work() -> object:
        try:
            return fetch(progress=job.progress, should_stop=job.stop.is_set)
        except Exception as exc:  # one line for the banner; a cancelled download keeps its .part to resume
            return f"Download stopped: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"

    timer.timeout.connect(show)
    timer.start()
    in_background(work, finished, dialog)
    return job
