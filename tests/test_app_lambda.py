"""λ in the window: its control shows the base value and whether λ is learned, the CG card plots λ per layer,
and the shape and learning switch are restart settings while the base value stays live."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QComboBox, QWidget

from app.model.messages import TrainerChange

from .app_helpers import small_config

TIMEOUT_MS = 60_000


def lam_lines(window) -> dict[str, np.ndarray]:
    return {name: curve.getData()[1] for name, curve in window.cg_card.lam_curves.items()}


def test_a_learned_per_layer_lambda_is_plotted_one_line_per_layer(qtbot, make_window):
    window = make_window(small_config(lam_shape="layer", learn_lam=True, lam_lr=0.05))
    assert window.controls._labels["lam"].text() == "λ base · learned"
    window.start()
    qtbot.waitUntil(lambda: window.iteration >= 8, timeout=TIMEOUT_MS)
    window.pause()
    # 3 weights and 3 biases, each drawn up to the last report (the card redraws a few times a second)
    qtbot.waitUntil(
        lambda: len(lam_lines(window)) == 6 and all(len(y) == len(window.history) for y in lam_lines(window).values()),
        timeout=TIMEOUT_MS,
    )
    lines = lam_lines(window)
    assert set(lines) == {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"}
    moved = [float(np.nanmax(y) / np.nanmin(y)) for y in lines.values() if len(y)]
    assert max(moved) > 1.0  # learning moves λ away from its start
    assert window.findChild(QWidget, "plot_lambda").getPlotItem().ctrl.logYCheck.isChecked()


def test_lambda_shape_and_learning_are_restart_settings_and_the_base_is_live(qtbot, make_window):
    window = make_window()
    assert window.controls._labels["lam"].text() == "λ"
    window.findChild(QWidget, "slider_lam").setValue(3.0)
    assert window.config().lam == 3.0  # live: no new trainer
    combo = window.findChild(QComboBox, "combo_lam_shape")
    with qtbot.waitSignal(
        window.trainer_ready, timeout=TIMEOUT_MS, check_params_cb=lambda i: i.reason is TrainerChange.RESET
    ) as blocker:
        combo.setCurrentIndex(combo.findData("parameter"))
    assert blocker.args[0].config.lam_shape == "parameter"
    with qtbot.waitSignal(window.trainer_ready, timeout=TIMEOUT_MS) as blocker:
        window.findChild(QWidget, "check_learn_lam").setChecked(True)
    assert blocker.args[0].config.learn_lam and window.controls._labels["lam"].text() == "λ base · learned"
    assert window.findChild(QWidget, "slider_lam_lr").isEnabled()
