"""The window fits a 1280×720 screen: its minimum size does, every plot keeps its minimum there and nothing
lies outside the window; the Runs dock takes about 30% of a 1080-pixel-high window, showing more than three
rows, and the user's size for it comes back at the next launch."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QScrollArea, QWidget

from .app_helpers import shown_window

# A 1280×720 screen less a title bar and a task bar or top panel (Windows: 31 + 48; GNOME: 37 + 32).
USABLE_720P = QSize(1280, 720 - 80)


def effective_minimum(widget: QWidget) -> QSize:
    """The size a layout will not shrink ``widget`` below (its minimum size, else its minimum size hint)."""
    hint, minimum = widget.minimumSizeHint(), widget.minimumSize()
    return QSize(minimum.width() or hint.width(), minimum.height() or hint.height())


def outside(window: QWidget) -> list[str]:
    """The visible widgets of ``window`` (not its popups) that reach past their parent's edges, and so past
    the window's; a scroll area's content is exempt (it scrolls inside the viewport, which is checked)."""
    names = []
    for w in window.findChildren(QWidget):
        parent = w.parentWidget()
        if not w.isVisible() or w.isWindow() or w.window() is not window or parent is None or parent.rect().isEmpty():
            continue
        scroller = parent.parentWidget()
        if isinstance(scroller, QAbstractScrollArea) and parent is scroller.viewport():
            continue
        if not parent.rect().contains(w.geometry()):
            names.append(f"{type(w).__name__}({w.objectName()}) at {w.geometry().getRect()} in {parent.size()}")
    return names


def visible_plots(window) -> list[QWidget]:
    return [p for card in window.cards for p in card.plots if p.isVisible()]


def test_the_windows_minimum_size_fits_a_1280x720_screen(qtbot, settings_dir, runs_dir):
    with shown_window(qtbot, runs_dir) as window:
        hint = window.minimumSizeHint()
        assert hint.width() <= USABLE_720P.width() and hint.height() <= USABLE_720P.height(), hint
        window.banner.show_message("error", "a long message " * 20, topic="run")  # a shown banner too
        QApplication.processEvents()
        hint = window.minimumSizeHint()
        assert hint.width() <= USABLE_720P.width() and hint.height() <= USABLE_720P.height(), hint


def test_at_1280x720_every_plot_has_its_minimum_size_and_nothing_is_outside_the_window(qtbot, settings_dir, runs_dir):
    with shown_window(qtbot, runs_dir, (1280, 720)) as window:
        QApplication.processEvents()
        assert window.size() == QSize(1280, 720)
        plots = visible_plots(window)
        assert len(plots) >= 4
        for plot in plots:
            minimum = effective_minimum(plot)
            assert plot.width() >= minimum.width() and plot.height() >= minimum.height(), plot.objectName()
        scroll = window.findChild(QScrollArea, "plot_scroll")
        assert not scroll.verticalScrollBar().isVisible() and not scroll.horizontalScrollBar().isVisible()
        assert outside(window) == []
        window.banner.show_message("info", "Continued the run. Press Start to continue training.", topic="run")
        QApplication.processEvents()  # the banner takes its height from the plots, which scroll if need be
        assert window.size() == QSize(1280, 720)
        for plot in plots:
            minimum = effective_minimum(plot)
            assert plot.width() >= minimum.width() and plot.height() >= minimum.height(), plot.objectName()


def test_the_runs_dock_takes_about_30_percent_of_a_1080p_window_and_shows_more_than_three_rows(
    qtbot, settings_dir, runs_dir
):
    with shown_window(qtbot, runs_dir, (1920, 1080)) as window:
        QApplication.processEvents()
        dock = window.runs_controller.dock
        assert 0.25 * 1080 <= dock.height() <= 0.35 * 1080
        table = window.runs_controller.panel.table
        rows = table.viewport().height() // table.verticalHeader().defaultSectionSize()
        assert rows > 3


def test_the_runs_docks_height_is_restored_at_the_next_launch(qtbot, settings_dir, runs_dir):
    screen = QApplication.primaryScreen().availableGeometry()  # restoreGeometry keeps a window on screen
    size = QSize(min(1280, screen.width() - 40), min(800, screen.height() - 80))
    with shown_window(qtbot, runs_dir, size.toTuple(), restore=True) as window:
        dock = window.runs_controller.dock
        default = dock.height()
        window.resizeDocks([dock], [default + 60], Qt.Orientation.Vertical)
        qtbot.waitUntil(lambda: dock.height() == default + 60)
    with shown_window(qtbot, runs_dir, restore=True) as window:
        QApplication.processEvents()
        assert window.size() == size
        assert window.runs_controller.dock.height() == default + 60
