"""Few-shot classification in the window: switching family (the chooser and ``set_task``), the images card
and its query-to-support click, accuracy, a fork and an overlay of two classification runs, an overlay of
another family refused with the reason, export read back by ``imaml eval``, and a refused meta-batch."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox

from imaml_core.cli import main as imaml_cli
from imaml_core.common.errors import ConfigError

from .app_helpers import small_config, train

TIMEOUT_MS = 60_000
GLYPHS = {"glyph_classes": 40, "filters": 4, "meta_batch": 2, "inner_steps": 2, "val_tasks": 6, "val_every": 2}


def glyph_window(qtbot, make_window):
    window = make_window(small_config(task="glyphs", ways=3, shots=1, query=1, **GLYPHS))
    qtbot.waitUntil(lambda: window.task_view.images.result is not None, timeout=TIMEOUT_MS)
    return window


def test_the_family_chooser_switches_to_glyphs_in_a_new_run_with_the_papers_settings(qtbot, make_window):
    window = make_window()
    first = window.current_run_id()
    combo = window.controls.editor("task")
    assert isinstance(combo, QComboBox) and combo.objectName() == "combo_task"
    with qtbot.waitSignal(window.trainer_ready, timeout=TIMEOUT_MS):
        combo.setCurrentIndex(combo.findData("glyphs"))
    config = window.config()
    assert config.task == "glyphs" and config.shots == 1 and config.query == 1 and config.inner_steps == 16
    assert "Synthetic glyphs" in window.banner.message() and "new run" in window.banner.message()
    qtbot.waitUntil(lambda: window.current_run_id() not in (None, first), timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.task_view.currentWidget() is window.task_view.images, timeout=TIMEOUT_MS)
    row = next(r for r in window.runs() if r["id"] == window.current_run_id())
    assert row["task"] == "glyphs" and "synthetic glyphs" in row["name"]
    assert window.accuracy() is None or 0.0 <= window.accuracy() <= 1.0
    # and back: the sinusoid's own defaults return
    window.set_task("sinusoid")
    assert window.config().task == "sinusoid" and window.config().shots == 10 and window.accuracy() is None


def test_a_query_image_clicked_joins_the_support_set_and_phi_adapts_again(qtbot, make_window):
    window = glyph_window(qtbot, make_window)
    card = window.task_view.images
    before = card.result
    tile = card.query_tiles[0]
    assert "θ says" in tile.toolTip() and ("✓" in tile.caption or "✗" in tile.caption)
    with qtbot.waitSignal(window.preview_shown, timeout=TIMEOUT_MS):
        qtbot.mouseClick(tile, Qt.MouseButton.LeftButton)
    after = card.result
    assert len(after.task.x_support) == len(before.task.x_support) + 1
    assert len(after.task.x_query) == len(before.task.x_query) - 1
    assert after.task.y_support[-1] == before.task.y_query[0]
    with qtbot.waitSignal(window.preview_shown, timeout=TIMEOUT_MS):
        window.move_query_to_support(0)  # the scripted way
    assert len(card.result.task.x_support) == len(before.task.x_support) + 2


def test_accuracy_fork_overlay_and_export_of_classification_runs(qtbot, make_window, tmp_path, capsys):
    window = glyph_window(qtbot, make_window)
    parent = window.current_run_id()
    train(qtbot, window, 4)
    assert window.accuracy() is not None and 0.0 <= window.accuracy() <= 1.0
    window.meta_card.accuracy.setChecked(True)  # the meta-loss card shows validation accuracy instead
    assert window.meta_card.plot.getPlotItem().getAxis("left").labelText == "validation accuracy"
    fork = window.fork({"lam": 5.0})
    train(qtbot, window, 2)
    window.overlay([parent, fork])
    qtbot.waitUntil(lambda: sorted(window.overlaid()) == sorted([parent, fork]), timeout=TIMEOUT_MS)
    rows = {r["id"]: r for r in window.runs()}
    assert rows[fork]["parent"] == parent and rows[fork]["task"] == "glyphs"
    path = tmp_path / "theta.safetensors"
    assert window.export_meta_parameters(path)
    capsys.readouterr()
    assert imaml_cli(["eval", str(path), "--tasks", "10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "glyphs" and 0.0 <= result["accuracy"] <= 1.0


def test_a_run_of_another_family_is_not_overlaid_and_the_banner_says_why(qtbot, make_window):
    window = make_window()
    sinusoid_run = window.current_run_id()
    window.set_task("glyphs", ways=3, **GLYPHS)
    window.overlay([sinusoid_run])
    qtbot.waitUntil(lambda: "one task family" in window.banner.message(), timeout=TIMEOUT_MS)
    assert window.overlaid() == []


def test_a_bad_family_or_a_meta_batch_that_cannot_fit_is_refused_and_nothing_changes(qtbot, make_window):
    window = make_window()
    run = window.current_run_id()
    with pytest.raises(ConfigError, match="imaml data omniglot"):
        window.set_task("omniglot", data="/nonexistent/omniglot")
    assert window.applied_config().task == "sinusoid" and window.current_run_id() == run
    window.controls.editor("meta_batch").setValue(256)  # fits: accepted
    qtbot.waitUntil(lambda: window.config().meta_batch == 256, timeout=TIMEOUT_MS)


def test_the_sweep_view_plots_a_maximised_accuracy_the_right_way_up(qtbot, make_window, tmp_path):
    from PySide6.QtWidgets import QWidget

    from imaml_core.experiments.sweep import SweepSettings, TrialSummary, parse_search
    from imaml_core.experiments.sweep._space import SearchSpace
    from imaml_core.experiments.sweep._sweep_file import SweepFile

    folder = tmp_path / "sweep"
    folder.mkdir()
    base = small_config(task="glyphs", ways=3, shots=1, query=1, **GLYPHS)
    space = SearchSpace.combine([parse_search("lam=loguniform:0.5:100")])
    record = SweepFile.create(folder, SweepSettings(trials=3, iterations=4, metric="val_accuracy"), space, base)
    for n, (lam, accuracy) in enumerate([(1.0, 0.55), (10.0, 0.81), (50.0, 0.42)]):
        record.put_trial(TrialSummary(f"t{n}", n, {"lam": lam}, "finished", accuracy, None, 4, 0.1, ()))
    record.set_status("finished")
    record.close()
    window = make_window()
    view = window.open_sweep(folder)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.summary is not None, timeout=TIMEOUT_MS)
    assert view.summary.mode == "max" and view.summary.best.config == {"lam": 10.0}
    assert "best 0.81" in view.status.text()
    plot = view.findChild(QWidget, "plot_sweep_lam").getPlotItem()
    assert not plot.ctrl.logYCheck.isChecked()  # accuracy on a linear axis, higher is higher
    view.close()


def test_profile_methods_profiles_the_classification_family(qtbot, make_window):
    window = glyph_window(qtbot, make_window)
    window.profile_methods, window.profile_steps = ("imaml", "maml"), (1, 2)
    progress: list = []
    window.worker_thread.worker.profiled.connect(progress.append)
    window.run_profile()
    qtbot.waitUntil(lambda: bool(progress) and progress[-1].done == progress[-1].total, timeout=TIMEOUT_MS)
    rows = {(r["method"], r["inner_steps"]): r["memory_bytes"] for r in progress[-1].rows}
    assert len(rows) == 4 and all(v > 0 for v in rows.values())
    assert rows["maml", 2] > rows["maml", 1] and rows["imaml", 2] == rows["imaml", 1]  # the conv net's unroll
