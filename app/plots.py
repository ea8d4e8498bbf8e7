"""The run plots: meta-loss, CG diagnostics and memory, each a titled card around pyqtgraph plots.

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
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from .history import History
from .ranges import RangeAnchor, nice_ceil
from .theme import SERIES, Palette

# λ lines, one per layer: distinct hues that read on both themes
LAYER_COLOURS = ("#4c9be8", "#f0883e", "#3fb950", "#bc8cff", "#f85149", "#d29922", "#39c5cf", "#e06c9f")
SYMBOLS = {"imaml": "o", "maml": "s", "fomaml": "t", "reptile": "d"}  # distinct shapes: equal curves overlap
MAX_MARKERS = 40  # older change markers are dropped so a long run stays legible
LABELLED_MARKERS = 8  # only the newest markers keep their text: each label costs paint time on every frame
MAX_VALIDATION_SYMBOLS = 150  # beyond this the validation curve is drawn as a line only (symbols cost paint time)
SAMPLES_PER_PIXEL = 1.5  # peak downsampling keeps each pixel column's min and max, so this loses nothing


def make_plot(name: str, left: str, bottom: str, left_units: str | None = None) -> pg.PlotWidget:
    """A PlotWidget with the studio's defaults: grid, downsampling, clip to view, no context-menu clutter."""
    w = pg.PlotWidget()
    w.setObjectName(name)
    item = w.getPlotItem()
    item.setLabel("left", left, units=left_units)
    item.setLabel("bottom", bottom)
    item.setDownsampling(auto=True, mode="peak")
    item.setClipToView(True)
    item.setMenuEnabled(False)
    cache_axes(item)
    make_opaque(w)
    w.setMinimumHeight(90)
    return w


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
        for tool in (self.smooth, self.smooth_window, self.logy):
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
        self.markers: list[tuple[int, str]] = []
        self._marker_items: list[pg.InfiniteLine] = []
        self.plots = [self.plot]
        self.body.addWidget(self.plot)
        self.smooth.toggled.connect(self._options_changed)
        self.smooth_window.valueChanged.connect(self._options_changed)
        self.logy.toggled.connect(self._log_toggled)
        self._last: History | None = None

    def refresh(self, history: History) -> None:
        self._last = history
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

    def add_marker(self, iteration: int, text: str) -> None:
        """A labelled vertical line where a live change first applied."""
        line = pg.InfiniteLine(
            pos=iteration,
            angle=90,
            movable=False,
            pen=pg.mkPen(SERIES["marker"], width=1, style=Qt.PenStyle.DashLine),
            label=text,
            labelOpts={
                "position": 0.97 - 0.08 * (len(self.markers) % 4),
                "color": SERIES["marker"],
                "anchors": [(0, 0.5), (0, 0.5)],
            },
        )
        self.plot.addItem(line, ignoreBounds=True)
        self.markers.append((iteration, text))
        self._marker_items.append(line)
        if len(self._marker_items) > MAX_MARKERS:
            self.plot.removeItem(self._marker_items.pop(0))
        if len(self._marker_items) > LABELLED_MARKERS:
            self._marker_items[-LABELLED_MARKERS - 1].label.setVisible(False)

    def relabel_last_marker(self, text: str) -> None:
        if self._marker_items:
            self._marker_items[-1].label.setFormat(text)
            self.markers[-1] = (self.markers[-1][0], text)

    def clear(self) -> None:
        for line in self._marker_items:
            self.plot.removeItem(line)
        self._marker_items.clear()
        self.markers.clear()
        for curve in (self.raw, self.train, self.pre, self.val):
            curve.setData([], [])
        self.anchor.clear()

    def _log_toggled(self, on: bool) -> None:
        self.plot.getPlotItem().setLogMode(y=on)
        self._options_changed()

    def _options_changed(self) -> None:
        if self._last is not None:
            self.refresh(self._last)


