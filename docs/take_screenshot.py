"""Regenerate docs/screenshot.png (1280×720) or docs/screenshot_WxH.png: the real window after a few hundred
meta-iterations, at the size of a small laptop screen or of a large monitor.

Run under a virtual display:  xvfb-run -a -s "-screen 0 1920x1080x24" python docs/take_screenshot.py [ITERATIONS] [WxH]
It uses private settings and runs folders, learns λ per layer, changes the inner steps mid-run (a change
marker), forks the run and lowers the base λ in the fork (the parent is overlaid), runs the method profile,
then saves ``window.grab()``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from shot import wait_until  # docs/shot.py, beside this script

ITERATIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 300
SIZE = tuple(int(v) for v in (sys.argv[2] if len(sys.argv) > 2 else "1280x720").split("x"))
NAME = "screenshot.png" if SIZE == (1280, 720) else f"screenshot_{SIZE[0]}x{SIZE[1]}.png"
OUT = Path(__file__).resolve().parent / NAME


def main() -> int:
    settings_dir = tempfile.mkdtemp(prefix="imaml-studio-shot-")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, settings_dir)
    _qapp = QApplication(sys.argv)  # must outlive the window
    from app.shell.main_window import MainWindow
    from imaml_core import ExperimentConfig

    config = ExperimentConfig(lam_shape="layer", learn_lam=True, lam_lr=0.03)
    window = MainWindow(config, restore=False, runs_folder=tempfile.mkdtemp(prefix="imaml-studio-shot-runs-"))
    window.confirm_restarts = False
    window.profile_steps = (1, 2, 4, 8, 16)
    window.resize(*SIZE)
    ready: list[object] = []
    window.trainer_ready.connect(ready.append)
    window.show()
    wait_until(lambda: bool(ready), 60)
    window.start()
    wait_until(lambda: window.iteration >= ITERATIONS // 2, 600)
    window.controls.editor("inner_steps").setValue(20)
    wait_until(lambda: window.iteration >= 2 * ITERATIONS // 3, 600)
    window.fork({"lam": 5.0})  # the fork goes on with a smaller base λ; the parent is overlaid
    wait_until(lambda: window.iteration >= ITERATIONS, 600)
    window.pause()
    window.run_profile()
    wait_until(lambda: window.memory_card.button.isEnabled(), 600)
    window.adaptation.resample()
    wait_until(lambda: False, 1.5)  # let the last preview and redraws land
    window.grab().save(str(OUT))
    print(f"saved {OUT} at iteration {window.iteration}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
