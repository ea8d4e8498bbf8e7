"""An in-window message strip for errors, warnings and notices: never modal, so a run can't hang on it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QStyle, QToolButton, QWidget

from app.model.messages import Failure, Job, TrainerChange, TrainerInfo
from imaml_core.common.report import EvalResult, StepReport

LEVELS = ("error", "warning", "info")
FAILURE_TEXT = {
    Job.IMPORT: "Import failed: {}. θ and the history are unchanged.",
    Job.EXPORT: "Export failed: {}. Choose another folder or file name.",
    Job.RESET: "Could not start a run with these settings: {}. θ was not reset.",
    Job.STEP: "{}. The run is paused; θ and the history are intact.",
    Job.CONFIG: "Invalid setting: {}.",
    Job.INIT: "Start-up: {}.",
}


def failure_text(failure: Failure) -> tuple[str, str]:
    """(level, message) for a worker failure: what went wrong, and what is (still) true afterwards."""
    text = FAILURE_TEXT.get(failure.job)
    if text is None:
        return "warning", f"{failure.job.value.capitalize()} failed: {failure.message}"
    return "error", text.format(failure.message)


def diverged_text(report: StepReport) -> str:
    return (
        f"{report.message}. The run is paused; θ and the history are intact — change the setting and press "
        "Start to continue."
    )


def evaluation_text(result: EvalResult, iteration: int) -> str:
    return (
        f"θ at iteration {iteration} on {result.tasks} fresh {result.shots}-shot tasks: query MSE "
        f"{result.mse:.4g} ± {result.ci95:.2g} after {result.steps} adaptation steps "
        f"(before adaptation {result.mse_per_step[0]:.4g})."
    )


def loaded_text(info: TrainerInfo) -> str:
    """What an imported θ or an opened run is, and what to do with it."""
    what = "Imported θ" if info.reason is TrainerChange.IMPORT else "Continued the run"
    return (
        f"{what} ({info.config.method}, iteration {info.iteration}). Press Start to continue training, or "
        "watch the adaptation plot to evaluate it."
    )


class Banner(QFrame):
    """Hidden until ``show_message``; the level styles it (see the QSS ``Banner[level=...]`` rules).

    Each message has a ``topic`` (``"field:lam"``, ``"run"``, ...): a later message replaces it, and
    ``clear(topic)`` hides it when what it says stops being true without touching another topic's message."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 6, 6)
        self.icon = QLabel()
        self.icon.setObjectName("banner_icon")
        self.text = QLabel()
        self.text.setObjectName("banner_text")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.PlainText)  # a typed value such as "<b>x" is shown as typed
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setObjectName("banner_close")
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.clicked.connect(lambda: self.clear())
        layout.addWidget(self.icon)
        layout.addWidget(self.text, 1)
        layout.addWidget(close)
        self.level = "info"
        self.topic = ""
        self.hide()

    def show_message(self, level: str, message: str, topic: str = "") -> None:
        self.topic = topic
        self.level = level if level in LEVELS else "info"
        self.setProperty("level", self.level)
        icon = {
            "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
            "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
            "info": QStyle.StandardPixmap.SP_MessageBoxInformation,
        }[self.level]
        self.icon.setPixmap(self.style().standardIcon(icon).pixmap(18, 18))
        self.text.setText(message)
        self.style().unpolish(self)
        self.style().polish(self)
        self.show()

    def show_error(self, message: str) -> None:
        """An error about no particular topic (a failed export, a bad preset file)."""
        self.show_message("error", message)

    def clear(self, topic: str | None = None) -> None:
        """Hide the message if it is about ``topic`` (whatever it is about when None)."""
        if topic is None or topic == self.topic:
            self.topic = ""
            self.hide()

    def message(self) -> str:
        return self.text.text() if self.isVisible() else ""
