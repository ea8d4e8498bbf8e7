"""What the File and Presets menus call: θ export/import (the CLI's checkpoint format), metrics CSV,
plot images, presets and the settings that persist between launches."""

from __future__ import annotations

import csv

import torch
from PySide6.QtWidgets import QWidget

from app.shell.menus import preset_title, shipped_presets
from imaml_core import ExperimentConfig, load_checkpoint
from imaml_core.cli import main as imaml_cli
from imaml_core.common.report import CSV_FIELDS

from .app_helpers import small_config, train

TIMEOUT_MS = 30_000


def same_theta(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_export_then_import_restores_identical_theta_and_eval_accepts_the_file(qtbot, make_window, tmp_path, capsys):
    window = make_window()
    train(qtbot, window, 3)
    first = tmp_path / "first.safetensors"
    assert window.export_meta_parameters(first)
    saved = load_checkpoint(first)
    assert saved.iteration == window.iteration and saved.config == window.applied_config()

    train(qtbot, window, 2)  # θ moves on
    assert window.import_meta_parameters(first)
    assert window.iteration == saved.iteration and len(window.history) == 0
    again = tmp_path / "again.safetensors"
    assert window.export_meta_parameters(again)
    assert same_theta(load_checkpoint(again).params, saved.params)  # bit-for-bit: no arithmetic on the way

    assert imaml_cli(["eval", str(first), "--tasks", "5", "--steps", "2", "--device", "cpu", "--json"]) == 0
    assert '"mse"' in capsys.readouterr().out


def test_bad_import_shows_an_error_in_the_window_and_leaves_theta_alone(qtbot, make_window, tmp_path):
    window = make_window()
    train(qtbot, window, 2)
    before = tmp_path / "before.safetensors"
    assert window.export_meta_parameters(before)
    rows = len(window.history)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint at all")

    assert not window.import_meta_parameters(bad)
    banner = window.findChild(QWidget, "banner")
    assert banner.isVisible() and banner.level == "error"
    assert "Import failed" in window.banner.message() and "unchanged" in window.banner.message()
    assert not window.import_meta_parameters(tmp_path / "missing.safetensors")

    after = tmp_path / "after.safetensors"
    assert window.export_meta_parameters(after)
    assert same_theta(load_checkpoint(after).params, load_checkpoint(before).params)
    assert len(window.history) == rows and window.iteration == load_checkpoint(before).iteration


def test_failed_export_says_so_and_returns_false(qtbot, make_window, tmp_path):
    window = make_window()
    assert not window.export_meta_parameters(tmp_path / "no" / "such" / "folder" / "theta.safetensors")
    assert "Export failed" in window.banner.message()


def test_metrics_csv_has_the_engines_columns_and_one_row_per_iteration(qtbot, make_window, tmp_path):
    window = make_window()
    train(qtbot, window, 4)
    path = tmp_path / "metrics.csv"
    assert window.export_metrics_csv(path)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == CSV_FIELDS
    assert [int(r["iteration"]) for r in rows] == list(range(1, len(window.history) + 1))
    assert rows[-1]["lam"] == str(window.applied_config().lam)


def test_plots_export_as_png_and_svg(qtbot, make_window, tmp_path):
    window = make_window()
    train(qtbot, window, 2)
    for fmt in ("png", "svg"):
        written = window.export_plots(tmp_path / fmt, fmt)
        assert {p.name for p in written} >= {f"meta_loss.{fmt}", f"adaptation.{fmt}", f"memory.{fmt}", f"cg.{fmt}"}
        assert all(p.stat().st_size > 500 for p in written)


def test_shipped_presets_load_and_apply(qtbot, make_window, tmp_path):
    names = {p.name for p in shipped_presets()}
    assert {"paper_defaults.toml", "many_inner_steps.toml", "maml_vs_imaml_memory.toml"} <= names
    assert "iMAML-HF, learned λ per layer" in {preset_title(p) for p in shipped_presets()}
    window = make_window()
    for path in shipped_presets():
        preset = ExperimentConfig.load(path)  # only known keys, valid values
        restart = [k for k in preset.changed(window.config()) if not ExperimentConfig.is_live(k)]
        if restart:  # a new θ: wait for the worker to build it
            with qtbot.waitSignal(window.trainer_ready, timeout=TIMEOUT_MS):
                assert window.load_preset(path)
        else:
            assert window.load_preset(path)
        assert window.config() == preset.replace(device=window.config().device)
    maml = window.config()
    assert window.findChild(QWidget, "combo_method").currentData() == maml.method


def test_preset_round_trip_and_a_bad_preset_is_an_error(qtbot, make_window, tmp_path):
    window = make_window()
    window.findChild(QWidget, "slider_lam").setValue(7.5)
    qtbot.waitUntil(lambda: window.config().lam == 7.5)
    path = tmp_path / "mine.toml"
    assert window.save_preset(path)
    assert ExperimentConfig.load(path) == window.config()
    bad = tmp_path / "bad.toml"
    bad.write_text("lam = -1\nnot_a_key = 3\n")
    assert not window.load_preset(bad)
    assert "preset" in window.banner.message() and window.config().lam == 7.5


def test_last_config_and_geometry_persist_between_launches(qtbot, make_window):
    first = make_window()
    first.findChild(QWidget, "slider_meta_lr").setValue(0.004)
    qtbot.waitUntil(lambda: first.config().meta_lr == 0.004)
    first.close()
    second = make_window(config=None, restore=True)
    assert second.config() == small_config(meta_lr=0.004)
    assert second.findChild(QWidget, "slider_meta_lr").value() == 0.004
