"""Overlays compare runs as the live curve shows them: smoothed with the meta-loss card's setting, named in
a legend, and seed groups drawn as their mean with a 95% band."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from app.panels.runs_panel import RunsModel
from app.plots.base import moving_average
from imaml_core.experiments.runs import RunStore

from .app_helpers import small_config

TIMEOUT_MS = 60_000
ITERATIONS = 30  # under the overlays' 500 points: drawn at full resolution, so the smoothing is exact


def loss_curve(seed: int) -> np.ndarray:
    """A noisy decreasing train loss, different for each seed."""
    rng = np.random.default_rng(seed)
    return 2.0 / np.arange(1, ITERATIONS + 1) + rng.uniform(0.0, 0.5, ITERATIONS)


def make_run(store: RunStore, seed: int, name: str, lam: float = 20.0) -> str:
    """A run of the window's settings but ``seed`` (and ``lam``), with a hand-written history: the train
    loss of ``loss_curve(seed)`` and a validation loss every 10 iterations."""
    with store.create(small_config(seed=seed, lam=lam), name=name, tensorboard=False) as run:
        run_id = run.info.id
    lines = ["iteration,meta_loss,val_loss"]
    for i, value in enumerate(loss_curve(seed), start=1):
        lines.append(f"{i},{float(value)!r},{(float(value) if i % 10 == 0 else float('nan'))!r}")
    (run.path / "metrics.csv").write_text("\n".join(lines) + "\n")
    return run_id


def overlay_items(window) -> list:
    plot = window.findChild(QWidget, "plot_meta_loss").getPlotItem()
    return [item for item in plot.items if item.zValue() < 0 and not getattr(item, "is_range_anchor", False)]


def train_curves(window) -> list[pg.PlotDataItem]:
    """The overlaid train-loss curves (opaque pens; validation is drawn faint)."""
    return [i for i in overlay_items(window) if isinstance(i, pg.PlotDataItem) and i.opts["pen"].color().alpha() == 255]


def settle(qtbot, window, ids: list[str]) -> None:
    controller = window.runs_controller
    qtbot.waitUntil(
        lambda: sorted(window.overlaid()) == sorted(ids) and not controller.overlays.busy(), timeout=TIMEOUT_MS
    )


def test_overlay_curves_follow_the_meta_loss_cards_smoothing_and_are_named_in_the_legend(qtbot, make_window, runs_dir):
    runs_dir.mkdir(parents=True)
    other = make_run(RunStore(runs_dir), 7, "the other run")
    window = make_window()
    card = window.meta_card
    assert card.smooth.isChecked()
    window.overlay([other])
    settle(qtbot, window, [other])
    raw = loss_curve(7)
    (curve,) = train_curves(window)
    # the same function and window as the live curve: equal to the last bit
    np.testing.assert_array_equal(curve.yData, moving_average(raw, card.smooth_window.value()))
    card.smooth_window.setValue(5)
    np.testing.assert_array_equal(curve.yData, moving_average(raw, 5))
    card.smooth.setChecked(False)
    np.testing.assert_array_equal(curve.yData, raw)
    assert window.runs_controller.overlays.legend_names() == ["the other run"]  # its name, not its id
    window.overlay([])
    qtbot.waitUntil(lambda: not overlay_items(window), timeout=TIMEOUT_MS)
    assert window.runs_controller.overlays.legend_names() == []


def test_ticked_seeds_of_a_group_overlay_as_one_mean_curve_with_a_band(qtbot, make_window, runs_dir):
    runs_dir.mkdir(parents=True)
    store = RunStore(runs_dir)
    seeds = [make_run(store, seed, "imaml λ=20") for seed in (1, 2)]
    alone = make_run(store, 3, "imaml λ=2", lam=2.0)  # another λ as well as another seed: no group
    window = make_window()
    window.meta_card.smooth.setChecked(False)
    panel = window.runs_controller.panel
    panel.findChild(QWidget, "check_group_seeds").setChecked(True)
    qtbot.waitUntil(lambda: panel.model.groups is not None and alone in panel.model.groups, timeout=TIMEOUT_MS)
    window.overlay([*seeds, alone])
    settle(qtbot, window, [*seeds, alone])
    bands = [i for i in overlay_items(window) if isinstance(i, pg.FillBetweenItem)]
    assert len(bands) == 2  # the group's train loss and validation loss; the lone run has none
    names = window.runs_controller.overlays.legend_names()
    assert names == ["imaml λ=20 · 2 seeds", "imaml λ=2"]  # one entry per group, one per lone run
    mean = (loss_curve(1) + loss_curve(2)) / 2
    curves = train_curves(window)
    assert len(curves) == 2  # the group's mean and the lone run
    (group_mean,) = [c for c in curves if len(c.yData) == ITERATIONS and np.allclose(c.yData, mean, rtol=1e-15)]
    edges = [i for i in overlay_items(window) if isinstance(i, pg.PlotDataItem) and i not in curves]
    assert all(np.all(edge.yData[np.isfinite(edge.yData)] > 0) for edge in edges)  # a log axis: the band stays above 0
    for band in bands:  # the fill lies between its edges in the plot's log10 units, not in raw values
        low, high = (
            (np.log10(np.nanmin(e.yData)) for e in band.curves),
            (np.log10(np.nanmax(e.yData)) for e in band.curves),
        )
        box = band.path().boundingRect()
        assert box.top() >= min(low) - 1e-9 and box.bottom() <= max(high) + 1e-9
    window.meta_card.logy.setChecked(False)  # and back in raw values when the axis turns linear
    for band in bands:
        box = band.path().boundingRect()
        assert box.bottom() <= max(np.nanmax(e.yData) for e in band.curves) + 1e-9
    panel.group_seeds.setChecked(False)  # one curve per run again
    settle(qtbot, window, [*seeds, alone])
    qtbot.waitUntil(
        lambda: not [i for i in overlay_items(window) if isinstance(i, pg.FillBetweenItem)], timeout=TIMEOUT_MS
    )
    assert sorted(window.runs_controller.overlays.legend_names()) == ["imaml λ=2", "imaml λ=20", "imaml λ=20"]
    assert group_mean.scene() is None


def test_a_parent_in_another_folder_is_named_and_can_be_overlaid(tmp_path):
    other = RunStore(tmp_path / "sweep")
    parent = make_run(other, 4, "trial 3: λ=5")
    path = next(r.path for r in other.list())
    model = RunsModel()
    model.remember_name(parent, "trial 3: λ=5", path)
    model.set_ticked([parent])
    (item,) = model.overlays()
    assert item.ids == (parent,) and item.paths == (path,) and item.name == "trial 3: λ=5"
    model.set_rows([])  # a listing of the runs folder keeps it ticked
    assert model.ticked == [parent]
