"""The Sweep view: a sweep folder's trials as a table, each searched field against the metric, the fields'
importance, and parallel coordinates, with the best trial highlighted and one click to open it or fork from it.

The view polls the folder (``imaml_core.experiments.sweep.read_sweep`` in a pool thread, every ``POLL_MS``): it never
talks to Ray, so a sweep running in another process, on this machine or a cluster, never holds it up. Until
the sweep's driver writes sweep.json the view is waiting, not failing: a sweep started from the window opens
its view before Ray has started.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.model.fields import LABELS
from app.panels.sweep_importance import ImportanceCard
from app.plots.axes import fitted_axes
from app.toolkit.background import in_background
from imaml_core.experiments.sweep import SweepSummary, is_sweep, read_sweep

POLL_MS = 2000
STATUS_COLOURS = {
    "finished": "#4c9be8",
    "pruned": "#8b949e",
    "failed": "#f85149",
    "running": "#3fb950",
    "paused": "#d29922",
}
BEST_COLOUR = "#f0883e"
WAITING = "waiting for the sweep to start: no sweep.json yet"
ERROR_STYLE = 'QLabel[level="error"] { color: #f85149; }'


def axis_value(value: Any, field: str, summary: SweepSummary) -> float:
    """A trial's value of ``field`` on its plot axis: log10 for a log-scale field, the index for a choice."""
    dim = summary.space[field]
    if dim.choices:
        texts = [str(c) for c in dim.choices]
        return float(texts.index(str(value))) if str(value) in texts else math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return math.log10(number) if dim.log and number > 0 else number


