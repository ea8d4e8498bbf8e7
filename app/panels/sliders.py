"""A labelled log-scale slider whose ``value()``/``setValue()`` speak the user's units.

superqt's labelled sliders are linear; λ (0.01–100) or a step size (1e-4–1) span decades, so the handle
moves in log space while the value stays exact: ``setValue(3.0)`` makes ``value()`` return 3.0, not the
nearest handle position. Dragging rounds to three significant figures (or to an integer) so the label
and the config read cleanly.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QSlider, QWidget

_POSITIONS = 1000


class LabeledLogSlider(QWidget):
    """Horizontal log slider with an editable value label; emits ``valueChanged`` in user units."""

    valueChanged = Signal(object)  # float, or int when ``integer``

    def __init__(
        self,
        minimum: float,
        maximum: float,
        *,
        integer: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        if not 0 < minimum < maximum:
            raise ValueError("a log slider needs 0 < minimum < maximum")
        self._min, self._max, self._integer = minimum, maximum, integer
        self._value: float | int = minimum
        self._slider = QSlider(Qt.Orientation.Horizontal)
        self._slider.setRange(0, _POSITIONS)
        self._slider.setPageStep(_POSITIONS // 20)
        self._slider.valueChanged.connect(self._on_position)
        self._label = QLineEdit()
        self._label.setObjectName("slider_value")
        self._label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._label.setFixedWidth(64)
        self._label.setValidator(QDoubleValidator())
        self._label.editingFinished.connect(self._on_edited)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._slider, 1)
        layout.addWidget(self._label)
        self._show(minimum)

    # -- public API (user units) -------------------------------------------------------------------
    def value(self) -> float | int:
        return self._value

    def setValue(self, value: float) -> None:  # noqa: N802 (Qt naming)
        """Set the exact value (outside the slider's range the handle rests at the end)."""
        value = int(round(value)) if self._integer else float(value)
        if value <= 0 or value == self._value:
            self._show(self._value)
            return
        self._value = value
        self._show(value)
        self.valueChanged.emit(value)

    def minimum(self) -> float:
        return self._min

    def maximum(self) -> float:
        return self._max

    def isSliderDown(self) -> bool:  # noqa: N802
        return self._slider.isSliderDown()

    # -- internals ---------------------------------------------------------------------------------
    def _position(self, value: float) -> int:
        lo, hi = math.log10(self._min), math.log10(self._max)
        frac = (math.log10(min(max(value, self._min), self._max)) - lo) / (hi - lo)
        return int(round(frac * _POSITIONS))

    def _from_position(self, pos: int) -> float | int:
        lo, hi = math.log10(self._min), math.log10(self._max)
        raw = 10 ** (lo + (hi - lo) * pos / _POSITIONS)
        if self._integer:
            return max(int(math.ceil(self._min)), int(round(raw)))
        return float(f"{raw:.3g}")

    def _show(self, value: float) -> None:
        self._slider.blockSignals(True)
        self._slider.setValue(self._position(value))
        self._slider.blockSignals(False)
        self._label.setText(_format(value, self._integer))

    def _on_position(self, pos: int) -> None:
        value = self._from_position(pos)
        if value != self._value:
            self._value = value
            self._label.setText(_format(value, self._integer))
            self.valueChanged.emit(value)

    def _on_edited(self) -> None:
        try:
            value = float(self._label.text())
        except ValueError:
            self._show(self._value)
            return
        self.setValue(value)


def _format(value: float, integer: bool) -> str:
    if integer:
        return str(int(value))
    return f"{value:.3g}"
