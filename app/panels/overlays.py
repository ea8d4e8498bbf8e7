"""Other runs drawn under the live one: each ticked run's history, downsampled, in its own colour.

A run's metrics.csv is read by the window's :class:`HistoryReader`, in a process of its own: parsing twenty long
histories in this process's threads would hold the GIL the GUI thread needs for every paint. Loaded runs
are drawn one curve per event-loop turn, so twenty arriving together do not become one long stall; the
curves are made once per run and plot, below the live curves (negative z), so the live run stays on top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QTimer, Signal

from app.plots.base import positive
from app.toolkit.background import result_or_error, when_done
from imaml_core.experiments.runs import HistoryReader

OVERLAY_POINTS = 500  # per run: about a plot's width in pixels; more only costs paint time
OVERLAY_Z = -10
RUN_COLOURS = ("#e5c07b", "#56b6c2", "#c678dd", "#98c379", "#e06c75", "#61afef", "#d19a66", "#abb2bf")


@dataclass(frozen=True)
class Target:
    """One overlaid column on one plot: ``faint`` (half-transparent) for validation, ``log`` when the plot's
    axis is. (Not dashed: Qt paints dashed polylines several times slower, and twenty of them stall.)"""

    plot: pg.PlotWidget
    column: str
    faint: bool = False
    log: bool = False


def run_colour(index: int) -> str:
    return RUN_COLOURS[index % len(RUN_COLOURS)]


OVERLAY_COLUMNS = ("iteration", "meta_loss", "val_loss", "memory_bytes", "cg_residual")


class Overlays(QObject):
    """The overlaid runs, by id: ``show(ids)`` loads what is new and removes what is no longer wanted."""

    failed = Signal(str)  # the banner's text
    failed_run = Signal(str)  # the id of a run whose history could not be read (so the panel unticks it)
    changed = Signal()

    def __init__(self, targets: list[Target], reader: HistoryReader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._targets = targets
        self._curves: dict[str, list[tuple[Target, pg.PlotDataItem]]] = {}
        self._wanted: dict[str, tuple[str, str]] = {}  # id -> (path, colour)
        self._arrived: list[tuple[str, tuple[str, str], object]] = []  # loaded, waiting for their turn to be drawn
        self._attach: list[tuple[str, Target, pg.PlotDataItem]] = []  # curves made, each waiting for its turn
        self._detach: list[list[tuple[Target, pg.PlotDataItem]]] = []  # unticked runs' curves, a run per turn
        self._drain = QTimer(self)
        self._drain.setInterval(0)
        self._drain.timeout.connect(self._draw_next)
        self._reader = reader
        self._stopped = False

    def stop(self) -> None:
        """The window is closing: reads that still arrive are dropped, and nothing more is drawn."""
        self._stopped = True
        self._drain.stop()

    def ids(self) -> list[str]:
        """The runs drawn or being loaded, in the order they were asked for."""
        return list(self._wanted)

    def drawn(self) -> list[str]:
        pending = {run_id for run_id, _, _ in self._attach}
        return [run_id for run_id in self._wanted if run_id in self._curves and run_id not in pending]

    def busy(self) -> bool:
        """Whether curves are still being put on or taken off the plots, or histories being turned into them."""
        return bool(self._detach or self._attach or self._arrived)

    def show(self, runs: list[tuple[str, str, str]]) -> None:
        """Overlay exactly ``runs``: (id, folder, colour) each."""
        wanted = {run_id: (path, colour) for run_id, path, colour in runs}
        for run_id in [r for r in self._curves if wanted.get(r) != self._wanted.get(r)]:
            self._remove(run_id)
        new = [r for r in wanted if r not in self._curves and self._wanted.get(r) != wanted[r]]
        self._wanted = wanted
        for run_id in new:
            source = wanted[run_id]
            when_done(
                self._reader.read(source[0], OVERLAY_POINTS, OVERLAY_COLUMNS),
                lambda done, r=run_id, s=source: self._arrive(r, s, result_or_error(done, f"cannot overlay {s[0]}")),
                self,
            )
        self.changed.emit()

    def _arrive(self, run_id: str, source: tuple[str, str], data: object) -> None:
        if self._stopped:
            return
        self._arrived.append((run_id, source, data))
        self._drain.start()

    def _draw_next(self) -> None:
        """One step per event-loop turn: take one unticked run's curves off their plots, else put one curve
        on its plot (so each turn repaints at most one plot, whose axes may need a new layout), else turn
        one loaded history into curves."""
        if self._detach:
            for target, curve in self._detach.pop(0):
                target.plot.removeItem(curve)
        elif self._attach:
            run_id, target, curve = self._attach.pop(0)
            target.plot.addItem(curve)
            if all(r != run_id for r, _, _ in self._attach):
                self.changed.emit()
        elif self._arrived:
            self._loaded(*self._arrived.pop(0))
        else:
            self._drain.stop()

    def _loaded(self, run_id: str, source: tuple[str, str], data: object) -> None:
        if self._wanted.get(run_id) != source or run_id in self._curves or data is None:
            return  # unticked, asked for again from another folder or colour, or the read was cancelled
        if isinstance(data, str):
            del self._wanted[run_id]
            self.failed.emit(data)
            self.failed_run.emit(run_id)
            self.changed.emit()
            return
        assert isinstance(data, dict)
        x = np.asarray(data["iteration"], dtype=float)  # every readable history has it (see _history.py)
        colour = source[1]
        curves = []
        for target in self._targets:
            y = data.get(target.column)
            if y is None or y.dtype.kind not in "fiu":
                continue  # a run written by an engine without this column: nothing to draw there
            curve = pg.PlotDataItem(pen=pg.mkPen(colour + ("80" if target.faint else ""), width=1), connect="finite")
            curve.setZValue(OVERLAY_Z)
            curve.setData(x, positive(y) if target.log else np.asarray(y, dtype=float))
            curves.append((target, curve))
        self._curves[run_id] = curves
        self._attach.extend((run_id, target, curve) for target, curve in curves)
        if not curves:
            self.changed.emit()

    def _remove(self, run_id: str) -> None:
        """Take the run's curves off their plots at its turn: removing twenty runs' curves at once (or even
        hiding them, which calls back into Python for each) stalls the GUI thread while a run trains."""
        self._attach = [job for job in self._attach if job[0] != run_id]
        attached = [(target, curve) for target, curve in self._curves.pop(run_id, []) if curve.scene() is not None]
        if attached:
            self._detach.append(attached)
            self._drain.start()