class SweepView(QWidget):
    """A top-level window on one sweep folder."""

    open_requested = Signal(str)  # a trial's run folder, to continue in the main window
    fork_requested = Signal(str)  # a trial's run folder, to fork from

    def __init__(self, folder: str, parent: QWidget | None = None, reader: Callable[[str], Any] = read_sweep) -> None:
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window)
        self.setObjectName("sweep_view")
        self.setWindowTitle(f"Sweep — {folder}")
        self.resize(1100, 720)
        self.folder = folder
        self.summary: SweepSummary | None = None
        self._reader = reader
        self._reading = False
        self.status = QLabel("reading…")
        self.status.setObjectName("sweep_status")
        self.status.setWordWrap(True)
        self.status.setStyleSheet(ERROR_STYLE)
        self.best_button = QPushButton("Continue best trial")
        self.best_button.setObjectName("button_open_best")
        self.fork_button = QPushButton("Fork from best")
        self.fork_button.setObjectName("button_fork_best")
        for b in (self.best_button, self.fork_button):
            b.setEnabled(False)
        self.best_button.clicked.connect(lambda: self._request(self.open_requested))
        self.fork_button.clicked.connect(lambda: self._request(self.fork_requested))
        self.table = QTableWidget()
        self.table.setObjectName("sweep_trials")
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.scatter_box = QWidget()
        self.scatter_grid = QGridLayout(self.scatter_box)
        self.scatter_grid.setContentsMargins(0, 0, 0, 0)
        self.scatters: dict[str, pg.PlotWidget] = {}
        self.importance_card = ImportanceCard()
        self.parallel = pg.PlotWidget()
        self.parallel.setObjectName("plot_parallel")
        self.parallel.setMenuEnabled(False)
        self.parallel.getPlotItem().hideAxis("left")
        self.parallel.getPlotItem().hideAxis("bottom")

        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.best_button)
        top.addWidget(self.fork_button)
        fields = QSplitter(Qt.Orientation.Horizontal)
        fields.addWidget(self.scatter_box)
        fields.addWidget(self.importance_card)
        fields.setSizes([460, 220])
        plots = QSplitter(Qt.Orientation.Vertical)
        plots.addWidget(fields)
        plots.addWidget(self.parallel)
        plots.setSizes([420, 300])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(plots)
        split.setSizes([420, 680])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)
        self._timer.start()
        self.poll()

    # -- polling -----------------------------------------------------------------------------------
    def poll(self) -> None:
        """Read the folder again in a pool thread (one read at a time)."""
        if self._reading:
            return
        self._reading = True
        folder, reader = self.folder, self._reader
        in_background(lambda: _read(reader, folder), self._show, self)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        self._timer.stop()
        self.importance_card.stop()  # its child process ends with the view
        super().closeEvent(event)

    def _show(self, result: object) -> None:
        self._reading = False
        if isinstance(result, str):
            self._set_status(result, "" if result == WAITING else "error")
            return
        assert isinstance(result, SweepSummary)
        self.importance_card.follow(result)
        if self.summary is not None and result == self.summary and not self.status.property("level"):
            return  # unchanged, and the status line shows it (not an error from the read before)
        self.summary = result
        best = result.best
        counts = ", ".join(f"{n} {s}" for s, n in result.counts().items() if n)
        text = f"<b>{result.status}</b> · {len(result.trials)} trials ({counts or 'none yet'}) · metric {result.metric}"
        if best is not None:
            text += f" · best {best.metric:.4g} (trial {best.number})"
        if result.message:
            text += f" · {result.message}"
        self._set_status(text, "")
        self.best_button.setEnabled(best is not None and best.run is not None)
        self.fork_button.setEnabled(best is not None and best.run is not None)
        self._fill_table(result)
        self._draw_scatters(result)
        self._draw_parallel(result)

    def _set_status(self, text: str, level: str) -> None:
        """The status line; ``level`` "error" draws it in the error colour."""
        self.status.setText(text)
        if self.status.property("level") != level:
            self.status.setProperty("level", level)
            self.status.style().unpolish(self.status)
            self.status.style().polish(self.status)

    def _request(self, signal: Any) -> None:
        best = self.summary.best if self.summary is not None else None
        if best is not None and best.run is not None:
            signal.emit(best.run)

    # -- drawing -----------------------------------------------------------------------------------
    def _fill_table(self, summary: SweepSummary) -> None:
        fields = list(summary.space.fields)
        headers = ["trial", *[LABELS.get(f, f) for f in fields], summary.metric, "status", "iterations"]
        best = summary.best
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(summary.trials))
        for row, trial in enumerate(summary.trials):
            values = [
                trial.number,
                *[trial.config.get(f) for f in fields],
                trial.metric,
                trial.status,
                trial.iterations,
            ]
            for col, value in enumerate(values):
                item = QTableWidgetItem(_text(value))
                if best is not None and trial.id == best.id:
                    item.setBackground(pg.mkColor(BEST_COLOUR + "55"))
                if trial.reason:
                    item.setToolTip(trial.reason)
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()

    def _draw_scatters(self, summary: SweepSummary) -> None:
        fields = list(summary.space.fields)
        if list(self.scatters) != fields:
            for w in self.scatters.values():
                w.setParent(None)
            self.scatters = {}
            for i, field in enumerate(fields):
                w = pg.PlotWidget(axisItems=fitted_axes("bottom", "left"))  # labels that never crowd, one scale
                w.setObjectName(f"plot_sweep_{field}")
                w.setMenuEnabled(False)
                w.getPlotItem().setLabel("bottom", LABELS.get(field, field))
                w.getPlotItem().setLabel("left", summary.metric)
                w.getPlotItem().setLogMode(x=field in summary.log_fields, y=summary.mode == "min")
                w.setMinimumHeight(150)
                self.scatter_grid.addWidget(w, i // 2, i % 2)
                self.scatters[field] = w
        best = summary.best
        for field, w in self.scatters.items():
            w.clear()
            for status, colour in STATUS_COLOURS.items():
                points = [t for t in summary.trials if t.status == status and _shown(t.metric, summary)]
                if points:
                    x = [_x_value(t.config.get(field), field, summary) for t in points]
                    y = [t.metric for t in points]
                    w.plot(x, y, pen=None, symbol="o", symbolSize=7, symbolBrush=colour, symbolPen=None, name=status)
            if best is not None and _shown(best.metric, summary):
                w.plot(
                    [_x_value(best.config.get(field), field, summary)],
                    [best.metric],
                    pen=None,
                    symbol="star",
                    symbolSize=16,
                    symbolBrush=BEST_COLOUR,
                    symbolPen="w",
                    name="best",
                )

    def _draw_parallel(self, summary: SweepSummary) -> None:
        """One polyline per trial across the searched fields and the metric, each axis scaled to [0, 1]
        (log fields and a minimised metric on a log scale; a maximised one, accuracy, on a linear scale, best
        at the top either way up the colour map); the best trial drawn last and thick."""
        self.parallel.clear()
        axes = [*summary.space.fields, summary.metric]
        trials = [t for t in summary.trials if _shown(t.metric, summary)]
        if not trials:
            return
        columns, spans = [], []
        for field in axes:
            if field == summary.metric:
                values = np.array([t.metric for t in trials], dtype=float)
                log = summary.mode == "min"
                raw = np.log10(values) if log else values
            else:
                values = np.array([_x_value(t.config.get(field), field, summary) for t in trials], dtype=float)
                raw = np.array([axis_value(t.config.get(field), field, summary) for t in trials], dtype=float)
                log = field in summary.log_fields
            lo, hi = np.nanmin(raw), np.nanmax(raw)
            columns.append((raw - lo) / (hi - lo) if hi > lo else np.full_like(raw, 0.5))
            spans.append(f"{np.nanmin(values):.3g}–{np.nanmax(values):.3g}" + (", log" if log else ""))
        table = np.stack(columns, axis=1)
        metric = table[:, -1]
        best = summary.best
        x = np.arange(len(axes), dtype=float)
        cmap = pg.colormap.get("viridis")
        for i, trial in enumerate(trials):
            if best is not None and trial.id == best.id:
                continue
            goodness = float(metric[i]) if summary.mode == "max" else 1.0 - float(metric[i])
            colour = cmap.map(goodness, mode="qcolor")
            style = Qt.PenStyle.DashLine if trial.status != "finished" else Qt.PenStyle.SolidLine
            self.parallel.plot(x, table[i], pen=pg.mkPen(colour, width=1, style=style))
        if best is not None:
            at = [i for i, t in enumerate(trials) if t.id == best.id]
            if at:
                self.parallel.plot(x, table[at[0]], pen=pg.mkPen(BEST_COLOUR, width=3))
        for i, (field, span) in enumerate(zip(axes, spans, strict=True)):
            self.parallel.addLine(x=float(i), pen=pg.mkPen("#8b949e", width=1))
            name = pg.TextItem(f"{LABELS.get(field, field)}\n{span}", anchor=(0.5, 0.0), color="#c5ccd3")
            name.setPos(float(i), -0.03)
            self.parallel.addItem(name)
        self.parallel.setXRange(-0.5, len(axes) - 0.5, padding=0)  # room for the outer axes' names
        self.parallel.setYRange(-0.25, 1.03, padding=0)


def _read(reader: Callable[[str], Any], folder: str) -> SweepSummary | str:
    """The sweep in ``folder``; ``WAITING`` before its record exists, or the reason it cannot be read."""
    if not is_sweep(folder):
        return WAITING
    try:
        return reader(folder)
    except Exception as exc:  # noqa: BLE001 - runs in a pool thread; the status line shows it
        return f"cannot read the sweep: {exc}"


def _x_value(value: Any, field: str, summary: SweepSummary) -> float:
    """The scatter's x: the value itself (the plot's log mode takes the log), or a choice's index."""
    dim = summary.space[field]
    if dim.choices:
        return axis_value(value, field, summary)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _shown(value: float | None, summary: SweepSummary) -> bool:
    """Whether a trial's metric can be drawn: positive on a minimised metric's log axis, finite otherwise."""
    if value is None or not math.isfinite(value):
        return False
    return value > 0 if summary.mode == "min" else True
