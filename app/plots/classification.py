"""The adaptation card for classification: one task's images, what θ and φ make of its queries, and the query
accuracy and loss per adaptation step.

Images sit in one column per class: the class's support images on top, then its query images, each
captioned with the class θ predicts before adaptation and φ after it, marked ✓ or ✗ (and framed green or
red, so it reads at a glance without relying on colour). Clicking a query image moves it into the support
set; the worker adapts φ to the new set at once.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QMouseEvent, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QScrollArea, QSplitter, QWidget

from app.model.messages import ClassPreviewResult, PreviewTask
from app.plots.base import Card, make_plot, pen
from app.toolkit.theme import SERIES

TILE = 30  # pixels per image side: a 5-way task with two queries per class fits a card at 1280×800
RIGHT, WRONG = SERIES["after"], SERIES["support"]


def pixmap(image: np.ndarray, side: int = TILE) -> QPixmap:
    """A grey image (H, W) with ink high in 0-1, drawn dark on light and scaled to ``side`` pixels."""
    ink = np.clip(np.asarray(image, dtype=float), 0.0, 1.0)
    data = np.ascontiguousarray(255 - np.round(ink * 255).astype(np.uint8))
    h, w = data.shape
    qimage = QImage(data.data, w, h, w, QImage.Format.Format_Grayscale8).copy()  # copy: own the bytes
    return QPixmap.fromImage(qimage).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio)


class Tile(QLabel):
    """One image with a caption; a query tile reports clicks."""

    clicked = Signal(int)

    def __init__(self, image: np.ndarray, caption: str, index: int = -1, frame: str = "") -> None:
        super().__init__()
        self.index = index
        self.setObjectName("tile_query" if index >= 0 else "tile_support")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setPixmap(pixmap(image))
        self.mark(caption, frame)
        if index >= 0:
            self.setCursor(Qt.CursorShape.PointingHandCursor)

    def mark(self, caption: str, frame: str = "") -> None:
        """The tile's caption (its tooltip) and frame colour."""
        self.caption = caption
        self.setToolTip(caption + ("\nClick: move this image into the support set" if self.index >= 0 else ""))
        border = f"2px solid {frame}" if frame else "1px solid #8b949e"
        self.setStyleSheet(f"QLabel {{ border: {border}; padding: 1px; }}")

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        if self.index >= 0 and event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.index)
            event.accept()
            return
        super().mousePressEvent(event)


