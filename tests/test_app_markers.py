"""One change marker per gesture (model rules in SessionState, fake clock), and marker labels that stay
inside the meta-loss plot without piling on each other (pytest-qt)."""

from __future__ import annotations

from app.model.session import SessionState
from imaml_core import ExperimentConfig, StepReport

BASE = ExperimentConfig(meta_batch=5, inner_steps=3, val_tasks=20)


def report(iteration: int, config: ExperimentConfig) -> StepReport:
    nan = float("nan")
    return StepReport(iteration, config, 1.0, 2.0, nan, nan, 0.0, 0, nan, 0, 0.01, 1.0)


class Session:
    """A SessionState driven as the window drives it: edits adopted at clock times, reports in between."""

    def __init__(self) -> None:
        self.now = 0.0
        self.held = False
        self.state = SessionState(BASE, clock=lambda: self.now, gesture_active=lambda: self.held)
        self.markers: list[tuple[int, str]] = []
        self.state.marker_added.connect(lambda i, text: self.markers.append((i, text)))
        self.state.marker_relabelled.connect(lambda text: self.markers.__setitem__(-1, (self.markers[-1][0], text)))
        self.iteration = 1
        self.state.take_report(report(self.iteration, BASE))

    def press(self, at: float) -> None:
        """Take hold of a slider (ControlPanel.gesture_started → SessionState.begin_gesture)."""
        self.now = at
        self.held = True
        self.state.begin_gesture()

    def release(self) -> None:
        self.held = False

    def edit(self, at: float, **changes: object) -> None:
        self.now = at
        self.state.adopt(self.state.config.replace(**changes))

    def step(self) -> None:
        self.iteration += 1
        self.state.take_report(report(self.iteration, self.state.config))


def test_a_drag_of_thirty_changes_over_two_seconds_is_one_marker_from_first_old_to_last_new_value():
    s = Session()
    s.press(0.0)
    values = [20.0 * 0.85**k for k in range(1, 31)]
    for k, lam in enumerate(values):
        s.edit(k * 2.0 / 30, lam=lam)
        if k % 3 == 2:  # several meta-iterations finish during the drag
            s.step()
    s.release()
    s.step()
    assert s.markers == [(2, f"λ 20→{values[-1]:.3g}")]


def test_a_hold_that_begins_after_the_current_marker_is_a_marker_of_its_own():
    s = Session()
    s.edit(0.0, lam=10.0)
    s.step()
    s.press(30.0)  # the λ marker is 30 s old when a slider is taken hold of
    s.edit(30.0, meta_lr=0.002)
    s.step()
    s.edit(31.5, meta_lr=0.003)  # the same hold goes on after a pause
    s.step()
    assert s.markers == [(2, "λ 20→10"), (3, "meta step size 0.001→0.003")]


def test_two_gestures_five_seconds_apart_are_two_markers():
    s = Session()
    s.edit(0.0, lam=10.0)
    s.edit(0.3, lam=6.0)
    s.step()
    s.edit(5.3, lam=2.0)
    s.step()
    assert s.markers == [(2, "λ 20→6"), (3, "λ 6→2")]


def test_a_change_while_a_control_is_held_merges_even_after_a_pause():
    s = Session()
    s.press(0.0)
    s.edit(0.0, lam=10.0)
    s.step()
    s.step()  # the slider rests under the pointer for three seconds
    s.edit(3.0, lam=4.0)
    s.step()
    assert s.markers == [(2, "λ 20→4")]
    s.release()
    s.edit(9.0, inner_steps=5)
    s.step()
    assert s.markers[-1] == (5, "inner steps 3→5")


def test_a_keyboard_gesture_of_quick_presses_is_one_marker_and_a_new_trainer_starts_a_new_one():
    s = Session()
    for k in range(5):
        s.edit(0.4 * k, inner_steps=4 + k)
        s.step()
    assert s.markers == [(2, "inner steps 3→8")]
    s.state.begin_segment()
    s.edit(2.0, inner_steps=9)
    s.step()
    assert s.markers[-1] == (7, "inner steps 8→9")


