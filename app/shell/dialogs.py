"""Questions the window asks the user, and whether anyone is there to answer them."""

from __future__ import annotations

import os

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox, QWidget

from app.model.fields import LABELS


def interactive() -> bool:
    """False when nobody can answer a dialog (offscreen, or IMAML_STUDIO_ASSUME_YES set)."""
    if os.environ.get("IMAML_STUDIO_ASSUME_YES"):
        return False
    return QGuiApplication.platformName() not in ("offscreen", "minimal")


def confirm_reset(parent: QWidget, fields: list[str], iteration: int) -> bool:
    """Ask before a restart setting discards a trained θ."""
    names = ", ".join(LABELS.get(f, f) for f in fields)
    answer = QMessageBox.question(
        parent,
        "Reset θ?",
        f"Changing {names} needs a new θ. The current θ (iteration {iteration}) and its plots "
        "will be discarded — export θ first (Ctrl+E) to keep it.\n\nReset θ now?",
    )
    return answer == QMessageBox.StandardButton.Yes


def confirm_delete(parent: QWidget, run_id: str) -> bool:
    """Ask before a run goes to the runs folder's ``.trash``."""
    answer = QMessageBox.question(
        parent,
        "Delete run?",
        f"Move run {run_id} to the runs folder's .trash? Its files stay there until you empty it.",
    )
    return answer == QMessageBox.StandardButton.Yes
