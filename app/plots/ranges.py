"""Axis ranges that move in coarse steps, so a live plot's axes are redrawn rarely.

Redrawing an axis (tick layout and label text) is most of a plot's paint cost. pyqtgraph's auto-range fits
the data exactly, so every new meta-iteration moved the x range (and often y), and every paint re-laid out
both axes: 30–60 ms of GUI-thread time per card update while the engine ran. ``RangeAnchor`` adds an
invisible two-point curve whose corners are the data's bounds rounded outwards to a coarse grid; auto-range
then fits the anchor, which changes only when the data crosses a grid line (x grows by at most a third per step,
y moves by quarter decades on log axes). Panning, zooming and the auto-range button behave as before.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

# a 1-1.2-1.5-2-2.5-3-4-5-6-8 ladder per decade: consecutive steps are at most a third apart.
_LADDER = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
LOG_STEP = 0.25  # decades


def nice_ceil(value: float) -> float:
    """The smallest ladder value ≥ ``value`` (``value`` > 0)."""
    exponent = math.floor(math.log10(value))
    scale = 10.0**exponent
    for step in _LADDER:
        if step * scale >= value * (1 - 1e-12):
            return step * scale
    return 10.0 * scale  # pragma: no cover (the ladder ends at 10)


def log_floor(value: float) -> float:
    return 10.0 ** (math.floor(math.log10(value) / LOG_STEP) * LOG_STEP)


def log_ceil(value: float) -> float:
    return 10.0 ** (math.ceil(math.log10(value) / LOG_STEP) * LOG_STEP)


def _finite(values: list[np.ndarray], positive: bool) -> np.ndarray:
    parts = [np.asarray(v, dtype=float).ravel() for v in values if len(v)]
    if not parts:
        return np.empty(0)
    data = np.concatenate(parts)
    keep = np.isfinite(data) & (data > 0) if positive else np.isfinite(data)
    return data[keep]


class RangeAnchor:
    """An invisible curve that rounds a plot's auto-range outwards to a coarse grid.

    The left edge is the first x (a run continued from an imported θ starts at its iteration); the right
    edge grows along the ladder from there. ``y_from_zero`` keeps zero in view on linear axes (memory is read
    against nothing held). Whether y is logarithmic is read from the plot each time.
    """

    def __init__(self, plot: pg.PlotWidget, *, y_from_zero: bool = False) -> None:
        self._item = plot.getPlotItem()
        self._y_from_zero = y_from_zero
        self.curve = pg.PlotDataItem(pen=pg.mkPen((0, 0, 0, 0)))  # transparent, but counted by auto-range
        self.curve.is_range_anchor = True  # plot exports and tests skip it
        self._item.addItem(self.curve)
        self.corners: tuple[float, float, float, float] | None = None

    def fit(self, x: np.ndarray, ys: list[np.ndarray]) -> None:
        """Move the corners to bound ``x`` and every array of ``ys``; a no-op while they already do."""
        log_y = bool(self._item.ctrl.logYCheck.isChecked())
        xs, values = _finite([x], False), _finite(ys, log_y)
        values = values[np.abs(values) < 1e300]  # a diverged float64 value must not overflow the rounding
        if not len(xs) or not len(values):
            self.clear()
            return
        x_lo = float(xs.min())
        x_hi = x_lo + nice_ceil(max(float(xs.max()) - x_lo, 1.0))
        lo, hi = float(values.min()), float(values.max())
        if log_y:
            y_lo, y_hi = log_floor(lo), log_ceil(hi)
        else:
            y_lo, y_hi = _linear_edges(lo, hi, self._y_from_zero)
        corners = (x_lo, x_hi, y_lo, y_hi)
        if corners != self.corners:
            self.corners = corners
            self.curve.setData([corners[0], corners[1]], [corners[2], corners[3]])

    def clear(self) -> None:
        if self.corners is not None:
            self.corners = None
            self.curve.setData([], [])


def _linear_edges(lo: float, hi: float, from_zero: bool) -> tuple[float, float]:
    """Round edges for a linear axis: zero stays in view when asked, or when the data reach down near it."""
    if lo < 0:
        bottom = -nice_ceil(-lo)
    elif from_zero or lo <= 0.5 * hi:
        bottom = 0.0
    else:  # narrow data far from zero (e.g. 0.30-0.31): edges on a grid of the data's own spread
        step = nice_ceil(hi - lo) if hi > lo else nice_ceil(lo)
        bottom = math.floor(lo / step) * step
        top = math.ceil(hi / step) * step
        return bottom, top if top > bottom else bottom + step
    top = nice_ceil(hi) if hi > 0 else 0.0
    return bottom, top if top > bottom else bottom + 1.0
