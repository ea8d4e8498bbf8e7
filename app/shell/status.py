"""Status bar: device, iterations per second, iteration, process memory and, on CUDA, the step's peak.

Rates come from report arrival times in the GUI (wall clock, what the user experiences); memory figures
come from the engine (``process_rss`` and the report's own measurement).
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from app.model.fields import METHOD_NAMES
from app.model.history import History
from imaml_core.common.report import StepReport
from imaml_core.engine.heap import process_rss

RATE_WINDOW_S = 3.0


def readout_text(method: str, iteration: int, history: History) -> str:
    """The toolbar's one-line summary: method, iteration, the latest train and validation loss."""
    text = f"<b>{METHOD_NAMES.get(method, method)}</b> · iteration <b>{iteration}</b>"
    if len(history):
        text += f" · train {history.column('meta_loss')[-1]:.3g}"
        val = history.column("val_loss")
        seen = val[np.isfinite(val)]
        if len(seen):
            text += f" · validation <b>{seen[-1]:.3g}</b>"
    return text


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


class StatusBar(QStatusBar):
    """Fields refreshed by the window's timer; ``note_report`` is cheap enough to call per report."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("status_bar")
        self._state, self._finishing = "building θ…", ""  # the window builds the first trainer at once
        self.state = self._field("status_state", self._state)
        self.device = self._field("status_device", "device: —")
        self.rate = self._field("status_rate", "0.0 it/s")
        self.iteration = self._field("status_iteration", "iteration 0")
        self.rss = self._field("status_rss", "RSS —")
        self.cuda = self._field("status_cuda", "")
        self.cuda.hide()
        self._arrivals: deque[float] = deque()
        self._last: StepReport | None = None
        self.refresh(0)  # also loads psutil now rather than on the first tick of a running window

    def _field(self, name: str, text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName(name)
        self.addPermanentWidget(label)
        return label

    def set_device(self, device: str) -> None:
        self.device.setText(f"device: {device}")
        self.cuda.setVisible(device.startswith("cuda"))

    def set_state(self, text: str) -> None:
        """What the app is doing; a wait for a step to finish (``show_finishing``) is shown over it."""
        self._state = text
        self.state.setText(self._finishing or text)

    def show_finishing(self, why: str) -> None:
        """While a command (``why``: "pausing", "applying the new setting") waits for the meta-iteration in
        flight to reach its next step (the worker's ``interrupt.pending``), say so; "" shows the state again."""
        self._finishing = f"{why}: finishing the step in progress…" if why else ""
        self.state.setText(self._finishing or self._state)

    def note_report(self, report: StepReport) -> None:
        self._arrivals.append(time.monotonic())
        self._last = report

    def reset_rate(self) -> None:
        self._arrivals.clear()

    def refresh(self, iteration: int) -> None:
        now = time.monotonic()
        while self._arrivals and now - self._arrivals[0] > RATE_WINDOW_S:
            self._arrivals.popleft()
        rate = 0.0
        if len(self._arrivals) >= 2:
            rate = (len(self._arrivals) - 1) / max(now - self._arrivals[0], 1e-6)
        self.rate.setText(f"{rate:.1f} it/s")
        self.iteration.setText(f"iteration {iteration}")
        self.rss.setText(f"RSS {human_bytes(process_rss())}")
        if self.cuda.isVisible() and self._last is not None:
            self.cuda.setText(f"CUDA peak/iter {human_bytes(self._last.memory_bytes)}")
