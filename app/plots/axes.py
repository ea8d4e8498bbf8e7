"""Axes whose tick labels read: log ticks chosen to fit, one scale per axis.

pyqtgraph's log axis labels every mantissa it finds room for by a rough fill ratio, so a short axis shows
"0.70.8.91" or "3·10·4·10", and its automatic SI prefix adds a second scale ("MSE (x0.001)" above ticks
already written as powers of ten). ``choose_log_ticks`` picks the labelled values from the axis's pixel
length and the width (or height) of each label, densest first, so adjacent labels never touch;
``LogAxisItem`` uses it in log mode and behaves as a plain ``pg.AxisItem`` otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont, QFontMetricsF

PLAIN_RANGE = (1e-3, 1e4)  # labels inside this range are plain numbers ("0.01", "500"); others "1e-5"
MIN_GAP_PX = 10.0  # least free space between neighbouring labels; at least one label's own extent, too
MAX_DECADE_STRIDE = 100

Tick = tuple[float, str]


def format_tick(value: float) -> str:
    """A plain number inside ``PLAIN_RANGE`` ("0.01", "20"), a compact exponent outside it ("1e-5", "2e6")."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    magnitude = abs(value)
    if PLAIN_RANGE[0] * (1 - 1e-9) <= magnitude < PLAIN_RANGE[1]:
        return f"{value:.6g}"
    exponent = math.floor(math.log10(magnitude) + 1e-9)
    mantissa = f"{value / 10.0**exponent:.3g}"
    if mantissa in ("10", "-10"):  # rounding carried into the next decade
        mantissa, exponent = mantissa[:-1], exponent + 1
    return f"{mantissa}e{exponent}"


def _mantissa_ticks(lo: float, hi: float, mantissas: Sequence[int], stride: int = 1) -> list[float]:
    """Values m·10^k (m in ``mantissas``; k a multiple of ``stride``) whose log10 lies in [lo, hi]."""
    out = []
    for k in range(math.floor(lo) - 1, math.ceil(hi) + 1):
        if k % stride:
            continue
        for m in mantissas:
            v = math.log10(m) + k
            if lo - 1e-9 <= v <= hi + 1e-9:
                out.append(float(f"{m}e{k}"))  # exact decimal, not m * 10.0**k
    return out


def _linear_ticks(lo: float, hi: float) -> list[list[float]]:
    """Evenly spaced round values (steps 1, 2, 5 × 10^k) between 10^lo and 10^hi, finest step first.

    Used when the range spans about a decade or less, where decades and their 2 and 5 may give a single
    label or none."""
    a, b = 10.0**lo, 10.0**hi
    candidates = []
    top = math.floor(math.log10(b - a)) if b > a else math.floor(lo)
    for k in range(top - 3, top + 1):
        for m in (1, 2, 5):
            step = m * 10.0**k
            first, last = math.ceil(a / step - 1e-9), math.floor(b / step + 1e-9)
            if 2 <= last - first + 1 <= 200:
                values = [round(i * step, 12) for i in range(first, last + 1)]
                candidates.append(values)
                candidates.append([values[0], values[-1]])  # the two ends, for a short axis
    return candidates


def candidate_levels(lo: float, hi: float) -> list[list[float]]:
    """Sets of labelled values for the log10 range [lo, hi], roughly densest first."""
    levels: list[list[float]] = []
    if hi - lo <= 1.0 + 1e-9:
        levels.extend(_linear_ticks(lo, hi))
    levels.append(_mantissa_ticks(lo, hi, (1, 2, 5)))
    stride = 1
    while stride <= MAX_DECADE_STRIDE:
        levels.append(_mantissa_ticks(lo, hi, (1,), stride))
        stride = {1: 2, 2: 3, 3: 5}.get(stride, stride * 2)
    return [level for level in levels if level]


def labels_fit(
    lo: float,
    hi: float,
    length_px: float,
    ticks: Sequence[Tick],
    extent: Callable[[str], float],
    *,
    spacious: bool = True,
) -> bool:
    """True when the free space between neighbouring labels is at least ``MIN_GAP_PX`` and, when
    ``spacious``, at least the larger label's extent too (so labels read as separate numbers).

    ``extent`` is a label's size along the axis: its width on a horizontal axis, the line height on a
    vertical one."""
    if hi <= lo:
        return len(ticks) <= 1
    scale = length_px / (hi - lo)
    positions = [(math.log10(v) - lo) * scale for v, _ in ticks]
    sizes = [extent(text) for _, text in ticks]
    for i in range(1, len(ticks)):
        gap = max(MIN_GAP_PX, sizes[i], sizes[i - 1]) if spacious else MIN_GAP_PX
        if positions[i] - positions[i - 1] < (sizes[i] + sizes[i - 1]) / 2 + gap:
            return False
    return True


