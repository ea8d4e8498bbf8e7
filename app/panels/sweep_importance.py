"""The Sweep view's parameter-importance card: one horizontal bar per searched field, its share of what
explains the metric (``imaml_core.experiments.sweep.param_importance``), the evaluator named in the title;
or, when it cannot be computed (too few completed trials), the reason in its place.

The card follows the view's summaries and computes again only when the completed trials change, in a
child process: ``imaml sweep --show DIR --json`` (``python -m imaml_core``; it reads sweep.json only and
starts no Ray), whose ``importance`` the card parses and shows. fANOVA takes seconds, much of them Python
holding the GIL, so it never runs in the window's process, where it would stall the GUI thread. One child
at a time (a ``QProcess``, so the card waits on nothing); trials that change while it runs are computed
once more after it ends. A child that fails, or prints what does not parse, is a one-line reason in the
card. :meth:`ImportanceCard.stop` kills and reaps the child; the view calls it when it closes. The card
never imports Optuna: the window loads without it.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QProcess, Qt, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.model.fields import LABELS
from app.plots.axes import single_scale
from imaml_core.experiments.sweep import Importance, SweepSummary

BAR_COLOUR = "#4c9be8"
BAR_HEIGHT = 0.6  # of the unit step between fields
X_MAX = 1.2  # shares are at most 1; the rest is room for the share written after the bar
STOP_MS = 5_000  # how long stop() waits for a killed child to be reaped


def importance_key(summary: SweepSummary) -> tuple:
    """What the importance depends on: the space, the direction and each completed trial's values."""
    done = tuple((t.id, repr(t.config), t.metric) for t in summary.trials if t.status == "finished")
    return (summary.space, summary.mode, done)


class ImportanceCard(QWidget):
    """Bars of each searched field's importance, or why there are none yet."""

    shown = Signal(object)  # the Importance just drawn (bars or a reason)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sweep_importance")
        self.title = QLabel("<b>Parameter importance</b>")
        self.title.setObjectName("sweep_importance_title")
        self.reason = QLabel("waiting for completed trials")
        self.reason.setObjectName("sweep_importance_reason")
        self.reason.setWordWrap(True)
        self.reason.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.plot = pg.PlotWidget()
        self.plot.setObjectName("plot_sweep_importance")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.getPlotItem().setLabel("bottom", "share")
        single_scale(self.plot.getPlotItem().getAxis("bottom"))
        self.plot.setXRange(0.0, X_MAX, padding=0)
        self.plot.setMinimumWidth(220)
        self.bars = pg.BarGraphItem(x0=[], y=[], width=[], height=BAR_HEIGHT, brush=BAR_COLOUR, pen=None)
        self.plot.addItem(self.bars)
        self._values: list[pg.TextItem] = []
        self.plot.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.reason)
        layout.addWidget(self.plot, 1)
        self.importance: Importance | None = None
        self._key: tuple | None = None  # of the summary computed last (or being computed)
        self._latest: SweepSummary | None = None
        self._busy = False  # a child computes now
        self._stopped = False
        self.process = QProcess(self)  # one child at a time, each started by this object
        self.process.setProgram(sys.executable)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._failed_to_start)

    def follow(self, summary: SweepSummary) -> None:
        """Compute the importance of ``summary``'s folder in a child process, unless its completed trials are
        those computed already; while one child runs, the latest summary waits for it."""
        self._latest = summary
        if self._stopped or self._busy or importance_key(summary) == self._key:
            return
        self._key = importance_key(summary)
        self._busy = True
        self.process.setArguments(["-m", "imaml_core", "sweep", "--show", summary.path, "--json"])
        self.process.start()

    def computing(self) -> bool:
        """Whether a child is computing the importance now."""
        return self._busy

    def child_pid(self) -> int | None:
        """The computing child's process id (None when none runs)."""
        return (self.process.processId() or None) if self._busy else None

    def stop(self) -> None:
        """Kill the computing child and wait for it to end; nothing is computed after this."""
        self._stopped = True
        self._busy = False
        if self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.kill()
            self.process.waitForFinished(STOP_MS)

    def _finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        if self._stopped:
            return  # killed by stop(): its end is nobody's result
        self._busy = False
        out = self.process.readAllStandardOutput().data().decode("utf-8", "replace")
        err = self.process.readAllStandardError().data().decode("utf-8", "replace")
        crashed = exit_status != QProcess.ExitStatus.NormalExit
        self.show_importance(read_output(-1 if crashed else exit_code, out, err))
        if self._latest is not None:
            self.follow(self._latest)

    def _failed_to_start(self, error: QProcess.ProcessError) -> None:
        """A child that never started sends no ``finished``: its reason is shown here."""
        if self._stopped or error != QProcess.ProcessError.FailedToStart:
            return
        self._busy = False
        self.show_importance(Importance(reason=f"cannot compute the importance: {self.process.errorString()}"))

    def show_importance(self, importance: Importance) -> None:
        """Draw the bars (largest on top, each labelled with its field and share), or say why there are none."""
        self.importance = importance
        basis = f", {importance.trials} completed trials" if importance.fields else ""
        self.title.setText(f"<b>Parameter importance</b> ({importance.evaluator}{basis})")
        for item in self._values:
            self.plot.removeItem(item)
        self._values = []
        if importance.reason:
            self.reason.setText(importance.reason)
            self.reason.show()
            self.plot.hide()
            self.bars.setOpts(x0=[], y=[], width=[])
            self.shown.emit(importance)
            return
        names = list(importance.fields)
        shares = np.array([importance.fields[n] for n in names], dtype=float)
        y = np.arange(len(names), dtype=float)[::-1]  # the largest share at the top
        self.bars.setOpts(x0=np.zeros(len(names)), y=y, width=shares, height=BAR_HEIGHT)
        left = self.plot.getPlotItem().getAxis("left")
        left.setTicks([[(float(at), LABELS.get(n, n)) for at, n in zip(y, names, strict=True)], []])
        for at, share in zip(y, shares, strict=True):
            value = pg.TextItem(f"{share:.2f}", anchor=(0.0, 0.5), color="#c5ccd3")
            value.setPos(float(share), float(at))
            self.plot.addItem(value)
            self._values.append(value)
        self.plot.setYRange(-0.5, len(names) - 0.5, padding=0.05)
        self.plot.setXRange(0.0, X_MAX, padding=0)
        self.reason.hide()
        self.plot.show()
        self.shown.emit(importance)


def read_output(exit_code: int, out: str, err: str) -> Importance:
    """The importance ``imaml sweep --show DIR --json`` printed (its last stdout line is the JSON object),
    or, from a run that failed (``exit_code`` not 0; -1 for one that crashed) or printed what does not
    parse, a one-line reason: the command's own ``error:`` line where it wrote one."""
    if exit_code != 0:
        said = [line.strip() for line in err.splitlines() if line.strip()]
        unsaid = "it crashed" if exit_code < 0 else f"exit code {exit_code}"
        why = said[-1].removeprefix("error: ") if said else unsaid
        return Importance(reason=f"cannot compute the importance: {why}")
    lines = [line for line in out.splitlines() if line.strip()]
    try:
        return Importance.from_json(json.loads(lines[-1])["importance"])
    except (IndexError, KeyError, TypeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        return Importance(reason=f"cannot compute the importance: unreadable output ({exc})")
