"""Tick labels that never overlap on log and linear axes (app/plots/ticks.py), one scale per axis (axes.py)."""

from __future__ import annotations

import math

import pytest

from app.plots.ticks import (
    LOG_LIMIT,
    MAX_LABELS,
    MIN_GAP_PX,
    candidate_levels,
    choose_linear_ticks,
    choose_log_ticks,
    format_tick,
    labels_fit,
    minor_ticks,
)


def char_width(text: str) -> float:
    """A monospace stand-in for font metrics: 7 px per character."""
    return 7.0 * len(text)


def line_height(_text: str) -> float:
    return 14.0


def drawn_labels(axis) -> list:
    """(rectangle, text) of every tick label the axis would paint now, as pyqtgraph lays them out."""
    from PySide6.QtGui import QImage, QPainter

    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(spec[0], spec[2]) for spec in specs[2]]


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

    from app.plots.axes import FittedAxisItem, single_scale

    w = pg.PlotWidget(axisItems={"left": FittedAxisItem("left"), "bottom": FittedAxisItem("bottom")})
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
        labels = drawn_labels(axis)
        rects = sorted((rect for rect, _ in labels), key=lambda r: (r.y(), r.x()))
        assert len(rects) >= 2, name
        for a, b in zip(rects, rects[1:], strict=False):
            assert not a.intersects(b), (name, [text for _, text in labels])
    plain = pg.PlotWidget()
    qtbot.addWidget(plain)
    plain.getPlotItem().setLabel("left", "residual")
    axis = single_scale(plain.getPlotItem().getAxis("left"))
    plain.getPlotItem().plot([0, 1], [0.001, 0.005])
    assert axis.autoSIPrefixScale == 1.0


EXTREME = [
    (-400.0, -398.0),  # below what a float holds: 1e-400 is 0
    (-400.0, 400.0),  # past both ends
    (398.0, 400.0),
    (-1e6, 1e6),  # a million decades: the chooser must not visit each one
    (2.0, 2.0000001),  # narrower than six digits tell apart
    (2.0, 2.0 + 1e-14),
    (-14.0, -13.5),  # round steps far below 1
    (-307.0, -306.9),
    (5.0, 5.0),
]


@pytest.mark.parametrize("extent", [char_width, line_height])
@pytest.mark.parametrize("length", [0.0, 30.0, 160.0, 900.0])
@pytest.mark.parametrize(("lo", "hi"), EXTREME)
def test_extreme_ranges_give_few_distinct_labels_without_raising(lo, hi, length, extent):
    ticks = choose_log_ticks(lo, hi, length, extent)
    assert 1 <= len(ticks) <= length / MIN_GAP_PX + 1
    labels = [text for _, text in ticks]
    assert len(set(labels)) == len(labels), labels
    assert all(math.isfinite(v) and v > 0 for v, _ in ticks)
    assert all(math.isfinite(v) and v > 0 for v in minor_ticks(lo, hi, [v for v, _ in ticks], length))


@pytest.mark.parametrize(("lo", "hi"), [(math.nan, 1.0), (0.0, math.inf), (-math.inf, math.nan)])
def test_a_non_finite_range_has_no_ticks(lo, hi):
    assert choose_log_ticks(lo, hi, 200, char_width) == []
    assert minor_ticks(lo, hi, [], 200) == []


def test_a_million_decades_cost_no_more_than_a_dozen():
    """The work is bounded by the labels an axis can hold, not by the decades in its range (counted, not
    timed: a repaint must not loop over a million decades)."""
    assert choose_log_ticks(-1e6, 1e6, 900, char_width)
    assert sum(len(level) for level in candidate_levels(-LOG_LIMIT, LOG_LIMIT, 900)) <= 2 * MAX_LABELS


def test_a_range_too_narrow_for_six_digits_shows_its_ends_with_the_digits_that_differ():
    ticks = choose_log_ticks(2.0, 2.0000001, 200, char_width)
    assert [text for _, text in ticks] == ["100", "100.00002"]
    assert [text for _, text in choose_log_ticks(2.0, 2.0000001, 40, char_width)] == ["100"]  # no room: one


