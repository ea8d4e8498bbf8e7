"""The hyperparameter panel and the window's reactions: sliders speak user units, restart settings ask
before θ is reset, a diverging run pauses with the engine's message, the preview follows the user's
support points, and shortcuts and themes work."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QComboBox, QWidget

from app.model.fields import relevant
from app.model.messages import TrainerChange
from app.panels.sliders import LabeledLogSlider, LabeledSlider
from app.panels.text_fields import TextField
from app.shell.status import StatusBar
from app.worker.interrupt import Interrupt
from imaml_core import ExperimentConfig

from .app_helpers import small_config

TIMEOUT_MS = 30_000


def test_log_slider_keeps_the_exact_value_and_rounds_drags_to_three_figures(qtbot):
    slider = LabeledLogSlider(0.01, 100.0)
    qtbot.addWidget(slider)
    with qtbot.waitSignal(slider.valueChanged) as blocker:
        slider.setValue(3.0)
    assert blocker.args == [3.0] and slider.value() == 3.0
    slider.setValue(0.0123456)
    assert slider.value() == 0.0123456  # exact, although the handle can only sit on 1000 positions
    slider._slider.setValue(500)  # a drag to the middle of 0.01..100 on a log scale is 1
    assert slider.value() == 1.0
    integer = LabeledLogSlider(1, 200, integer=True)
    qtbot.addWidget(integer)
    integer.setValue(7.4)
    assert integer.value() == 7 and isinstance(integer.value(), int)


def test_sliders_hand_typed_text_to_their_owner_and_keep_values_beyond_the_handle_exactly(qtbot):
    linear = LabeledSlider(0, 50, integer=True, log=False)
    qtbot.addWidget(linear)
    linear.setValue(7)
    linear._slider.setValue(500)  # the middle of 0..50 on a linear scale
    assert linear.value() == 25
    linear.setValue(100000)  # beyond the handle: kept exactly, the handle at its end
    assert linear.value() == 100000 and linear.text() == "100000"
    assert linear._slider.value() == linear._slider.maximum()
    for text in ("abc", "-5", "1.5", ""):  # nothing is swallowed or clamped here: the owner answers
        linear.lineEdit().setText(text)
        with qtbot.waitSignal(linear.typed) as blocker:
            linear.lineEdit().editingFinished.emit()
        assert blocker.args == [text] and linear.value() == 100000
    field = TextField()
    qtbot.addWidget(field)
    field.setValue(5)
    with qtbot.assertNotEmitted(field.typed):
        field.editingFinished.emit()  # leaving an unchanged field is no edit
    field.setText("1e9")
    with qtbot.waitSignal(field.typed) as blocker:
        field.editingFinished.emit()
    assert blocker.args == ["1e9"] and field.value() == 5


def test_the_interrupt_announces_a_wait_only_while_an_iteration_is_in_flight(qtbot):
    interrupt = Interrupt()
    status = StatusBar()
    qtbot.addWidget(status)
    interrupt.pending.connect(status.show_finishing)
    status.set_state("training")
    interrupt.set()  # between iterations: the command lands at once, nothing to announce
    assert status.state.text() == "training"
    interrupt.clear()
    with interrupt.step():
        interrupt.set()
        status.set_state("paused")  # the window shows the new state at once; the wait is shown over it
        assert status.state.text() == "pausing: finishing the step in progress…"
    interrupt.clear()  # the worker has taken the command
    assert status.state.text() == "paused" and not interrupt.is_set()


def test_a_late_taken_of_one_pause_does_not_clear_the_announcement_of_the_next(qtbot):
    """The worker takes pause 1 (its "taken" is queued to the GUI thread); before the GUI thread sees it,
    pause 2 meets the next iteration in flight. Pause 2's wait stays announced."""
    interrupt = Interrupt()
    said: list[str] = []
    interrupt.pending.connect(said.append)
    with interrupt.step():
        interrupt.set("pausing")
    worker = threading.Thread(target=interrupt.clear)  # the worker thread takes pause 1
    worker.start()
    worker.join()
    with interrupt.step():  # the next iteration is in flight when pause 2 comes, before the "taken" lands
        interrupt.set("pausing")
        QApplication.processEvents()  # the GUI thread delivers pause 1's "taken" (posted before the join)
    assert said == ["pausing", "pausing"]  # no "" between: the second wait is still shown
    worker = threading.Thread(target=interrupt.clear)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: said[-1] == "", timeout=5000)  # pause 2 taken: the announcement ends


def test_every_automation_hook_exists_with_the_right_kind(make_window):
    window = make_window()
    for name in ("slider_lam", "slider_cg_steps", "slider_inner_steps", "slider_inner_lr", "slider_meta_lr"):
        slider = window.findChild(QWidget, name)
        assert slider is not None and hasattr(slider, "setValue") and hasattr(slider, "value"), name
        field = name.removeprefix("slider_")
        assert slider.value() == getattr(window.config(), field)
    assert isinstance(window.findChild(QWidget, "combo_method"), QComboBox)
    for name in ("button_start", "button_step", "button_reset"):
        assert window.findChild(QWidget, name) is not None
    for name in ("plot_meta_loss", "plot_adaptation", "plot_memory", "plot_cg"):
        assert type(window.findChild(QWidget, name)).__name__ == "PlotWidget"


def test_each_control_shows_whether_it_applies_live_or_needs_a_restart(make_window):
    window = make_window()
    live = window.findChildren(QWidget, "badge_live")
    restart = window.findChildren(QWidget, "badge_restart")
    assert len(live) >= 8 and len(restart) >= 4
    assert all(b.text() == "live" for b in live) and all(b.text() == "restart" for b in restart)


