"""The window's scripting surface (docs/GUI.md): a script opens a runs folder and overlays its runs at once,
forks the live run with changed settings and gets the fork's id back, and every run reads as what it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget

from imaml_core.cli import main as imaml_cli
from imaml_core.common.errors import ConfigError

from .app_helpers import small_config, train

TIMEOUT_MS = 60_000


def cli_runs(folder: Path, tmp_path: Path, lams: tuple[float, ...]) -> None:
    config = tmp_path / "small.toml"
    small_config(val_every=0).save(config)
    for lam in lams:
        args = ["train", "--config", str(config), "--out", str(folder / f"lam{lam:g}"), "--iterations", "6"]
        assert imaml_cli([*args, "--lam", str(lam), "--quiet"]) == 0


def live_id(qtbot, window) -> str:
    qtbot.waitUntil(lambda: window.current_run_id() is not None, timeout=TIMEOUT_MS)
    return window.current_run_id()


def names(window) -> dict[str, str]:
    return {r["id"]: r["name"] for r in window.runs()}


def test_runs_of_a_folder_just_opened_are_overlaid_without_waiting_for_the_panel(qtbot, make_window, tmp_path):
    folder = tmp_path / "cli_runs"
    cli_runs(folder, tmp_path, (2.0, 20.0))
    window = make_window()
    assert window.open_runs_folder(folder)
    ids = [r["id"] for r in window.runs()]
    assert len(ids) == 2
    window.overlay(ids)  # at once: the panel's own listing of the folder has not arrived
    qtbot.waitUntil(lambda: sorted(window.overlaid()) == sorted(ids), timeout=TIMEOUT_MS)


def test_fork_with_changes_returns_the_fork_which_is_live_and_named_by_what_it_changes(qtbot, make_window):
    window = make_window()
    parent = live_id(qtbot, window)
    train(qtbot, window, 3)
    at = window.iteration
    fork = window.fork({"lam": 5.0})
    assert fork == window.current_run_id() != parent
    rows = {r["id"]: r for r in window.runs()}
    parent_name = f"imaml λ={small_config().lam:g}"
    assert rows[parent]["name"] == parent_name
    assert rows[fork]["parent"] == parent and rows[fork]["fork_iteration"] == at
    assert rows[fork]["name"] == f"λ=5 ← {parent_name} @{at}"
    assert rows[fork]["lam"] == 5.0 and window.config().lam == 5.0  # recorded and shown with the change
    assert rows[parent]["lam"] == small_config().lam
    window.findChild(QWidget, "slider_lam").setValue(3.0)  # before the fork's first iteration: renamed
    qtbot.waitUntil(lambda: names(window)[fork] == f"λ=3 ← {parent_name} @{at}", timeout=TIMEOUT_MS)


def test_a_fork_cannot_change_a_restart_setting_and_nothing_is_forked(qtbot, make_window):
    window = make_window()
    live = live_id(qtbot, window)
    with pytest.raises(ConfigError, match="method"):
        window.fork({"method": "maml"})  # a fork keeps θ; a new method needs a new one
    with pytest.raises(ConfigError):
        window.fork({"no_such_field": 1})
    assert window.current_run_id() == live and len(window.runs()) == 1


def test_a_window_run_is_named_by_its_settings_until_its_first_iteration_is_recorded(qtbot, make_window):
    window = make_window()
    run = live_id(qtbot, window)
    assert names(window)[run] == f"imaml λ={small_config().lam:g}"
    window.findChild(QWidget, "slider_lam").setValue(3.0)
    qtbot.waitUntil(lambda: names(window)[run] == "imaml λ=3", timeout=TIMEOUT_MS)
    train(qtbot, window, 1)
    window.findChild(QWidget, "slider_lam").setValue(4.0)
    train(qtbot, window, 1)  # its report was made with λ=4, so the worker has taken the change
    assert window.applied_config().lam == 4.0 and names(window)[run] == "imaml λ=3"


def test_a_run_the_user_named_keeps_its_name_when_settings_change(qtbot, make_window):
    window = make_window()
    run = live_id(qtbot, window)
    qtbot.waitUntil(lambda: run in window.runs_controller.listed(), timeout=TIMEOUT_MS)
    window.runs_controller.panel.model.renamed.emit(run, "baseline")
    qtbot.waitUntil(lambda: names(window)[run] == "baseline", timeout=TIMEOUT_MS)
    window.findChild(QWidget, "slider_lam").setValue(3.0)
    train(qtbot, window, 1)  # the worker has applied λ=3 by now
    assert window.applied_config().lam == 3.0 and names(window)[run] == "baseline"
