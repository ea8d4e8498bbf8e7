"""Other runs drawn under the live one: each ticked run's history, downsampled, in its own colour, named in
a legend; a seed group's ticked runs as their mean with a 95% band.

A run's metrics.csv is read by the window's :class:`HistoryReader`, in a process of its own: parsing twenty long
histories in this process's threads would hold the GIL the GUI thread needs for every paint. Loaded runs
are drawn one curve per event-loop turn, so twenty arriving together do not become one long stall; the
curves are made once per run and plot, below the live curves (negative z), so the live run stays on top.

A column the meta-loss card smooths (the train loss) is smoothed on the overlays with the card's own rule
and setting (``moving_average`` over the card's window), and follows the card when the user changes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from app.plots.base import MetaLossCard, moving_average, positive
from app.toolkit.background import result_or_error, when_done
from imaml_core.experiments.runs import HistoryReader, downsample, seed_band

OVERLAY_POINTS = 500  # per run: about a plot's width in pixels; more only costs paint time
OVERLAY_Z = -10
RUN_COLOURS = ("#e5c07b", "#56b6c2", "#c678dd", "#98c379", "#e06c75", "#61afef", "#d19a66", "#abb2bf")
SMOOTHED_COLUMNS = ("meta_loss",)  # the overlaid columns the meta-loss card draws as a moving average
LOG_BAND_FLOOR = 0.1  # on a log axis a band's lower edge stops at this fraction of the mean (zero has no place)
BAND_ALPHA = "40"


@dataclass(frozen=True)
class Target:
    """One overlaid column on one plot: ``faint`` (half-transparent) for validation, ``log`` when the plot's
    axis is. (Not dashed: Qt paints dashed polylines several times slower, and twenty of them stall.)"""

    plot: pg.PlotWidget
    column: str
    faint: bool = False
    log: bool = False


@dataclass(frozen=True)
class Overlay:
    """One overlaid item: a run (one id), or a seed group's ticked runs drawn as their mean and 95% band;
    ``name`` is its legend entry."""

    ids: tuple[str, ...]
    paths: tuple[str, ...]
    colour: str
    name: str

    @property
    def source(self) -> tuple[tuple[str, ...], tuple[str, ...], str]:
        """What its curves are made of (a new name only relabels them)."""
        return self.ids, self.paths, self.colour


def run_colour(index: int) -> str:
    return RUN_COLOURS[index % len(RUN_COLOURS)]


OVERLAY_COLUMNS = ("iteration", "meta_loss", "val_loss", "memory_bytes", "cg_residual")
Key = tuple[str, ...]
Drawn = list[tuple[Target, list[pg.GraphicsObject]]]  # per target: a curve, or a group's mean, edges and fill


class Overlays(QObject):
    """The overlaid runs and seed groups: ``show(items)`` loads what is new and removes what is no longer
    wanted. The legend sits in the first target's plot, bottom left (an exported image's legend of the live
    curves takes the top right)."""

    failed = Signal(str)  # the banner's text
    failed_run = Signal(str)  # the id of a run whose history could not be read (so the panel unticks it)
    changed = Signal()

    def __init__(self, targets: list[Target], reader: HistoryReader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._targets = targets
        self._curves: dict[Key, Drawn] = {}
        self._data: dict[Key, list[dict[str, np.ndarray]]] = {}  # what each drawn item was made from
        self._wanted: dict[Key, Overlay] = {}
        self._partial: dict[Key, tuple[Overlay, dict[int, object]]] = {}  # histories being read, as they arrive
        self._arrived: list[tuple[Overlay, list[object]]] = []  # loaded, waiting for their turn to be drawn
        self._attach: list[tuple[Key, Target, pg.GraphicsObject]] = []  # items made, each waiting for its turn
        self._detach: list[list[tuple[Target, pg.GraphicsObject]]] = []  # unticked items, one overlay per turn
        self._drain = QTimer(self)
        self._drain.setInterval(0)
        self._drain.timeout.connect(self._draw_next)
        self._reader = reader
        self._stopped = False
        self._cards = {id(t): card for t in targets if (card := _smoothing_card(t)) is not None}
        for card in {id(c): c for c in self._cards.values()}.values():
            card.smooth.toggled.connect(self._smoothing_changed)
            card.smooth_window.valueChanged.connect(self._smoothing_changed)
        self.legend = pg.LegendItem(offset=(10, -10), labelTextSize="8pt")
        self.legend.setObjectName("overlay_legend")
        if targets:
            self.legend.setParentItem(targets[0].plot.getPlotItem().vb)
        self.legend.setVisible(False)

    def stop(self) -> None:
        """The window is closing: reads that still arrive are dropped, and nothing more is drawn."""
        self._stopped = True
        self._drain.stop()

    def ids(self) -> list[str]:
        """The runs drawn or being loaded, in the order they were asked for."""
        return [run_id for key in self._wanted for run_id in key]

    def drawn(self) -> list[str]:
        pending = {key for key, _, _ in self._attach}
        return [r for key in self._wanted if key in self._curves and key not in pending for r in key]

    def busy(self) -> bool:
        """Whether curves are still being put on or taken off the plots, or histories being turned into them."""
        return bool(self._detach or self._attach or self._arrived or self._partial)

    def legend_names(self) -> list[str]:
        """The legend's entries, top to bottom."""
        return [label.text for _, label in self.legend.items]

    def smoothing(self, target: Target) -> int:
        """The moving-average window ``target``'s curves are drawn with (1: not smoothed)."""
        card = self._cards.get(id(target))
        if card is None or target.column not in SMOOTHED_COLUMNS or not card.smooth.isChecked():
            return 1
        return card.smooth_window.value()

    def show(self, items: list[Overlay]) -> None:
        """Overlay exactly ``items``."""
        wanted = {item.ids: item for item in items}
        for key in [k for k in self._curves if k not in wanted or wanted[k].source != self._wanted[k].source]:
            self._remove(key)
        for key, item in wanted.items():
            if key in self._curves and item.name != self._wanted[key].name:
                self._relabel(key, item.name)
        new = [
            k
            for k in wanted
            if k not in self._curves and (k not in self._wanted or self._wanted[k].source != wanted[k].source)
        ]
        self._wanted = wanted
        for key in new:
            item = wanted[key]
            self._partial[key] = (item, {})
            points = OVERLAY_POINTS if len(item.paths) == 1 else None  # a group aligns by iteration, at full length
            for i, path in enumerate(item.paths):
                when_done(
                    self._reader.read(path, points, OVERLAY_COLUMNS),
                    lambda done, o=item, i=i, p=path: self._arrive(o, i, result_or_error(done, f"cannot overlay {p}")),
                    self,
                )
        self.changed.emit()

    def _arrive(self, item: Overlay, index: int, data: object) -> None:
        entry = self._partial.get(item.ids)
        if self._stopped or entry is None or entry[0] is not item:
            return  # asked for again meanwhile (that read's answers are on their way), or closing
        parts = entry[1]
        parts[index] = data
        if len(parts) == len(item.paths) or isinstance(data, str):
            del self._partial[item.ids]
            self._arrived.append((item, [parts.get(i) for i in range(len(item.paths))]))
            self._drain.start()

    def _draw_next(self) -> None:
        """One step per event-loop turn: take one unticked item's curves off their plots, else put one curve
        on its plot (so each turn repaints at most one plot, whose axes may need a new layout), else turn
        one loaded history into curves."""
        if self._detach:
            for target, curve in self._detach.pop(0):
                target.plot.removeItem(curve)
        elif self._attach:
            key, target, curve = self._attach.pop(0)
            target.plot.addItem(curve)
            if all(k != key for k, _, _ in self._attach):
                self.changed.emit()
        elif self._arrived:
            self._loaded(*self._arrived.pop(0))
        else:
            self._drain.stop()

    def _loaded(self, item: Overlay, data: list[object]) -> None:
        key = item.ids
        wanted = self._wanted.get(key)
        if wanted is None or wanted.source != item.source or key in self._curves:
            return  # unticked, or asked for again from another folder or colour
        failed = [(run_id, d) for run_id, d in zip(key, data, strict=True) if isinstance(d, str)]
        if not failed and any(d is None for d in data):
            return  # the read was cancelled: the window is closing
        if failed:
            del self._wanted[key]
            self.failed.emit(str(failed[0][1]))
            self.failed_run.emit(failed[0][0])
            self.changed.emit()
            return
        histories = [d for d in data if isinstance(d, dict)]
        self._data[key] = histories
        drawn: Drawn = []
        for target in self._targets:
            if not all(_numeric(h, target.column) for h in histories):
                continue  # a run written by an engine without this column: nothing to draw there
            made = _make_items(item.colour, target, len(histories) > 1)
            _set_series(made, target, histories, self.smoothing(target))
            drawn.append((target, made))
        self._curves[key] = drawn
        self._attach.extend((key, target, obj) for target, made in drawn for obj in made)
        if drawn and drawn[0][0] is self._targets[0]:
            self.legend.addItem(drawn[0][1][0], wanted.name)
            self.legend.setVisible(True)
        if not drawn:
            self.changed.emit()

    def _relabel(self, key: Key, name: str) -> None:
        drawn = self._curves.get(key)
        if drawn and drawn[0][0] is self._targets[0]:
            self.legend.removeItem(drawn[0][1][0])
            self.legend.addItem(drawn[0][1][0], name)

    def _smoothing_changed(self) -> None:
        """The card's smoothing changed: redraw the smoothed columns of every overlaid item."""
        for key, drawn in self._curves.items():
            for target, made in drawn:
                if target.column in SMOOTHED_COLUMNS and id(target) in self._cards:
                    _set_series(made, target, self._data[key], self.smoothing(target))

    def _remove(self, key: Key) -> None:
        """Take the item's curves off their plots at its turn: removing twenty runs' curves at once (or even
        hiding them, which calls back into Python for each) stalls the GUI thread while a run trains."""
        self._attach = [job for job in self._attach if job[0] != key]
        self._data.pop(key, None)
        drawn = self._curves.pop(key, [])
        if drawn and drawn[0][0] is self._targets[0]:
            self.legend.removeItem(drawn[0][1][0])
            self.legend.setVisible(bool(self.legend.items))
        attached = [(target, obj) for target, made in drawn for obj in made if obj.scene() is not None]
        if attached:
            self._detach.append(attached)
            self._drain.start()


