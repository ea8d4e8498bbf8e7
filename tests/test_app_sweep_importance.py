"""The Sweep view waits (no error) until a sweep's record exists, then shows its trials and the searched
fields' importance as bars, largest on top, evaluator in the title; with too few trials the card says why.
The importance is computed by ``imaml sweep --show DIR --json`` in a child process: trials that change
while it runs are computed once more, a failed or garbled run is the card's reason, and closing the view
ends the child."""

from __future__ import annotations

import dataclasses

import psutil
import pytest
from PySide6.QtWidgets import QWidget

from app.model.fields import LABELS
from app.panels.sweep_importance import ImportanceCard, read_output
from app.panels.sweep_view import SweepView
from app.plots.axes import FittedAxisItem
from imaml_core.experiments.sweep import read_sweep, sweep_available

from .test_sweep_importance import lam_decides, written_sweep

pytestmark = pytest.mark.skipif(not sweep_available(), reason='needs the sweep extra: pip install ".[sweep]"')

TIMEOUT_MS = 60_000


def open_view(qtbot, folder) -> SweepView:
    view = SweepView(str(folder))
    qtbot.addWidget(view)
    return view


def child_command(card: ImportanceCard) -> list[str]:
    """The command line of the card's computing child, a child of this process."""
    pid = card.child_pid()
    assert pid in {p.pid for p in psutil.Process().children()}
    return psutil.Process(pid).cmdline()


def test_the_view_waits_for_the_sweep_to_start_then_shows_trials_and_importance_bars(qtbot, tmp_path):
    folder = tmp_path / "sweep"  # the window opens the view before the sweep's process has made the folder
    view = open_view(qtbot, folder)
    qtbot.waitUntil(lambda: "waiting for the sweep to start" in view.status.text(), timeout=TIMEOUT_MS)
    assert view.status.property("level") != "error" and view.summary is None
    card = view.importance_card
    assert not card.computing()
    written_sweep(folder, lam_decides(30))
    with qtbot.waitSignal(card.shown, timeout=TIMEOUT_MS):
        view.poll()
        qtbot.waitUntil(card.computing, timeout=TIMEOUT_MS)  # computed off the window's process
        assert child_command(card)[-5:] == ["imaml_core", "sweep", "--show", str(folder), "--json"]
    assert "waiting" not in view.status.text() and view.findChild(QWidget, "sweep_trials").rowCount() == 30
    assert not card.computing()
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
    assert isinstance(metric_axis, FittedAxisItem) and not metric_axis.autoSIPrefix  # one scale
    lo, hi = metric_axis.range
    assert len(metric_axis.tickValues(lo, hi, 150.0)[0][1]) >= 2  # more than a single labelled tick
    view.close()


def test_the_importance_card_says_why_it_has_no_bars(qtbot, tmp_path):
    folder = written_sweep(tmp_path / "sweep", lam_decides(3))  # 3 searched fields: 4 trials at least
    view = open_view(qtbot, folder)
    card = view.importance_card
    with qtbot.waitSignal(card.shown, timeout=TIMEOUT_MS) as shown:
        pass
    assert shown.args[0] is card.importance and card.importance.fields == {}
    assert card.reason.text() == "importance needs at least 4 completed trials (3 so far)"
    assert card.importance.evaluator in card.title.text()
    assert card.reason.isVisibleTo(view) and not card.plot.isVisibleTo(view)
    view.close()


def test_trials_that_change_during_a_computation_are_computed_once_more_after_it(qtbot, tmp_path):
    summary = read_sweep(written_sweep(tmp_path / "sweep", lam_decides(30)))
    card = ImportanceCard()
    qtbot.addWidget(card)
    shown = []
    card.shown.connect(shown.append)
    card.follow(summary)
    first = card.child_pid()
    fewer = dataclasses.replace(summary, trials=summary.trials[:-1])
    card.follow(fewer)  # a child runs already: this one waits for it
    card.follow(fewer)
    assert card.child_pid() == first
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=TIMEOUT_MS)
    assert card.computing() and card.child_pid() != first  # the trials changed: once more
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=TIMEOUT_MS)
    assert not card.computing() and all(list(i.fields)[0] == "lam" for i in shown)
    card.follow(fewer)  # the same completed trials as the last computation: nothing to do
    assert not card.computing()
    card.stop()


def test_a_failed_or_garbled_computation_is_the_cards_reason(qtbot, tmp_path):
    summary = read_sweep(written_sweep(tmp_path / "sweep", lam_decides(30)))
    card = ImportanceCard()
    qtbot.addWidget(card)
    gone = dataclasses.replace(summary, path=str(tmp_path / "gone"))
    with qtbot.waitSignal(card.shown, timeout=TIMEOUT_MS):
        card.follow(gone)
    assert card.importance.fields == {}
    said = f"{tmp_path / 'gone'}: not a sweep folder (no sweep.json)"  # the command's own error line
    assert card.reason.text() == f"cannot compute the importance: {said}"
    assert card.reason.isVisibleTo(card) and not card.plot.isVisibleTo(card)
    card.stop()
    assert read_output(0, "Traceback\n", "").reason.startswith("cannot compute the importance: unreadable output (")
    assert read_output(0, '{"trials": []}', "").reason.startswith("cannot compute the importance: unreadable output")
    assert read_output(0, '{"importance": {"evaluator": "fANOVA"}}', "").reason.startswith(
        "cannot compute the importance: unreadable output"
    )
    assert read_output(-1, "", "").reason == "cannot compute the importance: it crashed"
    assert read_output(1, "", "").reason == "cannot compute the importance: exit code 1"
    printed = '{"trials": [], "importance": {"evaluator": "PedANOVA", "fields": {"lam": 1.0}, "trials": 3}}'
    assert read_output(0, "a stray line\n" + printed + "\n", "").fields == {"lam": 1.0}


def test_closing_the_view_during_a_computation_ends_its_child(qtbot, tmp_path):
    folder = written_sweep(tmp_path / "sweep", lam_decides(30))
    view = open_view(qtbot, folder)
    card = view.importance_card
    qtbot.waitUntil(card.computing, timeout=TIMEOUT_MS)
    pid = card.child_pid()
    assert pid is not None
    view.close()
    assert not card.computing() and card.importance is None  # killed: nothing shown
    assert pid not in {p.pid for p in psutil.Process().children()}
    view.poll()  # a read that ends after the close starts no child
    qtbot.waitUntil(lambda: not view._reading, timeout=TIMEOUT_MS)
    assert not card.computing()


def test_a_damaged_record_is_an_error_not_a_wait(qtbot, tmp_path):
    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "sweep.json").write_text("{not json", encoding="utf-8")
    view = open_view(qtbot, folder)
    qtbot.waitUntil(lambda: "cannot read the sweep" in view.status.text(), timeout=TIMEOUT_MS)
    assert view.status.property("level") == "error"
    view.close()
