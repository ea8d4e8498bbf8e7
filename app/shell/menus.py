"""Menus and shortcuts. Each file action asks for a path, then calls the window's public method for it
(``export_meta_parameters``, ``import_meta_parameters``, ``export_metrics_csv``, ``export_plots``,
``save_preset``, ``load_preset``), so scripts and tests drive exactly what the menus commands. What the menus
call is the :class:`Commands` protocol, which the window implements.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox

from app.shell.omniglot_dialogs import choose_omniglot_folder, download_omniglot
from app.toolkit.theme import THEMES, resources_dir
from imaml_core.common.config import ExperimentConfig


class Commands(Protocol):
    """What the menus call (the window's public methods)."""

    theme: str

    @property
    def iteration(self) -> int: ...
    def applied_config(self) -> ExperimentConfig: ...
    def import_meta_parameters(self, path: str | os.PathLike[str]) -> bool: ...
    def export_meta_parameters(self, path: str | os.PathLike[str]) -> bool: ...
    def export_metrics_csv(self, path: str | os.PathLike[str]) -> bool: ...
    def export_plots(self, folder: str | os.PathLike[str], fmt: str = "png") -> list[Path]: ...
    def save_preset(self, path: str | os.PathLike[str]) -> bool: ...
    def load_preset(self, path: str | os.PathLike[str]) -> bool: ...
    def restore_defaults(self) -> None: ...
    def choose_runs_folder(self) -> None: ...
    def open_sweep(self, folder: str | os.PathLike[str]) -> object: ...
    def start_sweep(self) -> object: ...
    def toggle_run(self) -> None: ...
    def step(self) -> None: ...
    def reset(self) -> None: ...
    def fork_here(self) -> None: ...
    def run_profile(self) -> None: ...
    def evaluate(self, tasks: int = 200) -> None: ...
    def resample_preview(self) -> None: ...
    def set_theme(self, name: str) -> None: ...
    def set_task(self, name: str, **settings: object) -> str | None: ...
    def show_message(self, level: str, text: str) -> None: ...


CHECKPOINT_FILTER = "Checkpoints (*.safetensors);;All files (*)"
PRESET_FILTER = "Presets (*.toml);;All files (*)"


def shipped_presets() -> list[Path]:
    """The presets in ``resources/presets/`` (sorted by file name)."""
    return sorted((resources_dir() / "presets").glob("*.toml"))


def _comment_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    return [line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")]


def preset_title(path: Path) -> str:
    """The preset's ``# title: ...`` line, or a title made from its file name."""
    for line in _comment_lines(path):
        if line.startswith("title:"):
            return line.removeprefix("title:").strip()
    return path.stem.replace("_", " ").capitalize().replace("Maml", "MAML").replace("imaml", "iMAML")


def preset_summary(path: Path) -> str:
    """The preset's first comment line after its title (its one-line description), for the tooltip."""
    return next((line for line in _comment_lines(path) if not line.startswith("title:")), "")


def _action(window: QMainWindow, text: str, slot: object, shortcut: str | None = None, tip: str = "") -> QAction:
    action = QAction(text, window)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    action.triggered.connect(lambda _checked=False: slot())  # type: ignore[operator]
    window.addAction(action)  # shortcuts work even while the menu bar is hidden
    return action


def build_menus(window: QMainWindow, commands: Commands) -> dict[str, QAction]:
    """Create ``window``'s menu bar calling ``commands``; returns the actions by name (tests and the
    toolbar reuse them)."""
    bar = window.menuBar()
    actions: dict[str, QAction] = {}

    file_menu = bar.addMenu("&File")
    actions["import"] = _action(
        window,
        "&Import meta-parameters…",
        lambda: _import(window, commands),
        "Ctrl+O",
        "Load θ from a checkpoint to continue training or to evaluate it",
    )
    actions["export"] = _action(
        window,
        "&Export meta-parameters…",
        lambda: _export(window, commands),
        "Ctrl+E",
        "Save θ, its config and iteration as a safetensors checkpoint",
    )
    file_menu.addActions([actions["import"], actions["export"]])
    actions["runs_folder"] = _action(
        window,
        "Open &runs folder…",
        commands.choose_runs_folder,
        None,
        "Record runs into another folder and list its runs",
    )
    actions["open_sweep"] = _action(
        window,
        "Open s&weep folder…",
        lambda: _open_sweep(window, commands),
        None,
        "Show a sweep's trials, their settings against the metric, and the best",
    )
    file_menu.addActions([actions["runs_folder"], actions["open_sweep"]])
    actions["omniglot_folder"] = _action(
        window,
        "Choose Omniglot &folder…",
        lambda: choose_omniglot_folder(window, commands),
        None,
        "Train on Omniglot from a folder of its zips (official or the small subsets) or their folders",
    )
    actions["download_omniglot"] = _action(
        window,
        "&Download Omniglot…",
        lambda: download_omniglot(window, commands),
        None,
        "Download the two official zips (md5-checked; a cancelled download resumes)",
    )
    file_menu.addActions([actions["omniglot_folder"], actions["download_omniglot"]])
    file_menu.addSeparator()
    actions["export_csv"] = _action(window, "Export metrics &CSV…", lambda: _export_csv(window, commands))
    actions["export_png"] = _action(window, "Export plots as &PNG…", lambda: _export_plots(window, commands, "png"))
    actions["export_svg"] = _action(window, "Export plots as &SVG…", lambda: _export_plots(window, commands, "svg"))
    file_menu.addActions([actions["export_csv"], actions["export_png"], actions["export_svg"]])
    file_menu.addSeparator()
    actions["quit"] = _action(window, "&Quit", window.close, "Ctrl+Q")
    file_menu.addAction(actions["quit"])

    presets = bar.addMenu("&Presets")
    for path in shipped_presets():
        act = _action(window, preset_title(path), lambda p=path: commands.load_preset(p), tip=preset_summary(path))
        presets.addAction(act)
    presets.addSeparator()
    actions["load_preset"] = _action(window, "&Load preset…", lambda: _load_preset(window, commands))
    actions["save_preset"] = _action(window, "&Save preset…", lambda: _save_preset(window, commands))
    actions["defaults"] = _action(window, "Restore &defaults", commands.restore_defaults)
    presets.addActions([actions["load_preset"], actions["save_preset"], actions["defaults"]])

    run = bar.addMenu("&Run")
    actions["start"] = _action(window, "Start / Pause", commands.toggle_run, "Space")
    actions["step"] = _action(window, "Step one meta-iteration", commands.step, "S")
    actions["reset"] = _action(window, "Reset θ", commands.reset, "Ctrl+R")
    actions["fork"] = _action(
        window,
        "Fork here",
        commands.fork_here,
        "Ctrl+F",
        "Go on in a new run from this iteration; the current run keeps its state",
    )
    run.addActions([actions["start"], actions["step"], actions["reset"], actions["fork"]])
    run.addSeparator()
    actions["profile"] = _action(window, "Profile methods (memory vs inner steps)", commands.run_profile)
    actions["evaluate"] = _action(window, "Evaluate θ on fresh tasks", commands.evaluate, "Ctrl+T")
    actions["resample"] = _action(window, "New preview task", commands.resample_preview, "N")
    actions["sweep"] = _action(
        window,
        "S&weep from these settings…",
        commands.start_sweep,
        None,
        "Search λ, CG iterations, inner steps… on Ray Tune with Optuna, in another process",
    )
    run.addActions([actions["profile"], actions["evaluate"], actions["resample"], actions["sweep"]])

    view = bar.addMenu("&View")
    group = QActionGroup(window)
    for name in THEMES:
        act = QAction(f"{name.capitalize()} theme", window, checkable=True)
        act.setChecked(name == commands.theme)
        act.triggered.connect(lambda _c=False, n=name: commands.set_theme(n))
        group.addAction(act)
        view.addAction(act)
        actions[f"theme_{name}"] = act

    help_menu = bar.addMenu("&Help")
    actions["tour"] = _action(window, "Tour of the controls", lambda: _tour(window))
    actions["about"] = _action(window, "&About iMAML Studio", lambda: _about(window))
    help_menu.addActions([actions["tour"], actions["about"]])
    return actions


# -- dialogs, then the window's public methods -------------------------------------------------------
def _save_path(window: QMainWindow, title: str, name: str, filt: str) -> str:
    path, _ = QFileDialog.getSaveFileName(window, title, str(Path.cwd() / name), filt)
    return path


def _import(window: QMainWindow, commands: Commands) -> None:
    path, _ = QFileDialog.getOpenFileName(window, "Import meta-parameters", str(Path.cwd()), CHECKPOINT_FILTER)
    if path:
        commands.import_meta_parameters(path)


def _export(window: QMainWindow, commands: Commands) -> None:
    name = f"theta_{commands.applied_config().method}_it{commands.iteration}.safetensors"
    path = _save_path(window, "Export meta-parameters", name, CHECKPOINT_FILTER)
    if path:
        commands.export_meta_parameters(path)


def _export_csv(window: QMainWindow, commands: Commands) -> None:
    path = _save_path(window, "Export metrics", "metrics.csv", "CSV (*.csv)")
    if path:
        commands.export_metrics_csv(path)


def _export_plots(window: QMainWindow, commands: Commands, fmt: str) -> None:
    folder = QFileDialog.getExistingDirectory(window, f"Export plots as {fmt.upper()} into folder", str(Path.cwd()))
    if folder:
        commands.export_plots(folder, fmt)


def _open_sweep(window: QMainWindow, commands: Commands) -> None:
    folder = QFileDialog.getExistingDirectory(window, "Open sweep folder", str(Path.cwd()))
    if folder:
        commands.open_sweep(folder)


def _load_preset(window: QMainWindow, commands: Commands) -> None:
    start = str(resources_dir() / "presets")
    path, _ = QFileDialog.getOpenFileName(window, "Load preset", start, PRESET_FILTER)
    if path:
        commands.load_preset(path)


def _save_preset(window: QMainWindow, commands: Commands) -> None:
    path = _save_path(window, "Save preset", "preset.toml", PRESET_FILTER)
    if path:
        commands.save_preset(path)


TOUR = """<h3>iMAML Studio</h3>
<p><b>Start / Pause</b> (Space), <b>Step</b> (S) one meta-iteration, <b>Reset</b> (Ctrl+R) θ.</p>
<p>Controls marked <span style='color:#3fb950'>live</span> apply at the next meta-iteration and leave a
dashed marker on the meta-loss plot. Controls marked <span style='color:#d29922'>restart</span> need a
new θ; you are asked before θ is reset. Dimmed controls are not used by the current method.</p>
<p><b>Adaptation</b>: click to add support points, drag them, shift-click to remove; θ adapts to them.
<b>Memory</b>: <i>Profile methods</i> measures memory vs inner steps for every method.</p>
<p>File menu: export/import θ (Ctrl+E / Ctrl+O), metrics CSV, plots. Presets menu: shipped settings.</p>"""


def _tour(window: QMainWindow) -> None:
    QMessageBox.information(window, "Tour", TOUR)


ABOUT = """<h3>iMAML Studio</h3>
<p>Meta-learning with implicit gradients (iMAML), MAML, first-order MAML and Reptile, trained and compared
live. The same engine runs headless: <code>imaml --help</code>.</p>"""


def _about(window: QMainWindow) -> None:
    QMessageBox.about(window, "About iMAML Studio", ABOUT)