def _smoothing_card(target: Target) -> MetaLossCard | None:
    """The meta-loss card that holds ``target``'s plot, whose smoothing its curves follow."""
    widget: QWidget | None = target.plot
    while widget is not None and not isinstance(widget, MetaLossCard):
        widget = widget.parentWidget()
    return widget


class BandFill(pg.FillBetweenItem):
    """pyqtgraph's fill between two curves, redrawn when its plot's log mode changes. The edges map their
    data to log10 then without saying so (no ``sigPlotChanged``), so a fill that is not told would stay in
    linear units on a log axis: a band from 1 to 6 drawn up to 1e6. The plot sets each item's log mode in
    the order the items were added, the edges before their fill."""

    def setLogMode(self, x: bool, y: bool) -> None:  # noqa: N802 (the plot calls it on every item that has it)
        self.updatePath()


def _numeric(history: dict[str, np.ndarray], column: str) -> bool:
    values = history.get(column)
    return values is not None and values.dtype.kind in "fiu"


def _make_items(colour: str, target: Target, band: bool) -> list[pg.GraphicsObject]:
    """A run's curve; for a group its mean curve, the band's two edges and the fill between them."""
    pen = pg.mkPen(colour + ("80" if target.faint else ""), width=1)
    curve = pg.PlotDataItem(pen=pen, connect="finite")
    made: list[pg.GraphicsObject] = [curve]
    if band:
        edges = [pg.PlotDataItem(pen=pg.mkPen(colour + BAND_ALPHA, width=1), connect="finite") for _ in range(2)]
        fill = BandFill(edges[0], edges[1], brush=pg.mkBrush(colour + BAND_ALPHA))
        made += [*edges, fill]
    for obj in made:
        obj.setZValue(OVERLAY_Z)
    return made


