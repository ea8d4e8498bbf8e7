"""The Sweep view waits (no error) until a sweep's record exists, then shows its trials and the searched
fields' importance as bars, largest on top, evaluator in the title; with too few trials the card says why."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QWidget

from app.model.fields import LABELS
from app.panels.sweep_view import SweepView
from app.plots.axes import LogAxisItem
from imaml_core.experiments.sweep import sweep_available

from .test_sweep_importance import lam_decides, written_sweep

pytestmark = pytest.mark.skipif(not sweep_available(), reason='needs the sweep extra: pip install ".[sweep]"')

TIMEOUT_MS = 60_000


def open_view(qtbot, folder) -> SweepView:
    view = SweepView(str(folder))
    qtbot.addWidget(view)
    return view


def test_the_view_waits_for_the_sweep_to_start_then_shows_trials_and_importance_bars(qtbot, tmp_path):
    folder = tmp_path / "sweep"  # the window opens the view before the sweep's process has made the folder
    view = open_view(qtbot, folder)
    qtbot.waitUntil(lambda: "waiting for the sweep to start" in view.status.text(), timeout=TIMEOUT_MS)
    assert view.status.property("level") != "error" and view.summary is None
    written_sweep(folder, lam_decides(30))
    view.poll()
    qtbot.waitUntil(lambda: view.summary is not None, timeout=TIMEOUT_MS)
    assert "waiting" not in view.status.text() and view.findChild(QWidget, "sweep_trials").rowCount() == 30
    card = view.importance_card
    qtbot.waitUntil(lambda: card.importance is not None, timeout=TIMEOUT_MS)
    assert not card.importance.reason and card.plot.isVisibleTo(view) and not card.reason.isVisibleTo(view)
    assert "fANOVA" in card.title.text()
    names = list(card.importance.fields)
    assert names[0] == "lam"  # λ decides the metric
    heights = card.bars.opts["y"]
    widths = card.bars.opts["width"]
    assert list(widths) == [card.importance.fields[n] for n in names]  # a bar per field, its share as its length
    assert heights[0] == max(heights)  # the largest share on top
    ticks = card.plot.getPlotItem().getAxis("left")._tickLevels[0]
    assert [label for _, label in ticks] == [LABELS.get(n, n) for n in names]  # readable field labels
    metric_axis = view.scatters["lam"].getPlotItem().getAxis("left")  # val_mse, minimised: a log axis
    assert isinstance(metric_axis, LogAxisItem) and not metric_axis.autoSIPrefix  # one scale
    lo, hi = metric_axis.range
    assert len(metric_axis.tickValues(lo, hi, 150.0)[0][1]) >= 2  # more than a single labelled tick
    view.close()


def test_the_importance_card_says_why_it_has_no_bars(qtbot, tmp_path):
    folder = written_sweep(tmp_path / "sweep", lam_decides(1))
    view = open_view(qtbot, folder)
    card = view.importance_card
    qtbot.waitUntil(lambda: card.importance is not None, timeout=TIMEOUT_MS)
    assert card.reason.text().startswith("importance needs at least 2 completed trials")
    assert card.reason.isVisibleTo(view) and not card.plot.isVisibleTo(view)
    view.close()


def test_a_damaged_record_is_an_error_not_a_wait(qtbot, tmp_path):
    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "sweep.json").write_text("{not json", encoding="utf-8")
    view = open_view(qtbot, folder)
    qtbot.waitUntil(lambda: "cannot read the sweep" in view.status.text(), timeout=TIMEOUT_MS)
    assert view.status.property("level") == "error"
    view.close()
