"""Regenerate docs/runs_panel.png: the Runs panel with CLI runs (three seeds of one setting, grouped) and a
window run overlaid under a fork.


Run under a virtual display:  xvfb-run -a -s "-screen 0 1400x940x24" python docs/take_runs_screenshot.py
Four runs are trained with ``imaml train`` (λ 20 with seeds 0, 1, 2, and λ 2) into a private runs folder; the
window trains a run of its own (λ 10), forks it at iteration 150 with λ 5, trains the fork on, turns on
"group seeds" and ticks every other run: the three seeds overlay as their mean with a 95% band.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QCheckBox
from shot import wait_until  # docs/shot.py, beside this script

OUT = Path(__file__).resolve().parent / "runs_panel.png"
ITERATIONS = 300


def main() -> int:
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    _qapp = QApplication(sys.argv)  # must outlive the window
    from app.shell.main_window import MainWindow
    from imaml_core import ExperimentConfig
    from imaml_core.cli import main as imaml

    runs = Path(tempfile.mkdtemp(prefix="imaml-studio-runs-shot-"))
    for name, lam, seed in (
        ("cli-lam20-s0", 20.0, 0),
        ("cli-lam20-s1", 20.0, 1),
        ("cli-lam20-s2", 20.0, 2),
        ("cli-lam2", 2.0, 0),
    ):
        args = ["train", "--out", str(runs / name), "--iterations", str(ITERATIONS), "--quiet", "--no-tensorboard"]
        imaml([*args, "--lam", str(lam), "--seed", str(seed), "--name", f"CLI λ={lam:g}"])
    window = MainWindow(ExperimentConfig(seed=3, lam=10.0), restore=False, runs_folder=str(runs))
    window.confirm_restarts = False
    window.resize(1400, 940)
    window.show()
    window.resizeDocks([window.runs_controller.dock], [230], Qt.Orientation.Vertical)  # every run's row in view
    wait_until(lambda: window.current_run_id() is not None, 60)  # named by its settings: "imaml λ=10"
    window.start()
    wait_until(lambda: window.iteration >= ITERATIONS // 2, 600)
    live = window.fork({"lam": 5.0})  # named by what it changes: "λ=5 ← imaml λ=10 @…"
    wait_until(lambda: window.iteration >= ITERATIONS, 600)
    window.pause()
    window.runs_controller.panel.findChild(QCheckBox, "check_group_seeds").setChecked(True)
    others = [r["id"] for r in window.runs() if r["id"] != live]
    window.overlay(others)
    wait_until(lambda: sorted(window.overlaid()) == sorted(others), 60)
    wait_until(lambda: False, 4)  # the panel's next listing and the last redraws
    window.grab().save(str(OUT))
    print(f"saved {OUT}: {len(window.runs())} runs, overlaid {len(window.overlaid())}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
