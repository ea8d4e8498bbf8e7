"""Live plots keep their axis ranges on a coarse grid (app/ranges.py): re-laying out an axis is most of a
plot's paint cost, and doing it for every new meta-iteration would stall the GUI thread."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imaml_core import ExperimentConfig, StepReport


def test_nice_ceil_rounds_up_by_at_most_a_third():
    from app.plots.ranges import log_ceil, log_floor, nice_ceil

    for value in np.geomspace(1e-9, 1e9, 2000):
        up = nice_ceil(float(value))
        assert value <= up <= 4 / 3 * value * (1 + 1e-12)
    for value in (1.0, 2.0, 5.0, 100.0, 0.3):
        assert nice_ceil(value) == pytest.approx(value)  # ladder values map to themselves
        assert log_floor(value) <= value <= log_ceil(value) <= value * 10**0.25 * (1 + 1e-12)


def _report(i: int, rng: np.random.Generator) -> StepReport:
    loss = 3.0 * math.exp(-i / 150) + 0.05 + 0.02 * rng.random()
    return StepReport(
        iteration=i,
        config=ExperimentConfig(),
        meta_loss=loss,
        pre_loss=4 + rng.random(),
        val_loss=loss if i % 10 == 0 else float("nan"),
        cg_residual=10 ** -rng.uniform(2, 5),
        cg_iterations=5.0,
        cg_nonpositive=0,
        stationarity=10 ** -rng.uniform(1, 3),
        memory_bytes=int(240_000 + 1000 * rng.random()),
        seconds=0.01,
        grad_norm=1.0,
    )


@pytest.mark.parametrize("card_name", ["MetaLossCard", "CGCard", "MemoryCard"])
def test_live_plot_ranges_change_rarely_and_always_show_all_data(qtbot, card_name):
    from app.model.history import History
    from app.plots import base as plots
    from app.plots import cards

    card = getattr(plots if card_name == "MetaLossCard" else cards, card_name)()
    qtbot.addWidget(card)
    history, rng = History(), np.random.default_rng(0)
    view = card.plots[0].getPlotItem().getViewBox()
    ranges = []
    for i in range(1, 601):
        history.append(_report(i, rng))
        card.refresh(history)
        view.updateAutoRange()  # what the next paint would do
        (x0, x1), (y0, y1) = view.viewRange()
        ranges.append((x0, x1, y0, y1))
        assert x0 <= 1 and x1 >= i  # every iteration is in view
        for curve in card.plots[0].getPlotItem().listDataItems():
            _x, y = curve.getData()
            if y is None or getattr(curve, "is_range_anchor", False):
                continue
            shown = y[np.isfinite(y)]  # getData() gives display coordinates (log10 on a log axis)
            if len(shown):
                assert y0 <= shown.min() + 1e-9 and shown.max() <= y1 + 1e-9
    late = ranges[99:]  # from iteration 100 on
    changes = sum(a != b for a, b in zip(late, late[1:], strict=False))
    # exact auto-range moves on nearly every one of these 500 updates; on the grid x moves 8 times
    # (120, 150, 200, 250, 300, 400, 500, 600) and y a few times as the loss falls
    assert changes <= 20, changes


def test_anchor_starts_at_the_first_iteration_and_fits_narrow_linear_data(qtbot):
    """A run continued from an imported θ starts at its iteration, not at 0; narrow data far from zero
    gets edges on a grid of its own spread instead of being squashed into a sliver."""
    import pyqtgraph as pg

    from app.plots.ranges import RangeAnchor, _linear_edges

    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    anchor = RangeAnchor(plot)
    anchor.fit(np.arange(5000, 5101, dtype=float), [np.linspace(0.30, 0.31, 101)])
    x_lo, x_hi, y_lo, y_hi = anchor.corners
    assert x_lo == 5000 and 5100 <= x_hi <= 5000 + 4 / 3 * 100
    assert y_lo <= 0.30 and y_hi >= 0.31 and y_hi - y_lo <= 0.05
    assert _linear_edges(100.0, 101.0, False) == (100.0, 101.0)
    assert _linear_edges(0.0, 7.0, True) == (0.0, 8.0)