class ClassificationCard(Card):
    """One task's images and predictions beside accuracy and loss per adaptation step; emits ``task_edited``
    (a query image moved into the support set) and ``resample_requested``."""

    task_edited = Signal(object)  # PreviewTask
    resample_requested = Signal(int)  # seed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Adaptation", parent)
        self.hint = QLabel("click a query image: it joins the support set")
        self.hint.setObjectName("card_hint")
        self.add_tool(self.hint)
        self.button = QPushButton("New task")
        self.button.setObjectName("button_resample_task")
        self.button.setToolTip("Draw another task (classes and drawings) for the preview")
        self.button.clicked.connect(self.resample)
        self.add_tool(self.button)
        self.set_legend(
            [
                ("support", "truth", "s"),
                ("query: θ → φ, ✓ right ✗ wrong", "after", "s"),
                ("accuracy", "after", "line"),
                ("loss", "before", "line"),
            ]
        )
        self.tiles = QWidget()
        self.tiles.setObjectName("tiles_task")
        self.grid = QGridLayout(self.tiles)
        self.grid.setSpacing(2)
        self.grid.setContentsMargins(2, 2, 2, 2)
        scroll = QScrollArea()
        scroll.setObjectName("scroll_task")
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.tiles)
        self.steps_plot = make_plot("plot_adaptation_accuracy", "accuracy · loss", "adaptation step")
        self.accuracy_curve = self.steps_plot.plot(
            pen=pen("after"), symbol="o", symbolSize=4, symbolBrush=SERIES["after"], symbolPen=None
        )
        self.loss_curve = self.steps_plot.plot(pen=pen("before", 1.5))
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(self.steps_plot)
        split.setSizes([640, 240])
        split.setChildrenCollapsible(False)
        self.body.addWidget(split)
        self.plots = [self.steps_plot]
        self.task: PreviewTask | None = None
        self.result: ClassPreviewResult | None = None
        self._seed = 0
        self.query_tiles: list[Tile] = []
        self._captions: list[QLabel] = []
        self._laid_out: PreviewTask | None = None  # the task the tiles show: a new θ only re-marks them

    # -- results from the worker -------------------------------------------------------------------
    def show_result(self, result: ClassPreviewResult) -> None:
        self.hint.setText(f"{result.label}: click a query image to move it into the support set")
        self.task = result.task
        self.result = result
        steps = np.arange(len(result.accuracy_per_step))
        self.accuracy_curve.setData(steps, result.accuracy_per_step)
        self.loss_curve.setData(steps, result.loss_per_step)
        top = max(1.0, float(np.nanmax(result.loss_per_step)) if len(result.loss_per_step) else 1.0)
        self.steps_plot.getPlotItem().setYRange(0.0, top * 1.05, padding=0)
        self.steps_plot.getPlotItem().setXRange(0, max(1, len(steps) - 1), padding=0.02)
        self._lay_out(result)

    def accuracy(self) -> float | None:
        """φ's accuracy on the preview task's query images (None before the first preview)."""
        return None if self.result is None else float(self.result.accuracy_per_step[-1])

    def _lay_out(self, result: ClassPreviewResult) -> None:
        if result.task is self._laid_out:
            self._mark(result)  # the same images: only the predictions changed (every preview while training)
            return
        self._laid_out = result.task
        while self.grid.count():
            item = self.grid.takeAt(0)
            if (w := item.widget()) is not None:
                w.deleteLater()
        task = result.task
        assert task.x_query is not None and task.y_query is not None
        ways = int(max(task.y_support.max(initial=0), task.y_query.max(initial=0))) + 1
        depth = [0] * ways
        for c in range(ways):
            head = QLabel(f"class {c}")
            head.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.grid.addWidget(head, 0, c)
        for image, label in zip(task.x_support, task.y_support, strict=True):
            c = int(label)
            depth[c] += 1
            self.grid.addWidget(Tile(image, f"support, class {c}"), depth[c], c)
        base = max(depth) + 1
        rule = QLabel("queries: θ → φ")
        rule.setObjectName("tiles_rule")
        self.grid.addWidget(rule, base, 0, 1, ways)
        self.query_tiles = []
        below = [0] * ways
        self._captions = []
        for i, (image, label) in enumerate(zip(task.x_query, task.y_query, strict=True)):
            c = int(label)
            tile = Tile(image, "", index=i)
            tile.clicked.connect(self.move_query_to_support)
            below[c] += 1
            cell = QWidget()
            column = QGridLayout(cell)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(0)
            column.addWidget(tile, 0, 0)
            text = QLabel()
            text.setObjectName("tile_caption")
            text.setAlignment(Qt.AlignmentFlag.AlignCenter)
            column.addWidget(text, 1, 0)
            self.grid.addWidget(cell, base + below[c], c)
            self.query_tiles.append(tile)
            self._captions.append(text)
        self._mark(result)

    def _mark(self, result: ClassPreviewResult) -> None:
        """Each query's classes before and after adaptation, right or wrong."""
        assert result.task.y_query is not None
        for i, (tile, text) in enumerate(zip(self.query_tiles, self._captions, strict=True)):
            c, before, after = int(result.task.y_query[i]), int(result.before[i]), int(result.after[i])
            mark = "✓" if after == c else "✗"
            tile.mark(f"class {c}: θ says {before}, φ says {after} {mark}", RIGHT if after == c else WRONG)
            text.setText(f"{before}→{after} {mark}")

    # -- edits -------------------------------------------------------------------------------------
    def move_query_to_support(self, index: int) -> None:
        """Query image ``index`` joins the support set with its label; φ re-adapts (the worker shows it)."""
        if self.task is None:
            return
        try:
            self.task = self.task.with_query_in_support(index)
        except IndexError:
            return  # the last query image stays
        self.task_edited.emit(self.task)

    def resample(self) -> None:
        self._seed += 1
        self.resample_requested.emit(self._seed)

    def clear(self) -> None:
        self.task, self.result, self._laid_out = None, None, None
        self.accuracy_curve.setData([], [])
        self.loss_curve.setData([], [])


__all__ = ["ClassificationCard", "pixmap"]
