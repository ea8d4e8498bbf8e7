"""The Sweep view follows a sweep folder by polling it, plots each searched field against the metric (log
axes for log-scale fields), highlights the best trial and opens it, or forks from it, in the window; the
dialog that starts a sweep checks its search space first."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QWidget

from app.model.messages import TrainerChange
from app.panels.runs_panel import COLUMNS
from app.panels.sweep_launcher import SweepDialog
from imaml_core.cli import main as imaml_cli
from imaml_core.experiments.sweep import SweepSettings, TrialSummary, parse_search
from imaml_core.experiments.sweep._space import SearchSpace
from imaml_core.experiments.sweep._sweep_file import SweepFile

from .app_helpers import small_config

TIMEOUT_MS = 60_000


def recorded_sweep(folder: Path, tmp_path: Path) -> list[tuple[float, int, float, str]]:
    """A sweep record over three real runs (λ, CG iterations, metric, status); the middle one is best."""
    folder.mkdir(parents=True)
    base = small_config(val_every=0)
    config = tmp_path / "base.toml"
    base.save(config)
    space = SearchSpace.combine([parse_search("lam=loguniform:0.5:100"), parse_search("cg_steps=int:1:10")])
    record = SweepFile.create(folder, SweepSettings(trials=3, iterations=4), space, base)
    trials = [(1.0, 2, 0.9, "finished"), (10.0, 5, 0.4, "finished"), (50.0, 8, 2.0, "pruned")]
    for n, (lam, cg, metric, status) in enumerate(trials):
        name = f"trial-{n:05d}-seed0"
        args = ["train", "--config", str(config), "--out", str(folder / name), "--iterations", "4"]
        assert imaml_cli([*args, "--lam", str(lam), "--cg-steps", str(cg), "--quiet"]) == 0
        record.put_trial(
            TrialSummary(f"t{n}", n, {"lam": lam, "cg_steps": cg}, status, metric, metric, 4, 0.1, (name,))
        )
    record.set_status("finished")
    record.close()
    return trials


def test_the_sweep_view_shows_trials_and_the_best_and_opens_it(qtbot, make_window, tmp_path):
    folder = tmp_path / "sweep"
    trials = recorded_sweep(folder, tmp_path)
    window = make_window()
    view = window.open_sweep(folder)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.summary is not None, timeout=TIMEOUT_MS)
    assert view.findChild(QWidget, "sweep_trials").rowCount() == len(trials)
    assert view.summary.best.config == {"lam": 10.0, "cg_steps": 5}
    assert "best 0.4" in view.status.text()
    lam_plot = view.findChild(QWidget, "plot_sweep_lam")
    assert lam_plot.getPlotItem().ctrl.logXCheck.isChecked()  # λ is searched on a log scale
    assert not view.findChild(QWidget, "plot_sweep_cg_steps").getPlotItem().ctrl.logXCheck.isChecked()
    assert len(view.findChild(QWidget, "plot_parallel").getPlotItem().listDataItems()) == len(trials)
    with qtbot.waitSignal(
        window.trainer_ready, timeout=TIMEOUT_MS, check_params_cb=lambda i: i.reason is TrainerChange.CONTINUE
    ) as blocker:
        view.findChild(QWidget, "button_open_best").click()
    assert blocker.args[0].config.lam == 10.0 and blocker.args[0].iteration == 4
    view.close()


def test_fork_from_best_continues_the_best_trial_in_a_new_run(qtbot, make_window, tmp_path):
    folder = tmp_path / "sweep"
    recorded_sweep(folder, tmp_path)
    window = make_window()
    view = window.open_sweep(folder)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.fork_button.isEnabled(), timeout=TIMEOUT_MS)
    view.fork_button.click()
    qtbot.waitUntil(
        lambda: window.runs_controller.live is not None and window.runs_controller.live.parent is not None,
        timeout=TIMEOUT_MS,
    )
    fork = window.runs_controller.live
    assert fork.fork_iteration == 4 and Path(fork.path).parent != folder  # recorded in the window's folder
    assert window.state.config.lam == 10.0
    model = window.runs_controller.panel.model

    def parent_column() -> str:  # the fork's row, once a listing has read its record
        listed = window.runs_controller.listed()
        column = [c[1] for c in COLUMNS].index("parent")
        return model.data(model.index(listed.index(fork.id), column)) if fork.id in listed else ""

    qtbot.waitUntil(lambda: parent_column().endswith("@ 4"), timeout=TIMEOUT_MS)
    shown = parent_column()
    assert fork.parent not in shown  # the parent is listed in the sweep's folder, yet shown by its name
    name = next(r["name"] for r in window.runs() if r["id"] == fork.id)
    assert name == f"fork ← {shown.removesuffix(' @ 4')} @4"  # the same settings as the trial, so far
    qtbot.waitUntil(lambda: fork.parent in window.overlaid(), timeout=TIMEOUT_MS)  # drawn from the sweep's folder
    view.close()


def test_the_sweep_dialog_refuses_a_bad_search_space(qtbot, tmp_path):
    dialog = SweepDialog(str(tmp_path / "s"))
    qtbot.addWidget(dialog)
    dialog.search.setPlainText("lam=loguniform:0:10")  # a log range that touches 0
    dialog.accept()
    assert dialog.result() == 0 and "lam" in dialog.error.text()
    dialog.search.setPlainText("lam=loguniform:0.1:10\nhidden=choice:[40,40],[80,80]")
    args = dialog.arguments()
    assert args[:2] == ["--out", str(tmp_path / "s")]
    assert args[2:4] == ["--search", "lam=loguniform:0.1:10"] and "--trials" in args


def test_fork_from_best_forks_nothing_when_the_trial_cannot_be_opened(qtbot, make_window, tmp_path):
    folder = tmp_path / "sweep"
    recorded_sweep(folder, tmp_path)
    window = make_window()
    qtbot.waitUntil(lambda: window.current_run_id() is not None, timeout=TIMEOUT_MS)
    live = window.current_run_id()
    view = window.open_sweep(folder)
    qtbot.addWidget(view)
    view.fork_requested.emit(str(tmp_path / "no_such_run"))  # the best trial's folder, gone
    assert "continue run failed" in window.banner.message().lower()
    assert window.current_run_id() == live and len(window.runs()) == 1  # the live run was not forked
    view.close()
