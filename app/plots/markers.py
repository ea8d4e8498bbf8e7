"""Change markers: dashed vertical lines with labels that stay inside the plot and never pile up.

Labels are laid out in pixels at the current zoom (``label_rows``): each goes to the right of its line, or
to the left where it would leave the view box, in the first of ``MARKER_ROWS`` rows where it meets no
neighbour; when every row is taken the row that frees up first is reused. The layout is redone when the
view range or size changes, so zooming in spreads crowded labels back out.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetricsF

from app.toolkit.theme import SERIES

MAX_MARKERS = 40  # older change markers are dropped so a long run stays legible
LABELLED_MARKERS = 8  # only the newest markers keep their text: each label costs paint time on every frame
MARKER_ROWS = 4
LABEL_GAP_PX = 6.0  # space between a label and its line, and between labels in one row
TOP_MARGIN_PX = 4.0

RIGHT, LEFT = (0.0, 0.5), (1.0, 0.5)  # text anchors: the label's left (right) edge at the line


def label_rows(
    xs: Sequence[float], widths: Sequence[float], view_width: float, rows: int = MARKER_ROWS
) -> list[tuple[int, bool]]:
    """(row, to the left of its line) for labels at pixel positions ``xs`` (ascending) of ``widths``.

    A label goes to the right of its line unless it would pass the view's right edge; it takes the first
    row whose previous label ends ``LABEL_GAP_PX`` before it starts, else the row that ends first."""
    ends = [float("-inf")] * rows
    out = []
    for x, width in zip(xs, widths, strict=True):
        left_side = x + LABEL_GAP_PX + width > view_width and x - LABEL_GAP_PX - width >= 0
        start, end = (x - LABEL_GAP_PX - width, x) if left_side else (x, x + LABEL_GAP_PX + width)
        free = [r for r in range(rows) if ends[r] + LABEL_GAP_PX <= start]
        row = free[0] if free else min(range(rows), key=ends.__getitem__)
        ends[row] = max(ends[row], end)
        out.append((row, left_side))
    return out


class MarkerLayer:
    """The change markers of one plot: add, relabel the newest, clear; labels laid out by ``label_rows``."""

    def __init__(self, plot: pg.PlotWidget) -> None:
        self._plot = plot
        self._view = plot.getPlotItem().getViewBox()
        self.lines: list[pg.InfiniteLine] = []
        self.markers: list[tuple[int, str]] = []  # (iteration, label) of each line in ``lines``, same order
        self._view.sigXRangeChanged.connect(self.lay_out)
        self._view.sigResized.connect(self.lay_out)

    def add(self, iteration: int, text: str) -> None:
        line = pg.InfiniteLine(
            pos=iteration,
            angle=90,
            movable=False,
            pen=pg.mkPen(SERIES["marker"], width=1, style=Qt.PenStyle.DashLine),
            label=text,
            labelOpts={"position": 0.9, "color": SERIES["marker"], "anchors": [RIGHT, RIGHT]},
        )
        self._plot.addItem(line, ignoreBounds=True)
        self.markers.append((iteration, text))
        self.lines.append(line)
        if len(self.lines) > MAX_MARKERS:  # the oldest go, from both lists: ``markers`` is what is shown
            self._plot.removeItem(self.lines.pop(0))
            self.markers.pop(0)
        if len(self.lines) > LABELLED_MARKERS:
            self.lines[-LABELLED_MARKERS - 1].label.setVisible(False)
        self.lay_out()

    def relabel_last(self, text: str) -> None:
        if self.lines:
            self.lines[-1].label.setFormat(text)
            self.markers[-1] = (self.markers[-1][0], text)
            self.lay_out()

    def clear(self) -> None:
        for line in self.lines:
            self._plot.removeItem(line)
        self.lines.clear()
        self.markers.clear()

    def lay_out(self, *_args: object) -> None:
        """Place the visible labels for the current zoom and size (rows from the top, sides by the edge)."""
        labelled = [line for line in self.lines if line.label.isVisible()]
        if not labelled:
            return
        (x0, x1), _ = self._view.viewRange()
        width, height = self._view.width(), self._view.height()
        if width <= 0 or height <= 0 or x1 <= x0:
            return
        labelled.sort(key=lambda line: line.value())
        metrics = QFontMetricsF(labelled[0].label.textItem.font())
        xs = [(line.value() - x0) / (x1 - x0) * width for line in labelled]
        widths = [metrics.horizontalAdvance(line.label.toPlainText()) + 4 for line in labelled]
        line_height = metrics.height() + 2
        for line, (row, left_side) in zip(labelled, label_rows(xs, widths, width), strict=True):
            anchor = LEFT if left_side else RIGHT
            line.label.anchors = [anchor, anchor]
            position = 1.0 - (TOP_MARGIN_PX + (row + 0.5) * line_height) / height
            line.label.setPosition(max(position, 0.05))  # also re-places the label with its new anchor
