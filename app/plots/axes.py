"""Axes whose tick labels read (``FittedAxisItem``), and one scale per axis (``single_scale``).

The ticks come from ``app.plots.ticks``; pyqtgraph's automatic SI prefix would add a second scale ("MSE
(x0.001)" above ticks already written as powers of ten), so it is off. Should tick choice fail, pyqtgraph's
own ticks are drawn instead, so a bad range never breaks painting.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont, QFontMetricsF

from app.plots.ticks import choose_linear_ticks, choose_log_ticks, format_tick, minor_step, minor_ticks

MAX_KEPT_WIDTHS = 4096  # label widths an axis keeps before it measures afresh

log = logging.getLogger(__name__)


class FittedAxisItem(pg.AxisItem):
    """A ``pg.AxisItem`` whose labels never overlap, in log mode (decades, with 2 and 5 when there is room)
    and in linear mode (round steps as coarse as the labels' widths need).

    The automatic SI prefix is off (see ``single_scale``); an axis with units may turn it back on for linear
    mode, where it names the prefix in the label. Tick choice runs at every repaint: should it fail,
    pyqtgraph's own ticks are drawn instead (and the failure is logged once per axis), so a bad range never
    breaks painting."""

    def __init__(self, orientation: str, **kwargs: object) -> None:
        super().__init__(orientation, **kwargs)
        single_scale(self)
        self._text_level = int(self.style["maxTextLevel"])
        self._labels: dict[float, str] = {}  # the chosen labels, by tick position, for tickStrings
        self._fell_back = False  # whether the last tickValues are pyqtgraph's
        self._failure_logged = False
        self._widths: dict[str, float] = {}  # label -> width in the tick font
        self._widths_font = ""

    def updateAutoSIPrefix(self) -> None:  # noqa: N802 (pyqtgraph's name)
        """Log ticks carry their own magnitude: never a prefix on top of them."""
        if self.logMode:
            self.autoSIPrefixScale, self.labelUnitPrefix = 1.0, ""
            self._updateLabel()
        else:
            super().updateAutoSIPrefix()

    def tick_extent(self) -> Callable[[str], float]:
        """A label's size along this axis, from the tick font's metrics; widths are kept per font (the same
        labels come back at every repaint)."""
        font = self.style.get("tickFont") or QFont()
        metrics = QFontMetricsF(font)
        if self.orientation in ("left", "right"):
            height = metrics.height()
            return lambda _text: height
        if font.key() != self._widths_font or len(self._widths) > MAX_KEPT_WIDTHS:
            self._widths_font = font.key()
            self._widths.clear()
        widths, measure = self._widths, metrics.horizontalAdvance

        def width(text: str) -> float:
            if text not in widths:
                widths[text] = measure(text)
            return widths[text]

        return width

    def label_overhang(self) -> float:
        """How far (px) a label may reach past an end of the axis before pyqtgraph hides it (its
        ``hideOverlappingLabels``: True hides any overhang, False allows 15 px, a number that many)."""
        hide = self.style["hideOverlappingLabels"]
        if hide is True or hide is False:
            return 0.0 if hide else 15.0
        try:
            return float(int(hide))
        except (TypeError, ValueError):
            return 0.0

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N802 (pyqtgraph's name)
        self._fell_back = False
        try:
            choose = self._log_tick_values if self.logMode else self._linear_tick_values
            levels = choose(minVal, maxVal, size)
        except Exception:  # noqa: BLE001 - painting must go on; pyqtgraph's ticks stand in
            self._log_failure()
            self._fell_back = True
        else:
            self.style["maxTextLevel"] = 0  # only the chosen values carry labels
            return levels
        self.style["maxTextLevel"] = self._text_level
        return super().tickValues(minVal, maxVal, size)

    def _log_tick_values(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N803
        lo, hi = minVal * self.scale, maxVal * self.scale
        ticks = choose_log_ticks(lo, hi, size, self.tick_extent())
        values = [v for v, _ in ticks]
        major = [math.log10(v) / self.scale for v in values]
        minor = [math.log10(v) / self.scale for v in minor_ticks(lo, hi, values, size)]
        self._labels = {position: text for position, (_, text) in zip(major, ticks, strict=True)}
        return [(1.0, major), (None, minor)]

    def _linear_tick_values(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N803
        """Labels written by pyqtgraph's own linear format (with the SI prefix, if on), measured before
        they are chosen."""
        lo, hi = sorted((minVal * self.scale, maxVal * self.scale))
        label_scale = self.autoSIPrefixScale * self.scale

        def label(values: list[float], step: float) -> list[str]:
            return pg.AxisItem.tickStrings(self, [v / self.scale for v in values], label_scale, step / self.scale)

        step, ticks = choose_linear_ticks(lo, hi, size, self.tick_extent(), label, self.label_overhang())
        major = [v / self.scale for v, _ in ticks]
        self._labels = {position: text for position, (_, text) in zip(major, ticks, strict=True)}
        every = len(ticks) > 2 or (len(ticks) == 2 and math.isclose(ticks[1][0] - ticks[0][0], step))
        fine = minor_step(step, size / (hi - lo), subdivide=every) if ticks else None
        if fine is None:
            return [(step / self.scale, major)]
        multiples = range(math.ceil(lo / fine - 1e-9), math.floor(hi / fine + 1e-9) + 1)
        labelled = {round(v / fine) for v, _ in ticks}
        minor = [i * fine for i in multiples if i not in labelled]
        return [(step / self.scale, major), (fine / self.scale, [v / self.scale for v in minor])]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        if not self._fell_back:
            try:
                if self.logMode:
                    return [
                        self._labels[v] if v in self._labels else format_tick(float(10.0 ** np.float64(v)) * scale)
                        for v in values
                    ]
                if all(v in self._labels for v in values):
                    return [self._labels[v] for v in values]
            except Exception:  # noqa: BLE001 - painting must go on; pyqtgraph's labels stand in
                self._log_failure()
        return super().tickStrings(values, scale, spacing)

    def _log_failure(self) -> None:
        if not self._failure_logged:
            self._failure_logged = True
            log.warning("tick choice fell back to pyqtgraph's on the %s axis", self.orientation, exc_info=True)


def single_scale(axis: pg.AxisItem) -> pg.AxisItem:
    """One scale per axis: no automatic SI prefix ("x0.001") on top of the ticks' own numbers."""
    axis.enableAutoSIPrefix(False)
    return axis


def fitted_axes(*orientations: str) -> dict[str, FittedAxisItem]:
    """``axisItems`` for a PlotWidget: a ``FittedAxisItem`` on each named side."""
    return {name: FittedAxisItem(name) for name in orientations}
