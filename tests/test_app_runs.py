"""The window as an experiment laboratory: every run is recorded, listed, overlaid, forked from the live
point, continued exactly, compared and deleted to the runs folder's .trash."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from PySide6.QtWidgets import QWidget

from app.model.messages import TrainerChange
from app.panels import runs_panel
from app.shell import runs_controller
from imaml_core import load_checkpoint
from imaml_core.cli import main as imaml_cli
from imaml_core.experiments.runs import SUMMARY_KEYS

from .app_helpers import small_config, train

TIMEOUT_MS = 60_000
LIST_KEYS = set(SUMMARY_KEYS)  # the keys of `imaml runs list --json`


def steps(qtbot, window, n: int) -> None:
    for _ in range(n):
        with qtbot.waitSignal(window.report_received, timeout=TIMEOUT_MS):
            window.step()


def live_id(qtbot, window) -> str:
    qtbot.waitUntil(lambda: window.runs_controller.live is not None, timeout=TIMEOUT_MS)
    return window.runs_controller.live.id


def metric_rows(path: str | Path) -> list[dict[str, str]]:
    with open(Path(path) / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def cli_run(folder: Path, iterations: int, tmp_path: Path) -> None:
    config = tmp_path / "small.toml"
    small_config(val_every=0).save(config)
    args = ["train", "--config", str(config), "--out", str(folder), "--iterations", str(iterations), "--quiet"]
    assert imaml_cli(args) == 0


def test_every_run_is_recorded_with_its_history_and_state(qtbot, make_window, runs_dir):
    window = make_window()
    first = live_id(qtbot, window)
    train(qtbot, window, 5)
    [row] = window.runs()
    assert set(row) == LIST_KEYS
    assert row["id"] == first and row["status"] == "paused" and row["iterations"] == window.iteration
    rows = metric_rows(row["path"])
    assert [int(r["iteration"]) for r in rows] == list(range(1, window.iteration + 1))
    assert load_checkpoint(Path(row["path"]) / "meta_params.safetensors").iteration == window.iteration
    with qtbot.waitSignal(window.trainer_ready, timeout=TIMEOUT_MS):
        window.reset()  # a new θ is a new run
    qtbot.waitUntil(lambda: window.runs_controller.live.id != first, timeout=TIMEOUT_MS)
    assert len(window.runs()) == 2


def test_a_runs_folder_not_made_yet_lists_empty_until_the_first_run_is_recorded(qtbot, make_window, runs_dir):
    assert not runs_dir.exists()
    window = make_window()
    qtbot.waitUntil(lambda: len(window.runs_controller.listed()) == 1, timeout=TIMEOUT_MS)
    assert runs_dir.is_dir() and "cannot list" not in window.banner.message()


def test_ticked_runs_are_overlaid_under_the_live_run(qtbot, make_window, runs_dir, tmp_path):
    runs_dir.mkdir(parents=True)
    cli_run(runs_dir / "other", 30, tmp_path)
    window = make_window()
    qtbot.waitUntil(lambda: len(window.runs_controller.listed()) == 2, timeout=TIMEOUT_MS)
    other = next(r["id"] for r in window.runs() if r["path"].endswith("other"))
    window.overlay([other])
    qtbot.waitUntil(lambda: window.overlaid() == [other], timeout=TIMEOUT_MS)
    meta = window.findChild(QWidget, "plot_meta_loss")
    under = [item for item in meta.getPlotItem().listDataItems() if item.zValue() < 0]
    assert len(under) == 2  # train and validation loss of the other run
    x, _ = under[0].getData()
    assert x[0] >= 1 and x[-1] == 30  # binned, but over the run's whole history
    assert all(item.zValue() >= 0 for item in meta.getPlotItem().listDataItems() if item not in under)
    window.overlay([])
    assert window.overlaid() == []
    qtbot.waitUntil(
        lambda: not [item for item in meta.getPlotItem().listDataItems() if item.zValue() < 0], timeout=TIMEOUT_MS
    )


def test_a_history_that_cannot_be_read_is_not_overlaid_and_the_banner_says_why(
    qtbot, make_window, runs_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(runs_controller, "LIST_EVERY_MS", 3_600_000)  # no relisting: the panel keeps the good row
    runs_dir.mkdir(parents=True)
    cli_run(runs_dir / "other", 10, tmp_path)
    window = make_window()
    qtbot.waitUntil(lambda: len(window.runs_controller.listed()) == 2, timeout=TIMEOUT_MS)
    other = next(r["id"] for r in window.runs() if r["path"].endswith("other"))
    metrics = runs_dir / "other" / "metrics.csv"
    metrics.write_text("not a metrics header\n1,2,3\n")  # damaged after it was listed
    window.overlay([other])
    qtbot.waitUntil(lambda: "cannot overlay" in window.banner.message(), timeout=TIMEOUT_MS)
    assert "no valid header" in window.banner.message() and "\n" not in window.banner.message()
    assert window.overlaid() == [] and window.runs_controller.overlays.ids() == []
    assert window.runs_controller.ticked() == []  # unticked, so the next listing does not ask again
    assert metrics.read_text() == "not a metrics header\n1,2,3\n"  # read, never repaired or rewritten


def test_fork_here_continues_in_a_child_run_and_leaves_the_parent_as_it_was(qtbot, make_window):
    window = make_window()
    parent = live_id(qtbot, window)
    train(qtbot, window, 4)
    at = window.iteration
    window.findChild(QWidget, "button_fork").click()
    qtbot.waitUntil(lambda: window.runs_controller.live.id != parent, timeout=TIMEOUT_MS)
    fork = window.runs_controller.live
    assert fork.parent == parent and fork.fork_iteration == at
    assert len(window.history) == 0 and window.iteration == at  # the fork's curve starts here
    parent_path = next(r["path"] for r in window.runs() if r["id"] == parent)
    before = (Path(parent_path) / "metrics.csv").read_bytes(), (Path(parent_path) / "resume.safetensors").read_bytes()
    window.findChild(QWidget, "slider_lam").setValue(3.0)  # the A/B change applies to the fork only
    train(qtbot, window, 3)
    after = (Path(parent_path) / "metrics.csv").read_bytes(), (Path(parent_path) / "resume.safetensors").read_bytes()
    assert after == before
    rows = {r["id"]: r for r in window.runs()}
    assert rows[fork.id]["parent"] == parent and rows[fork.id]["fork_iteration"] == at
    assert rows[fork.id]["lam"] == 3.0 and rows[parent]["lam"] == small_config().lam
    assert int(metric_rows(fork.path)[0]["iteration"]) == at + 1
    qtbot.waitUntil(lambda: parent in window.overlaid(), timeout=TIMEOUT_MS)  # the parent is drawn beside it


def test_a_run_continued_in_the_window_matches_straight_training_bitwise(qtbot, make_window, runs_dir, tmp_path):
    runs_dir.mkdir(parents=True)
    cli_run(runs_dir / "resumed", 12, tmp_path)
    cli_run(tmp_path / "straight", 20, tmp_path)
    window = make_window()
    with qtbot.waitSignal(
        window.trainer_ready, timeout=TIMEOUT_MS, check_params_cb=lambda i: i.reason is TrainerChange.CONTINUE
    ):
        window.continue_run(runs_dir / "resumed")
    assert window.iteration == 12
    qtbot.waitUntil(lambda: len(window.history) == 12, timeout=TIMEOUT_MS)  # its recorded history is shown
    steps(qtbot, window, 8)
    out = tmp_path / "window.safetensors"
    assert window.export_meta_parameters(out)
    mine, straight = load_checkpoint(out), load_checkpoint(tmp_path / "straight" / "meta_params.safetensors")
    assert mine.iteration == straight.iteration == 20
    assert all(torch.equal(mine.params[k], straight.params[k]) for k in straight.params)
    assert [int(r["iteration"]) for r in metric_rows(runs_dir / "resumed")] == list(range(1, 21))


def test_two_selected_runs_show_their_difference_and_delete_moves_to_trash(qtbot, make_window, runs_dir, tmp_path):
    runs_dir.mkdir(parents=True)
    cli_run(runs_dir / "a", 3, tmp_path)
    config = tmp_path / "b.toml"
    small_config(val_every=0, lam=4.0).save(config)
    assert imaml_cli(["train", "--config", str(config), "--out", str(runs_dir / "b"), "--iterations", "3"]) == 0
    window = make_window()
    panel = window.runs_controller.panel
    qtbot.waitUntil(lambda: len(panel.model.rows) == 3, timeout=TIMEOUT_MS)
    paths = [row.path for row in panel.model.rows]
    a, b = paths.index(str(runs_dir / "a")), paths.index(str(runs_dir / "b"))
    panel.table.selectRow(a)
    panel.table.selectionModel().select(
        panel.model.index(b, 0),
        panel.table.selectionModel().SelectionFlag.Select | panel.table.selectionModel().SelectionFlag.Rows,
    )
    assert "λ: 20 vs 4" in panel.diff.text() or "λ: 4 vs 20" in panel.diff.text()
    panel.table.clearSelection()
    panel.table.selectRow(a)
    window.findChild(QWidget, "button_delete_run").click()
    assert (runs_dir / ".trash" / "a").is_dir() and not (runs_dir / "a").exists()
    qtbot.waitUntil(lambda: len(window.runs()) == 2, timeout=TIMEOUT_MS)
    live = [i for i, row in enumerate(panel.model.rows) if row.id == window.runs_controller.live.id]
    panel.table.clearSelection()
    panel.table.selectRow(live[0])
    window.findChild(QWidget, "button_delete_run").click()
    assert "live run cannot be deleted" in window.banner.message()


def test_renaming_a_run_in_the_table_writes_its_record(qtbot, make_window):
    window = make_window()
    run_id = live_id(qtbot, window)
    qtbot.waitUntil(lambda: len(window.runs_controller.listed()) == 1, timeout=TIMEOUT_MS)
    model = window.runs_controller.panel.model
    model.setData(model.index(0, 1), "baseline")
    qtbot.waitUntil(lambda: window.runs()[0]["name"] == "baseline", timeout=TIMEOUT_MS)
    assert window.runs()[0]["id"] == run_id


def test_an_unusable_runs_folder_is_refused_and_the_current_one_kept(qtbot, make_window, tmp_path):
    window = make_window()
    live = live_id(qtbot, window)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert not window.open_runs_folder(blocker / "runs")
    assert "runs folder" in window.banner.message() and window.runs_controller.live.id == live
    assert len(window.runs()) == 1
    other = tmp_path / "elsewhere"
    assert window.open_runs_folder(other)
    with qtbot.waitSignal(window.trainer_ready, timeout=TIMEOUT_MS):
        window.reset()  # new runs go to the new folder
    qtbot.waitUntil(lambda: window.runs_controller.live.id != live, timeout=TIMEOUT_MS)
    assert Path(window.runs_controller.live.path).parent == other


def test_when_recording_fails_the_banner_says_so_and_training_goes_on(qtbot, make_window):
    import shutil

    window = make_window()
    live_id(qtbot, window)
    train(qtbot, window, 2)
    shutil.rmtree(window.runs_controller.live.path)  # the folder vanishes under the run (a removed disk, say)
    train(qtbot, window, 3)
    assert "no longer recorded" in window.banner.message()
    assert window.iteration >= 5 and len(window.history) >= 5  # θ and the history in memory go on


def test_the_runs_panel_shows_a_learned_lambda_as_it_is_now_marked_learned(qtbot, make_window, tmp_path):
    folder = tmp_path / "cli-runs"
    config = tmp_path / "learned.toml"
    small_config(val_every=0, learn_lam=True, lam_shape="layer", lam_lr=0.5).save(config)
    args = ["train", "--config", str(config), "--out", str(folder / "learned"), "--iterations", "6", "--quiet"]
    assert imaml_cli(args) == 0
    window = make_window()
    assert window.open_runs_folder(folder)
    [row] = [r for r in window.runs() if r["lam_learned"]]
    model = window.runs_controller.panel.model
    qtbot.waitUntil(lambda: model.has_rows([row["id"]]), timeout=TIMEOUT_MS)
    at = next(i for i, r in enumerate(model.rows) if r.id == row["id"])
    shown = model.data(model.index(at, [c[1] for c in runs_panel.COLUMNS].index("lam")))
    assert shown == f"{row['current_lam']:.3g} learned" and row["current_lam"] != row["lam"]
