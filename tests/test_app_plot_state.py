"""The plots follow the run: after a reset, a continued recorded run or a family switch every axis ranges
over the new data (even after the user zoomed), and the λ plot shows the new run's λ only."""

from __future__ import annotations

from app.model.messages import TrainerChange
from imaml_core.cli import main as imaml_cli

from .app_helpers import small_config, train

TIMEOUT_MS = 60_000


def x_range(plot) -> tuple[float, float]:
    (lo, hi), _ = plot.getPlotItem().getViewBox().viewRange()
    return lo, hi


def test_a_reset_ranges_the_meta_loss_axes_over_the_new_run_even_after_a_zoom(qtbot, make_window):
    window = make_window()
    train(qtbot, window, 30)
    plot = window.meta_card.plot
    qtbot.waitUntil(lambda: x_range(plot)[1] >= 30, timeout=TIMEOUT_MS)
    plot.getPlotItem().getViewBox().setXRange(20, 30)  # the user zooms in: auto-range is off
    with qtbot.waitSignal(
        window.trainer_ready, timeout=TIMEOUT_MS, check_params_cb=lambda i: i.reason is TrainerChange.RESET
    ):
        window.reset()
    train(qtbot, window, 3)
    # the new run's three iterations, with the range anchor's rounding; nothing of the old 20-30
    qtbot.waitUntil(lambda: x_range(plot)[0] < 1.5 and x_range(plot)[1] < 8, timeout=TIMEOUT_MS)
    for card_plot in (window.cg_card.plot, window.cg_card.lam_plot, window.memory_card.plot):
        qtbot.waitUntil(lambda p=card_plot: x_range(p)[1] < 8, timeout=TIMEOUT_MS)


def test_a_continued_run_replaces_the_previous_runs_lambda_curves_and_axes(qtbot, make_window, runs_dir, tmp_path):
    runs_dir.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "small.toml"
    small_config(val_every=0).save(config)
    args = ["train", "--config", str(config), "--out", str(runs_dir / "recorded"), "--iterations", "12", "--quiet"]
    assert imaml_cli(args) == 0
    window = make_window(small_config(lam_shape="layer"))
    train(qtbot, window, 2)
    lam_plot = window.cg_card.lam_plot
    qtbot.waitUntil(lambda: len(window.cg_card.lam_curves) > 1, timeout=TIMEOUT_MS)  # one per layer
    lam_plot.getPlotItem().getViewBox().setXRange(100, 200)  # a zoom the next run must not keep
    with qtbot.waitSignal(
        window.trainer_ready, timeout=TIMEOUT_MS, check_params_cb=lambda i: i.reason is TrainerChange.CONTINUE
    ):
        window.continue_run(runs_dir / "recorded")
    qtbot.waitUntil(lambda: len(window.history) == 12, timeout=TIMEOUT_MS)
    recorded_lam = window.history.lam_columns()["λ"]  # a fixed scalar λ is in metrics.csv, row by row
    assert recorded_lam.tolist() == [small_config().lam] * 12
    train(qtbot, window, 1)
    qtbot.waitUntil(lambda: set(window.cg_card.lam_curves) == {"λ"}, timeout=TIMEOUT_MS)  # the run's scalar λ
    legend_names = [label.text for _sample, label in window.cg_card.lam_legend.items]
    assert legend_names == ["λ"]
    qtbot.waitUntil(lambda: x_range(lam_plot)[0] < 2 and 13 <= x_range(lam_plot)[1] < 40, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: x_range(window.meta_card.plot)[0] < 2, timeout=TIMEOUT_MS)