def test_tick_labels_beyond_the_normal_floats_do_not_divide_by_zero():
    assert format_tick(5e-324) == "4.94e-324"
    assert format_tick(1e308) == "1e308"
    assert format_tick(-2.5e-7) == "-2.5e-7"
    assert format_tick(9.9999e-6) == "1e-5"  # rounding carries into the next decade
    assert format_tick(100.000023, 8) == "100.00002"


def test_the_axis_item_falls_back_to_pyqtgraph_when_tick_choice_fails(qtbot, monkeypatch):
    import pyqtgraph as pg

    from app.plots import axes
    from app.plots.axes import FittedAxisItem

    axis = FittedAxisItem("bottom")
    axis.setLogMode(True)
    values = axis.tickValues(-400.0, 400.0, 300)  # clamped, not raised
    labels = axis.tickStrings(values[0][1], 1.0, values[0][0])
    assert 1 <= len(labels) == len(set(labels))
    assert axis.tickValues(math.nan, 1.0, 300)[0][1] == []

    def broken(*_args):
        raise ZeroDivisionError

    monkeypatch.setattr(axes, "choose_log_ticks", broken)
    expected = pg.AxisItem("bottom")
    expected.setLogMode(True)
    assert axis.tickValues(-3.0, 1.0, 300) == expected.tickValues(-3.0, 1.0, 300)
    assert axis.style["maxTextLevel"] == expected.style["maxTextLevel"]
    assert axis.tickStrings([-2.0, 0.0], 1.0, 1.0) == expected.tickStrings([-2.0, 0.0], 1.0, 1.0)
    monkeypatch.undo()
    axis.tickValues(-3.0, 1.0, 300)
    monkeypatch.setattr(axes, "format_tick", broken)  # labels for values it did not choose fail: pyqtgraph's
    assert axis.tickStrings([-2.5, 0.5], 1.0, 1.0) == expected.tickStrings([-2.5, 0.5], 1.0, 1.0)
    monkeypatch.undo()
    monkeypatch.setattr(axes, "choose_linear_ticks", broken)  # linear mode falls back the same way
    axis.setLogMode(False)
    expected.setLogMode(False)
    assert axis.tickValues(0.0, 200.0, 300) == expected.tickValues(0.0, 200.0, 300)
    assert axis.tickStrings([0.0, 50.0], 1.0, 50.0) == expected.tickStrings([0.0, 50.0], 1.0, 50.0)


def pyqtgraph_labels(values: list[float], step: float) -> list[str]:
    """pyqtgraph's own linear format, as ``FittedAxisItem`` passes it to ``choose_linear_ticks``."""
    import pyqtgraph as pg

    return pg.AxisItem.tickStrings(pg.AxisItem("bottom"), values, 1.0, step)


def linear_gaps_ok(lo: float, hi: float, length: float, ticks, extent) -> bool:
    scale = length / (hi - lo)
    pos = [(v - lo) * scale for v, _ in ticks]
    return all(
        pos[i] - pos[i - 1] >= (extent(ticks[i][1]) + extent(ticks[i - 1][1])) / 2 + MIN_GAP_PX - 1e-9
        for i in range(1, len(ticks))
    )


LINEAR_CASES = [
    (135.0, 202.0, 60, char_width),  # the λ-per-layer plot of a fork at 1280×720: "1601820" before
    (0.0, 202.0, 60, char_width),
    (0.0, 20000.0, 90, char_width),
    (-5.0, 5.0, 120, char_width),
    (0.0, 1e-3, 150, char_width),
    (0.0, 3.5, 50, line_height),
    (0.62, 0.98, 45, line_height),
]


