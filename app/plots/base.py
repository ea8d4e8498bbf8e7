"""The plot helpers and the meta-loss card; the diagnostic cards (CG and λ, memory) are in cards.py.

Curves are created once; ``refresh(history)`` (called by the window's ~30 Hz timer, only when the history
changed) hands them new arrays with ``setData``. Downsampling and clip-to-view keep long runs cheap.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.model.history import History
from app.plots.axes import fitted_axes, single_scale
from app.plots.markers import MarkerLayer
from app.plots.ranges import RangeAnchor
from app.toolkit.theme import SERIES, Palette

MAX_VALIDATION_SYMBOLS = 150  # beyond this the validation curve is drawn as a line only (symbols cost paint time)
SAMPLES_PER_PIXEL = 1.5  # peak downsampling keeps each pixel column's min and max, so this loses nothing
PLOT_MIN_SIZE = (200, 150)  # px: below this a plot's ticks and labels no longer read


def make_plot(name: str, left: str, bottom: str, left_units: str | None = None) -> pg.PlotWidget:
    """A PlotWidget with the studio's defaults: grid, downsampling, clip to view, no context-menu clutter.

    The left and bottom axes are ``FittedAxisItem``s (tick labels that never overlap); every axis has one
    scale: one with units (bytes) names its SI prefix in the label ("memory (MB)") and plain ticks; the
    others never scale."""
    w = pg.PlotWidget(axisItems=fitted_axes("left", "bottom"))  # right and top stay hidden until a card shows them
    w.setObjectName(name)
    item = w.getPlotItem()
    for side in ("right", "top"):
        single_scale(item.getAxis(side))
    item.setLabel("left", left, units=left_units)
    item.setLabel("bottom", bottom)
    if left_units:
        item.getAxis("left").enableAutoSIPrefix(True)
    item.setDownsampling(auto=True, mode="peak")
    item.setClipToView(True)
    item.setMenuEnabled(False)
    cache_axes(item)
    make_opaque(w)
    w.setMinimumSize(*PLOT_MIN_SIZE)
    return w


def single_scale_axes(w: pg.PlotWidget) -> None:
    """Turn off the automatic SI prefix on every axis of a plot that ``make_plot`` did not build."""
    for name in ("left", "bottom", "right", "top"):
        single_scale(w.getPlotItem().getAxis(name))


def thin_samples(*curves: pg.PlotDataItem) -> None:
    """Draw about ``SAMPLES_PER_PIXEL`` samples per pixel column (pyqtgraph's default, 5, made a long
    meta-loss curve cost 20 ms per paint with wide pens; this is 2-3x cheaper and looks the same)."""
    for curve in curves:
        curve.opts["autoDownsampleFactor"] = SAMPLES_PER_PIXEL


def make_opaque(w: pg.PlotWidget) -> None:
    """The plot paints every pixel itself, so Qt need not repaint the window, splitters and cards beneath it
    for each new frame (without this one curve update repaints the whole parent chain)."""
    w.setFrameShape(QFrame.Shape.NoFrame)
    w.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
    w.viewport().setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)


def cache_axes(item: pg.PlotItem) -> None:
    """Axes keep a pixmap of their ticks and labels: a repaint for new curve data then blits them instead of
    re-laying out every tick label (the largest part of a plot's paint cost)."""
    for name in ("left", "bottom", "right", "top"):
        item.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def pen(key: str, width: float = 2.0, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> object:
    return pg.mkPen(SERIES[key], width=width, style=style)


def positive(y: np.ndarray) -> np.ndarray:
    """Non-positive values hidden (as NaN) so a log axis shows gaps instead of warnings."""
    return np.where(y > 0, y, np.nan)


def style_plot(w: pg.PlotWidget, palette: Palette) -> None:
    """Apply the theme's background, axis and legend colours to one plot.

    Grid lines are horizontal only. An axis draws its grid lines as part of its own cached drawing, so with
    a vertical grid the bottom axis redraws across the whole plot area each time the x range steps (as
    iterations grow): measured 9-22 ms per plot against 3-5 ms without (offscreen, 1280x800; bench/RESULTS.md).
    The left axis keeps its grid, so a y-range step (rare: see ranges.py) still costs 6-10 ms. Horizontal
    lines are the ones that help read a loss or a residual off the plot."""
    w.setBackground(palette.background)
    item = w.getPlotItem()
    for axis in ("left", "bottom", "right", "top"):
        ax = item.getAxis(axis)
        ax.setPen(pg.mkPen(palette.foreground, width=1))
        ax.setTextPen(pg.mkPen(palette.foreground))
    item.showGrid(x=False, y=True, alpha=palette.grid_alpha)
    legend = item.legend
    if legend is not None:
        legend.setBrush(pg.mkBrush(palette.legend_fill))
        legend.setPen(pg.mkPen(None))
        legend.setLabelTextColor(palette.foreground)


class Card(QFrame):
    """A titled panel: a header row (title, hint, tools) above the plot area."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.plots: list[pg.PlotWidget] = []
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 8)
        outer.setSpacing(4)
        self.header = QHBoxLayout()
        self.header.setSpacing(8)
        heading = QLabel(title)
        heading.setObjectName("card_title")
        self.header.addWidget(heading)
        self.header.addStretch(1)
        outer.addLayout(self.header)
        self.legend = QLabel()
        self.legend.setObjectName("card_legend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)  # wraps rather than widening the window
        outer.addWidget(self.legend)
        self.body = QVBoxLayout()
        self.body.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(self.body, 1)

    def set_legend(self, entries: list[tuple[str, str, str]]) -> None:
        """A one-line key above the plots: (text, series key, glyph) with glyph line, dash or dot.

        Kept out of the plot area so it never hides data; plot exports add a pyqtgraph legend instead."""
        glyphs = {"line": "━━", "dash": "╍╍", "dot": "●", "o": "●", "s": "■", "t": "▼", "d": "◆"}
        parts = []
        for text, key, glyph in entries:
            colour = SERIES.get(key, key)
            parts.append(f"<span style='color:{colour}'>{glyphs[glyph]}</span>&nbsp;{text}")
        self.legend.setText("&nbsp;&nbsp;".join(parts))

    def add_side_by_side(self, left: pg.PlotWidget, right: pg.PlotWidget, sizes: tuple[int, int]) -> None:
        """Two plots in a user-resizable split that fills the card."""
        self.plots = [left, right]
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes(list(sizes))
        split.setChildrenCollapsible(False)
        self.body.addWidget(split)

    def add_tool(self, widget: QWidget) -> QWidget:
        self.header.addWidget(widget)
        return widget

    def apply_palette(self, palette: Palette) -> None:
        for w in self.plots:
            style_plot(w, palette)

    def rerange(self) -> None:
        """Axes follow the data again (a new run's range replaces the old one, even after a zoom)."""
        for w in self.plots:
            w.getPlotItem().enableAutoRange()


class MetaLossCard(Card):
    """Train (post-adaptation) and validation meta-loss vs iteration, pre-adaptation loss for reference.

    With smoothing on (the default) the raw train loss stays visible as a faint line under its moving
    average, so noise and trend read at once."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Meta-loss", parent)
        self.smooth = QCheckBox("smooth")
        self.smooth.setObjectName("check_smooth")
        self.smooth.setChecked(True)
        self.smooth_window = QSpinBox()
        self.smooth_window.setObjectName("spin_smooth_window")
        self.smooth_window.setRange(2, 500)
        self.smooth_window.setValue(20)
        self.smooth_window.setToolTip("moving-average window (meta-iterations)")
        self.logy = QCheckBox("log y")
        self.logy.setObjectName("check_log_y")
        self.logy.setChecked(True)
        self.accuracy = QCheckBox("accuracy")
        self.accuracy.setObjectName("check_accuracy")
        self.accuracy.setToolTip("Show validation accuracy (after adaptation) instead of the losses")
        self.accuracy.setVisible(False)  # classification runs only (set_family)
        for tool in (self.smooth, self.smooth_window, self.logy, self.accuracy):
            self.add_tool(tool)
        self.set_legend(
            [
                ("train (adapted)", "train", "line"),
                ("before adaptation", "pre", "line"),
                ("validation", "val", "dot"),
                ("change", "marker", "dash"),
            ]
        )
        self.plot = make_plot("plot_meta_loss", "query MSE", "meta-iteration")
        item = self.plot.getPlotItem()
        self.raw = self.plot.plot(name="train (raw)", pen=pg.mkPen(SERIES["train"] + "55", width=1), connect="finite")
        self.pre = self.plot.plot(name="before adaptation", pen=pen("pre", 1.5), connect="finite")
        self.train = self.plot.plot(name="train (after adaptation)", pen=pen("train", 2.0), connect="finite")
        self.val = self.plot.plot(
            name="validation",
            pen=pen("val", 1.5),
            symbol="o",
            symbolSize=5,
            symbolBrush=SERIES["val"],
            symbolPen=None,
            connect="finite",
        )
        item.setLogMode(y=True)
        thin_samples(self.raw, self.pre, self.train, self.val)
        self.anchor = RangeAnchor(self.plot)
        self.marker_layer = MarkerLayer(self.plot)
        self.plots = [self.plot]
        self.body.addWidget(self.plot)
        self.smooth.toggled.connect(self._options_changed)
        self.smooth_window.valueChanged.connect(self._options_changed)
        self.logy.toggled.connect(self._log_toggled)
        self.accuracy.toggled.connect(self._accuracy_toggled)
        self._loss_name = "MSE"
        self._last: History | None = None

    def set_family(self, loss_name: str, classifies: bool) -> None:
        """Name the loss on the axis; a classification run can show validation accuracy instead."""
        self._loss_name = loss_name
        self.accuracy.setVisible(classifies)
        if not classifies:
            self.accuracy.setChecked(False)
        self._accuracy_toggled(self.accuracy.isChecked())

    def refresh(self, history: History) -> None:
        self._last = history
        if self.accuracy.isChecked():
            self._refresh_accuracy(history)
            return
        it = history.column("iteration")
        train, pre = history.column("meta_loss"), history.column("pre_loss")
        if self.smooth.isChecked():
            n = self.smooth_window.value()
            self.raw.setData(it, positive(train))
            train, pre = moving_average(train, n), moving_average(pre, n)
        else:
            self.raw.setData([], [])
        self.train.setData(it, positive(train))
        self.pre.setData(it, positive(pre))
        val = history.column("val_loss")
        seen = np.isfinite(val)
        symbol = "o" if int(seen.sum()) <= MAX_VALIDATION_SYMBOLS else None
        if self.val.opts["symbol"] != symbol:
            self.val.setSymbol(symbol)
        self.val.setData(it[seen], positive(val[seen]))
        self.anchor.fit(it, [history.column("meta_loss"), train, pre, val[seen]])

    @property
    def markers(self) -> list[tuple[int, str]]:
        """(iteration, label) of the change markers shown, oldest first."""
        return self.marker_layer.markers

    def add_marker(self, iteration: int, text: str) -> None:
        """A labelled vertical line where a live change first applied."""
        self.marker_layer.add(iteration, text)

    def relabel_last_marker(self, text: str) -> None:
        self.marker_layer.relabel_last(text)

    def clear(self) -> None:
        self.marker_layer.clear()
        for curve in (self.raw, self.train, self.pre, self.val):
            curve.setData([], [])
        self.anchor.clear()
        self._last = None
        self.rerange()

    def _log_toggled(self, on: bool) -> None:
        self.plot.getPlotItem().setLogMode(y=on and not self.accuracy.isChecked())
        self._options_changed()

    def _accuracy_toggled(self, on: bool) -> None:
        item = self.plot.getPlotItem()
        item.setLabel("left", "validation accuracy" if on else f"query {self._loss_name}")
        self.logy.setEnabled(not on)
        self.anchor.clear()
        self._log_toggled(self.logy.isChecked())

    def _refresh_accuracy(self, history: History) -> None:
        """Validation accuracy (0-1, linear axis) alone: the losses are on another scale."""
        it, accuracy = history.column("iteration"), history.column("val_accuracy")
        seen = np.isfinite(accuracy)
        for curve in (self.raw, self.train, self.pre):
            curve.setData([], [])
        self.val.setData(it[seen], accuracy[seen])
        self.anchor.fit(it, [np.array([0.0, 1.0])])

    def _options_changed(self) -> None:
        if self._last is not None:
            self.refresh(self._last)


def moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` points, skipping NaNs (display smoothing only)."""
    if window <= 1 or len(y) == 0:
        return y
    ok = np.isfinite(y)
    total = np.concatenate(([0.0], np.cumsum(np.where(ok, y, 0.0))))
    count = np.concatenate(([0], np.cumsum(ok)))
    hi = np.arange(1, len(y) + 1)
    lo = np.maximum(hi - window, 0)
    n = count[hi] - count[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (total[hi] - total[lo]) / np.maximum(n, 1), np.nan)
