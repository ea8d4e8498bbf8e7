"""The hyperparameter panel: one row per ``ExperimentConfig`` field, each with a live/restart badge.

The panel holds no settings of its own: ``show_config`` shows a config, and a user edit is emitted as
``edited(name, value)`` for the window to validate and send on; text a person types into any field leaves
unread as ``edited(name, Typed(text))``, so one rule (app/model/typed.py and the config's ranges) answers
every typed value, and the field then shows what the config holds. Live sliders emit every change: the worker
takes them between iterations, and a value set after the window has taken in iteration n must be in use
by n + 2, however fast iterations run. Sliders of restart fields are throttled (first change at once, then
at most one every ``THROTTLE_MS``), because each change they send rebuilds θ.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible
from superqt.utils import QSignalThrottler

from app.model.fields import ADVANCED, GROUPS, OBJECT_PREFIX, Spec, relevant
from app.model.typed import Typed
from app.panels.sliders import LabeledSlider
from app.panels.text_fields import TextField, list_text
from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ImamlError
from imaml_core.engine.trainer import resolve_device

THROTTLE_MS = 120


class ControlPanel(QScrollArea):
    """Left-hand panel of labelled controls; emits ``edited(field, value)`` for each user change and
    ``gesture_started`` when a person takes hold of a slider (the changes until it is released are one
    gesture, see ``dragging``)."""

    edited = Signal(str, object)
    gesture_started = Signal()

    def __init__(self, cuda_available: bool | None = None, parent: QWidget | None = None) -> None:
        """``cuda_available`` defaults to what this machine's torch reports."""
        super().__init__(parent)
        self.setObjectName("control_panel")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._widgets: dict[str, QWidget] = {}
        self._labels: dict[str, QLabel] = {}
        self._specs: dict[str, Spec] = {}
        body = QWidget()
        body.setObjectName("control_body")
        column = QVBoxLayout(body)
        column.setContentsMargins(10, 8, 10, 8)
        column.setSpacing(10)
        for title, specs in GROUPS:
            column.addWidget(self._group(title, specs))
        advanced = QCollapsible("Advanced")
        advanced.setObjectName("advanced")
        advanced.addWidget(self._group("", ADVANCED))
        column.addWidget(advanced)
        column.addStretch(1)
        self.setWidget(body)
        if not (cuda_available if cuda_available is not None else _cuda_available()):
            combo = self._widgets["device"]
            assert isinstance(combo, QComboBox)
            item = combo.model().item(1)  # type: ignore[attr-defined]
            item.setEnabled(False)
            item.setToolTip("CUDA is not available on this machine")

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        """As wide as the widest row (label, editor, badge) under the current style: the column has no
        horizontal scroll bar, so anything narrower would clip the badges."""
        hint = super().minimumSizeHint()
        body = self.widget().minimumSizeHint().width()
        return QSize(
            max(hint.width(), body + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()), hint.height()
        )

    # -- public ------------------------------------------------------------------------------------
    def editor(self, name: str) -> QWidget:
        return self._widgets[name]

    def dragging(self) -> bool:
        """Whether the user holds a slider down: its changes are one gesture (one change marker)."""
        return any(isinstance(w, LabeledSlider) and w.isSliderDown() for w in self._widgets.values())

    def value(self, name: str) -> object:
        """The control's value in config units."""
        w = self._widgets[name]
        if isinstance(w, QComboBox):
            return w.currentData()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        return w.value()  # type: ignore[attr-defined]  # LabeledSlider, TextField

    def show_config(self, config: ExperimentConfig) -> None:
        """Show ``config`` without emitting ``edited``."""
        for name, w in self._widgets.items():
            value = getattr(config, name)
            w.blockSignals(True)
            if isinstance(w, QComboBox):
                w.setCurrentIndex(max(0, w.findData(value)))
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            else:
                w.setValue(value)  # type: ignore[attr-defined]
            w.blockSignals(False)
        # a learned λ starts at the base value, and moving the base rescales it
        self._labels["lam"].setText("λ base · learned" if config.learn_lam else "λ")
        for name in self._widgets:
            on = relevant(config, name)
            self._widgets[name].setEnabled(on)
            self._labels[name].setEnabled(on)

    # -- construction ------------------------------------------------------------------------------
    def _group(self, title: str, specs: tuple[Spec, ...]) -> QWidget:
        box = QFrame()
        box.setObjectName("control_group")
        grid = QGridLayout(box)
        grid.setContentsMargins(8, 6, 8, 8)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        grid.setColumnStretch(1, 1)
        row = 0
        if title:
            heading = QLabel(title)
            heading.setObjectName("group_title")
            grid.addWidget(heading, row, 0, 1, 3)
            row += 1
        for spec in specs:
            label = QLabel(spec.label)
            label.setObjectName("control_label")
            live = ExperimentConfig.is_live(spec.name)
            tip = f"{spec.name}: {ExperimentConfig.doc(spec.name)}\n" + (
                "Live: applies at the next meta-iteration." if live else "Restart: changing it resets θ."
            )
            label.setToolTip(tip)
            badge = QLabel("live" if live else "restart")
            badge.setObjectName("badge_live" if live else "badge_restart")
            badge.setToolTip(tip)
            badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
            w = self._make(spec)
            w.setToolTip(tip)
            grid.addWidget(label, row, 0)
            grid.addWidget(w, row, 1)
            grid.addWidget(badge, row, 2)
            self._labels[spec.name] = label
            row += 1
        return box

    def _make(self, spec: Spec) -> QWidget:
        w: QWidget
        if spec.kind in ("log", "ilog", "int"):
            w = LabeledSlider(spec.lo, spec.hi, integer=spec.kind != "log", log=spec.kind != "int")
            self._connect_slider(spec.name, w.valueChanged)
            w.typed.connect(lambda text, n=spec.name: self.edited.emit(n, Typed(text)))
            w.pressed.connect(self.gesture_started)
        elif spec.kind == "combo":
            w = QComboBox()
            for text, data in spec.choices:
                w.addItem(text, data)
            w.currentIndexChanged.connect(lambda _i, n=spec.name: self._emit(n))
        elif spec.kind == "check":
            w = QCheckBox()
            w.toggled.connect(lambda _on, n=spec.name: self._emit(n))
        else:  # spin, list, path: typed text, applied on Enter or when the field loses focus
            w = TextField(list_text if spec.kind == "list" else str)
            if spec.kind != "spin":
                w.setPlaceholderText("e.g. 40, 40" if spec.kind == "list" else "default: File ▸ Download Omniglot…")
            w.valueChanged.connect(lambda _v, n=spec.name: self._emit(n))
            w.typed.connect(lambda text, n=spec.name: self.edited.emit(n, Typed(text)))
        w.setObjectName(f"{OBJECT_PREFIX[spec.kind]}_{spec.name}")
        self._widgets[spec.name] = w
        self._specs[spec.name] = spec
        return w

    def _connect_slider(self, name: str, signal: Signal) -> None:
        if ExperimentConfig.is_live(name):
            signal.connect(lambda _v, n=name: self._emit(n))
            return
        throttler = QSignalThrottler(parent=self)  # leading edge at once, then one per interval
        throttler.setTimeout(THROTTLE_MS)
        signal.connect(throttler.throttle)
        throttler.triggered.connect(lambda n=name: self._emit(n))

    def _emit(self, name: str) -> None:
        self.edited.emit(name, self.value(name))


def _cuda_available() -> bool:
    try:
        return resolve_device("auto").type == "cuda"
    except ImamlError:  # pragma: no cover
        return False