@pytest.mark.parametrize(("lo", "hi", "length", "extent"), LINEAR_CASES)
def test_chosen_linear_ticks_never_overlap_and_show_at_least_two_labels(qapp, lo, hi, length, extent):
    step, ticks = choose_linear_ticks(lo, hi, length, extent, pyqtgraph_labels)
    assert len(ticks) >= 2
    values = [v for v, _ in ticks]
    assert all(lo - 1e-9 <= v <= hi + 1e-9 for v in values)
    assert all(math.isclose(v / step, round(v / step), abs_tol=1e-9) for v in values)  # multiples of the step
    assert linear_gaps_ok(lo, hi, length, ticks, extent)


def test_a_long_linear_axis_takes_the_finest_round_step_that_fits(qapp):
    step, ticks = choose_linear_ticks(0.0, 200.0, 1000, char_width, pyqtgraph_labels)
    assert step == 10.0 and [t for _, t in ticks][:3] == ["0", "10", "20"]
    assert choose_linear_ticks(0.0, 200.0, 60, char_width, pyqtgraph_labels)[0] == 200.0


@pytest.mark.parametrize(
    ("lo", "hi", "length"),
    [(math.nan, 1.0, 100), (0.0, math.inf, 100), (0.0, 1.0, math.nan), (0.0, 1.0, 0.0), (3.0, 3.0, 100),
     (-1e308, 1e308, 300), (0.1, 0.1 + 1e-15, 100), (1e6, 1e6 + 3, 200), (0.0, 1e300, 200), (5.0, 1.0, 30)],
)  # fmt: skip
def test_extreme_linear_ranges_give_few_distinct_labels_without_raising(qapp, lo, hi, length):
    _, ticks = choose_linear_ticks(lo, hi, length, char_width, pyqtgraph_labels)
    labels = [text for _, text in ticks]
    assert len(set(labels)) == len(labels) <= (length if length > 0 else 0) / MIN_GAP_PX + 1
    assert all(math.isfinite(v) for v, _ in ticks)


def test_labels_pyqtgraph_would_hide_at_the_ends_are_not_counted_and_the_rest_stay_round(qapp):
    """On a 60 px axis from 135 to 202, "140" and "200" would reach past the ends (pyqtgraph hides them),
    so the labels kept are the roundest pair that fits inside; with room, every round step is labelled."""
    _, ticks = choose_linear_ticks(135.0, 202.0, 60, char_width, pyqtgraph_labels, overhang=0.0)
    assert [t for _, t in ticks] == ["150", "190"]
    _, ticks = choose_linear_ticks(0.62, 0.98, 45, line_height, pyqtgraph_labels)
    assert [t for _, t in ticks] == ["0.7", "0.9"]
    _, ticks = choose_linear_ticks(0.0, 5000.0, 60, char_width, pyqtgraph_labels, overhang=0.0)
    assert [t for _, t in ticks] == ["2000"]  # one round label rather than "1100" and "3900"


@pytest.mark.parametrize(("x_range", "least"), [((135.0, 202.0), 2), ((0.0, 202.0), 2), ((0.0, 5000.0), 1)])
def test_a_narrow_rendered_linear_plot_draws_separate_labels(qtbot, x_range, least):
    import numpy as np
    import pyqtgraph as pg

    from app.plots.axes import FittedAxisItem

    w = pg.PlotWidget(axisItems={"left": FittedAxisItem("left"), "bottom": FittedAxisItem("bottom")})
    qtbot.addWidget(w)
    w.resize(110, 120)
    item = w.getPlotItem()
    x = np.linspace(*x_range, 50)
    item.plot(x, np.sin(x))
    item.setXRange(*x_range, padding=0)
    w.show()
    qtbot.waitExposed(w)
    w.grab()
    axis = item.getAxis("bottom")
    assert axis.geometry().width() < 90  # a plot as narrow as the window's narrowest
    labels = drawn_labels(axis)
    rects = sorted((rect for rect, _ in labels), key=lambda r: r.x())
    assert len(rects) >= least, [text for _, text in labels]
    for a, b in zip(rects, rects[1:], strict=False):  # pyqtgraph's own choice leaves "160" touching "180"
        assert b.left() - a.right() >= MIN_GAP_PX / 2, [text for _, text in labels]
