"""A line edit that holds a config value and hands typed text to its owner instead of judging it.

QSpinBox clamps a typed 100000 to its maximum and a QValidator swallows ``abc`` without a word; this field
accepts any text, and on Enter or leaving it emits ``typed(text)`` (only when the text differs from the
value shown). The owner reads it by the config's rule and answers: ``setValue`` with the accepted value, or
``setValue`` with the value in force after a refusal.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLineEdit, QWidget


def list_text(value: object) -> str:
    """``[40, 40]`` as "40, 40"."""
    return ", ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


class TextField(QLineEdit):
    """``value()``/``setValue()`` in config units; ``valueChanged`` on a changed ``setValue``, ``typed`` on
    entered text."""

    valueChanged = Signal(object)
    typed = Signal(str)

    def __init__(self, formatter: Callable[[object], str] = str, parent: QWidget | None = None) -> None:
        """Empty until the first ``setValue``; ``formatter`` writes a value as the field shows it."""
        super().__init__(parent)
        self._format = formatter
        self._value: object = None
        self.editingFinished.connect(self._on_edited)

    def value(self) -> object:
        return self._value

    def setValue(self, value: object) -> None:  # noqa: N802 (Qt naming)
        """Show ``value`` (also after a refusal, to put the value in force back); emits when it changes."""
        changed = value != self._value
        self._value = value
        self.setText(self._format(value))
        if changed:
            self.valueChanged.emit(value)

    def _on_edited(self) -> None:
        text = self.text()
        if text != self._format(self._value):
            self.typed.emit(text)
