"""Labelled sliders whose ``value()``/``setValue()`` speak the user's units, on a log or a linear scale.

superqt's labelled sliders clamp a typed value to the handle's range without a word; here the handle is
only a way to point, and the value is exact: ``setValue(3.0)`` makes ``value()`` return 3.0, and a value
beyond the handle's ends is kept as it is (the handle rests at that end). λ (0.01–100) or a step size
(1e-4–1) span decades, so their handle moves in log space. Dragging rounds to three significant figures
(or to an integer) so the label and the config read cleanly.

Text typed into the label is not read here: it leaves as ``typed(text)`` for the owner to judge by the
config's rule, and the owner answers with ``setValue`` (accepted) or by showing the value in force.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QSlider, QWidget

_POSITIONS = 1000


class LabeledSlider(QWidget):
    """Horizontal slider with an editable value label; emits ``valueChanged`` in user units (drags and
    ``setValue``), ``typed`` with the text a person entered into the label, and ``pressed`` when a person
    takes hold of the handle."""

    valueChanged = Signal(object)  # float, or int when ``integer``
    typed = Signal(str)
    pressed = Signal()  # the handle is taken hold of (QSlider.sliderPressed); isSliderDown() until released

    def __init__(
        self,
        minimum: float,
        maximum: float,
        *,
        integer: bool = False,
        log: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        if not minimum < maximum or (log and minimum <= 0):
            raise ValueError("a slider needs minimum < maximum (and 0 < minimum on a log scale)")
        self._min, self._max, self._integer, self._log = minimum, maximum, integer, log
        self._value: float | int = minimum
        self._slider = QSlider(Qt.Orientation.Horizontal)
        self._slider.setRange(0, _POSITIONS)
        self._slider.setPageStep(_POSITIONS // 20)
        self._slider.valueChanged.connect(self._on_position)
        self._slider.sliderPressed.connect(self.pressed)
        self._label = QLineEdit()
        self._label.setObjectName("slider_value")
        self._label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._label.setFixedWidth(72)
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
        """Set the exact value (beyond the handle's range the handle rests at the end); a whole-number
        slider rounds a finite value to an integer."""
        if self._integer and isinstance(value, (int, float)) and math.isfinite(value):
            value = int(round(value))
        if value == self._value:
            self._show(self._value)
            return
        self._value = value
        self._show(value)
        self.valueChanged.emit(value)

    def minimum(self) -> float:
        return self._min

    def maximum(self) -> float:
        return self._max

    def text(self) -> str:
        """What the value label shows (or what a person is typing into it)."""
        return self._label.text()

    def lineEdit(self) -> QLineEdit:  # noqa: N802 (Qt naming)
        return self._label

    def isSliderDown(self) -> bool:  # noqa: N802
        return self._slider.isSliderDown()

    # -- internals ---------------------------------------------------------------------------------
    def _scaled(self, value: float) -> float:
        return math.log10(value) if self._log else value

    def _position(self, value: float) -> int:
        if not isinstance(value, (int, float)) or math.isnan(value):
            return 0
        lo, hi = self._scaled(self._min), self._scaled(self._max)
        frac = (self._scaled(min(max(value, self._min), self._max)) - lo) / (hi - lo)
        return int(round(frac * _POSITIONS))

    def _from_position(self, pos: int) -> float | int:
        lo, hi = self._scaled(self._min), self._scaled(self._max)
        scaled = lo + (hi - lo) * pos / _POSITIONS
        raw = 10**scaled if self._log else scaled
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
        """Enter or leaving the label: unchanged text is no edit; anything else is the owner's to answer."""
        text = self._label.text()
        if text != _format(self._value, self._integer):
            self.typed.emit(text)


class LabeledLogSlider(LabeledSlider):
    """A :class:`LabeledSlider` on a log scale (λ, step sizes, inner steps)."""

    def __init__(self, minimum: float, maximum: float, *, integer: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(minimum, maximum, integer=integer, log=True, parent=parent)


def _format(value: object, integer: bool) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    if integer and math.isfinite(value):
        return str(int(value))
    text = f"{value:.6g}"
    return text if float(text) == value or not math.isfinite(value) else repr(float(value))
