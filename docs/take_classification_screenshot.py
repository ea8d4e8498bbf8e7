"""Regenerate docs/classification.png: the window meta-training on real Omniglot (the small subsets in
../shared/data/omniglot, or a folder given as the first argument), mid-training.

Run under a virtual display:  xvfb-run -a -s "-screen 0 1400x940x24" python docs/take_classification_screenshot.py
It uses private settings, runs and cache folders, switches the family to Omniglot with the paper's settings
(a meta-batch of 8 to go faster here), trains, moves one query image into the support set, and saves
``window.grab()``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from shot import wait_until  # docs/shot.py, beside this script

HERE = Path(__file__).resolve().parent
DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[1] / "shared" / "data" / "omniglot"
ITERATIONS = int(sys.argv[2]) if len(sys.argv) > 2 else 80
OUT = HERE / "classification.png"


def main() -> int:
    os.environ.setdefault("IMAML_CACHE_DIR", tempfile.mkdtemp(prefix="imaml-studio-shot-cache-"))
    settings_dir = tempfile.mkdtemp(prefix="imaml-studio-shot-")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, settings_dir)
    _qapp = QApplication(sys.argv)  # must outlive the window
    from app.shell.main_window import MainWindow

    window = MainWindow(restore=False, runs_folder=tempfile.mkdtemp(prefix="imaml-studio-shot-runs-"))
    window.confirm_restarts = False
    window.resize(1400, 940)
    ready: list[object] = []
    window.trainer_ready.connect(ready.append)
    window.show()
    wait_until(lambda: bool(ready), 60)
    window.set_task("omniglot", data=str(DATA), meta_batch=8, val_tasks=40, val_every=5)
    window.start()
    wait_until(lambda: window.iteration >= ITERATIONS, 1800)
    window.pause()
    wait_until(lambda: window.task_view.images.result is not None, 60)
    window.move_query_to_support(0)  # one query image joins the support set; φ adapts again
    wait_until(lambda: False, 3.0)  # let the preview and redraws land
    window.grab().save(str(OUT))
    print(f"saved {OUT} at iteration {window.iteration}, validation accuracy {window.accuracy()}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