class CGCard(Card):
    """The implicit gradient's diagnostics: CG relative residual and inner stationarity (log, left axis) with
    CG iterations (right axis), and beside them λ per layer (log axis: learned λ moves by factors)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("CG and λ", parent)
        self.set_legend(
            [
                ("CG residual", "residual", "line"),
                ("inner stationarity", "stationarity", "line"),
                ("CG iterations (right)", "cg_iterations", "line"),
                ("λ per layer (right plot)", "lam", "line"),
            ]
        )
        self.plot = make_plot("plot_cg", "residual", "meta-iteration")
        item = self.plot.getPlotItem()
        self.residual = self.plot.plot(name="CG relative residual", pen=pen("residual", 1.5), connect="finite")
        self.stationarity = self.plot.plot(name="inner stationarity", pen=pen("stationarity", 1.5), connect="finite")
        item.setLogMode(y=True)
        self.anchor = RangeAnchor(self.plot)
        # CG iterations live on their own linear right-hand axis (a second view box sharing x)
        self.iter_view = pg.ViewBox()
        item.showAxis("right")
        item.scene().addItem(self.iter_view)
        right = item.getAxis("right")
        right.setLogMode(False)
        right.linkToView(self.iter_view)
        right.setLabel("CG iterations")
        self.iter_view.setXLink(item)
        self.iterations = pg.PlotDataItem(
            name="CG iterations", pen=pg.mkPen(SERIES["cg_iterations"] + "b0", width=1), connect="finite"
        )
        self.iterations.setDownsampling(auto=True, method="peak")
        self.iterations.setClipToView(True)
        thin_samples(self.residual, self.stationarity, self.iterations)
        self.iter_view.addItem(self.iterations)
        item.vb.sigResized.connect(self._sync_views)
        self.lam_plot = make_plot("plot_lambda", "λ", "meta-iteration")
        self.lam_plot.getPlotItem().setLogMode(y=True)
        self.lam_plot.setToolTip("λ of each layer (parameter tensor); one line when λ is a scalar")
        self.lam_legend = self.lam_plot.addLegend(offset=(-4, 4), labelTextSize="7pt", verSpacing=-6)
        self.lam_anchor = RangeAnchor(self.lam_plot)
        self.lam_curves: dict[str, pg.PlotDataItem] = {}
        self.add_side_by_side(self.plot, self.lam_plot, (620, 380))

    def _sync_views(self) -> None:
        item = self.plot.getPlotItem()
        self.iter_view.setGeometry(item.vb.sceneBoundingRect())
        self.iter_view.linkedViewChanged(item.vb, self.iter_view.XAxis)

    def refresh(self, history: History) -> None:
        it = history.column("iteration")
        residual, stationarity = history.column("cg_residual"), history.column("stationarity")
        self.residual.setData(it, positive(residual))
        self.stationarity.setData(it, positive(stationarity))
        self.anchor.fit(it, [residual, stationarity])
        iterations = history.column("cg_iterations")
        self.iterations.setData(it, iterations)
        top = float(np.nanmax(iterations)) if len(iterations) and np.isfinite(iterations).any() else 1.0
        # counts read against zero; the headroom keeps the (often flat) line off the stationarity band
        self.iter_view.setYRange(0, nice_ceil(max(top, 1.0) * 1.6), padding=0)
        columns = history.lam_columns()
        for name, values in columns.items():
            curve = self.lam_curves.get(name)
            if curve is None:
                colour = LAYER_COLOURS[len(self.lam_curves) % len(LAYER_COLOURS)]
                curve = self.lam_plot.plot(name=name, pen=pg.mkPen(colour, width=1.5), connect="finite")
                thin_samples(curve)
                self.lam_curves[name] = curve
            curve.setData(it, positive(values))
        if columns:
            self.lam_anchor.fit(it, list(columns.values()))

    def clear(self) -> None:
        for curve in (self.residual, self.stationarity, self.iterations):
            curve.setData([], [])
        for curve in self.lam_curves.values():
            self.lam_plot.removeItem(curve)
        self.lam_curves.clear()
        self.anchor.clear()
        self.lam_anchor.clear()


class MemoryCard(Card):
    """Bytes held per meta-iteration over time, and the memory-vs-inner-steps profile of the methods."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Memory", parent)
        self.status = QLabel("")
        self.status.setObjectName("card_hint")
        self.add_tool(self.status)
        self.button = QPushButton("Profile methods")
        self.button.setObjectName("button_profile")
        self.button.setToolTip(
            "Measure memory per meta-iteration for every method at 1–16 inner steps "
            "(runs in the background; training waits)"
        )
        self.add_tool(self.button)
        self.set_legend(
            [
                ("this run, per meta-iteration", "memory", "line"),
                ("iMAML", "imaml", "o"),
                ("MAML", "maml", "s"),
                ("FOMAML", "fomaml", "t"),
                ("Reptile", "reptile", "d"),
            ]
        )
        self.plot = make_plot("plot_memory", "memory", "meta-iteration", left_units="B")
        self.curve = self.plot.plot(name="memory per meta-iteration", pen=pen("memory"), connect="finite")
        thin_samples(self.curve)
        self.plot.getPlotItem().getViewBox().setLimits(yMin=0)
        self.anchor = RangeAnchor(self.plot, y_from_zero=True)  # memory is read against nothing held
        self.profile_plot = make_plot("plot_memory_profile", "memory / iteration", "inner steps", left_units="B")
        self.profile_plot.setToolTip("Press 'Profile methods' to measure every method at the current settings")
        self.profile_curves: dict[str, pg.PlotDataItem] = {}
        self.placeholder = pg.TextItem(
            "press “Profile methods”\nto compare all four methods", anchor=(0.5, 0.5), color=SERIES["pre"]
        )
        self.placeholder.setPos(0.5, 0.5)
        self.profile_plot.addItem(self.placeholder, ignoreBounds=True)
        self.add_side_by_side(self.plot, self.profile_plot, (500, 500))

    def refresh(self, history: History) -> None:
        it, memory = history.column("iteration"), history.column("memory_bytes")
        self.curve.setData(it, memory)
        self.anchor.fit(it, [memory])

    def start_profile(self, total: int) -> None:
        """Empty the profile plot before ``total`` new measurements arrive."""
        self.show_profile([], 0, total)
        for curve in self.profile_curves.values():
            curve.setData([], [])

    def show_profile(self, rows: list[dict[str, object]], done: int, total: int) -> None:
        self.placeholder.setVisible(not rows and not total)
        by_method: dict[str, list[tuple[float, float]]] = {}
        for row in rows:
            by_method.setdefault(str(row["method"]), []).append(
                (float(row["inner_steps"]), float(row["memory_bytes"]))  # type: ignore[arg-type]
            )
        for method, points in by_method.items():
            curve = self.profile_curves.get(method)
            if curve is None:
                colour = SERIES.get(method, SERIES["pre"])
                curve = self.profile_plot.plot(
                    name=method,
                    pen=pg.mkPen(colour, width=2),
                    symbol=SYMBOLS.get(method, "o"),
                    symbolSize=8,
                    symbolBrush=colour,
                    symbolPen=None,
                )
                self.profile_curves[method] = curve
            xs, ys = zip(*sorted(points), strict=True)
            curve.setData(list(xs), list(ys))
        running = done < total
        self.status.setText(f"profiling {done}/{total}…" if running else ("" if not total else "profile done"))
        self.button.setEnabled(not running)

    def clear(self) -> None:
        self.curve.setData([], [])
        self.anchor.clear()


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
