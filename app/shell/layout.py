"""Where things sit in the window: the run toolbar, the 2×2 plot grid and the body splitter.

Pure construction (no behaviour): the window passes in its widgets and slots and keeps the results.
Both columns scroll rather than push the window past the screen: the controls are a scroll area, and the
plot grid sits in one that scrolls only when the window is shorter or narrower than the plots' minimum
sizes, so the window's minimum size fits a 1280×720 screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStyle,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

RUNS_DOCK_SHARE = 0.3  # of the window's height, for the Runs dock when no saved layout gives its size
RUNS_DOCK_MIN = 110  # a header and about three rows
CENTRE_SPACING = 6  # between the banner and the plot grid

RUN_BUTTONS = (  # objectName, text, icon, tooltip
    ("button_start", "Start", QStyle.StandardPixmap.SP_MediaPlay, "Start or pause meta-training (Space)"),
    ("button_step", "Step", QStyle.StandardPixmap.SP_MediaSkipForward, "Run one meta-iteration (S)"),
    ("button_reset", "Reset", QStyle.StandardPixmap.SP_BrowserReload, "New θ from the current settings (Ctrl+R)"),
    (
        "button_fork",
        "Fork here",
        QStyle.StandardPixmap.SP_FileDialogNewFolder,
        "Go on in a new run from this iteration; the current run keeps its state (Ctrl+F)",
    ),
)


def run_toolbar(style: QStyle, slots: dict[str, Callable[[], None]]) -> tuple[QToolBar, dict[str, QPushButton], QLabel]:
    """Start/Pause, Step, Reset on the left; a one-line readout of the run on the right."""
    bar = QToolBar("Run")
    bar.setObjectName("toolbar_run")
    bar.setMovable(False)
    buttons = {}
    for name, text, icon, tip in RUN_BUTTONS:
        b = QPushButton(style.standardIcon(icon), text)
        b.setObjectName(name)
        b.setToolTip(tip)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space belongs to Start/Pause, not to a focused button
        b.clicked.connect(lambda _checked=False, slot=slots[name]: slot())
        bar.addWidget(b)
        buttons[name] = b
    spacer = QWidget()
    spacer.setObjectName("toolbar_spacer")
    spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    bar.addWidget(spacer)
    readout = QLabel("")
    readout.setObjectName("readout")
    readout.setTextFormat(Qt.TextFormat.RichText)
    bar.addWidget(readout)
    return bar, buttons, readout


def show_running(button: QPushButton, running: bool) -> None:
    """Start/Pause's text, icon and QSS ``running`` property follow the run."""
    icon = QStyle.StandardPixmap.SP_MediaPause if running else QStyle.StandardPixmap.SP_MediaPlay
    button.setText("Pause" if running else "Start")
    button.setIcon(button.style().standardIcon(icon))
    button.setProperty("running", running)
    button.style().unpolish(button)
    button.style().polish(button)


def plot_grid(top_left: QWidget, top_right: QWidget, bottom_left: QWidget, bottom_right: QWidget) -> QSplitter:
    """Four cards in resizable rows; widths start where each card's content reads best at 1280×800."""
    top, bottom = QSplitter(Qt.Orientation.Horizontal), QSplitter(Qt.Orientation.Horizontal)
    top.addWidget(top_left)
    top.addWidget(top_right)
    bottom.addWidget(bottom_left)
    bottom.addWidget(bottom_right)
    grid = QSplitter(Qt.Orientation.Vertical)
    grid.setObjectName("plot_grid")
    grid.addWidget(top)
    grid.addWidget(bottom)
    for split in (top, bottom, grid):
        split.setChildrenCollapsible(False)
        split.setHandleWidth(6)
    top.setSizes([450, 490])
    bottom.setSizes([540, 400])
    return grid


def scrolling(grid: QWidget) -> QScrollArea:
    """``grid`` filling a frameless scroll area: it scrolls only below the grid's minimum size."""
    scroll = QScrollArea()
    scroll.setObjectName("plot_scroll")
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidgetResizable(True)
    scroll.setWidget(grid)
    return scroll


def runs_dock_height(window: QMainWindow) -> int:
    """The Runs dock's first height: ``RUNS_DOCK_SHARE`` of the window, less where the plot grid would have
    to scroll (with the banner shown), never under ``RUNS_DOCK_MIN``. Call it once the window is laid out."""
    dock, banner = window.findChild(QWidget, "dock_runs"), window.findChild(QWidget, "banner")
    scroll = window.findChild(QScrollArea, "plot_scroll")
    assert dock is not None and banner is not None and scroll is not None and scroll.widget() is not None
    spare = scroll.height() - scroll.widget().minimumSizeHint().height()
    if not banner.isVisible():
        spare -= banner.sizeHint().height() + CENTRE_SPACING
    return max(RUNS_DOCK_MIN, min(int(RUNS_DOCK_SHARE * window.height()), dock.height() + spare))


def body(controls: QWidget, banner: QWidget, grid: QWidget) -> QWidget:
    """Controls on the left; banner above the (scrolling) plot grid on the right."""
    centre = QWidget()
    centre.setObjectName("centre")
    column = QVBoxLayout(centre)
    column.setContentsMargins(4, 6, 6, 4)
    column.setSpacing(CENTRE_SPACING)
    column.addWidget(banner)
    column.addWidget(scrolling(grid), 1)
    split = QSplitter(Qt.Orientation.Horizontal)
    split.setObjectName("body")
    split.addWidget(controls)
    split.addWidget(centre)
    split.setStretchFactor(1, 1)
    split.setSizes([controls.minimumSizeHint().width(), 950])  # the controls at their minimum: the plots take the rest
    split.setChildrenCollapsible(False)
    holder = QWidget()
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(split)
    return holder


def assemble(window: Any) -> None:
    """Build the window's widgets and keep them on it: controls, run toolbar and buttons, the four cards
    (the adaptation card is the task view: curves or images), banner and status bar."""
    from app.panels.controls import ControlPanel
    from app.plots.base import MetaLossCard
    from app.plots.cards import CGCard, MemoryCard
    from app.shell.banner import Banner
    from app.shell.status import StatusBar
    from app.shell.task_view import TaskView

    window.controls = ControlPanel()
    window.controls.edited.connect(window._on_edited)
    window.state.gesture_active = window.controls.dragging  # a held slider's changes make one marker
    window.controls.gesture_started.connect(window.state.begin_gesture)
    slots = {
        "button_start": window.toggle_run,
        "button_step": window.step,
        "button_reset": window.reset,
        "button_fork": window.fork_here,
    }
    bar, buttons, window.readout = run_toolbar(window.style(), slots)
    window.button_start, window.button_step, window.button_reset, window.button_fork = buttons.values()
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    window.meta_card = MetaLossCard()
    window.task_view = TaskView()
    window.adaptation = window.task_view.curves
    window.memory_card = MemoryCard()
    window.cg_card = CGCard()
    window.memory_card.button.clicked.connect(window.run_profile)
    window.cards = (window.meta_card, *window.task_view.cards, window.memory_card, window.cg_card)
    window.banner = Banner()
    grid = plot_grid(window.meta_card, window.task_view, window.memory_card, window.cg_card)
    window.setCentralWidget(body(window.controls, window.banner, grid))
    window.status = StatusBar()
    window.setStatusBar(window.status)
