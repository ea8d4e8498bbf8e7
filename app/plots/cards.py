"""The diagnostic cards: CG and λ (the implicit gradient's solve, and λ per layer), and memory (this run per
meta-iteration, and the methods' memory against inner steps). Built on the plot helpers in plots.py."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from app.model.history import History
from app.plots.base import Card, make_plot, pen, positive, thin_samples
from app.plots.ranges import RangeAnchor, nice_ceil
from app.toolkit.theme import SERIES

# λ lines, one per layer: distinct hues that read on both themes
LAYER_COLOURS = ("#4c9be8", "#f0883e", "#3fb950", "#bc8cff", "#f85149", "#d29922", "#39c5cf", "#e06c9f")
SYMBOLS = {"imaml": "o", "maml": "s", "fomaml": "t", "reptile": "d"}  # distinct shapes: equal curves overlap


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
        lam_item = self.lam_plot.getPlotItem()
        self.lam_legend = pg.LegendItem(labelTextSize="7pt", verSpacing=-6)
        lam_item.layout.addItem(self.lam_legend, 2, 3)  # beside the view box: never over a layer's curve
        lam_item.legend = self.lam_legend  # curves plotted with a name are listed in it
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
        self.lam_legend.setVisible(len(self.lam_curves) > 1)  # one scalar λ is named by its axis

    def clear(self) -> None:
        for curve in (self.residual, self.stationarity, self.iterations):
            curve.setData([], [])
        for curve in self.lam_curves.values():
            self.lam_plot.removeItem(curve)
        self.lam_curves.clear()
        self.anchor.clear()
        self.lam_anchor.clear()
        self.rerange()


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
        self.profile_plot = make_plot("plot_memory_profile", "per iteration", "inner steps", left_units="B")
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
        self.plot.getPlotItem().enableAutoRange()  # the profile plot keeps its measurements