def choose_log_ticks(lo: float, hi: float, length_px: float, extent: Callable[[str], float]) -> list[Tick]:
    """The labelled ticks of a log axis showing 10^lo..10^hi on ``length_px`` pixels.

    The candidate set with the most labels that fit with room to spare wins. Two or more labels are
    preferred to a single one: where no such set has room to spare, the densest with ``MIN_GAP_PX``
    between labels is taken, so a short range or a short axis still reads (0.6 and 1; 1e-5 and 1e-4)."""
    lo, hi = min(lo, hi), max(lo, hi)
    levels = [[(v, format_tick(v)) for v in values] for values in candidate_levels(lo, hi)]
    for spacious in (True, False):
        several = [t for t in levels if len(t) >= 2 and labels_fit(lo, hi, length_px, t, extent, spacious=spacious)]
        if several:
            return max(several, key=len)  # the first of equally dense sets: the finer rule
    single = [t for t in levels if len(t) == 1]
    if single:
        return single[0]
    ends = [v for v in (10.0**lo, 10.0**hi) if math.isfinite(v) and v > 0]
    return [(ends[0], format_tick(ends[0]))] if ends else []


def minor_ticks(lo: float, hi: float, labelled: Sequence[float], length_px: float) -> list[float]:
    """Unlabelled ticks at 1..9 × 10^k, drawn only while neighbouring decades are at least 40 px apart."""
    if hi <= lo or length_px / (hi - lo) < 40:
        return []
    taken = {round(math.log10(v), 9) for v in labelled}
    return [v for v in _mantissa_ticks(lo, hi, range(1, 10)) if round(math.log10(v), 9) not in taken]


class LogAxisItem(pg.AxisItem):
    """A ``pg.AxisItem`` whose log-mode labels never overlap: decades, with 2 and 5 when there is room.

    In linear mode it is the plain pyqtgraph axis. The automatic SI prefix is off (see ``single_scale``); an
    axis with units may turn it back on for linear mode, where it names the prefix in the label."""

    def __init__(self, orientation: str, **kwargs: object) -> None:
        super().__init__(orientation, **kwargs)
        single_scale(self)
        self._text_level = int(self.style["maxTextLevel"])

    def updateAutoSIPrefix(self) -> None:  # noqa: N802 (pyqtgraph's name)
        """Log ticks carry their own magnitude: never a prefix on top of them."""
        if self.logMode:
            self.autoSIPrefixScale, self.labelUnitPrefix = 1.0, ""
            self._updateLabel()
        else:
            super().updateAutoSIPrefix()

    def tick_extent(self) -> Callable[[str], float]:
        """A label's size along this axis, from the tick font's metrics."""
        font = self.style.get("tickFont") or QFont()
        metrics = QFontMetricsF(font)
        if self.orientation in ("left", "right"):
            height = metrics.height()
            return lambda _text: height
        return metrics.horizontalAdvance

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N802 (pyqtgraph's name)
        if not self.logMode:
            self.style["maxTextLevel"] = self._text_level
            return super().tickValues(minVal, maxVal, size)
        lo, hi = sorted((minVal * self.scale, maxVal * self.scale))
        ticks = choose_log_ticks(lo, hi, size, self.tick_extent())
        values = [v for v, _ in ticks]
        self.style["maxTextLevel"] = 0  # only the chosen values carry labels
        major = [math.log10(v) / self.scale for v in values]
        minor = [math.log10(v) / self.scale for v in minor_ticks(lo, hi, values, size)]
        return [(1.0, major), (None, minor)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        if not self.logMode:
            return super().tickStrings(values, scale, spacing)
        return [format_tick(float(10.0 ** np.float64(v)) * scale) for v in values]


def single_scale(axis: pg.AxisItem) -> pg.AxisItem:
    """One scale per axis: no automatic SI prefix ("x0.001") on top of the ticks' own numbers."""
    axis.enableAutoSIPrefix(False)
    return axis


def log_axes(*orientations: str) -> dict[str, LogAxisItem]:
    """``axisItems`` for a PlotWidget: a ``LogAxisItem`` on each named side."""
    return {name: LogAxisItem(name) for name in orientations}