def test_a_held_control_merges_nothing_when_no_press_was_reported():
    s = Session()
    s.edit(0.0, lam=10.0)
    s.step()
    s.held = True  # held, but no gesture began: only the time rule merges
    s.edit(5.0, lam=4.0)
    s.step()
    assert s.markers == [(2, "λ 20→10"), (3, "λ 10→4")]


def test_pressing_a_slider_handle_starts_a_gesture_of_the_control_panel(qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QSlider, QStyle, QStyleOptionSlider

    from app.panels.controls import ControlPanel

    panel = ControlPanel(cuda_available=False)
    qtbot.addWidget(panel)
    panel.resize(420, 900)
    panel.show()
    qtbot.waitExposed(panel)
    slider = panel.editor("lam").findChild(QSlider)
    option = QStyleOptionSlider()
    slider.initStyleOption(option)
    handle = slider.style().subControlRect(
        QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, slider
    )
    assert not panel.dragging()
    with qtbot.waitSignal(panel.gesture_started, timeout=1000):
        qtbot.mousePress(slider, Qt.MouseButton.LeftButton, pos=handle.center())
    assert panel.dragging()
    qtbot.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=handle.center())
    assert not panel.dragging()


def test_label_rows_put_close_labels_on_different_rows_and_flip_labels_at_the_right_edge():
    from app.plots.markers import MARKER_ROWS, label_rows

    rows = label_rows([10.0, 11.0, 12.0, 300.0], [80.0] * 4, 400.0)
    assert [r for r, _ in rows[:3]] == [0, 1, 2]  # three labels 1 px apart: three rows
    assert rows[3] == (0, False)  # far from the others: back on the first row
    assert label_rows([395.0], [80.0], 400.0) == [(0, True)]  # would leave the view: drawn left of its line
    crowded = label_rows([float(x) for x in range(10)], [50.0] * 10, 400.0)
    assert {r for r, _ in crowded} == set(range(MARKER_ROWS))  # more labels than rows: the rows are reused


def test_meta_loss_marker_labels_stay_inside_the_plot_on_separate_rows(qtbot):
    from app.plots.base import MetaLossCard

    card = MetaLossCard()
    qtbot.addWidget(card)
    card.resize(640, 300)
    card.show()
    qtbot.waitExposed(card)
    view = card.plot.getPlotItem().getViewBox()
    card.plot.getPlotItem().setLogMode(y=False)
    view.setRange(xRange=(0, 100), yRange=(0, 1), padding=0)
    qtbot.waitUntil(lambda: view.width() > 200)
    one_px = 100.0 / view.width()
    card.add_marker(50, "λ 20→0.147")
    card.add_marker(50 + one_px, "inner steps 3→5")
    card.add_marker(99.8, "meta step size 0.001→0.003")
    card.plot.grab()
    first, second, edge = (line.label for line in card.marker_layer.lines)
    assert first.orthoPos != second.orthoPos  # different rows
    box = view.sceneBoundingRect()
    for label in (first, second, edge):
        rect = label.sceneBoundingRect()
        assert box.contains(rect), (label.toPlainText(), rect, box)
    assert edge.sceneBoundingRect().right() <= box.right()
    assert [text for _, text in card.markers] == ["λ 20→0.147", "inner steps 3→5", "meta step size 0.001→0.003"]


def test_the_marker_list_keeps_the_newest_forty_with_their_lines(qtbot):
    import pyqtgraph as pg

    from app.plots.markers import LABELLED_MARKERS, MAX_MARKERS, MarkerLayer

    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    layer = MarkerLayer(plot)
    for i in range(60):
        layer.add(i, f"change {i}")
    assert MAX_MARKERS == 40
    assert len(layer.markers) == len(layer.lines) == MAX_MARKERS
    assert layer.markers == [(i, f"change {i}") for i in range(20, 60)]
    assert [line.value() for line in layer.lines] == [i for i, _ in layer.markers]  # one marker per line shown
    shown = [item for item in plot.getPlotItem().items if isinstance(item, pg.InfiniteLine)]
    assert len(shown) == MAX_MARKERS
    assert [line.label.isVisible() for line in layer.lines].count(True) == LABELLED_MARKERS
    layer.relabel_last("change 59 and more")
    assert layer.markers[-1] == (59, "change 59 and more")
