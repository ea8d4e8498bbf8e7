"""Log-axis tick labels that never overlap, and axes with a single scale (app/plots/axes.py)."""

from __future__ import annotations

import math

import pytest

from app.plots.axes import MIN_GAP_PX, choose_log_ticks, format_tick, labels_fit


def char_width(text: str) -> float:
    """A monospace stand-in for font metrics: 7 px per character."""
    return 7.0 * len(text)


def line_height(_text: str) -> float:
    return 14.0


def gaps_ok(lo: float, hi: float, length: float, ticks, extent) -> bool:
    """Recomputed independently of ``labels_fit``: the labels' own extents never meet, with at least
    ``MIN_GAP_PX`` of free space between neighbours."""
    scale = length / (hi - lo)
    pos = [(math.log10(v) - lo) * scale for v, _ in ticks]
    return all(
        pos[i] - pos[i - 1] >= (extent(ticks[i][1]) + extent(ticks[i - 1][1])) / 2 + MIN_GAP_PX - 1e-9
        for i in range(1, len(ticks))
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.01, "0.01"), (20.0, "20"), (500.0, "500"), (0.001, "0.001"), (1e-5, "1e-5"), (2e-5, "2e-5"), (1e4, "1e4")],
)
def test_tick_labels_are_plain_numbers_in_the_middle_range_and_compact_exponents_outside(value, text):
    assert format_tick(value) == text


CASES = [
    # (lo, hi) in log10, axis length px, extent: short and long, horizontal and vertical, sub-decade ranges
    (-4.0, 0.0, 160, line_height),
    (-4.0, 0.0, 700, char_width),
    (-5.5, -3.2, 120, char_width),
    (-3.3, 0.7, 90, line_height),
    (math.log10(0.65), 0.0, 90, char_width),
    (math.log10(0.55), math.log10(1.05), 60, char_width),
    (math.log10(3e-4), math.log10(5e-4), 150, char_width),
    (-8.0, 8.0, 200, char_width),
]


@pytest.mark.parametrize(("lo", "hi", "length", "extent"), CASES)
def test_chosen_log_ticks_never_overlap_and_show_at_least_two_labels(lo, hi, length, extent):
    ticks = choose_log_ticks(lo, hi, length, extent)
    assert len(ticks) >= 2
    values = [v for v, _ in ticks]
    assert values == sorted(values)
    assert all(lo - 1e-9 <= math.log10(v) <= hi + 1e-9 for v in values)
    assert gaps_ok(lo, hi, length, ticks, extent)
    assert labels_fit(lo, hi, length, ticks, extent, spacious=False)


def test_decades_only_when_there_is_no_room_for_two_and_five():
    short = choose_log_ticks(-4.0, 0.0, 150, line_height)
    assert [t for _, t in short] == ["1e-4", "0.001", "0.01", "0.1", "1"]
    wide = [t for _, t in choose_log_ticks(-1.0, 1.0, 900, char_width)]
    assert wide == ["0.1", "0.2", "0.5", "1", "2", "5", "10"]


def test_a_range_under_one_decade_reads_as_round_values():
    ticks = [t for _, t in choose_log_ticks(math.log10(0.65), 0.0, 300, char_width)]
    assert ticks == ["0.7", "0.8", "0.9", "1"]


def test_a_long_range_on_a_short_axis_skips_decades_rather_than_crowding():
    ticks = choose_log_ticks(-12.0, 12.0, 120, line_height)
    exponents = [round(math.log10(v)) for v, _ in ticks]
    strides = {b - a for a, b in zip(exponents, exponents[1:], strict=False)}
    assert len(strides) == 1 and strides.pop() > 1


@pytest.mark.parametrize(("width", "height"), [(330, 190), (560, 240)])
@pytest.mark.parametrize("y_range", [(1e-4, 2.0), (0.62, 0.98), (3e-5, 6e-5)])
def test_a_rendered_log_plot_draws_separate_labels_on_both_axes(qtbot, width, height, y_range):
    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtGui import QImage, QPainter

    from app.plots.axes import LogAxisItem, single_scale

    w = pg.PlotWidget(axisItems={"left": LogAxisItem("left"), "bottom": LogAxisItem("bottom")})
    qtbot.addWidget(w)
    w.resize(width, height)
    item = w.getPlotItem()
    item.setLabel("left", "query MSE")
    item.setLogMode(x=True, y=True)
    x = np.geomspace(1, 3000, 50)
    item.plot(x, np.geomspace(*y_range, 50))
    item.enableAutoRange()
    w.show()
    qtbot.waitExposed(w)
    w.grab()  # lays the scene out at this size
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        assert axis.labelString().count("(x") == 0  # no second scale in the label
        image = QImage(10, 10, QImage.Format.Format_ARGB32)
        painter = QPainter(image)
        try:
            specs = axis.generateDrawSpecs(painter)
        finally:
            painter.end()
        rects = sorted((spec[0] for spec in specs[2]), key=lambda r: (r.y(), r.x()))
        assert len(rects) >= 2, name
        for a, b in zip(rects, rects[1:], strict=False):
            assert not a.intersects(b), (name, [s[2] for s in specs[2]])
    plain = pg.PlotWidget()
    qtbot.addWidget(plain)
    plain.getPlotItem().setLabel("left", "residual")
    axis = single_scale(plain.getPlotItem().getAxis("left"))
    plain.getPlotItem().plot([0, 1], [0.001, 0.005])
    assert axis.autoSIPrefixScale == 1.0
