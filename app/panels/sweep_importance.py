"""The Sweep view's parameter-importance card: one horizontal bar per searched field, its share of what
explains the metric (``imaml_core.experiments.sweep.param_importance``), the evaluator named in the title;
or, when it cannot be computed (too few completed trials), the reason in its place.

The card follows the view's summaries and computes again, in a pool thread (importing Optuna and fitting
takes longer than a frame), only when the completed trials change; one computation at a time, the latest
summary next.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.model.fields import LABELS
from app.plots.axes import single_scale
from app.toolkit.background import in_background
from imaml_core.experiments.sweep import Importance, SweepSummary, param_importance

BAR_COLOUR = "#4c9be8"
BAR_HEIGHT = 0.6  # of the unit step between fields
X_MAX = 1.2  # shares are at most 1; the rest is room for the share written after the bar


def importance_key(summary: SweepSummary) -> tuple:
    """What the importance depends on: the space, the direction and each completed trial's values."""
    done = tuple((t.id, repr(t.config), t.metric) for t in summary.trials if t.status == "finished")
    return (summary.space, summary.mode, done)


class ImportanceCard(QWidget):
    """Bars of each searched field's importance, or why there are none yet."""

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
        self._busy = False
        self._latest: SweepSummary | None = None

    def follow(self, summary: SweepSummary) -> None:
        """Compute the importance of ``summary`` in a pool thread, unless its completed trials are those
        computed already; while one computation runs, the latest summary waits for it."""
        self._latest = summary
        if self._busy or importance_key(summary) == self._key:
            return
        self._busy = True
        self._key = importance_key(summary)
        in_background(lambda: _compute(summary), self._computed, self)

    def _computed(self, result: object) -> None:
        self._busy = False
        assert isinstance(result, Importance)
        self.show_importance(result)
        if self._latest is not None:
            self.follow(self._latest)

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


def _compute(summary: SweepSummary) -> Importance:
    """``param_importance``, an unexpected failure as the card's reason (it runs in a pool thread)."""
    try:
        return param_importance(summary)
    except Exception as exc:  # noqa: BLE001 - shown in the card, never raised in the GUI thread
        return Importance(reason=f"cannot compute the importance: {exc}")
