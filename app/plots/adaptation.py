"""The adaptation card: a preview sinusoid, its support points, θ's prediction before and after k steps,
and query MSE per adaptation step.

The user edits the support points directly on the plot — click to add, drag to move, shift-click to
remove — and the card sends the edited task to the worker (throttled), which adapts θ to it. The card
keeps its own copy of the points, so a preview computed from older points never snaps them back.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QWidget
from superqt.utils import QSignalThrottler

from app.model.messages import PreviewResult, PreviewTask
from app.plots.base import PLOT_MIN_SIZE, Card, cache_axes, make_opaque, make_plot, pen, positive, single_scale_axes
from app.plots.ranges import RangeAnchor
from app.toolkit.theme import SERIES

EDIT_THROTTLE_MS = 100
MAX_SUPPORT = 100


class SupportPoints(pg.ScatterPlotItem):
    """Draggable scatter of support points; emits ``moved`` while dragging and ``removed`` on shift-click."""

    moved = Signal()
    removed = Signal(int)

    def __init__(self) -> None:
        super().__init__(
            size=11,
            brush=pg.mkBrush(SERIES["support"]),
            pen=pg.mkPen("#ffffff", width=1.2),
            name="support points",
            antialias=True,
        )
        self.xs = np.zeros(0)
        self.ys = np.zeros(0)
        self._dragging: int | None = None

    @property
    def dragging(self) -> bool:
        return self._dragging is not None

    def set_points(self, xs: np.ndarray, ys: np.ndarray) -> None:
        self.xs, self.ys = np.array(xs, dtype=float), np.array(ys, dtype=float)
        self.setData(self.xs, self.ys)

    def _hit(self, pos: QPointF) -> int | None:
        hits = self.pointsAt(pos)
        return int(hits[0].index()) if len(hits) else None

    def mouseDragEvent(self, ev: object) -> None:  # noqa: N802 (pyqtgraph API)
        if ev.button() != Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            ev.ignore()  # type: ignore[attr-defined]
            return
        if ev.isStart():  # type: ignore[attr-defined]
            self._dragging = self._hit(ev.buttonDownPos())  # type: ignore[attr-defined]
        if self._dragging is None:
            ev.ignore()  # type: ignore[attr-defined]
            return
        ev.accept()  # type: ignore[attr-defined]
        pos = ev.pos()  # type: ignore[attr-defined]
        self.xs[self._dragging], self.ys[self._dragging] = pos.x(), pos.y()
        self.setData(self.xs, self.ys)
        if ev.isFinish():  # type: ignore[attr-defined]
            self._dragging = None
        self.moved.emit()

    def mouseClickEvent(self, ev: object) -> None:  # noqa: N802
        index = self._hit(ev.pos())  # type: ignore[attr-defined]
        if index is None:
            ev.ignore()  # type: ignore[attr-defined]  # empty space: the view box adds a point
            return
        ev.accept()  # type: ignore[attr-defined]
        if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:  # type: ignore[attr-defined]
            self.removed.emit(index)


class ClickViewBox(pg.ViewBox):
    """A fixed view box that reports left clicks on empty space (to add a support point)."""

    clicked = Signal(float, float)

    def mouseClickEvent(self, ev: object) -> None:  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            ev.accept()  # type: ignore[attr-defined]
            p = self.mapSceneToView(ev.scenePos())  # type: ignore[attr-defined]
            self.clicked.emit(p.x(), p.y())
        else:
            ev.ignore()  # type: ignore[attr-defined]


class AdaptationCard(Card):
    """Preview task plot plus MSE-vs-step plot; emits ``task_edited`` and ``resample_requested``."""

    task_edited = Signal(object)  # PreviewTask
    resample_requested = Signal(int)  # seed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Adaptation", parent)
        self.hint = QLabel("edit points: click · drag · shift-click")
        self.hint.setObjectName("card_hint")
        self.hint.setToolTip(
            "Click empty space to add a support point, drag a point to move it, "
            "shift-click a point to remove it; θ adapts to the points you set."
        )
        self.add_tool(self.hint)
        self.button = QPushButton("New task")
        self.button.setObjectName("button_resample")
        self.button.setToolTip("Draw another sinusoid for the preview")
        self.button.clicked.connect(self.resample)
        self.add_tool(self.button)

        self.view = ClickViewBox()
        self.plot = pg.PlotWidget(viewBox=self.view)
        self.plot.setObjectName("plot_adaptation")
        item = self.plot.getPlotItem()
        item.setLabel("left", "y")
        item.setLabel("bottom", "x")
        item.setMenuEnabled(False)
        single_scale_axes(self.plot)
        cache_axes(item)
        make_opaque(self.plot)
        self.plot.setMinimumSize(*PLOT_MIN_SIZE)
        self.view.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        self._legend_steps = -1
        self._set_legend(0)
        self.truth = self.plot.plot(name="true function", pen=pen("truth", 1.5, Qt.PenStyle.DashLine), antialias=True)
        self.before = self.plot.plot(name="θ before adaptation", pen=pen("before", 2.0), antialias=True)
        self.after = self.plot.plot(name="after k steps", pen=pen("after", 2.5), antialias=True)
        self.points = SupportPoints()
        self.plot.addItem(self.points)

        self.mse_plot = make_plot("plot_adaptation_mse", "MSE", "adaptation step")
        self.mse_plot.getPlotItem().setLogMode(y=True)
        self.mse = self.mse_plot.plot(
            pen=pen("after"), symbol="o", symbolSize=4, symbolBrush=SERIES["after"], symbolPen=None
        )
        self.mse_anchor = RangeAnchor(self.mse_plot)
        self.add_side_by_side(self.plot, self.mse_plot, (650, 350))

        self.task: PreviewTask | None = None
        self.result: PreviewResult | None = None
        self._seed = 0
        self._throttle = QSignalThrottler(parent=self)
        self._throttle.setTimeout(EDIT_THROTTLE_MS)
        self._throttle.triggered.connect(self._send)
        self.points.moved.connect(self._on_moved)
        self.points.removed.connect(self._on_removed)
        self.view.clicked.connect(self._on_add)

    # -- results from the worker -------------------------------------------------------------------
    def show_result(self, result: PreviewResult) -> None:
        new_task = self.task is None or result.task.seed != self.task.seed
        if new_task:
            self.task = result.task
        self.result = result
        self.truth.setData(result.x_grid, result.y_true)
        self.before.setData(result.x_grid, result.before)
        self.after.setData(result.x_grid, result.after)
        if result.steps != self._legend_steps:
            self._set_legend(result.steps)
            self.after.opts["name"] = f"after {result.steps} steps"
        steps = np.arange(len(result.mse_per_step))
        self.mse.setData(steps, positive(result.mse_per_step))
        self.mse_anchor.fit(steps, [result.mse_per_step])
        if new_task and not self.points.dragging:
            self.points.set_points(result.task.x_support, result.task.y_support)
        self._frame(result)

    def _set_legend(self, steps: int) -> None:
        self._legend_steps = steps
        after = f"after {steps} steps" if steps else "after k steps"
        self.set_legend(
            [
                ("true function", "truth", "dash"),
                ("support", "support", "dot"),
                ("θ before", "before", "line"),
                (after, "after", "line"),
                ("MSE per step →", "after", "dot"),
            ]
        )

    def _frame(self, result: PreviewResult) -> None:
        """Fixed x range; y fits the true curve and the points (a wild prediction may leave the frame)."""
        assert self.task is not None
        ys = np.concatenate([result.y_true, self.task.y_support])
        span = float(np.max(np.abs(ys))) * 1.25 + 0.5 if len(ys) else 1.0
        self.view.setRange(xRange=(result.x_grid[0], result.x_grid[-1]), yRange=(-span, span), padding=0.02)

    # -- edits -------------------------------------------------------------------------------------
    def resample(self) -> None:
        self._seed += 1
        self.resample_requested.emit(self._seed)

    def _on_moved(self) -> None:
        self._throttle.throttle()
        if not self.points.dragging:
            self._throttle.flush()

    def _on_removed(self, index: int) -> None:
        if len(self.points.xs) <= 1:
            return  # adaptation needs at least one support point
        self.points.set_points(np.delete(self.points.xs, index), np.delete(self.points.ys, index))
        self._send()

    def _on_add(self, x: float, y: float) -> None:
        if len(self.points.xs) >= MAX_SUPPORT:
            return
        self.points.set_points(np.append(self.points.xs, x), np.append(self.points.ys, y))
        self._send()

    def _send(self) -> None:
        if self.task is None:
            return
        t = self.task
        self.task = replace(t, x_support=self.points.xs.copy(), y_support=self.points.ys.copy())
        self.task_edited.emit(self.task)
