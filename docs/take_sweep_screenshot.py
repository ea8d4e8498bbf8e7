"""Regenerate docs/sweep_view.png: the Sweep view on a real sweep (Ray Tune + Optuna, on this machine).

Run under a virtual display:  xvfb-run -a -s "-screen 0 1400x940x24" python docs/take_sweep_screenshot.py
It runs ``imaml sweep`` (20 trials × 150 meta-iterations over λ, CG iterations and inner steps) into a
temporary folder, then opens the view on it and saves ``view.grab()``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

OUT = Path(__file__).resolve().parent / "sweep_view.png"
SEARCH = ("lam=loguniform:0.5:100", "cg_steps=int:1:10", "inner_steps=intlog:2:20")


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="imaml-studio-sweep-shot-")) / "sweep"
    command = [sys.executable, "-m", "imaml_core", "sweep", "--out", str(folder), "--trials", "20"]
    command += ["--iterations", "150", "--report-every", "30", "--quiet"]
    for spec in SEARCH:
        command += ["--search", spec]
    subprocess.run(command, check=True)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    qapp = QApplication(sys.argv)  # must outlive the view
    from app.panels.sweep_view import SweepView
    from app.toolkit.theme import apply_theme

    apply_theme(qapp, "dark")  # as in the window

    view = SweepView(str(folder))
    view.resize(1200, 760)
    view.show()
    loop = QEventLoop()
    QTimer.singleShot(4000, loop.quit)
    loop.exec()
    view.grab().save(str(OUT))
    print(f"saved {OUT}: {len(view.summary.trials) if view.summary else 0} trials")
    view.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