def _set_series(
    made: list[pg.GraphicsObject], target: Target, histories: list[dict[str, np.ndarray]], window: int
) -> None:
    """Put the histories' ``target`` column on ``made``: one run's curve, smoothed over ``window``
    iterations (a binned history's window in bins of as many iterations); or the mean and 95% band over a
    group's runs, each smoothed first, then binned to ``OVERLAY_POINTS``."""
    shown = positive if target.log else (lambda y: y)
    if len(made) == 1:
        x = np.asarray(histories[0]["iteration"], dtype=float)  # every readable history has it (see _history.py)
        y = np.asarray(histories[0][target.column], dtype=float)
        step = (x[-1] - x[0]) / (len(x) - 1) if len(x) > 1 else 1.0
        made[0].setData(x, shown(moving_average(y, max(1, round(window / max(step, 1.0))))))
        return
    curves = [
        (np.asarray(h["iteration"], dtype=float), moving_average(np.asarray(h[target.column], dtype=float), window))
        for h in histories
    ]
    x, mean, half = seed_band(curves)
    seen = np.isfinite(mean)  # a validation column has values at validation iterations only
    x, mean, half = x[seen], mean[seen], np.where(np.isfinite(half[seen]), half[seen], 0.0)  # one run: no band
    binned = downsample({"x": x, "mean": mean, "lo": mean - half, "hi": mean + half}, OVERLAY_POINTS)
    lo = np.maximum(binned["lo"], LOG_BAND_FLOOR * binned["mean"]) if target.log else binned["lo"]
    curve, low, high, _ = made
    curve.setData(binned["x"], shown(binned["mean"]))
    low.setData(binned["x"], shown(lo))
    high.setData(binned["x"], shown(binned["hi"]))