def test_settings_unused_by_the_method_are_dimmed():
    maml = ExperimentConfig(method="maml")
    assert not relevant(maml, "lam") and not relevant(maml, "cg_steps") and relevant(maml, "inner_lr")
    hf = ExperimentConfig(method="imaml", inner_solver="hf")
    assert relevant(hf, "lam") and not relevant(hf, "inner_lr") and relevant(hf, "hf_cg_steps")


def test_an_invalid_value_is_refused_with_a_message_and_the_config_kept(make_window):
    window = make_window()
    before = window.config()
    window.findChild(QWidget, "edit_hidden").setText("40, banana")
    window.findChild(QWidget, "edit_hidden").editingFinished.emit()
    assert window.config() == before
    assert "hidden" in window.banner.message()


@pytest.mark.parametrize("accept", [False, True])
def test_a_restart_setting_asks_before_resetting_theta(qtbot, make_window, monkeypatch, accept):
    window = make_window()
    window.step()
    qtbot.waitUntil(lambda: window.iteration == 1, timeout=TIMEOUT_MS)
    window.confirm_restarts = True
    asked: list[list[str]] = []
    monkeypatch.setattr(window, "_ask_reset", lambda fields: asked.append(fields) or accept)
    combo = window.findChild(QComboBox, "combo_method")
    if accept:
        with qtbot.waitSignal(window.trainer_ready, timeout=TIMEOUT_MS) as blocker:
            combo.setCurrentIndex(combo.findData("maml"))
        assert blocker.args[0].reason is TrainerChange.RESET and blocker.args[0].config.method == "maml"
        assert window.iteration == 0 and len(window.history) == 0
        assert window.applied_config().method == "maml"
    else:
        combo.setCurrentIndex(combo.findData("maml"))
        assert window.config().method == "imaml" and combo.currentData() == "imaml"  # control reverted
        assert window.iteration == 1
    assert asked == [["method"]]


def test_a_diverging_run_pauses_and_shows_the_engines_message(qtbot, make_window):
    window = make_window(small_config(method="maml", inner_lr=50.0, inner_steps=5, val_every=0))
    with qtbot.waitSignal(window.report_received, timeout=TIMEOUT_MS) as blocker:
        window.start()
    report = blocker.args[0]
    assert report.diverged
    qtbot.waitUntil(lambda: not window.running, timeout=TIMEOUT_MS)
    assert window.banner.level == "error" and report.message in window.banner.message()
    assert "θ and the history are intact" in window.banner.message()
    assert window.iteration == 0  # the engine skipped the update
    window.findChild(QWidget, "slider_inner_lr").setValue(0.001)  # the fix the message suggests
    with qtbot.waitSignal(window.report_received, timeout=TIMEOUT_MS) as blocker:
        window.step()
    assert not blocker.args[0].diverged and window.iteration == 1


def test_clicking_the_adaptation_plot_adds_a_support_point_and_theta_adapts_to_it(qtbot, make_window):
    window = make_window()
    card = window.adaptation
    before = len(card.task.x_support)
    plot = window.findChild(QWidget, "plot_adaptation")
    (x0, x1), (y0, y1) = card.view.viewRange()
    x, y = x0 + 0.1 * (x1 - x0), y1 - 0.1 * (y1 - y0)  # top-left corner: no point of the task sits there
    widget_point = plot.mapFromScene(card.view.mapViewToScene(QPointF(x, y)))
    with qtbot.waitSignal(
        window.preview_shown, timeout=TIMEOUT_MS, check_params_cb=lambda r: len(r.task.x_support) == before + 1
    ) as blocker:
        qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=widget_point)
    added = blocker.args[0].task
    tolerance = 0.02 * (x1 - x0), 0.02 * (y1 - y0)  # a pixel or two of rounding in the click position
    assert added.x_support[-1] == pytest.approx(x, abs=tolerance[0])
    assert added.y_support[-1] == pytest.approx(y, abs=tolerance[1])
    assert len(blocker.args[0].after) == len(blocker.args[0].x_grid)


def test_new_task_button_draws_another_sinusoid(qtbot, make_window):
    window = make_window()
    old = window.adaptation.task
    with qtbot.waitSignal(window.preview_shown, timeout=TIMEOUT_MS) as blocker:
        window.findChild(QWidget, "button_resample").click()
    new = blocker.args[0].task
    assert new.seed != old.seed and new.params != old.params


def test_shortcuts_space_s_ctrl_r_and_ctrl_e_are_bound(make_window):
    window = make_window()
    bound = {a.shortcut().toString(): a.text() for a in window.actions() if not a.shortcut().isEmpty()}
    for key in ("Space", "S", "Ctrl+R", "Ctrl+E"):
        assert QKeySequence(key).toString() in bound, key


def test_space_toggles_the_run_and_ctrl_r_resets(qtbot, make_window):
    window = make_window()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.running
    qtbot.waitUntil(lambda: window.iteration >= 2, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.trainer_ready, timeout=TIMEOUT_MS):
        qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert not window.running and window.iteration == 0


def test_light_and_dark_themes_switch(make_window):
    window = make_window()
    window.set_theme("light")
    assert window.theme == "light" and "light theme" in window.styleSheet() + _app_stylesheet()
    window.set_theme("dark")
    assert "dark theme" in _app_stylesheet()


def _app_stylesheet() -> str:
    from PySide6.QtWidgets import QApplication

    return QApplication.instance().styleSheet()
